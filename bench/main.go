// Command bench is a load generator for a running Carebook stack, such as
// `carebook dev`. It is not a test: it measures, and it fails only when
// the database shows a double booking or disagrees with what the API
// answered.
//
// It signs up one fresh patient per client in the tenant, then runs the
// clients concurrently for -duration (or until -bookings booking attempts
// are spent). Each client repeats a patient's journey: list free slots,
// book one with an Idempotency-Key, sometimes cancel one of its bookings,
// sometimes list its appointments. Part of the bookings aim at a small
// pool of slots that all clients share, so some collide; the 409s that
// follow are the expected answer and are counted, not treated as errors.
//
// After the load it counts double bookings over an owner connection
// (-db), cancels what the run left booked, and measures two ceilings on
// the same servers: round trips of a trivial workflow on the same
// Temporal, and inserts into a table with the same kind of exclusion
// constraint on the same Postgres. The booking rate is printed as a ratio
// of each.
//
// Usage:
//
//	go run ./bench -api http://127.0.0.1:18080 -temporal 127.0.0.1:17233 \
//	    -db 'postgres://postgres@127.0.0.1:5432/carebook_bench?sslmode=disable'
//
// With -labs it measures lab ingestion over MLLP instead (see labs.go):
//
//	go run ./bench -labs -mllp 127.0.0.1:2575 -clients 8 -duration 20s
//
// Exit status: 0 when all is well, 1 when there is a double booking or the
// database disagrees with the API's answers, 2 when the bench could not
// run.
//
// Everything it sends goes to the addresses given, which must be on this
// machine (loopback): it is a tool for a local stack, and refusing other
// hosts keeps a mistyped flag from loading a shared server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// config is every setting of a run, from the flags.
type config struct {
	api       string
	tenant    string
	temporal  string
	namespace string
	db        string
	ceiling   time.Duration // how long each ceiling is measured
	keep      bool          // leave the run's bookings booked
	load      loadConfig
}

// maxDuration bounds a run: the patients' access tokens last 15 minutes
// and are not refreshed, and a load generator should stop by itself.
const maxDuration = 10 * time.Minute

// signupConcurrency bounds concurrent sign-ups: each hashes a password
// with argon2id on the server, which is deliberately slow and memory-hungry.
const signupConcurrency = 4

func main() {
	if args, ok := labsMode(os.Args[1:]); ok {
		os.Exit(labsMain(args))
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, cfg, os.Stdout))
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&c.api, "api", "http://127.0.0.1:8080", "base URL of the Carebook API")
	fs.StringVar(&c.tenant, "tenant", "demo", "slug of the tenant to sign patients up in")
	fs.StringVar(&c.temporal, "temporal", "127.0.0.1:7233", "host:port of the Temporal frontend the API uses")
	fs.StringVar(&c.namespace, "namespace", "default", "Temporal namespace")
	fs.StringVar(&c.db, "db", "postgres://postgres@127.0.0.1:5432/carebook?sslmode=disable",
		"owner (superuser) DSN of the API's database, for the checks and the insert ceiling")
	fs.IntVar(&c.load.clients, "clients", 16, "concurrent clients, each its own patient; also the ceilings' concurrency")
	fs.DurationVar(&c.load.duration, "duration", 20*time.Second, "how long the load runs")
	fs.IntVar(&c.load.bookings, "bookings", 0, "stop after this many booking attempts in all (0: run for -duration)")
	fs.DurationVar(&c.ceiling, "ceiling", 5*time.Second, "how long each ceiling is measured")
	fs.Float64Var(&c.load.hotShare, "hot", 0.3, "share of bookings aimed at the slots all clients share")
	fs.Float64Var(&c.load.cancelShare, "cancel", 0.25, "share of successful bookings followed by a cancel")
	fs.BoolVar(&c.keep, "keep", false, "leave the run's bookings booked instead of cancelling them at the end")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.load.listShare = 0.5
	c.load.practitionerShare = 0.3

	// With -bookings and no -duration, the count is what ends the run;
	// the duration then only bounds it.
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if c.load.bookings > 0 && !durationSet {
		c.load.duration = maxDuration
	}

	switch {
	case c.load.clients < 1:
		return c, errors.New("-clients must be at least 1")
	case c.load.duration <= 0 || c.load.duration > maxDuration:
		return c, fmt.Errorf("-duration must be positive and at most %s", maxDuration)
	case c.ceiling <= 0 || c.ceiling > time.Minute:
		return c, errors.New("-ceiling must be positive and at most 1m")
	case c.load.hotShare < 0 || c.load.hotShare > 1 || c.load.cancelShare < 0 || c.load.cancelShare > 1:
		return c, errors.New("-hot and -cancel are shares between 0 and 1")
	}
	return c, checkLocal(c)
}

