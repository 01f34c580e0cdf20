package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workers"
	"github.com/carebook/carebook/workflows"
)

// t0 is the injected clock's reading when each test workflow starts.
var t0 = time.Date(2031, time.March, 3, 9, 0, 0, 0, time.UTC)

// Appointment times the tests book and move to.
var (
	in3Days    = t0.Add(72 * time.Hour) // far enough ahead for both reminders
	in3h       = t0.Add(3 * time.Hour)  // inside the 24 h reminder's lead
	movedTo    = in3Days.Add(48 * time.Hour)
	movedAgain = movedTo.Add(24 * time.Hour)
)

// visit is the length of every booked visit.
const visit = 30 * time.Minute

const (
	tenantID      = "6b1f3c9e-0d7a-4d52-9a51-0c2f4e7b8a10"
	appointmentID = "f3a9d2c4-5e61-4b8f-8c07-2d9e1a6b7c35"
	patientUserID = "0e4b7d21-93c5-4f6a-b8d2-7a1c5e9f3b64"
)

// Status strings of the fake row, in the models package's vocabulary.
var (
	booked    = string(models.StatusBooked)
	arrived   = string(models.StatusArrived)
	fulfilled = string(models.StatusFulfilled)
	cancelled = string(models.StatusCancelled)
	noShow    = string(models.StatusNoShow)
)

// fakeAppointments stands in for activities.Appointments: one appointment
// row and an outbox in memory, changed with the same transitions and
// version check as the real activities. The test environment calls activity
// mocks on goroutines of their own, so mu guards every field below it.
type fakeAppointments struct {
	now   func() time.Time // the test environment's clock
	taken bool             // HoldSlot answers taken

	mu       sync.Mutex
	row      *workflows.AppointmentState // nil until held
	reason   string                      // the cancellation's reason
	closedAt time.Time                   // when CloseAppointment changed the row
	calls    map[string]int              // activity name to calls
	outbox   []sent
}

// sent is one EnqueueNotification call.
type sent struct {
	at           time.Time // workflow time of the call
	key          string    // DedupeKey without the workflow ID prefix
	template     string
	scheduledFor time.Time
}

func (s sent) String() string {
	return fmt.Sprintf("%s %s for %s, sent %s", s.key, s.template, s.scheduledFor.UTC().Format(time.RFC3339), s.at.UTC().Format(time.RFC3339))
}

func newFake(now func() time.Time) *fakeAppointments {
	return &fakeAppointments{now: now, calls: map[string]int{}}
}

// activities returns the fake's methods under the names the workflow calls.
func (f *fakeAppointments) activities() map[string]any {
	return map[string]any{
		workflows.ActivityHoldSlot:    f.holdSlot,
		workflows.ActivityCancel:      f.cancel,
		workflows.ActivityReschedule:  f.reschedule,
		workflows.ActivityCheckIn:     f.checkIn,
		workflows.ActivityClose:       f.close,
		workflows.ActivityEnqueueNote: f.enqueue,
	}
}

func (f *fakeAppointments) holdSlot(ctx context.Context, req workflows.BookRequest) (workflows.BookResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[workflows.ActivityHoldSlot]++
	if f.taken {
		return workflows.BookResult{Outcome: workflows.OutcomeTaken, Conflict: workflows.ConflictPractitioner}, nil
	}
	if f.row == nil {
		f.row = &workflows.AppointmentState{
			AppointmentID: req.AppointmentID,
			Status:        booked,
			StartsAt:      req.StartsAt,
			EndsAt:        req.EndsAt,
			Version:       1,
		}
	}
	return workflows.BookResult{Outcome: workflows.OutcomeBooked, State: *f.row}, nil
}

func (f *fakeAppointments) cancel(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	return f.transition(workflows.ActivityCancel, ch, func(row *workflows.AppointmentState) error {
		if ch.Cancel == nil {
			return invalidState("cancel without a request")
		}
		switch row.Status {
		case cancelled:
			return nil
		case booked:
			row.Status = cancelled
			f.reason = ch.Cancel.Reason
			return nil
		}
		return invalidState(row.Status)
	})
}

