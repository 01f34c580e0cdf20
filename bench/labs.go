package main

// The -labs mode measures lab ingestion over MLLP against a running
// Carebook (such as `carebook dev`): clients each hold one MLLP connection
// and send the shared NIST and Cerner ORU^R01 samples under IDs unique to
// the run, one message after the previous one's ACK. It reports the ACKs
// and their latency, then waits until the worker has filed every message
// (lab_messages.status = filed) and reports the end-to-end rate. A ceiling
// for comparison is the same clients against an mllp.Server in this
// process that only parses each message and builds its ACK.
//
// Usage (with the dev the bench was measured against):
//
//	go run ./bench -labs -mllp 127.0.0.1:12575 \
//	    -db 'postgres://postgres@127.0.0.1:5432/carebook_bench?sslmode=disable'
//
// Exit status: 0 when every message was acknowledged AA and filed within
// -settle, 1 when not, 2 when the bench could not run.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// labsConfig is every setting of a -labs run, from the flags.
type labsConfig struct {
	mllp     string
	db       string
	cases    string // folder of the shared HL7 v2 samples
	clients  int
	duration time.Duration
	ceiling  time.Duration
	settle   time.Duration // how long to wait for filing after the load
}

// labsMode reports whether args ask for the lab run (-labs anywhere among
// them) and returns the other arguments.
func labsMode(args []string) ([]string, bool) {
	for i, a := range args {
		if a == "-labs" || a == "--labs" {
			return slices.Delete(slices.Clone(args), i, i+1), true
		}
	}
	return args, false
}

// labsMain runs the lab bench with args (without -labs) and returns the
// exit status.
func labsMain(args []string) int {
	cfg, err := parseLabsFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runLabs(ctx, cfg, os.Stdout)
}

func parseLabsFlags(args []string) (labsConfig, error) {
	var c labsConfig
	fs := flag.NewFlagSet("bench -labs", flag.ContinueOnError)
	fs.StringVar(&c.mllp, "mllp", "127.0.0.1:2575", "host:port of Carebook's MLLP listener")
	fs.StringVar(&c.db, "db", "postgres://postgres@127.0.0.1:5432/carebook?sslmode=disable",
		"owner (superuser) DSN of Carebook's database, to follow the messages to filed")
	fs.StringVar(&c.cases, "cases", defaultCasesDir(), "folder of the shared HL7 v2 samples")
	fs.IntVar(&c.clients, "clients", 8, "concurrent MLLP connections; also the ceiling's")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long the load runs")
	fs.DurationVar(&c.ceiling, "ceiling", 5*time.Second, "how long the ceiling is measured")
	fs.DurationVar(&c.settle, "settle", 5*time.Minute, "how long to wait after the load for every message to be filed")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.clients < 1:
		return c, errors.New("-clients must be at least 1")
	case c.duration < time.Second || c.duration > maxDuration:
		return c, fmt.Errorf("-duration must be between 1s and %s", maxDuration)
	case c.ceiling < time.Second || c.ceiling > time.Minute:
		return c, errors.New("-ceiling must be between 1s and 1m")
	case c.settle <= 0 || c.settle > 30*time.Minute:
		return c, errors.New("-settle must be positive and at most 30m")
	}
	host, _, err := net.SplitHostPort(c.mllp)
	if err != nil || !isLocal(host) {
		return c, fmt.Errorf("-mllp %s is not a loopback host:port; the bench only loads a local stack", c.mllp)
	}
	pc, err := pgx.ParseConfig(c.db)
	if err != nil {
		return c, fmt.Errorf("-db: %w", err)
	}
	if !strings.HasPrefix(pc.Host, "/") && !isLocal(pc.Host) {
		return c, fmt.Errorf("-db host %s is not a loopback address; the bench only loads a local stack", pc.Host)
	}
	return c, nil
}

// defaultCasesDir is $CAREBOOK_SHARED_CASES/hl7 (the Makefile sets it), or
// the shared cases folder beside the repository.
func defaultCasesDir() string {
	root := os.Getenv("CAREBOOK_SHARED_CASES")
	if root == "" {
		root = filepath.Join("..", "shared", "cases")
	}
	return filepath.Join(root, "hl7")
}

// runLabs does the whole lab bench and returns the exit status.
func runLabs(ctx context.Context, cfg labsConfig, out io.Writer) int {
	runID := strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
	progress := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

	templates, err := loadLabTemplates(cfg.cases)
	if err != nil {
		progress("%v", err)
		return 2
	}
	conn, err := openLabDB(ctx, cfg.db)
	if err != nil {
		progress("%v", err)
		return 2
	}
	defer conn.Close(context.Background())

	// The ceiling runs first, while the stack is idle: after the load its
	// worker is still rendering and notifying, which would take CPU from
	// a ceiling on the same machine.
	progress("run %s: ceiling: %d clients against an ACK-only MLLP server for %s", runID, cfg.clients, cfg.ceiling)
	ceil, err := mllpCeiling(ctx, cfg.clients, cfg.ceiling, templates, "CEIL-"+runID)
	if err != nil {
		progress("%v", err)
		return 2
	}

	prefix := "BENCH-" + runID
	progress("load: %d clients to %s for %s", cfg.clients, cfg.mllp, cfg.duration)
	load, err := runMLLP(ctx, cfg.mllp, cfg.clients, cfg.duration, templates, prefix)
	if err != nil {
		progress("%v", err)
		return 2
	}
	progress("waiting up to %s for %d messages to be filed", cfg.settle, load.sent)
	filed, err := waitFiled(ctx, conn, prefix, load, cfg.settle, progress)
	if err != nil {
		progress("%v", err)
		return 2
	}

	reportLabs(out, cfg, runID, templates, load, filed, ceil)
	if load.aa() != load.sent || filed.filed() != load.sent {
		return 1
	}
	return 0
}

