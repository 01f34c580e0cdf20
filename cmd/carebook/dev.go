package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/carebook/carebook/cmd/carebook/devtemporal"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/payments"
	"github.com/carebook/carebook/payments/accounts"
	"github.com/carebook/carebook/payments/provider/stripemock"
)

// runDev runs the whole product in one process for a laptop: it checks
// Postgres and Redis, creates and migrates the database, seeds the demo
// network, starts an embedded Temporal server with its web UI (state kept
// in the data folder), the worker and the api, and prints every URL.
func runDev(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := ensureDatabase(ctx, cfg.AdminDatabaseURL); err != nil {
		return err
	}
	rdb, err := dialRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := runMigrate(ctx, cfg, logger); err != nil {
		return err
	}
	if cfg.KEK, err = devKEK(cfg); err != nil {
		return err
	}
	network, err := seed(ctx, cfg)
	if err != nil {
		return err
	}
	// A laptop has one user on loopback: the per-address limits would
	// only get in the way of demos and the benchmark.
	if cfg.LoginLimit == 0 {
		cfg.LoginLimit = 1000
	}
	if cfg.SignupLimit == 0 {
		cfg.SignupLimit = 1000
	}
	if cfg.MLLPPartner == "" && network.Tenant.Slug == "demo" {
		cfg.MLLPPartner = demo.LabKeyID
	}
	if cfg.AuditKey, err = devKey(cfg, cfg.AuditKey, "audit.key"); err != nil {
		return err
	}
	if cfg.JWTKey, err = devKey(cfg, cfg.JWTKey, "jwt.key"); err != nil {
		return err
	}
	db, err := openApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	keys, err := newKeyring(ctx, cfg, db)
	if err != nil {
		return err
	}
	accts, err := newAccounts(cfg, db, keys)
	if err != nil {
		return err
	}
	payNote, stop, err := devPayments(ctx, accts, network)
	if err != nil {
		return err
	}
	defer stop()
	store, stopStore, err := devStore(ctx, &cfg)
	if err != nil {
		return err
	}
	defer stopStore()
	mailNote, stopMail, err := devMail(ctx, &cfg)
	if err != nil {
		return err
	}
	defer stopMail()
	if cfg.AppURL == "" {
		cfg.AppURL = apiBase(cfg, cfg.HTTPAddr)
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (is another carebook running? set CAREBOOK_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	mln, err := listenMLLP(cfg.MLLPAddr)
	if err != nil {
		ln.Close()
		return err
	}
	ts, err := devtemporal.Start(ctx, devtemporal.Config{
		DataDir:      filepath.Join(cfg.DataDir, "temporal"),
		Namespace:    cfg.TemporalNamespace,
		IP:           "127.0.0.1",
		FrontendPort: cfg.TemporalPort,
		UIPort:       cfg.TemporalUIPort,
		Logger:       logger.With("component", "temporal-server"),
	})
	if err != nil {
		ln.Close()
		if mln != nil {
			mln.Close()
		}
		return fmt.Errorf("start embedded temporal (ports %d, %d; set CAREBOOK_TEMPORAL_PORT and CAREBOOK_TEMPORAL_UI_PORT to move them): %w",
			cfg.TemporalPort, cfg.TemporalUIPort, err)
	}
	defer ts.Stop()
	cfg.TemporalAddress = ts.FrontendHostPort()
	cfg.TemporalUIURL = ts.UIURL()
	tc, err := dialTemporal(ctx, cfg.TemporalAddress, cfg.TemporalNamespace, logger)
	if err != nil {
		return err
	}
	defer tc.Close()

	ret := newRetention(cfg, db, store, rdb)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return serveWorker(gctx, tc, db, accts, store, ret, logger, dsrActivities(cfg, db, store, rdb, accts.Keys))
	})
	g.Go(func() error { return serveAPI(gctx, ln, mln, cfg, logger, db, rdb, tc, accts, store) })
	printBanner(os.Stdout, cfg, apiBase(cfg, ln.Addr().String()), network, payNote)
	fmt.Fprintf(os.Stdout, "  Mail          %s\n\n", mailNote)
	return g.Wait()
}