func (f *fakeAppointments) reschedule(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	return f.transition(workflows.ActivityReschedule, ch, func(row *workflows.AppointmentState) error {
		r := ch.Reschedule
		if r == nil {
			return invalidState("reschedule without a request")
		}
		if row.Version == ch.ExpectedVersion+1 && row.StartsAt.Equal(r.StartsAt) {
			return nil
		}
		if row.Version != ch.ExpectedVersion {
			return temporal.NewNonRetryableApplicationError("the appointment changed meanwhile", workflows.ErrTypeVersionChanged, nil)
		}
		if row.Status != booked {
			return invalidState(row.Status)
		}
		row.StartsAt, row.EndsAt = r.StartsAt, r.EndsAt
		row.Version++
		return nil
	})
}

func (f *fakeAppointments) checkIn(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	return f.transition(workflows.ActivityCheckIn, ch, func(row *workflows.AppointmentState) error {
		switch row.Status {
		case arrived:
			return nil
		case booked:
			row.Status = arrived
			return nil
		}
		return invalidState(row.Status)
	})
}

func (f *fakeAppointments) close(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	return f.transition(workflows.ActivityClose, ch, func(row *workflows.AppointmentState) error {
		switch row.Status {
		case fulfilled, noShow, cancelled:
			return nil
		case arrived:
			row.Status = fulfilled
		case booked:
			row.Status = noShow
		default:
			return invalidState(row.Status)
		}
		f.closedAt = f.now()
		return nil
	})
}

// transition is the fake's activities.Appointments.transition: it lets
// decide change a copy of the row and keeps the copy unless decide fails.
func (f *fakeAppointments) transition(activity string, ch workflows.AppointmentChange, decide func(*workflows.AppointmentState) error) (workflows.AppointmentState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[activity]++
	if f.row == nil || ch.TenantID != tenantID || ch.AppointmentID != f.row.AppointmentID {
		return workflows.AppointmentState{}, temporal.NewNonRetryableApplicationError("no such appointment", workflows.ErrTypeNotFound, nil)
	}
	row := *f.row
	if err := decide(&row); err != nil {
		return workflows.AppointmentState{}, err
	}
	*f.row = row
	return row, nil
}

func (f *fakeAppointments) enqueue(ctx context.Context, n workflows.Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[workflows.ActivityEnqueueNote]++
	prefix := workflows.AppointmentWorkflowID(appointmentID) + ":"
	key, ok := strings.CutPrefix(n.DedupeKey, prefix)
	if !ok || n.TenantID != tenantID || n.AppointmentID != appointmentID || n.RecipientUser != patientUserID {
		return temporal.NewNonRetryableApplicationError("notification for someone else: "+n.DedupeKey, workflows.ErrTypeNotFound, nil)
	}
	f.outbox = append(f.outbox, sent{at: f.now(), key: key, template: n.Template, scheduledFor: n.ScheduledFor})
	return nil
}

func invalidState(status string) error {
	return temporal.NewNonRetryableApplicationError("the appointment is "+status, workflows.ErrTypeInvalidState, nil)
}

// slowCall makes the fake take workflow time to answer one activity, so
// that a timer or another message lands while a change is running.
type slowCall struct {
	activity string
	template string // for ActivityEnqueueNote: only this template is slow
	by       time.Duration
}

// message is an update or a signal the test sends at a workflow time.
type message struct {
	at     time.Time
	update string // an update name, or
	signal string // a signal name
	arg    any
	// wantReject is the error type the update's validator refuses with;
	// empty when the update must be accepted and complete without error.
	wantReject string
}

// answer records what the test environment reported for one update.
type answer struct {
	accepted bool
	rejected error
	done     bool
	value    any
	err      error
}

func (a *answer) callbacks() *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept: func() { a.accepted = true },
		OnReject: func(err error) { a.rejected = err },
		OnComplete: func(v any, err error) {
			a.done = true
			a.value = v
			a.err = err
		},
	}
}

