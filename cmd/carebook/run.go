package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"
	"gorm.io/gorm"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/api"
	"github.com/carebook/carebook/intake"
	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/payments/accounts"
	"github.com/carebook/carebook/reqid"
	"github.com/carebook/carebook/workers"
)

// How to start each local service, for the error that says it is down.
const (
	startPostgres = "start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
	startRedis    = "start it: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
)

// runMigrate applies the migrations with the owner connection.
func runMigrate(ctx context.Context, cfg Config, logger *slog.Logger) error {
	v, err := models.Migrate(ctx, cfg.AdminDatabaseURL)
	if err != nil {
		return err
	}
	logger.Info("database migrated", "version", v)
	return nil
}

// runSeed writes the demo network.
func runSeed(ctx context.Context, cfg Config, logger *slog.Logger) error {
	_, err := seed(ctx, cfg)
	if err == nil {
		logger.Info("demo network seeded", "tenant", cfg.DemoTenant)
	}
	return err
}

func seed(ctx context.Context, cfg Config) (demo.Network, error) {
	db, err := models.Open(cfg.AdminDatabaseURL)
	if err != nil {
		return demo.Network{}, err
	}
	defer closeDB(db)
	o := demo.Options{
		Slug: cfg.DemoTenant, Name: demoName(cfg.DemoTenant), Now: time.Now(), HashPassword: api.HashPassword,
	}
	// The demo patients' national IDs are sealed, so they are seeded only
	// when a key-encryption key is configured.
	if len(cfg.KEK) > 0 || cfg.KMSKeyID != "" {
		if o.Keys, err = newKeyring(ctx, cfg, db); err != nil {
			return demo.Network{}, err
		}
		// The demo staff's TOTP secrets too, as the api opens them.
		o.SealSecret = api.KeyringSecrets{Keys: o.Keys}.Seal
	}
	return demo.Seed(ctx, db, o)
}

func demoName(slug string) string {
	if slug == "demo" {
		return "Anatolia & Hudson Health"
	}
	return "Demo network " + slug
}

