package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDevFailsFastNamingTheMissingService points dev at closed ports and
// expects an immediate error that names the service and how to start it.
func TestDevFailsFastNamingTheMissingService(t *testing.T) {
	base, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	base.DataDir = t.TempDir()
	tests := []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"postgres down", func(c *Config) {
			c.AdminDatabaseURL = "postgres://postgres@127.0.0.1:1/carebook?sslmode=disable"
		}, []string{"postgres is not reachable at 127.0.0.1:1", "pg_ctlcluster"}},
		{"redis down", func(c *Config) {
			c.AdminDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
			c.RedisURL = "redis://127.0.0.1:1/0"
		}, []string{"redis is not reachable at 127.0.0.1:1", "redis-server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.edit(&cfg)
			start := time.Now()
			err := runDev(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				t.Fatal("dev started without the service")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v to fail", d)
			}
		})
	}
}
