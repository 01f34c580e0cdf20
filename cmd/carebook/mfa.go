package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/carebook/carebook/api"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/payments/accounts"
	"github.com/carebook/carebook/totp"
)

// demoSealSecret seals the demo staff's TOTP secrets the way the api
// stores them, or is nil while no secrets key is configured (they are
// then left unenrolled, and log in through MFA enrolment).
func demoSealSecret(cfg Config) func(context.Context, uuid.UUID, string) ([]byte, error) {
	if len(cfg.SecretsKey) == 0 {
		return nil
	}
	return func(ctx context.Context, tenant uuid.UUID, plain string) ([]byte, error) {
		sealer, err := accounts.NewSealer(cfg.SecretsKey)
		if err != nil {
			return nil, err
		}
		return api.KEKSealer{Sealer: sealer}.Seal(ctx, tenant, plain)
	}
}

// seedDemoMFA enrols the demo staff's TOTP secrets once dev knows its
// secrets key, which it learns after seeding.
func seedDemoMFA(ctx context.Context, cfg Config) error {
	db, err := models.Open(cfg.AdminDatabaseURL)
	if err != nil {
		return err
	}
	defer closeDB(db)
	return demo.SeedMFA(ctx, db, demo.Options{Slug: cfg.DemoTenant, Name: demoName(cfg.DemoTenant), Now: time.Now(),
		SealSecret: demoSealSecret(cfg)})
}

// runDemoOTP is `carebook demo-otp EMAIL [TENANT-SLUG]`: it prints the
// current TOTP code of a seeded demo account, computed from the public
// demo derivation (demo.TOTPSecretFor), for walk-throughs. It reads no
// database and no key, and gives nothing for an account that enrolled a
// secret of its own.
func runDemoOTP(_ context.Context, cfg Config, _ *slog.Logger) error {
	args := os.Args[2:]
	if len(args) < 1 || len(args) > 2 || !strings.Contains(args[0], "@") {
		return errors.New("usage: carebook demo-otp EMAIL [TENANT-SLUG]")
	}
	slug := cfg.DemoTenant
	if len(args) == 2 {
		slug = args[1]
	}
	code, err := totp.Code(demo.TOTPSecretFor(strings.ToLower(slug), strings.ToLower(args[0])), time.Now())
	if err != nil {
		return err
	}
	fmt.Println(code)
	return nil
}