// checkLocal refuses any target that is not on this machine.
func checkLocal(c config) error {
	u, err := url.Parse(c.api)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-api %q is not a URL", c.api)
	}
	if !isLocal(u.Hostname()) {
		return fmt.Errorf("-api %s is not a loopback address; the bench only loads a local stack", u.Host)
	}
	host, _, err := net.SplitHostPort(c.temporal)
	if err != nil || !isLocal(host) {
		return fmt.Errorf("-temporal %s is not a loopback host:port; the bench only loads a local stack", c.temporal)
	}
	pc, err := pgx.ParseConfig(c.db)
	if err != nil {
		return fmt.Errorf("-db: %w", err)
	}
	// A host starting with a slash is a Unix socket folder: local.
	if !strings.HasPrefix(pc.Host, "/") && !isLocal(pc.Host) {
		return fmt.Errorf("-db host %s is not a loopback address; the bench only loads a local stack", pc.Host)
	}
	return nil
}

func isLocal(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// run does the whole bench and returns the exit status.
func run(ctx context.Context, cfg config, out io.Writer) int {
	runID := strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
	api := newAPIClient(cfg.api, runID, cfg.load.clients)
	progress := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

	progress("run %s: signing up %d patients in tenant %q", runID, cfg.load.clients, cfg.tenant)
	patients, err := signupAll(ctx, api, cfg.tenant, cfg.load.clients)
	if err != nil {
		progress("%v", err)
		return 2
	}
	offers, err := api.loadOffers(ctx, patients[0].token)
	if err != nil {
		progress("%v", err)
		return 2
	}

	if cfg.load.bookings > 0 {
		progress("load: %d clients for %d booking attempts, at most %s", cfg.load.clients, cfg.load.bookings, cfg.load.duration)
	} else {
		progress("load: %d clients for %s", cfg.load.clients, cfg.load.duration)
	}
	load := runLoad(ctx, api, cfg.load, patients, offers)

	// The check comes before the cleanup: cancelled appointments are
	// outside the constraints, so checking after would prove less.
	progress("checking the database")
	check, err := checkDatabase(ctx, cfg.db, runID)
	if err != nil {
		progress("%v", err)
		return 2
	}
	var left, cancelled int
	if !cfg.keep {
		progress("cancelling the run's bookings")
		left, cancelled = cleanup(ctx, load.clients)
	}

	progress("ceiling: trivial workflow on %s for %s", cfg.temporal, cfg.ceiling)
	wf, err := temporalCeiling(ctx, cfg.temporal, cfg.namespace, runID, cfg.load.clients, cfg.ceiling)
	if err != nil {
		progress("%v", err)
		return 2
	}
	progress("ceiling: conflicting-range inserts for %s", cfg.ceiling)
	ins, err := postgresCeiling(ctx, cfg.db, runID, cfg.load.clients, cfg.ceiling, cfg.load.hotShare)
	if err != nil {
		progress("%v", err)
		return 2
	}

	report(out, cfg, runID, offers, load, check, left, cancelled, wf, ins)
	if check.practitionerPairs+check.patientPairs > 0 || !check.agrees(load) {
		return 1
	}
	return 0
}

// signupAll signs up n patients, a few at a time.
func signupAll(ctx context.Context, api *apiClient, tenant string, n int) ([]patient, error) {
	patients := make([]patient, n)
	errs := make([]error, n)
	sem := make(chan struct{}, signupConcurrency)
	var wg sync.WaitGroup
	for i := range patients {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			patients[i], errs[i] = api.signup(ctx, tenant, i)
		})
	}
	wg.Wait()
	return patients, errors.Join(errs...)
}

