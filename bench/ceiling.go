package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The ceilings put the booking figures in proportion: a booking is at
// least a workflow round trip (Update-With-Start, an activity, an answer)
// and at least one conflicting-range insert, so the bare versions of both,
// on the same servers in the same run, are upper bounds it can be read
// against.

const (
	// ceilingQueue is the task queue of the bench's own worker; nothing
	// else polls it, so the trivial workflow never reaches Carebook's.
	ceilingQueue = "bench-ceiling"
	// noopWorkflowName is the trivial workflow's registered name.
	noopWorkflowName = "BenchNoop"
	// noopTimeout bounds one trivial run, so that a lost worker ends the
	// measurement instead of hanging it.
	noopTimeout = 30 * time.Second
)

// noopWorkflow returns at once: its round trip is the server's and the
// worker's own cost, with no activity and no database.
func noopWorkflow(ctx workflow.Context) error { return nil }

// ceiling is one measured upper bound.
//
// Its rates count only what completed within the window, divided by the
// window: an attempt still running at the deadline is finished and counted
// in the outcomes, but the time it takes to finish is not part of the
// window, so one stuck attempt cannot drag the rate down with idle time.
type ceiling struct {
	window     time.Duration // the measured window
	elapsed    time.Duration // until the last attempt finished
	lat        latencies
	ok         int // workflow runs completed, inserts accepted
	refused    int // inserts refused by the constraint
	deadlocked int // inserts aborted as deadlocked (see errDeadlock)
	failed     int // errors of any other kind
	firstErr   error

	attemptsInWindow int // attempts that completed within the window
	okInWindow       int // of those, the ones that succeeded
}

// The outcomes of an attempt that are answers, not failures.
var (
	// errRefused is an insert the exclusion constraint refused.
	errRefused = errors.New("refused by the exclusion constraint")
	// errDeadlock is an insert Postgres aborted as deadlocked. Two inserts
	// of overlapping ranges at the same moment each find the other's
	// uncommitted row in the index and wait for the other's transaction;
	// Postgres notices only after deadlock_timeout (1 s by default) and
	// aborts one. That is how the constraint settles such a race, so it is
	// counted apart from failures; the waiting shows in the latency tail.
	errDeadlock = errors.New("deadlock detected")
)

// attempts is every timed operation, whatever its outcome.
func (c ceiling) attempts() int { return c.lat.n }

// attemptRate is attempts per second of the window, whatever their outcome.
func (c ceiling) attemptRate() float64 { return perSecond(c.attemptsInWindow, c.window) }

// okRate is successes per second of the window.
func (c ceiling) okRate() float64 { return perSecond(c.okInWindow, c.window) }

// temporalCeiling runs the trivial workflow with the given number of
// concurrent starters for d, each starting a run and waiting for its
// result, on a worker of its own connected to the same frontend.
func temporalCeiling(ctx context.Context, hostPort, namespace, runID string, starters int, d time.Duration) (ceiling, error) {
	// The SDK logs every worker start at Info; warnings and up are enough
	// here and keep the report readable.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, client.Options{
		HostPort:  hostPort,
		Namespace: namespace,
		Logger:    tlog.NewStructuredLogger(logger),
	})
	if err != nil {
		return ceiling{}, fmt.Errorf("dial temporal at %s: %w", hostPort, err)
	}
	defer c.Close()

	// Default worker options, as Carebook's own worker uses, so the bound
	// is the one its workflows live under.
	w := worker.New(c, ceilingQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(noopWorkflow, workflow.RegisterOptions{Name: noopWorkflowName})
	if err := w.Start(); err != nil {
		return ceiling{}, fmt.Errorf("start the ceiling worker: %w", err)
	}
	defer w.Stop()

	roundTrip := func(id string) error {
		rctx, cancel := context.WithTimeout(ctx, noopTimeout)
		defer cancel()
		run, err := c.ExecuteWorkflow(rctx, client.StartWorkflowOptions{
			ID:                       id,
			TaskQueue:                ceilingQueue,
			WorkflowExecutionTimeout: noopTimeout,
		}, noopWorkflowName)
		if err != nil {
			return err
		}
		return run.Get(rctx, nil)
	}
	// One untimed run first: the worker's pollers and the task queue come
	// up on first use, which is set-up, not throughput.
	if err := roundTrip(fmt.Sprintf("bench-ceiling-%s-warmup", runID)); err != nil {
		return ceiling{}, fmt.Errorf("warm-up workflow: %w", err)
	}

	return measure(ctx, starters, d, func(i, n int) error {
		return roundTrip(fmt.Sprintf("bench-ceiling-%s-%d-%d", runID, i, n))
	}), nil
}