// ensureDatabase creates the database named in the admin URL if it does not
// exist, connecting to the server's postgres database to do it.
func ensureDatabase(ctx context.Context, adminDSN string) error {
	u, err := url.Parse(adminDSN)
	if err != nil {
		return fmt.Errorf("CAREBOOK_ADMIN_DATABASE_URL: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	server := *u
	server.Path = "/postgres"
	if err := pingPostgres(ctx, server.String()); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, server.String())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var already interface{ SQLState() string }
		if errors.As(err, &already) && already.SQLState() == "42P04" {
			return nil
		}
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Dev's Stripe account secrets: stripe-mock accepts any sk_test_ key, and
// the webhook secret is printed so a developer can sign events by hand.
const (
	devStripeKey     = "sk_test_carebookdev"
	devWebhookSecret = "whsec_carebook_dev"
)

// devPayments points the demo tenant at a local stripe-mock when one is
// installed (or CAREBOOK_STRIPE_URL names one), and at the offline
// provider otherwise, and says which. It sets accts.StripeURL to the mock.
func devPayments(ctx context.Context, accts *accounts.Accounts, n demo.Network) (string, func(), error) {
	stop := func() {}
	if accts.StripeURL == "" {
		mock, err := stripemock.Start(ctx)
		if err != nil {
			if err := accts.Save(ctx, accts.DB, n.Tenant.ID, accounts.Settings{Provider: "offline"}); err != nil {
				return "", stop, err
			}
			return "offline (pay at the desk): stripe-mock is not installed; `" + stripemock.Install + "` or `make tools` adds it", stop, nil
		}
		accts.StripeURL, stop = mock.URL, mock.Stop
	}
	err := accts.Save(ctx, accts.DB, n.Tenant.ID, accounts.Settings{Provider: "stripe", SecretKey: devStripeKey, WebhookSecret: devWebhookSecret})
	if err != nil {
		stop()
		return "", func() {}, err
	}
	return fmt.Sprintf("Stripe API at %s (stripe-mock); webhook secret %s", accts.StripeURL, devWebhookSecret), stop, nil
}

func printBanner(w io.Writer, cfg Config, apiURL string, n demo.Network, payNote string) {
	fmt.Fprintf(w, `
Carebook is running (Ctrl-C stops it).

  API           %[1]s/v1   (health: %[1]s/healthz)
  OpenAPI       %[1]s/v1/openapi.yaml
  Temporal UI   %[2]s/namespaces/%[3]s/workflows
  Temporal gRPC %[4]s   namespace %[3]s
  Data folder   %[5]s
  Payments      %[9]s
  Lab results   MLLP on %[10]s (./bin/carebook send-hl7 FILE...); HTTP partner key %[11]s

Demo tenant %[6]q (%[7]s); every password is %[8]s
Doctors, staff, billing and admin also answer an MFA code: ./bin/carebook demo-otp EMAIL
`, apiURL, cfg.TemporalUIURL, cfg.TemporalNamespace, cfg.TemporalAddress, cfg.DataDir, n.Tenant.Slug, n.Tenant.Name, demo.Password, payNote,
		cfg.MLLPAddr, demo.LabKeyFor(n.Tenant.Slug))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, l := range demo.Logins(n.Tenant.Slug) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.Role, l.Email, l.Note)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

// runDevEvent signs a payment_intent event for a payment of the demo
// tenant with dev's webhook secret and posts it to dev's api: what Stripe
// does once a patient confirms the card, which stripe-mock cannot.
func runDevEvent(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if len(os.Args) < 3 {
		return errors.New("usage: carebook dev-event PAYMENT-ID [payment_intent.amount_capturable_updated|payment_intent.payment_failed|payment_intent.succeeded]")
	}
	paymentID, typ := os.Args[2], "payment_intent.amount_capturable_updated"
	if len(os.Args) > 3 {
		typ = os.Args[3]
	}
	status := map[string]string{
		"payment_intent.amount_capturable_updated": "requires_capture",
		"payment_intent.payment_failed":            "requires_payment_method",
		"payment_intent.succeeded":                 "succeeded",
	}[typ]
	if status == "" {
		return fmt.Errorf("unknown event type %q", typ)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	body, err := json.Marshal(map[string]any{
		"id": "evt_dev_" + hex.EncodeToString(b[:]), "object": "event", "type": typ, "created": time.Now().Unix(),
		"livemode": false, "api_version": "2023-10-16",
		"data": map[string]any{"object": map[string]any{"id": "pi_dev", "object": "payment_intent", "status": status,
			"metadata": map[string]string{"paymentID": paymentID}}},
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiBase(cfg, cfg.HTTPAddr)+"/v1/webhooks/stripe/"+cfg.DemoTenant, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", payments.SignForTest(devWebhookSecret, time.Now(), body))
	client, err := apiClient(cfg)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post to dev's api: %w", err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(res.Body)
	fmt.Printf("%s %s\n", res.Status, bytes.TrimSpace(answer))
	if res.StatusCode != http.StatusOK {
		return errors.New("the api refused the event")
	}
	return nil
}