// check reports whether the update went as wantReject says.
func (a *answer) check(t *testing.T, what, wantReject string) {
	t.Helper()
	if wantReject == "" {
		if !a.accepted || !a.done || a.err != nil || a.rejected != nil {
			t.Errorf("%s: accepted %v, rejected %v, completed %v with error %v; want accepted and completed without error", what, a.accepted, a.rejected, a.done, a.err)
		}
		return
	}
	var appErr *temporal.ApplicationError
	if a.accepted || !errors.As(a.rejected, &appErr) || appErr.Type() != wantReject {
		t.Errorf("%s: accepted %v, rejected %v; want rejected by the validator with type %s", what, a.accepted, a.rejected, wantReject)
	}
}

// harness runs one appointment workflow in the SDK's test environment,
// with the real registration and the fake behind every activity.
type harness struct {
	t    *testing.T
	env  *testsuite.TestWorkflowEnvironment
	fake *fakeAppointments
	seq  int
}

func newHarness(t *testing.T, slow ...slowCall) *harness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	workers.RegisterAppointments(env, workers.Deps{Appointments: &activities.Appointments{}})

	f := newFake(env.Now)
	fns := f.activities()
	// The mock takes the first expectation that matches, so the slow ones
	// go first.
	for _, s := range slow {
		var match any = mock.Anything
		if s.template != "" {
			template := s.template
			match = mock.MatchedBy(func(n workflows.Notification) bool { return n.Template == template })
		}
		env.OnActivity(s.activity, mock.Anything, match).After(s.by).Return(fns[s.activity])
	}
	for name, fn := range fns {
		env.OnActivity(name, mock.Anything, mock.Anything).Return(fn)
	}
	return &harness{t: t, env: env, fake: f}
}

// book sends the booking update when the workflow starts, as the api's
// Update-With-Start does.
func (h *harness) book(startsAt time.Time) *answer {
	a := &answer{}
	req := workflows.BookRequest{
		TenantID:          tenantID,
		AppointmentID:     appointmentID,
		PractitionerID:    "9c2e5a71-4b3d-4e8f-a6c1-5d7b0e2f9a43",
		PatientID:         "2a7d4f90-1c6b-4e35-8b2a-9f0e3d5c7b18",
		FacilityID:        "5e8b1d36-7a2c-4f91-b4e0-3c6a9d2f1e57",
		AppointmentTypeID: "8d3f6b2a-0e9c-4a71-9d5b-1f4e7c2a6b09",
		StartsAt:          startsAt,
		EndsAt:            startsAt.Add(visit),
		BlockedFrom:       startsAt.Add(-5 * time.Minute),
		BlockedUntil:      startsAt.Add(visit + 5*time.Minute),
		Mode:              "in_person",
		PriceMinor:        45000,
		Currency:          "TRY",
		BookedBy:          patientUserID,
		PatientUserID:     patientUserID,
	}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(workflows.UpdateBook, workflows.BookUpdateID, a.callbacks(), req)
	}, 0)
	return a
}

// send delivers m at its time and returns the update's answer (nil for a
// signal).
func (h *harness) send(m message) *answer {
	h.t.Helper()
	if m.at.Before(t0) {
		h.t.Fatalf("message at %v, before the workflow starts", m.at)
	}
	if m.signal != "" {
		h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(m.signal, m.arg) }, m.at.Sub(t0))
		return nil
	}
	h.seq++
	id := fmt.Sprintf("%s-%d", m.update, h.seq)
	a := &answer{}
	h.env.RegisterDelayedCallback(func() { h.env.UpdateWorkflow(m.update, id, a.callbacks(), m.arg) }, m.at.Sub(t0))
	return a
}

// run executes the workflow to its end and returns its result.
func (h *harness) run() workflows.AppointmentState {
	h.t.Helper()
	h.env.ExecuteWorkflow(workflows.AppointmentWorkflowType, workflows.AppointmentInput{TenantID: tenantID, AppointmentID: appointmentID})
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow failed: %v", err)
	}
	var st workflows.AppointmentState
	if err := h.env.GetWorkflowResult(&st); err != nil {
		h.t.Fatalf("workflow result: %v", err)
	}
	return st
}