// report prints the run's figures.
func report(w io.Writer, cfg config, runID string, offers []offer, load loadResult, check dbCheck, left, cancelled int, wf, ins ceiling) {
	fmt.Fprintf(w, "carebook bench  run %s  api %s  tenant %s  clients %d\n", runID, cfg.api, cfg.tenant, cfg.load.clients)
	fmt.Fprintf(w, "offers: %d (type × facility); hot share %.0f%%, cancel share %.0f%%\n\n",
		len(offers), 100*cfg.load.hotShare, 100*cfg.load.cancelShare)

	fmt.Fprintf(w, "load: %.1fs window, %.1fs until the last journey finished\n", load.window.Seconds(), load.elapsed.Seconds())
	printOps(w, opNames, load.ops, load.elapsed)
	fmt.Fprintln(w)
	bookPerSec := perSecond(load.bookedInWindow, load.window)
	fmt.Fprintf(w, "bookings/s: %.1f  (%d booked in the window, %d in all, of %d attempts; %d aimed at the shared pool, %d of those booked)\n",
		bookPerSec, load.bookedInWindow, load.booked, load.attempts, load.hotPicks, load.hotWon)
	for _, name := range opNames {
		if p := load.ops[name].problems; len(p) > 0 {
			fmt.Fprintf(w, "%s refusals: %s\n", name, problemList(p))
		}
	}
	if len(load.failures) > 0 {
		fmt.Fprintf(w, "\nunexpected answers (first %d):\n", len(load.failures))
		for _, f := range load.failures {
			fmt.Fprintf(w, "  %s: %s -> status %d, request %s", f.op, f.request, f.status, f.requestID)
			if f.err != nil {
				fmt.Fprintf(w, ", error %v", f.err)
			}
			if f.body != "" {
				fmt.Fprintf(w, "\n    %s", f.body)
			}
			fmt.Fprintln(w)
		}
	}

	fmt.Fprintf(w, "\ndouble bookings: practitioner %d, patient %d", check.practitionerPairs, check.patientPairs)
	if check.practitionerPairs+check.patientPairs > 0 {
		fmt.Fprint(w, "  <-- FAIL")
	}
	fmt.Fprintln(w)
	verdict := "agree"
	if !check.agrees(load) {
		verdict = "DISAGREE"
	}
	fmt.Fprintf(w, "database vs answers: %d rows (%d cancelled) for %d 201s and %d cancels; %d bookings and %d cancels without an answer: %s\n",
		check.total(), check.byStatus["cancelled"], load.booked, load.cancelled, load.unknownBooks, load.unknownCancels, verdict)
	if cfg.keep {
		fmt.Fprintln(w, "cleanup: skipped (-keep)")
	} else {
		fmt.Fprintf(w, "cleanup: cancelled %d of the %d bookings left\n", cancelled, left)
	}

	fmt.Fprintf(w, "\nceilings (same servers, %d-way, %.1fs each):\n", cfg.load.clients, cfg.ceiling.Seconds())
	wfPerSec := wf.okRate()
	fmt.Fprintf(w, "  workflow round trips/s: %.1f  (%d runs in the window, %d in all; p50 %s, p95 %s, max %s; %d failed)\n",
		wfPerSec, wf.okInWindow, wf.ok, ms(wf.lat.p50), ms(wf.lat.p95), ms(wf.lat.max), wf.failed)
	insPerSec := ins.attemptRate()
	fmt.Fprintf(w, "  range inserts/s:        %.1f  (%d attempted in the window, %d in all: %d accepted, %d refused, %d deadlocked; p50 %s, p95 %s, max %s; %d failed)\n",
		insPerSec, ins.attemptsInWindow, ins.attempts(), ins.ok, ins.refused, ins.deadlocked,
		ms(ins.lat.p50), ms(ins.lat.p95), ms(ins.lat.max), ins.failed)
	if wf.firstErr != nil {
		fmt.Fprintf(w, "  first workflow error: %v\n", wf.firstErr)
	}
	if ins.firstErr != nil {
		fmt.Fprintf(w, "  first insert error: %v\n", ins.firstErr)
	}
	fmt.Fprintf(w, "\nratios:\n")
	fmt.Fprintf(w, "  bookings/s ÷ workflow round trips/s = %s\n", ratio(bookPerSec, wfPerSec))
	fmt.Fprintf(w, "  bookings/s ÷ range inserts/s        = %s\n", ratio(bookPerSec, insPerSec))
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", a/b)
}
