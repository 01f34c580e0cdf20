// Command carebook is the whole product in one binary:
//
//	carebook dev      everything in one process, with an embedded Temporal
//	                  server and web UI, migrated and seeded (for a laptop)
//	carebook api      the REST API, against an external Temporal
//	carebook worker   the Temporal workers
//	carebook migrate  apply database migrations
//	carebook seed     write the demo network
//	carebook send-hl7 [-addr host:port] FILE...
//	                  send HL7 v2 files to the api's MLLP listener and
//	                  print each acknowledgment
//	carebook audit verify [TENANT-SLUG...]
//	                  check the tenants' audit hash chains
//	carebook retention run
//	                  start a retention run now, through its Schedule
//	carebook keys rotate TENANT-SLUG
//	                  rotate the tenant's data key (a KeyRotation workflow)
//	carebook keys rewrap
//	                  wrap every tenant's keys again under the current KEK
//	carebook dev-event PAYMENT-ID [TYPE]
//	                  send dev's api a signed Stripe event about a payment,
//	                  as Stripe would after the patient pays
//	carebook demo-otp EMAIL [TENANT-SLUG]
//	                  print a demo account's current TOTP code (dev only)
//
// Configuration comes from the environment; see Config and the README.
package main

import (
	"context"
	"fmt"
	"github.com/carebook/carebook/reqid"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: carebook dev|api|worker|migrate|seed|send-hl7|audit|keys|retention|dev-event|demo-otp")
		os.Exit(2)
	}
	cfg, err := FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "carebook:", err)
		os.Exit(2)
	}
	logger := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	commands := map[string]func(context.Context, Config, *slog.Logger) error{
		"dev":       runDev,
		"api":       runAPI,
		"worker":    runWorker,
		"migrate":   runMigrate,
		"seed":      runSeed,
		"dev-event": runDevEvent,
		"send-hl7":  runSendHL7,
		"audit":     runAudit,
		"demo-otp":  runDemoOTP,
		"retention": runRetention,
		"keys":      runKeys,
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "carebook: unknown command %q; want dev, api, worker, migrate, seed, send-hl7, audit, keys, retention, dev-event or demo-otp\n", os.Args[1])
		os.Exit(2)
	}
	ctx = commandContext(ctx, os.Args[1])
	if err := cmd(ctx, cfg, logger); err != nil {
		logger.Error("carebook "+os.Args[1]+" failed", "error", err)
		fmt.Fprintln(os.Stderr, "carebook:", err)
		os.Exit(1)
	}
}

// commandContext gives a one-shot command (keys rotate, retention run, audit
// verify, send-hl7...) a request ID of its own, as the api gives each
// request: its log lines and the memo of any workflow it starts carry it,
// so an operator can tie a run in the Temporal UI to the command that
// started it. The servers (dev, api, worker) make one per request instead.
func commandContext(ctx context.Context, name string) context.Context {
	switch name {
	case "dev", "api", "worker":
		return ctx
	}
	return reqid.With(ctx, "cli-"+reqid.New())
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return reqid.Logger(slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
}