func (h *harness) outbox() []string {
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	var out []string
	for _, s := range h.fake.outbox {
		out = append(out, s.String())
	}
	return out
}

func (h *harness) calls(activity string) int {
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	return h.fake.calls[activity]
}

// Expected notifications. The keys are the workflow's dedupe steps: the
// outbox relies on them to write each notification once.
func confirmed() sent {
	return sent{at: t0, key: "confirmed", template: workflows.TemplateConfirmed, scheduledFor: t0}
}

func reminder(startsAt time.Time, lead time.Duration, version int) sent {
	at := startsAt.Add(-lead)
	return sent{at: at, key: fmt.Sprintf("reminder-%s-v%d", lead, version), template: workflows.TemplateReminder, scheduledFor: at}
}

func cancelledAt(at time.Time) sent {
	return sent{at: at, key: "cancelled", template: workflows.TemplateCancelled, scheduledFor: at}
}

func rescheduledAt(at time.Time, version int) sent {
	return sent{at: at, key: fmt.Sprintf("rescheduled-v%d", version), template: workflows.TemplateRescheduled, scheduledFor: at}
}

// lines formats notifications as the fake's outbox does.
func lines(ss ...sent) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.String())
	}
	return out
}

func cancelRequest(reason string) workflows.CancelRequest {
	return workflows.CancelRequest{Reason: reason, By: "patient", UserID: patientUserID}
}

func rescheduleTo(startsAt time.Time) workflows.RescheduleRequest {
	return workflows.RescheduleRequest{
		StartsAt:     startsAt,
		EndsAt:       startsAt.Add(visit),
		BlockedFrom:  startsAt.Add(-5 * time.Minute),
		BlockedUntil: startsAt.Add(visit + 5*time.Minute),
		UserID:       patientUserID,
	}
}

func checkIn() workflows.CheckInRequest {
	return workflows.CheckInRequest{UserID: "4f1a8c2d-6e3b-49d7-a0b5-8c2e6f1d9a73"}
}

