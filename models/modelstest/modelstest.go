// Package modelstest gives each test run its own migrated Postgres database
// on the local server, and connection strings for the owner and for the
// application role that row-level security binds.
package modelstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/carebook/carebook/models"
)

// DefaultServer is the local Postgres the tests use unless
// CAREBOOK_TEST_DATABASE_URL names another (as a superuser connection).
const DefaultServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// DB is a fresh database for one test run.
type DB struct {
	Name     string
	AdminDSN string // owner connection, bypasses RLS: for setup and for tests that tamper
	AppDSN   string // carebook_app connection: what the product uses
}

// New creates a database, migrates it, and drops it when tb ends.
func New(tb testing.TB) DB {
	tb.Helper()
	ctx := context.Background()
	server := os.Getenv("CAREBOOK_TEST_DATABASE_URL")
	if server == "" {
		server = DefaultServer
	}
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		tb.Fatalf("postgres is not reachable at %s (start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start): %v", redact(server), err)
	}
	defer conn.Close(ctx)

	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "carebook_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), server)
		if err != nil {
			tb.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})

	db := DB{Name: name, AdminDSN: withDatabase(tb, server, name, "")}
	if _, err := models.Migrate(ctx, db.AdminDSN); err != nil {
		tb.Fatalf("migrate test database: %v", err)
	}
	db.AppDSN = withDatabase(tb, server, name, models.AppRole)
	return db
}

func withDatabase(tb testing.TB, server, name, user string) string {
	u, err := url.Parse(server)
	if err != nil {
		tb.Fatalf("parse %s: %v", redact(server), err)
	}
	u.Path = "/" + name
	if user != "" {
		u.User = url.User(user)
	}
	return u.String()
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// String names the database, for logs.
func (d DB) String() string { return fmt.Sprintf("database %s", d.Name) }
