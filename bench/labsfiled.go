package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The filing queries find a run's messages by the prefix of their sender's
// message ID (MSH-10), which the bench makes unique to the run.
const (
	// runLabStatuses counts the run's lab_messages rows by status, with
	// the last processed_at of each: the worker's clock when it filed,
	// sent to the queue or rejected the message.
	runLabStatuses = `
SELECT status, count(*), max(processed_at)
FROM lab_messages
WHERE message_id LIKE $1
GROUP BY status`

	// runFiledTimes lists when each of the run's filed messages was
	// filed. The lag is taken from the bench's own ACK times, the moment
	// the lab is told the message is safe; received_at would not do, as
	// intake stored it as the zero time when this was written.
	runFiledTimes = `
SELECT message_id, processed_at
FROM lab_messages
WHERE message_id LIKE $1 AND status = 'filed' AND processed_at IS NOT NULL`
)

// filePollInterval is how often the wait reads the statuses: a fraction
// of a second is fine enough next to runs of tens of seconds, and the
// query is a scan of one small table.
const filePollInterval = 500 * time.Millisecond

// filing is what the database says about a run's messages after the wait.
type filing struct {
	byStatus  map[string]int
	rows      int
	lastFiled time.Time // processed_at of the last message filed
	// filedInWindow counts messages filed before the load's window ended.
	filedInWindow int
	// lag is from each filed message's AA, as the bench received it, to
	// its processed_at: how long a message the lab was told is safe waits
	// to be filed. Both clocks are this machine's.
	lag     latencies
	waited  time.Duration // from the end of the load
	settled bool          // nothing was left to happen
}

func (f filing) filed() int { return f.byStatus["filed"] }

// openLabDB connects to the owner DSN and makes sure the role sees every
// tenant's lab_messages rows: row-level security is forced on the table,
// and a role subject to it would see none and wait for nothing.
func openLabDB(ctx context.Context, dsn string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to -db: %w", err)
	}
	var seesAll bool
	err = conn.QueryRow(ctx, `SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&seesAll)
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("read the -db role: %w", err)
	}
	if !seesAll {
		conn.Close(context.Background())
		return nil, errors.New("the -db role is subject to row-level security and would see no lab messages; use a superuser such as postgres")
	}
	return conn, nil
}

// waitFiled polls the run's rows until every sent message is filed, or
// nothing is left to happen (no row still received and a row for every
// accepted message), or bound has passed since the load ended.
func waitFiled(ctx context.Context, conn *pgx.Conn, prefix string, load mllpLoad, bound time.Duration,
	progress func(string, ...any)) (filing, error) {
	sent, accepted := load.sent, load.aa()
	loadEnd, windowEnd := load.start.Add(load.elapsed), load.start.Add(load.window)
	pattern := prefix + "-%"
	deadline := loadEnd.Add(bound)
	nextNote := time.Now().Add(10 * time.Second)
	var f filing
	for {
		var err error
		if f, err = labStatuses(ctx, conn, pattern); err != nil {
			return f, err
		}
		f.settled = f.filed() >= sent || (f.byStatus["received"] == 0 && f.rows >= accepted)
		if f.settled || !time.Now().Before(deadline) {
			break
		}
		if time.Now().After(nextNote) {
			progress("filing: %d of %d filed, %d still received", f.filed(), sent, f.byStatus["received"])
			nextNote = nextNote.Add(10 * time.Second)
		}
		select {
		case <-ctx.Done():
			return f, ctx.Err()
		case <-time.After(filePollInterval):
		}
	}
	f.waited = time.Since(loadEnd)

	rows, err := conn.Query(ctx, runFiledTimes, pattern)
	if err != nil {
		return f, fmt.Errorf("read the filing times: %w", err)
	}
	defer rows.Close()
	var lag []time.Duration
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return f, fmt.Errorf("read the filing times: %w", err)
		}
		if at.Before(windowEnd) {
			f.filedInWindow++
		}
		if acked, ok := load.acked[id]; ok {
			lag = append(lag, at.Sub(acked))
		}
	}
	if err := rows.Err(); err != nil {
		return f, fmt.Errorf("read the filing times: %w", err)
	}
	f.lag = summarize(lag)
	return f, nil
}

func labStatuses(ctx context.Context, conn *pgx.Conn, pattern string) (filing, error) {
	f := filing{byStatus: map[string]int{}}
	rows, err := conn.Query(ctx, runLabStatuses, pattern)
	if err != nil {
		return f, fmt.Errorf("count the run's lab messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int
		var last *time.Time
		if err := rows.Scan(&status, &n, &last); err != nil {
			return f, fmt.Errorf("count the run's lab messages: %w", err)
		}
		f.byStatus[status] = n
		f.rows += n
		if status == "filed" && last != nil {
			f.lastFiled = *last
		}
	}
	if err := rows.Err(); err != nil {
		return f, fmt.Errorf("count the run's lab messages: %w", err)
	}
	return f, nil
}