// runWorker runs the Temporal workers until ctx ends.
func runWorker(ctx context.Context, cfg Config, logger *slog.Logger) error {
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
	store, err := openStore(ctx, cfg.S3)
	if err != nil {
		return err
	}
	// The worker archives the audit log, and data subject requests end
	// sessions (Redis) and record their completion in the audit chain.
	if len(cfg.AuditKey) == 0 {
		return errors.New("CAREBOOK_AUDIT_KEY is required for carebook worker, which writes and archives the audit log (the api's key; carebook dev makes its own)")
	}
	rdb, err := dialRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	tc, err := dialTemporal(ctx, cfg.TemporalAddress, cfg.TemporalNamespace, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	return serveWorker(ctx, tc, db, accts, store, newRetention(cfg, db, store, rdb), logger, dsrActivities(cfg, db, store, rdb, accts.Keys))
}

// newAccounts builds the tenants' payment accounts over db.
func newAccounts(cfg Config, db *gorm.DB, keys *keyring.Keyring) (*accounts.Accounts, error) {
	return &accounts.Accounts{DB: db, Keys: keys, StripeURL: cfg.StripeURL}, nil
}

// dsrActivities are the data subject requests' activities.
func dsrActivities(cfg Config, db *gorm.DB, store *objstore.Store, rdb *redis.Client, keys *keyring.Keyring) *activities.DSR {
	return &activities.DSR{DB: db, Store: store, Redis: rdb, RedisPrefix: cfg.RedisPrefix, AuditKey: cfg.AuditKey, Keys: keys}
}

func serveWorker(ctx context.Context, tc client.Client, db *gorm.DB, accts *accounts.Accounts, store *objstore.Store,
	ret *activities.Retention, logger *slog.Logger, dsr *activities.DSR) error {
	if dsr != nil && dsr.Temporal == nil {
		// An erasure closes the workflows of the lab messages it dismisses.
		dsr.Temporal = tc
	}
	w := workers.New(tc, workers.Deps{
		Appointments: &activities.Appointments{DB: db},
		Payments:     &activities.Payments{DB: db, Accounts: accts},
		Settlement:   &activities.Settlement{DB: db, Providers: accts, Store: store},
		Labs:         &activities.Labs{DB: db, Store: store, RenderPDF: activities.RenderReportPDF, Keys: accts.Keys},
		Keys:         &activities.Keys{Keys: accts.Keys},
		Retention:    ret,
		DSR:          dsr,
	})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	// Every worker start brings each tenant's nightly settlement Schedule
	// up to date; a failure is logged, not fatal: bookings do not wait on
	// it, and the next start tries again.
	if err := workers.EnsureSettlementSchedules(ctx, tc, db); err != nil {
		logger.Error("settlement schedules not ensured", "error", err)
	}
	if err := workers.EnsureRetentionSchedule(ctx, tc); err != nil {
		logger.Error("retention schedule not ensured", "error", err)
	}
	go resumeLabMessages(ctx, &intake.Intake{DB: db, Temporal: tc}, logger)
	<-ctx.Done()
	w.Stop()
	return nil
}

// runAPI serves the REST API until ctx ends.
func runAPI(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if len(cfg.AuditKey) == 0 {
		return errors.New("CAREBOOK_AUDIT_KEY is required for carebook api (64 hex digits; carebook dev makes its own)")
	}
	if len(cfg.JWTKey) == 0 {
		return errors.New("CAREBOOK_JWT_KEY is required for carebook api (64 hex digits; carebook dev makes its own)")
	}
	db, err := openApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)
	rdb, err := dialRedis(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	tc, err := dialTemporal(ctx, cfg.TemporalAddress, cfg.TemporalNamespace, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	keys, err := newKeyring(ctx, cfg, db)
	if err != nil {
		return err
	}
	accts, err := newAccounts(cfg, db, keys)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg.S3)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	mln, err := listenMLLP(cfg.MLLPAddr)
	if err != nil {
		ln.Close()
		return err
	}
	return serveAPI(ctx, ln, mln, cfg, logger, db, rdb, tc, accts, store)
}

// serveAPI serves the REST API on ln and, when mln is not nil, HL7 v2 over
// MLLP on mln, until ctx ends.
func serveAPI(ctx context.Context, ln, mln net.Listener, cfg Config, logger *slog.Logger, db *gorm.DB, rdb *redis.Client,
	tc client.Client, accts *accounts.Accounts, store *objstore.Store) error {
	in := &intake.Intake{DB: db, Store: store, Temporal: tc}
	if cfg.MLLPPartner != "" {
		p, err := in.PartnerByKeyID(ctx, cfg.MLLPPartner)
		if err != nil {
			return fmt.Errorf("CAREBOOK_MLLP_PARTNER %q: %w", cfg.MLLPPartner, err)
		}
		in.MLLPPartner = &p
	}
	if mln != nil {
		mctx, cancel := context.WithCancel(ctx)
		defer cancel()
		mdone := make(chan error, 1)
		go func() { mdone <- serveMLLP(mctx, mln, in, logger) }()
		defer func() {
			cancel()
			if err := <-mdone; err != nil {
				logger.Error("mllp stopped", "error", err)
			}
		}()
	}
	tokens, err := api.NewTokens(cfg.JWTKey, nil)
	if err != nil {
		return err
	}
	mailer, err := newMailer(cfg, logger)
	if err != nil {
		return err
	}
	breached, err := loadBreached(cfg, logger)
	if err != nil {
		return err
	}
	s := &api.Server{DB: db, Redis: rdb, Temporal: tc, Logger: logger, Tokens: tokens, Accounts: accts, Keys: accts.Keys, Store: store, Intake: in,
		TemporalUIURL: cfg.TemporalUIURL, Namespace: cfg.TemporalNamespace, TrustedProxies: cfg.TrustedProxies, CORSOrigins: cfg.CORSOrigins, AuditKey: cfg.AuditKey,
		LoginLimit: int64(cfg.LoginLimit), SignupLimit: int64(cfg.SignupLimit), RedisPrefix: cfg.RedisPrefix}
	s.Secrets = api.KeyringSecrets{Keys: accts.Keys}
	s.Mailer, s.AppURL, s.BreachedPasswords = mailer, cfg.AppURL, breached
	s.PublicURL = cfg.PublicURL
	if s.PublicURL == "" {
		s.PublicURL = apiBase(cfg, cfg.HTTPAddr)
	}
	h, err := s.Router()
	if err != nil {
		return err
	}
	// Bodies are small and requests wait on workflows for at most 20 s, so
	// these bounds cut off slow clients without cutting off real work.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      40 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	serve := func() error { return srv.Serve(ln) }
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		if srv.TLSConfig, err = newTLSConfig(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return err
		}
		serve = func() error { return srv.ServeTLS(ln, "", "") }
	}
	logger.Info("api listening", "addr", ln.Addr().String(), "tls", srv.TLSConfig != nil)
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	// Requests wait on workflows for up to 20 s; give them that to finish.
	shutdown, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// openApp connects as the application role and checks Postgres answers.
func openApp(ctx context.Context, cfg Config) (*gorm.DB, error) {
	if err := pingPostgres(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	return models.Open(cfg.DatabaseURL)
}

func closeDB(db *gorm.DB) {
	if s, err := db.DB(); err == nil {
		s.Close()
	}
}

// pingPostgres fails with a message that names the service and how to start
// it, instead of a driver error deep in start-up.
func pingPostgres(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("postgres is not reachable at %s (%s): %w", hostOf(dsn), startPostgres, err)
	}
	return conn.Close(ctx)
}

func dialRedis(ctx context.Context, rawURL string) (*redis.Client, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("CAREBOOK_REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis is not reachable at %s (%s): %w", opts.Addr, startRedis, err)
	}
	return rdb, nil
}

func dialTemporal(ctx context.Context, addr, namespace string, logger *slog.Logger) (client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, client.Options{
		HostPort:  addr,
		Namespace: namespace,
		Logger:    tlog.NewStructuredLogger(logger.With("component", "temporal-client")),
		// A request's ID follows it into the workflows and activities it
		// starts, and onto their log lines.
		ContextPropagators: []workflow.ContextPropagator{reqid.Propagator()},
		Interceptors:       []interceptor.ClientInterceptor{reqid.Interceptor()},
	})
	if err != nil {
		return nil, fmt.Errorf("temporal is not reachable at %s: %w", addr, err)
	}
	return c, nil
}

func hostOf(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Host
}

// devKey returns configured when set, or dev's own 32-byte key kept in the
// data folder under name, so that tokens and sealed secrets survive a
// restart.
func devKey(cfg Config, configured []byte, name string) ([]byte, error) {
	if len(configured) > 0 {
		return configured, nil
	}
	path := filepath.Join(cfg.DataDir, name)
	if b, err := os.ReadFile(path); err == nil {
		return hex.DecodeString(strings.TrimSpace(string(b)))
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	return key, nil
}

// resumeLabMessages starts, now and every five minutes, the workflows of lab
// messages that intake recorded but never started (it died in between).
func resumeLabMessages(ctx context.Context, in *intake.Intake, logger *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		if n, err := in.Resume(ctx, time.Minute); err != nil {
			logger.Error("lab messages not resumed", "error", err)
		} else if n > 0 {
			logger.Info("lab messages resumed", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