// reportLabs prints the run's figures.
func reportLabs(w io.Writer, cfg labsConfig, runID string, templates []labTemplate, load mllpLoad, f filing, ceil mllpLoad) {
	fmt.Fprintf(w, "carebook bench -labs  run %s  mllp %s  clients %d\n", runID, cfg.mllp, cfg.clients)
	var samples []string
	for _, t := range templates {
		samples = append(samples, fmt.Sprintf("%s (%d B)", t.name, t.size))
	}
	fmt.Fprintf(w, "messages: %s, alternating; MSH-10 and OBR-3 set to BENCH-%s-<client>-<n>\n\n", strings.Join(samples, ", "), runID)

	fmt.Fprintf(w, "load: %.1fs window, %.1fs until the last ACK came\n", load.window.Seconds(), load.elapsed.Seconds())
	fmt.Fprintf(w, "  sent %d; ACK %s; no ACK %d\n", load.sent, codeList(load.codes), load.noAck)
	aaPerSec := load.aaRate()
	fmt.Fprintf(w, "  ACKs/s (AA): %.1f overall (%d in the window), %.1f median of %d whole seconds (min %d, max %d)\n",
		aaPerSec, load.aaInWindow, median(load.perSecond), len(load.perSecond), minOf(load.perSecond), maxOf(load.perSecond))
	fmt.Fprintf(w, "  ACK latency: p50 %s, p95 %s, p99 %s, max %s\n", ms(load.lat.p50), ms(load.lat.p95), ms(load.lat.p99), ms(load.lat.max))
	for _, k := range sortedKeys(load.texts) {
		fmt.Fprintf(w, "  %s  (%d)\n", k, load.texts[k])
	}
	if load.firstErr != nil {
		fmt.Fprintf(w, "  first send error: %v\n", load.firstErr)
	}

	fmt.Fprintln(w)
	var filedPerSec float64
	if !f.lastFiled.IsZero() {
		filedPerSec = perSecond(f.filed(), f.lastFiled.Sub(load.start))
	}
	verdict := "all filed"
	if f.filed() != load.sent {
		verdict = "NOT ALL FILED"
	}
	fmt.Fprintf(w, "filing: %s; waited %.1fs after the load (at most %s)\n", verdict, f.waited.Seconds(), cfg.settle)
	if !f.lastFiled.IsZero() {
		fmt.Fprintf(w, "  filed/s end to end: %.1f  (%d filed ÷ %.1fs from the first send to the last filed)\n",
			filedPerSec, f.filed(), f.lastFiled.Sub(load.start).Seconds())
		fmt.Fprintf(w, "  filed in the load window: %d (%.1f/s); the last filed %.1fs after the window ended\n",
			f.filedInWindow, perSecond(f.filedInWindow, load.window), f.lastFiled.Sub(load.start.Add(load.window)).Seconds())
		fmt.Fprintf(w, "  AA to filed: p50 %s, p95 %s, p99 %s, max %s\n", ms(f.lag.p50), ms(f.lag.p95), ms(f.lag.p99), ms(f.lag.max))
	}
	fmt.Fprintf(w, "  not filed: %d  (rows %d of %d sent: %s)\n", load.sent-f.filed(), f.rows, load.sent, codeList(f.byStatus))

	fmt.Fprintf(w, "\nceiling (ACK-only mllp.Server in the bench, %d clients, same messages, %.1fs):\n", cfg.clients, ceil.window.Seconds())
	ceilPerSec := ceil.aaRate()
	fmt.Fprintf(w, "  ACKs/s: %.1f overall (%d in the window), %.1f median per second; p50 %s, p95 %s, p99 %s; ACK %s; no ACK %d\n",
		ceilPerSec, ceil.aaInWindow, median(ceil.perSecond), ms(ceil.lat.p50), ms(ceil.lat.p95), ms(ceil.lat.p99), codeList(ceil.codes), ceil.noAck)
	if ceil.firstErr != nil {
		fmt.Fprintf(w, "  first send error: %v\n", ceil.firstErr)
	}

	fmt.Fprintf(w, "\nratios:\n")
	fmt.Fprintf(w, "  ACKs/s ÷ ceiling ACKs/s  = %s\n", smallRatio(aaPerSec, ceilPerSec))
	fmt.Fprintf(w, "  filed/s ÷ ceiling ACKs/s = %s\n", smallRatio(filedPerSec, ceilPerSec))
	fmt.Fprintf(w, "  filed/s ÷ ACKs/s         = %s\n", smallRatio(filedPerSec, aaPerSec))
}

// smallRatio is a/b to three significant digits: the lab ratios to the
// ceiling are a few thousandths, which three decimals would round away.
func smallRatio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3g", a/b)
}

// codeList renders counts as "k n, k n" in key order, or "none".
func codeList(counts map[string]int) string {
	if len(counts) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func minOf(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	return slices.Min(xs)
}

func maxOf(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}