func TestAppointmentLifecycle(t *testing.T) {
	grace := workflows.DefaultGrace
	tests := []struct {
		name     string
		startsAt time.Time
		slow     []slowCall
		messages []message
		want     []sent
		// wantStatus is the workflow's final status; wantClosedAt is when
		// the close changed the row, zero when it never did.
		wantStatus   string
		wantClosedAt time.Time
	}{
		{
			name:     "reminders a day and two hours ahead, then no-show",
			startsAt: in3Days,
			want: []sent{
				confirmed(),
				reminder(in3Days, 24*time.Hour, 1),
				reminder(in3Days, 2*time.Hour, 1),
			},
			wantStatus:   noShow,
			wantClosedAt: in3Days.Add(visit + grace),
		},
		{
			name:     "booked inside the day reminder's lead skips it",
			startsAt: in3h,
			want: []sent{
				confirmed(),
				reminder(in3h, 2*time.Hour, 1),
			},
			wantStatus:   noShow,
			wantClosedAt: in3h.Add(visit + grace),
		},
		{
			name:     "cancel before the reminders sends none",
			startsAt: in3Days,
			messages: []message{
				{at: in3Days.Add(-30 * time.Hour), update: workflows.UpdateCancel, arg: cancelRequest("feeling better")},
			},
			want: []sent{
				confirmed(),
				cancelledAt(in3Days.Add(-30 * time.Hour)),
			},
			wantStatus: cancelled,
		},
		{
			name:     "cancel by signal works like the update",
			startsAt: in3Days,
			messages: []message{
				{at: in3Days.Add(-30 * time.Hour), signal: workflows.SignalCancel, arg: cancelRequest("feeling better")},
			},
			want: []sent{
				confirmed(),
				cancelledAt(in3Days.Add(-30 * time.Hour)),
			},
			wantStatus: cancelled,
		},
		{
			name:     "cancel between the reminders stops the second",
			startsAt: in3Days,
			messages: []message{
				{at: in3Days.Add(-5 * time.Hour), update: workflows.UpdateCancel, arg: cancelRequest("clash")},
			},
			want: []sent{
				confirmed(),
				reminder(in3Days, 24*time.Hour, 1),
				cancelledAt(in3Days.Add(-5 * time.Hour)),
			},
			wantStatus: cancelled,
		},
		{
			name:     "reschedule moves the reminders and the close",
			startsAt: in3Days,
			messages: []message{
				{at: in3Days.Add(-30 * time.Hour), update: workflows.UpdateReschedule, arg: rescheduleTo(movedTo)},
			},
			want: []sent{
				confirmed(),
				rescheduledAt(in3Days.Add(-30*time.Hour), 2),
				reminder(movedTo, 24*time.Hour, 2),
				reminder(movedTo, 2*time.Hour, 2),
			},
			wantStatus:   noShow,
			wantClosedAt: movedTo.Add(visit + grace),
		},
		{
			name:     "second reschedule expects the first one's version",
			startsAt: in3Days,
			messages: []message{
				{at: in3Days.Add(-30 * time.Hour), update: workflows.UpdateReschedule, arg: rescheduleTo(movedTo)},
				{at: movedTo.Add(-3 * time.Hour), update: workflows.UpdateReschedule, arg: rescheduleTo(movedAgain)},
			},
			want: []sent{
				confirmed(),
				rescheduledAt(in3Days.Add(-30*time.Hour), 2),
				reminder(movedTo, 24*time.Hour, 2),
				rescheduledAt(movedTo.Add(-3*time.Hour), 3),
				reminder(movedAgain, 24*time.Hour, 3),
				reminder(movedAgain, 2*time.Hour, 3),
			},
			wantStatus:   noShow,
			wantClosedAt: movedAgain.Add(visit + grace),
		},
		{
			name:     "reminder due while a reschedule runs is not sent for the old time",
			startsAt: in3Days,
			slow:     []slowCall{{activity: workflows.ActivityReschedule, by: time.Minute}},
			messages: []message{
				{at: in3Days.Add(-24*time.Hour - 30*time.Second), update: workflows.UpdateReschedule, arg: rescheduleTo(movedTo)},
			},
			want: []sent{
				confirmed(),
				rescheduledAt(in3Days.Add(-24*time.Hour+30*time.Second), 2),
				reminder(movedTo, 24*time.Hour, 2),
				reminder(movedTo, 2*time.Hour, 2),
			},
			wantStatus:   noShow,
			wantClosedAt: movedTo.Add(visit + grace),
		},
		{
			name:     "close due while a reschedule runs waits for the new end",
			startsAt: in3h,
			slow:     []slowCall{{activity: workflows.ActivityReschedule, by: time.Minute}},
			messages: []message{
				{at: in3h.Add(visit + grace - 30*time.Second), update: workflows.UpdateReschedule, arg: rescheduleTo(movedTo)},
			},
			want: []sent{
				confirmed(),
				reminder(in3h, 2*time.Hour, 1),
				rescheduledAt(in3h.Add(visit+grace+30*time.Second), 2),
				reminder(movedTo, 24*time.Hour, 2),
				reminder(movedTo, 2*time.Hour, 2),
			},
			wantStatus:   noShow,
			wantClosedAt: movedTo.Add(visit + grace),
		},
		{
			name:     "check-in shortly before the start fulfils the visit",
			startsAt: in3Days,
			messages: []message{
				{at: in3Days.Add(-10 * time.Minute), update: workflows.UpdateCheckIn, arg: checkIn()},
			},
			want: []sent{
				confirmed(),
				reminder(in3Days, 24*time.Hour, 1),
				reminder(in3Days, 2*time.Hour, 1),
			},
			wantStatus:   fulfilled,
			wantClosedAt: in3Days.Add(visit + grace),
		},
		{
			name:     "check-in late in the grace period fulfils the visit",
			startsAt: in3h,
			messages: []message{
				{at: in3h.Add(visit + grace - time.Minute), update: workflows.UpdateCheckIn, arg: checkIn()},
			},
			want: []sent{
				confirmed(),
				reminder(in3h, 2*time.Hour, 1),
			},
			wantStatus:   fulfilled,
			wantClosedAt: in3h.Add(visit + grace),
		},
		{
			name:     "check-in five hours early is refused",
			startsAt: in3Days,
			messages: []message{
				{at: in3Days.Add(-5 * time.Hour), update: workflows.UpdateCheckIn, arg: checkIn(), wantReject: workflows.ErrTypeCheckInWindow},
			},
			want: []sent{
				confirmed(),
				reminder(in3Days, 24*time.Hour, 1),
				reminder(in3Days, 2*time.Hour, 1),
			},
			wantStatus:   noShow,
			wantClosedAt: in3Days.Add(visit + grace),
		},
		{
			name:     "reschedule after check-in is refused",
			startsAt: in3h,
			messages: []message{
				{at: in3h.Add(-time.Hour), update: workflows.UpdateCheckIn, arg: checkIn()},
				{at: in3h.Add(-30 * time.Minute), update: workflows.UpdateReschedule, arg: rescheduleTo(movedTo), wantReject: workflows.ErrTypeInvalidState},
			},
			want: []sent{
				confirmed(),
				reminder(in3h, 2*time.Hour, 1),
			},
			wantStatus:   fulfilled,
			wantClosedAt: in3h.Add(visit + grace),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.slow...)
			bookAnswer := h.book(tt.startsAt)
			answers := make([]*answer, len(tt.messages))
			for i, m := range tt.messages {
				answers[i] = h.send(m)
			}

			st := h.run()

			bookAnswer.check(t, "book", "")
			if res, ok := bookAnswer.value.(workflows.BookResult); !ok || res.Outcome != workflows.OutcomeBooked {
				t.Errorf("book answered %#v, want booked", bookAnswer.value)
			}
			for i, a := range answers {
				if a != nil {
					a.check(t, tt.messages[i].update, tt.messages[i].wantReject)
				}
			}
			if got, want := h.outbox(), lines(tt.want...); !slices.Equal(got, want) {
				t.Errorf("notifications:\n got %q\nwant %q", got, want)
			}
			if st.Status != tt.wantStatus {
				t.Errorf("result status = %q, want %q", st.Status, tt.wantStatus)
			}
			if !h.fake.closedAt.Equal(tt.wantClosedAt) {
				t.Errorf("closed at %v, want %v", h.fake.closedAt, tt.wantClosedAt)
			}
			var wantReminders []string
			for _, s := range tt.want {
				if s.template == workflows.TemplateReminder {
					wantReminders = append(wantReminders, s.key)
				}
			}
			if !slices.Equal(st.RemindersSent, wantReminders) {
				t.Errorf("RemindersSent = %q, want %q", st.RemindersSent, wantReminders)
			}
		})
	}
}

