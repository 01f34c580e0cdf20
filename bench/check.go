package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The double-booking queries count pairs of active appointments (the
// statuses the exclusion constraints cover) whose ranges overlap: for a
// practitioner the blocked range, buffers included; for a patient the visit
// itself. Each pair is counted once (a.id < b.id). The constraints should
// make both counts zero; the queries check that they are in place and hold.
const (
	practitionerOverlaps = `
SELECT count(*)
FROM appointments a
JOIN appointments b
  ON b.tenant_id = a.tenant_id AND b.practitioner_id = a.practitioner_id AND a.id < b.id
WHERE a.status IN ('held', 'pending', 'booked', 'arrived')
  AND b.status IN ('held', 'pending', 'booked', 'arrived')
  AND tstzrange(a.blocked_from, a.blocked_until) && tstzrange(b.blocked_from, b.blocked_until)`

	patientOverlaps = `
SELECT count(*)
FROM appointments a
JOIN appointments b
  ON b.tenant_id = a.tenant_id AND b.patient_id = a.patient_id AND a.id < b.id
WHERE a.status IN ('held', 'pending', 'booked', 'arrived')
  AND b.status IN ('held', 'pending', 'booked', 'arrived')
  AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)`

	// runAppointments counts this run's appointments by status, found
	// through the bench patients' e-mail addresses.
	runAppointments = `
SELECT a.status, count(*)
FROM appointments a
JOIN users u ON u.tenant_id = a.tenant_id AND u.patient_id = a.patient_id
WHERE u.email LIKE $1
GROUP BY a.status`
)

// dbCheck is what the database says after the load.
type dbCheck struct {
	practitionerPairs int64
	patientPairs      int64
	byStatus          map[string]int64 // this run's appointments
}

// total is the number of this run's appointments in any status.
func (d dbCheck) total() int64 {
	var n int64
	for _, c := range d.byStatus {
		n += c
	}
	return n
}

// checkDatabase counts double bookings in the whole database and this
// run's appointments, over an owner connection.
func checkDatabase(ctx context.Context, dsn, runID string) (dbCheck, error) {
	d := dbCheck{byStatus: map[string]int64{}}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return d, fmt.Errorf("connect to -db: %w", err)
	}
	defer conn.Close(context.Background())

	// Row-level security is forced on appointments, even for the table's
	// owner: a role that is subject to it sees no rows without a tenant
	// set, and would report zero double bookings whatever the truth.
	var seesAll bool
	err = conn.QueryRow(ctx, `SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&seesAll)
	if err != nil {
		return d, fmt.Errorf("read the -db role: %w", err)
	}
	if !seesAll {
		return d, errors.New("the -db role is subject to row-level security and would see no appointments; use a superuser such as postgres")
	}

	if err := conn.QueryRow(ctx, practitionerOverlaps).Scan(&d.practitionerPairs); err != nil {
		return d, fmt.Errorf("count practitioner overlaps: %w", err)
	}
	if err := conn.QueryRow(ctx, patientOverlaps).Scan(&d.patientPairs); err != nil {
		return d, fmt.Errorf("count patient overlaps: %w", err)
	}
	rows, err := conn.Query(ctx, runAppointments, "bench-"+runID+"-%@bench.carebook.test")
	if err != nil {
		return d, fmt.Errorf("count this run's appointments: %w", err)
	}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return d, fmt.Errorf("count this run's appointments: %w", err)
		}
		d.byStatus[status] = n
	}
	if err := rows.Err(); err != nil {
		return d, fmt.Errorf("count this run's appointments: %w", err)
	}
	return d, nil
}

// agrees reports whether the database holds what the API answered: one row
// for every 201 and no more (except where an answer never came), and as
// many cancelled rows as cancels answered 200 (same allowance).
func (d dbCheck) agrees(r loadResult) bool {
	total, cancelled := d.total(), d.byStatus["cancelled"]
	return total >= int64(r.booked) && total <= int64(r.booked+r.unknownBooks) &&
		cancelled >= int64(r.cancelled) && cancelled <= int64(r.cancelled+r.unknownCancels)
}