// postgresCeiling creates a scratch schema with a table guarded by the same
// kind of exclusion constraint as appointments, and has conns connections
// insert ranges into it for d, hotShare of them aimed at a few shared,
// overlapping ranges. The schema is dropped afterwards.
func postgresCeiling(ctx context.Context, dsn, runID string, conns int, d time.Duration, hotShare float64) (ceiling, error) {
	schema := pgx.Identifier{"bench_" + runID}.Sanitize()
	table := schema + ".ranges"
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return ceiling{}, fmt.Errorf("connect to -db: %w", err)
	}
	defer admin.Close(context.Background())
	// btree_gist (installed by Carebook's migrations) lets the integer key
	// share a GiST index with the range, as tenant and practitioner do in
	// appointments.
	ddl := fmt.Sprintf(`CREATE SCHEMA %s;
CREATE TABLE %s (
    k int NOT NULL,
    s timestamptz NOT NULL,
    e timestamptz NOT NULL,
    EXCLUDE USING gist (k WITH =, tstzrange(s, e) WITH &&)
)`, schema, table)
	if _, err := admin.Exec(ctx, ddl); err != nil {
		return ceiling{}, fmt.Errorf("create the scratch table: %w", err)
	}
	defer func() {
		// Dropped even after Ctrl-C, hence a context of its own.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(dctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "bench: drop scratch schema %s: %v\n", schema, err)
		}
	}()

	workers := make([]*pgx.Conn, conns)
	for i := range workers {
		if workers[i], err = pgx.Connect(ctx, dsn); err != nil {
			return ceiling{}, fmt.Errorf("connect to -db: %w", err)
		}
		defer workers[i].Close(context.Background())
	}
	insert := "INSERT INTO " + table + " (k, s, e) VALUES ($1, $2, $3)"
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rngs := make([]*rand.Rand, conns)
	seed := uint64(time.Now().UnixNano())
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(seed, uint64(i)))
	}

	return measure(ctx, conns, d, func(i, n int) error {
		// A hot insert is a 30-minute range at one of eight quarter-hour
		// starts of one of four keys: most of them overlap a range already
		// there. Any other insert has a key of its own connection and a
		// start no one else uses, so it is always accepted.
		k, start := 1000+i, base.Add(time.Duration(n)*30*time.Minute)
		if r := rngs[i]; r.Float64() < hotShare {
			k, start = r.IntN(4), base.Add(time.Duration(r.IntN(8))*15*time.Minute)
		}
		_, err := workers[i].Exec(ctx, insert, k, start, start.Add(30*time.Minute))
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "23P01": // exclusion_violation
			return errRefused
		case errors.As(err, &pgErr) && pgErr.Code == "40P01": // deadlock_detected
			return errDeadlock
		}
		return err
	}), nil
}

// measure runs op from workers goroutines, each in a loop, for d. op gets
// its worker's index and a per-worker sequence number, and returns nil,
// errRefused, errDeadlock or a failure.
func measure(ctx context.Context, workers int, d time.Duration, op func(i, n int) error) ceiling {
	tallies := make([]ceiling, workers)
	lats := make([][]time.Duration, workers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range tallies {
		wg.Go(func() {
			t := &tallies[i]
			for n := 0; ctx.Err() == nil && time.Now().Before(deadline); n++ {
				t0 := time.Now()
				err := op(i, n)
				done := time.Now()
				lats[i] = append(lats[i], done.Sub(t0))
				inWindow := done.Before(deadline)
				if inWindow {
					t.attemptsInWindow++
				}
				switch {
				case err == nil:
					t.ok++
					if inWindow {
						t.okInWindow++
					}
				case errors.Is(err, errRefused):
					t.refused++
				case errors.Is(err, errDeadlock):
					t.deadlocked++
				default:
					t.failed++
					if t.firstErr == nil {
						t.firstErr = err
					}
				}
			}
		})
	}
	wg.Wait()
	c := ceiling{window: d, elapsed: time.Since(start)}
	var all []time.Duration
	for i, t := range tallies {
		all = append(all, lats[i]...)
		c.ok += t.ok
		c.refused += t.refused
		c.deadlocked += t.deadlocked
		c.failed += t.failed
		c.attemptsInWindow += t.attemptsInWindow
		c.okInWindow += t.okInWindow
		if c.firstErr == nil {
			c.firstErr = t.firstErr
		}
	}
	c.lat = summarize(all)
	return c
}