// TestSecondCancelIsRejected sends a second cancel while the first one's
// notification is still being written, the last moment the workflow is
// open to it.
func TestSecondCancelIsRejected(t *testing.T) {
	cancelAt := in3Days.Add(-30 * time.Hour)
	h := newHarness(t, slowCall{activity: workflows.ActivityEnqueueNote, template: workflows.TemplateCancelled, by: time.Minute})
	h.book(in3Days)
	first := h.send(message{at: cancelAt, update: workflows.UpdateCancel, arg: cancelRequest("feeling better")})
	second := h.send(message{at: cancelAt.Add(30 * time.Second), update: workflows.UpdateCancel, arg: cancelRequest("changed my mind")})

	st := h.run()

	first.check(t, "first cancel", "")
	second.check(t, "second cancel", workflows.ErrTypeInvalidState)
	if st.Status != cancelled {
		t.Errorf("status = %q, want %q", st.Status, cancelled)
	}
	if got := h.calls(workflows.ActivityCancel); got != 1 {
		t.Errorf("CancelAppointment ran %d times, want 1", got)
	}
	if h.fake.reason != "feeling better" {
		t.Errorf("cancel reason = %q, want the first cancel's", h.fake.reason)
	}
	// The slow write makes the call's own time a minute late; the
	// notification is still for the moment of the cancel.
	want := cancelledAt(cancelAt)
	want.at = cancelAt.Add(time.Minute)
	if got, want := h.outbox(), lines(confirmed(), want); !slices.Equal(got, want) {
		t.Errorf("notifications:\n got %q\nwant %q", got, want)
	}
}

