package activities_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/models/modelstest"
	"github.com/carebook/carebook/workflows"
)

// fixture is a migrated, seeded database and the activities over it as the
// application role.
type fixture struct {
	t   *testing.T
	a   *activities.Appointments
	net demo.Network
	db  modelstest.DB
}

func newFixture(t *testing.T) fixture {
	db := modelstest.New(t)
	admin, err := models.Open(db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	n, err := demo.Seed(context.Background(), admin, demo.Options{Slug: "acts", Name: "Acts", Now: time.Now(),
		HashPassword: func(string) (string, error) { return "x", nil }})
	if err != nil {
		t.Fatal(err)
	}
	app, err := models.Open(db.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{t: t, a: &activities.Appointments{DB: app}, net: n, db: db}
}

func (f fixture) request(start time.Time, patient int) workflows.BookRequest {
	end := start.Add(20 * time.Minute)
	return workflows.BookRequest{
		TenantID: f.net.Tenant.ID.String(), AppointmentID: uuid.NewString(),
		PractitionerID: f.net.Practitioners[2].ID.String(), PatientID: f.net.Patients[patient].ID.String(),
		FacilityID: f.net.Facilities[0].ID.String(), AppointmentTypeID: f.net.Types[0].ID.String(),
		StartsAt: start, EndsAt: end, BlockedFrom: start, BlockedUntil: end, Mode: "in_person", Currency: "USD",
	}
}

func (f fixture) change(id string, version int) workflows.AppointmentChange {
	return workflows.AppointmentChange{TenantID: f.net.Tenant.ID.String(), AppointmentID: id, ExpectedVersion: version}
}

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// TestActivitiesAreSafeToRetry runs each activity again after it succeeded,
// as Temporal does when an answer is lost, and the second run answers the
// same and changes nothing.
func TestActivitiesAreSafeToRetry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start := time.Date(2031, 3, 3, 9, 0, 0, 0, time.UTC)
	req := f.request(start, 0)

	first, err := f.a.HoldSlot(ctx, req)
	if err != nil || first.Outcome != workflows.OutcomeBooked {
		t.Fatalf("hold: %+v %v", first, err)
	}
	again, err := f.a.HoldSlot(ctx, req)
	if err != nil || again.Outcome != workflows.OutcomeBooked || !reflect.DeepEqual(again.State, first.State) {
		t.Fatalf("hold retried: %+v %v, want %+v", again, err, first)
	}
	// Another appointment on the same time is taken, by practitioner; the
	// same patient at the same time with another doctor is taken by patient.
	if r, err := f.a.HoldSlot(ctx, f.request(start, 1)); err != nil || r.Outcome != workflows.OutcomeTaken || r.Conflict != workflows.ConflictPractitioner {
		t.Fatalf("competing hold: %+v %v", r, err)
	}
	other := f.request(start.Add(10*time.Minute), 0)
	other.PractitionerID = f.net.Practitioners[0].ID.String()
	if r, err := f.a.HoldSlot(ctx, other); err != nil || r.Outcome != workflows.OutcomeTaken || r.Conflict != workflows.ConflictPatient {
		t.Fatalf("patient double: %+v %v", r, err)
	}

	// Reschedule, then the same reschedule again.
	move := f.change(req.AppointmentID, 1)
	newStart := start.Add(time.Hour)
	move.Reschedule = &workflows.RescheduleRequest{StartsAt: newStart, EndsAt: newStart.Add(20 * time.Minute), BlockedFrom: newStart, BlockedUntil: newStart.Add(20 * time.Minute)}
	moved, err := f.a.RescheduleAppointment(ctx, move)
	if err != nil || moved.Version != 2 || !moved.StartsAt.Equal(newStart) {
		t.Fatalf("reschedule: %+v %v", moved, err)
	}
	if again, err := f.a.RescheduleAppointment(ctx, move); err != nil || !reflect.DeepEqual(again, moved) {
		t.Fatalf("reschedule retried: %+v %v, want %+v", again, err, moved)
	}
	// A stale version is refused, not applied.
	stale := move
	stale.Reschedule = &workflows.RescheduleRequest{StartsAt: start, EndsAt: start.Add(20 * time.Minute), BlockedFrom: start, BlockedUntil: start.Add(20 * time.Minute)}
	if _, err := f.a.RescheduleAppointment(ctx, stale); errType(err) != workflows.ErrTypeVersionChanged {
		t.Fatalf("stale reschedule: %v", err)
	}

	// Check-in, close (fulfilled), and both again.
	ch := f.change(req.AppointmentID, 2)
	for i := 0; i < 2; i++ {
		if st, err := f.a.CheckInAppointment(ctx, ch); err != nil || st.Status != "arrived" {
			t.Fatalf("check-in #%d: %+v %v", i, st, err)
		}
	}
	for i := 0; i < 2; i++ {
		if st, err := f.a.CloseAppointment(ctx, ch); err != nil || st.Status != "fulfilled" {
			t.Fatalf("close #%d: %+v %v", i, st, err)
		}
	}
	// A closed visit cannot be cancelled.
	cancel := ch
	cancel.Cancel = &workflows.CancelRequest{Reason: "late", By: "patient"}
	if _, err := f.a.CancelAppointment(ctx, cancel); errType(err) != workflows.ErrTypeInvalidState {
		t.Fatalf("cancel after close: %v", err)
	}

	// An unknown appointment is a permanent NotFound.
	if _, err := f.a.CloseAppointment(ctx, f.change(uuid.NewString(), 1)); errType(err) != workflows.ErrTypeNotFound {
		t.Fatalf("close unknown: %v", err)
	}
}

func TestCancelAndNoShow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start := time.Date(2031, 3, 4, 9, 0, 0, 0, time.UTC)
	a, b := f.request(start, 0), f.request(start.Add(time.Hour), 1)
	for _, r := range []workflows.BookRequest{a, b} {
		if res, err := f.a.HoldSlot(ctx, r); err != nil || res.Outcome != workflows.OutcomeBooked {
			t.Fatalf("hold: %+v %v", res, err)
		}
	}
	cancel := f.change(a.AppointmentID, 1)
	cancel.Cancel = &workflows.CancelRequest{Reason: "travel", By: "patient"}
	for i := 0; i < 2; i++ {
		if st, err := f.a.CancelAppointment(ctx, cancel); err != nil || st.Status != "cancelled" {
			t.Fatalf("cancel #%d: %+v %v", i, st, err)
		}
	}
	// The cancelled time is free again for another patient.
	if res, err := f.a.HoldSlot(ctx, f.request(start, 1)); err != nil || res.Outcome != workflows.OutcomeBooked {
		t.Fatalf("rebook cancelled time: %+v %v", res, err)
	}
	if st, err := f.a.CloseAppointment(ctx, f.change(b.AppointmentID, 1)); err != nil || st.Status != "noshow" {
		t.Fatalf("close without check-in: %+v %v", st, err)
	}
}

func TestNotificationsAreEnqueuedOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	n := workflows.Notification{TenantID: f.net.Tenant.ID.String(), DedupeKey: "appointment:x:confirmed",
		Template: workflows.TemplateConfirmed, AppointmentID: uuid.NewString(), ScheduledFor: time.Now()}
	for i := 0; i < 3; i++ {
		if err := f.a.EnqueueNotification(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := models.Open(f.db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	var count int64
	admin.Raw("SELECT count(*) FROM notification_outbox WHERE dedupe_key = ?", n.DedupeKey).Scan(&count)
	if count != 1 {
		t.Fatalf("outbox rows = %d, want 1", count)
	}
}
