package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/totp"
)

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