func TestBookTaken(t *testing.T) {
	h := newHarness(t)
	h.fake.taken = true
	a := h.book(in3Days)

	st := h.run()

	a.check(t, "book", "")
	want := workflows.BookResult{Outcome: workflows.OutcomeTaken, Conflict: workflows.ConflictPractitioner}
	if res, ok := a.value.(workflows.BookResult); !ok || res.Outcome != want.Outcome || res.Conflict != want.Conflict {
		t.Errorf("book answered %#v, want %#v", a.value, want)
	}
	if got := h.outbox(); len(got) != 0 {
		t.Errorf("notifications %q, want none", got)
	}
	if st.Status != "" || st.Version != 0 {
		t.Errorf("result %+v, want no booked state", st)
	}
	// The workflow ends with the answer, not after the booking wait.
	if got := h.env.Now(); !got.Equal(t0) {
		t.Errorf("workflow ended at %v, want at its start %v", got, t0)
	}
}

func TestQueryState(t *testing.T) {
	h := newHarness(t)
	h.book(in3Days)
	h.send(message{at: in3Days.Add(-30 * time.Hour), update: workflows.UpdateReschedule, arg: rescheduleTo(movedTo)})
	h.send(message{at: movedTo.Add(-10 * time.Minute), update: workflows.UpdateCheckIn, arg: checkIn()})

	tests := []struct {
		name string
		at   time.Time
		want workflows.AppointmentState
	}{
		{
			name: "after booking",
			at:   t0.Add(time.Minute),
			want: workflows.AppointmentState{Status: booked, StartsAt: in3Days, EndsAt: in3Days.Add(visit), Version: 1},
		},
		{
			name: "after the reschedule",
			at:   in3Days.Add(-29 * time.Hour),
			want: workflows.AppointmentState{Status: booked, StartsAt: movedTo, EndsAt: movedTo.Add(visit), Version: 2},
		},
		{
			name: "after the day reminder",
			at:   movedTo.Add(-23 * time.Hour),
			want: workflows.AppointmentState{
				Status: booked, StartsAt: movedTo, EndsAt: movedTo.Add(visit), Version: 2,
				RemindersSent: []string{"reminder-24h0m0s-v2"},
			},
		},
		{
			name: "after check-in",
			at:   movedTo.Add(-5 * time.Minute),
			want: workflows.AppointmentState{
				Status: arrived, StartsAt: movedTo, EndsAt: movedTo.Add(visit), Version: 2,
				RemindersSent: []string{"reminder-24h0m0s-v2", "reminder-2h0m0s-v2"},
			},
		},
	}
	got := make([]*workflows.AppointmentState, len(tests))
	for i, tt := range tests {
		h.env.RegisterDelayedCallback(func() {
			v, err := h.env.QueryWorkflow(workflows.QueryState)
			if err != nil {
				t.Errorf("%s: query: %v", tt.name, err)
				return
			}
			var st workflows.AppointmentState
			if err := v.Get(&st); err != nil {
				t.Errorf("%s: decode: %v", tt.name, err)
				return
			}
			got[i] = &st
		}, tt.at.Sub(t0))
	}

	h.run()

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := got[i]
			if st == nil {
				t.Fatal("query never ran")
			}
			tt.want.AppointmentID = appointmentID
			if st.AppointmentID != tt.want.AppointmentID || st.Status != tt.want.Status ||
				!st.StartsAt.Equal(tt.want.StartsAt) || !st.EndsAt.Equal(tt.want.EndsAt) ||
				st.Version != tt.want.Version || !slices.Equal(st.RemindersSent, tt.want.RemindersSent) {
				t.Errorf("state = %+v\nwant %+v", *st, tt.want)
			}
		})
	}
}
