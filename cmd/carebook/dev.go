package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/carebook/carebook/cmd/carebook/devtemporal"
	"github.com/carebook/carebook/models/demo"
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
	network, err := seed(ctx, cfg)
	if err != nil {
		return err
	}
	if cfg.JWTKey, err = jwtKey(cfg); err != nil {
		return err
	}
	db, err := openApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB(db)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (is another carebook running? set CAREBOOK_HTTP_ADDR): %w", cfg.HTTPAddr, err)
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

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveWorker(gctx, tc, db) })
	g.Go(func() error { return serveAPI(gctx, ln, cfg, logger, db, rdb, tc) })
	printBanner(os.Stdout, cfg, "http://"+ln.Addr().String(), network)
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

func printBanner(w io.Writer, cfg Config, apiURL string, n demo.Network) {
	fmt.Fprintf(w, `
Carebook is running (Ctrl-C stops it).

  API           %[1]s/v1   (health: %[1]s/healthz)
  OpenAPI       %[1]s/v1/openapi.yaml
  Temporal UI   %[2]s/namespaces/%[3]s/workflows
  Temporal gRPC %[4]s   namespace %[3]s
  Data folder   %[5]s

Demo tenant %[6]q (%[7]s); every password is %[8]s
`, apiURL, cfg.TemporalUIURL, cfg.TemporalNamespace, cfg.TemporalAddress, cfg.DataDir, n.Tenant.Slug, n.Tenant.Name, demo.Password)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, l := range demo.Logins(n.Tenant.Slug) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.Role, l.Email, l.Note)
	}
	tw.Flush()
	fmt.Fprintln(w)
}
