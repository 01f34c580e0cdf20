package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workers"
	"github.com/carebook/carebook/workflows"
)

// The paid visit every payment test books.
const (
	paymentID    = "7c4e2a90-3b1d-4f6e-9a85-1d0c7b3e5f28"
	intentID     = "pi_3Qcarebook0test"
	clientSecret = intentID + "_secret_test"
	price        = int64(45000)
	currency     = "TRY"
)

// Times of the payment tests, on the appointment tests' clock.
var (
	holdTTL   = 15 * time.Minute
	holdUntil = t0.Add(holdTTL)
	paidAt    = t0.Add(2 * time.Minute)           // the card is authorized
	checkInAt = in3Days.Add(-10 * time.Minute)    // the patient arrives
	closesAt  = in3Days.Add(visit + time.Hour)    // the visit closes after the default grace
	refundEnd = closesAt.Add(30 * 24 * time.Hour) // the default refund window after it
	lateEnd   = holdUntil.Add(8 * 24 * time.Hour) // the default late window after expiry
)

// Provider event types the saga acts on.
const (
	evAuthorized = "payment_intent.amount_capturable_updated"
	evSucceeded  = "payment_intent.succeeded"
	evFailed     = "payment_intent.payment_failed"
	evCanceled   = "payment_intent.canceled"
)

// The held status of a paid booking's row, in the models package's
// vocabulary.
var held = string(models.StatusHeld)

// payCall is one call of a payment activity, as the fake saw it.
type payCall struct {
	at       time.Time
	activity string
	key      string // PaymentStep.Key, or the status for RecordPaymentStatus
	amount   int64
	kind     string // PaymentStep.Kind, or the failure code
	reason   string
}

func (c payCall) String() string {
	return fmt.Sprintf("%s %s %s amount=%d kind=%s reason=%s",
		c.at.UTC().Format(time.RFC3339), c.activity, c.key, c.amount, c.kind, c.reason)
}

// stepKey is the provider idempotency key of a saga step, spelled out
// rather than built with the workflow's helper, so a changed key fails.
func stepKey(step string) string {
	return "payment:" + paymentID + ":" + step
}

func recorded(at time.Time, status, failure string) payCall {
	return payCall{at: at, activity: workflows.ActivityRecordPayment, key: status, kind: failure}
}

func captured(at time.Time, amount int64, kind string) payCall {
	return payCall{at: at, activity: workflows.ActivityCapturePayment, key: stepKey("capture"), amount: amount, kind: kind}
}

func voided(at time.Time, step, status string) payCall {
	return payCall{at: at, activity: workflows.ActivityVoidPayment, key: stepKey(step), kind: status}
}

func refunded(at time.Time, step string, amount int64, reason string) payCall {
	return payCall{at: at, activity: workflows.ActivityRefundPayment, key: stepKey(step), amount: amount, reason: reason}
}

// outcomeSent is one SignalPaymentOutcome the saga sent its appointment.
type outcomeSent struct {
	at      time.Time
	outcome string
}

func (o outcomeSent) String() string {
	return o.at.UTC().Format(time.RFC3339) + " " + o.outcome
}

// fakePayments stands in for activities.Payments: one payment row in
// memory, changed as the real activities change it, idempotent by step
// key as the provider is. Activity mocks run on goroutines of their own,
// so mu guards every field below it.
type fakePayments struct {
	now      func() time.Time
	startErr error // StartPayment fails with it

	mu       sync.Mutex
	starts   []workflows.StartPaymentRequest
	calls    []payCall
	outcomes []outcomeSent
	status   string
	failure  string
	captured int64
	refunded int64
	fee      int64
	answered map[string]workflows.PaymentSummary // by idempotency key
}

func newFakePayments(now func() time.Time) *fakePayments {
	return &fakePayments{now: now, status: workflows.PaymentRequiresPayment, answered: map[string]workflows.PaymentSummary{}}
}

func (f *fakePayments) activities() map[string]any {
	return map[string]any{
		workflows.ActivityStartPayment:   f.start,
		workflows.ActivityRecordPayment:  f.record,
		workflows.ActivityCapturePayment: f.capture,
		workflows.ActivityVoidPayment:    f.void,
		workflows.ActivityRefundPayment:  f.refund,
		workflows.ActivityChargeNoShow:   f.chargeNoShow,
	}
}

func (f *fakePayments) start(ctx context.Context, req workflows.StartPaymentRequest) (workflows.StartPaymentResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, req)
	if f.startErr != nil {
		return workflows.StartPaymentResult{}, f.startErr
	}
	return workflows.StartPaymentResult{Provider: "stripe", IntentID: intentID, ClientSecret: clientSecret}, nil
}

func (f *fakePayments) record(ctx context.Context, rec workflows.PaymentRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, recorded(f.now(), rec.Status, rec.FailureCode))
	if rec.TenantID != tenantID || rec.PaymentID != paymentID {
		return temporal.NewNonRetryableApplicationError("no such payment", workflows.ErrTypeNotFound, nil)
	}
	f.status, f.failure = rec.Status, rec.FailureCode
	return nil
}

func (f *fakePayments) capture(ctx context.Context, s workflows.PaymentStep) (workflows.PaymentSummary, error) {
	return f.step(workflows.ActivityCapturePayment, s, func() error {
		if f.status != workflows.PaymentAuthorized {
			return providerReject("capture of a " + f.status + " payment")
		}
		f.status, f.captured = workflows.PaymentCaptured, s.AmountMinor
		if s.Kind != "capture" {
			f.fee = s.AmountMinor
		}
		return nil
	})
}

func (f *fakePayments) void(ctx context.Context, s workflows.PaymentStep) (workflows.PaymentSummary, error) {
	return f.step(workflows.ActivityVoidPayment, s, func() error {
		if f.captured > 0 {
			return providerReject("void of a captured payment")
		}
		f.status = workflows.PaymentVoided
		if s.Kind == workflows.PaymentExpired {
			f.status = workflows.PaymentExpired
		}
		return nil
	})
}

func (f *fakePayments) refund(ctx context.Context, s workflows.PaymentStep) (workflows.PaymentSummary, error) {
	return f.step(workflows.ActivityRefundPayment, s, func() error {
		// A late success was captured by the provider on its own.
		taken := f.captured
		if s.Reason == "late-success" && taken == 0 {
			taken = s.AmountMinor
		}
		if s.AmountMinor <= 0 || s.AmountMinor > taken-f.refunded {
			return temporal.NewNonRetryableApplicationError("refund exceeds what is left", workflows.ErrTypeRefundTooLarge, nil)
		}
		f.captured, f.refunded = taken, f.refunded+s.AmountMinor
		f.status = workflows.PaymentPartiallyRefunded
		if f.refunded == f.captured {
			f.status = workflows.PaymentRefunded
		}
		return nil
	})
}

func (f *fakePayments) chargeNoShow(ctx context.Context, s workflows.PaymentStep) (workflows.PaymentSummary, error) {
	return f.step(workflows.ActivityChargeNoShow, s, func() error {
		f.status, f.captured = workflows.PaymentCaptured, f.captured+s.AmountMinor
		if s.Kind != "capture" {
			f.fee = s.AmountMinor
		}
		return nil
	})
}

// step records the call, answers a repeated key as the first time, and
// otherwise lets change move the money.
func (f *fakePayments) step(activity string, s workflows.PaymentStep, change func() error) (workflows.PaymentSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, payCall{at: f.now(), activity: activity, key: s.Key, amount: s.AmountMinor, kind: s.Kind, reason: s.Reason})
	if s.TenantID != tenantID || s.PaymentID != paymentID || s.IntentID != intentID || s.Currency != currency {
		return workflows.PaymentSummary{}, temporal.NewNonRetryableApplicationError("step for another payment", workflows.ErrTypeNotFound, nil)
	}
	if sum, ok := f.answered[s.Key]; ok {
		return sum, nil
	}
	if err := change(); err != nil {
		return workflows.PaymentSummary{}, err
	}
	sum := workflows.PaymentSummary{Status: f.status, CapturedMinor: f.captured, RefundedMinor: f.refunded, FeeMinor: f.fee}
	f.answered[s.Key] = sum
	return sum, nil
}

// tellAppointment stands in for the appointment workflow when the saga
// runs alone: it records the outcome signalled to it.
func (f *fakePayments) tellAppointment(namespace, workflowID, runID, signalName string, arg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := arg.(workflows.PaymentOutcome)
	if !ok {
		return fmt.Errorf("outcome %T, want a PaymentOutcome", arg)
	}
	f.outcomes = append(f.outcomes, outcomeSent{at: f.now(), outcome: o.Outcome})
	return nil
}

func (f *fakePayments) callLines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return callLines(f.calls...)
}

func (f *fakePayments) outcomeLines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []string{}
	for _, o := range f.outcomes {
		out = append(out, o.String())
	}
	return out
}

func callLines(calls ...payCall) []string {
	out := []string{}
	for _, c := range calls {
		out = append(out, c.String())
	}
	return out
}

func providerReject(what string) error {
	return temporal.NewNonRetryableApplicationError(what, workflows.ErrTypeProviderReject, nil)
}

// sagaMsg is a provider event, appointment news or a billing refund sent
// to the saga at a workflow time.
type sagaMsg struct {
	at     time.Time
	event  *workflows.ProviderEvent
	news   *workflows.AppointmentNews
	refund *workflows.BillingRefund
	// wantReject is the error type the refund's validator refuses with;
	// empty when the refund must be accepted and complete.
	wantReject string
}

func providerEvent(at time.Time, typ string) sagaMsg {
	status := map[string]string{
		evAuthorized: "requires_capture",
		evSucceeded:  "succeeded",
		evFailed:     "requires_payment_method",
		evCanceled:   "canceled",
	}[typ]
	return sagaMsg{at: at, event: &workflows.ProviderEvent{EventID: "evt_" + typ, Type: typ, IntentStatus: status, Created: at}}
}

func declined(at time.Time, code string) sagaMsg {
	m := providerEvent(at, evFailed)
	m.event.DeclineCode = code
	return m
}

func news(at time.Time, kind string) sagaMsg {
	return sagaMsg{at: at, news: &workflows.AppointmentNews{Kind: kind, At: at}}
}

func cancelledBy(at time.Time, by string) sagaMsg {
	m := news(at, workflows.NewsCancelled)
	m.news.By = by
	return m
}

func rescheduled(at, startsAt time.Time) sagaMsg {
	m := news(at, workflows.NewsRescheduled)
	m.news.StartsAt = startsAt
	return m
}

func billingRefund(at time.Time, amount int64, reason, wantReject string) sagaMsg {
	return sagaMsg{at: at, refund: &workflows.BillingRefund{AmountMinor: amount, Reason: reason, UserID: patientUserID}, wantReject: wantReject}
}

// sagaInput is a card payment of price for a visit in three days, captured
// at check-in, free to cancel until a day before, half kept on a late
// cancel and all of it on a no-show.
func sagaInput() workflows.PaymentInput {
	return workflows.PaymentInput{
		TenantID:      tenantID,
		PaymentID:     paymentID,
		AppointmentID: appointmentID,
		IntentID:      intentID,
		Provider:      "stripe",
		AmountMinor:   price,
		Currency:      currency,
		HoldExpiresAt: holdUntil,
		StartsAt:      in3Days,
		Policy: workflows.PaymentPolicy{
			FreeCancelBefore: 24 * time.Hour,
			LateCancelFeeBps: 5000,
			NoShowFeeBps:     10000,
			CaptureAt:        workflows.CaptureAtCheckIn,
		},
	}
}

// sagaHarness runs one payment saga alone in the SDK's test environment,
// with the fake behind every activity and behind the appointment it tells.
type sagaHarness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	pay *fakePayments
	seq int
}

func newSagaHarness(t *testing.T) *sagaHarness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.PaymentWorkflowID(paymentID), TaskQueue: workflows.AppointmentTaskQueue})
	workers.RegisterAppointments(env, workers.Deps{Appointments: &activities.Appointments{}})
	f := newFakePayments(env.Now)
	for name, fn := range f.activities() {
		env.OnActivity(name, mock.Anything, mock.Anything).Return(fn)
	}
	env.OnSignalExternalWorkflow(mock.Anything, workflows.AppointmentWorkflowID(appointmentID), "", workflows.SignalPaymentOutcome, mock.Anything).
		Return(f.tellAppointment)
	return &sagaHarness{t: t, env: env, pay: f}
}

// send delivers m at its time and returns the refund's answer (nil for a
// signal).
func (h *sagaHarness) send(m sagaMsg) *answer {
	h.t.Helper()
	if m.at.Before(t0) {
		h.t.Fatalf("message at %v, before the saga starts", m.at)
	}
	var a *answer
	var deliver func()
	switch {
	case m.event != nil:
		deliver = func() { h.env.SignalWorkflow(workflows.SignalProviderEvent, *m.event) }
	case m.news != nil:
		deliver = func() { h.env.SignalWorkflow(workflows.SignalAppointmentNews, *m.news) }
	default:
		h.seq++
		id := fmt.Sprintf("refund-%d", h.seq)
		a = &answer{}
		deliver = func() { h.env.UpdateWorkflow(workflows.UpdateRefund, id, a.callbacks(), *m.refund) }
	}
	h.env.RegisterDelayedCallback(deliver, m.at.Sub(t0))
	return a
}

// statusAt queries the saga's status at a workflow time; the answer is
// read after run.
func (h *sagaHarness) statusAt(at time.Time) *string {
	got := new(string)
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(workflows.QueryPayment)
		if err != nil {
			*got = "query failed: " + err.Error()
			return
		}
		var st workflows.PaymentState
		if err := v.Get(&st); err != nil {
			*got = "decode failed: " + err.Error()
			return
		}
		*got = st.Status
	}, at.Sub(t0))
	return got
}

func (h *sagaHarness) run(in workflows.PaymentInput) workflows.PaymentState {
	h.t.Helper()
	h.env.ExecuteWorkflow(workflows.Payment, in)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("saga did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("saga failed: %v", err)
	}
	var st workflows.PaymentState
	if err := h.env.GetWorkflowResult(&st); err != nil {
		h.t.Fatalf("saga result: %v", err)
	}
	return st
}

// probe is the saga's status expected at a time.
type probe struct {
	at     time.Time
	status string
}

// money is the amounts part of PaymentState.
type money struct {
	Status                  string
	Captured, Refunded, Fee int64
	Refunds                 int
}

func moneyOf(st workflows.PaymentState) money {
	return money{Status: st.Status, Captured: st.CapturedMinor, Refunded: st.RefundedMinor, Fee: st.FeeMinor, Refunds: st.Refunds}
}

func TestPaymentSaga(t *testing.T) {
	half := price / 2
	secured := []outcomeSent{{paidAt, workflows.OutcomeSecured}}
	tests := []struct {
		name   string
		in     func(*workflows.PaymentInput) // changes to sagaInput
		msgs   []sagaMsg
		probes []probe
		// want is every payment activity call in order; wantOutcomes what
		// the appointment was told; wantEnd when the saga completed.
		want         []payCall
		wantOutcomes []outcomeSent
		wantMoney    money
		wantEnd      time.Time
	}{
		{
			name: "authorized, captured once at check-in, open for refunds until the window ends",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				news(checkInAt, workflows.NewsCheckedIn),
				news(closesAt, workflows.NewsFulfilled),
			},
			probes: []probe{
				{paidAt.Add(-time.Second), workflows.PaymentRequiresPayment},
				{paidAt.Add(time.Second), workflows.PaymentAuthorized},
				{closesAt.Add(time.Second), workflows.PaymentCaptured},
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(checkInAt, price, "capture"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price},
			wantEnd:      refundEnd,
		},
		{
			name: "captured after the visit, not at check-in",
			in:   func(in *workflows.PaymentInput) { in.Policy.CaptureAt = workflows.CaptureAfterVisit },
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				news(checkInAt, workflows.NewsCheckedIn),
				news(closesAt, workflows.NewsFulfilled),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(closesAt, price, "capture"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price},
			wantEnd:      refundEnd,
		},
		{
			name: "a shorter refund window ends the saga sooner",
			in:   func(in *workflows.PaymentInput) { in.RefundWindow = 7 * 24 * time.Hour },
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				news(closesAt, workflows.NewsFulfilled),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(closesAt, price, "capture"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price},
			wantEnd:      closesAt.Add(7 * 24 * time.Hour),
		},
		{
			name: "declined card, then another card before the hold expires",
			msgs: []sagaMsg{
				declined(t0.Add(time.Minute), "insufficient_funds"),
				providerEvent(t0.Add(5*time.Minute), evAuthorized),
				news(closesAt, workflows.NewsFulfilled),
			},
			probes: []probe{{t0.Add(3 * time.Minute), workflows.PaymentRequiresPayment}},
			want: []payCall{
				recorded(t0.Add(time.Minute), workflows.PaymentRequiresPayment, "insufficient_funds"),
				recorded(t0.Add(5*time.Minute), workflows.PaymentAuthorized, ""),
				captured(closesAt, price, "capture"),
			},
			wantOutcomes: []outcomeSent{{t0.Add(5 * time.Minute), workflows.OutcomeSecured}},
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price},
			wantEnd:      refundEnd,
		},
		{
			name: "hold expires unanswered: voided and reported at the expiry",
			want: []payCall{
				voided(holdUntil, "void", workflows.PaymentExpired),
			},
			wantOutcomes: []outcomeSent{{holdUntil, workflows.OutcomeExpired}},
			wantMoney:    money{Status: workflows.PaymentExpired},
			wantEnd:      lateEnd,
		},
		{
			name: "declined until the expiry: expired, the failure recorded",
			msgs: []sagaMsg{declined(t0.Add(time.Minute), "card_declined")},
			want: []payCall{
				recorded(t0.Add(time.Minute), workflows.PaymentRequiresPayment, "card_declined"),
				voided(holdUntil, "void", workflows.PaymentExpired),
			},
			wantOutcomes: []outcomeSent{{holdUntil, workflows.OutcomeExpired}},
			wantMoney:    money{Status: workflows.PaymentExpired},
			wantEnd:      lateEnd,
		},
		{
			name: "late hold after the expiry is voided under its own key",
			in:   func(in *workflows.PaymentInput) { in.LateWindow = 24 * time.Hour },
			msgs: []sagaMsg{providerEvent(holdUntil.Add(2*time.Hour), evAuthorized)},
			want: []payCall{
				voided(holdUntil, "void", workflows.PaymentExpired),
				voided(holdUntil.Add(2*time.Hour), "late-void", workflows.PaymentExpired),
			},
			wantOutcomes: []outcomeSent{{holdUntil, workflows.OutcomeExpired}},
			wantMoney:    money{Status: workflows.PaymentExpired},
			wantEnd:      holdUntil.Add(24 * time.Hour), // the late window stays open for more events
		},
		{
			name: "every late event is acted on: the hold voided, then its capture refunded",
			msgs: []sagaMsg{
				providerEvent(holdUntil.Add(2*time.Hour), evAuthorized),
				providerEvent(holdUntil.Add(3*time.Hour), evSucceeded),
			},
			want: []payCall{
				voided(holdUntil, "void", workflows.PaymentExpired),
				voided(holdUntil.Add(2*time.Hour), "late-void", workflows.PaymentExpired),
				refunded(holdUntil.Add(3*time.Hour), "late-refund", price, "late-success"),
			},
			wantOutcomes: []outcomeSent{{holdUntil, workflows.OutcomeExpired}},
			wantMoney:    money{Status: workflows.PaymentRefunded, Captured: price, Refunded: price},
			wantEnd:      holdUntil.Add(workflows.DefaultLateWindow),
		},
		{
			name: "late success after the expiry is refunded in full",
			msgs: []sagaMsg{providerEvent(holdUntil.Add(2*time.Hour), evSucceeded)},
			want: []payCall{
				voided(holdUntil, "void", workflows.PaymentExpired),
				refunded(holdUntil.Add(2*time.Hour), "late-refund", price, "late-success"),
			},
			wantOutcomes: []outcomeSent{{holdUntil, workflows.OutcomeExpired}},
			wantMoney:    money{Status: workflows.PaymentRefunded, Captured: price, Refunded: price},
			wantEnd:      holdUntil.Add(workflows.DefaultLateWindow),
		},
		{
			name: "failure after the expiry is no success: nothing moves",
			msgs: []sagaMsg{declined(holdUntil.Add(time.Hour), "card_declined")},
			want: []payCall{
				voided(holdUntil, "void", workflows.PaymentExpired),
			},
			wantOutcomes: []outcomeSent{{holdUntil, workflows.OutcomeExpired}},
			wantMoney:    money{Status: workflows.PaymentExpired},
			wantEnd:      lateEnd,
		},
		{
			name: "provider cancels the intent before the expiry: expired at once",
			msgs: []sagaMsg{providerEvent(t0.Add(4*time.Minute), evCanceled)},
			want: []payCall{
				voided(t0.Add(4*time.Minute), "void", workflows.PaymentExpired),
			},
			wantOutcomes: []outcomeSent{{t0.Add(4 * time.Minute), workflows.OutcomeExpired}},
			wantMoney:    money{Status: workflows.PaymentExpired},
			wantEnd:      t0.Add(4 * time.Minute).Add(8 * 24 * time.Hour),
		},
		{
			name: "patient cancels before paying: hold voided, appointment not told",
			msgs: []sagaMsg{cancelledBy(t0.Add(5*time.Minute), "patient")},
			want: []payCall{
				voided(t0.Add(5*time.Minute), "void", workflows.PaymentVoided),
			},
			wantMoney: money{Status: workflows.PaymentVoided},
			wantEnd:   t0.Add(5 * time.Minute).Add(8 * 24 * time.Hour),
		},
		{
			name: "patient cancels inside the free window: hold voided",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				cancelledBy(in3Days.Add(-48*time.Hour), "patient"),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				voided(in3Days.Add(-48*time.Hour), "void", workflows.PaymentVoided),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentVoided},
			wantEnd:      in3Days.Add(-48 * time.Hour).Add(30 * 24 * time.Hour),
		},
		{
			name: "patient cancels at the window's last instant: still free",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				cancelledBy(in3Days.Add(-24*time.Hour), "patient"),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				voided(in3Days.Add(-24*time.Hour), "void", workflows.PaymentVoided),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentVoided},
			wantEnd:      in3Days.Add(-24 * time.Hour).Add(30 * 24 * time.Hour),
		},
		{
			name: "patient cancels late: half the price captured as the fee",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				cancelledBy(in3Days.Add(-2*time.Hour), "patient"),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(in3Days.Add(-2*time.Hour), half, "late_cancel"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: half, Fee: half},
			wantEnd:      in3Days.Add(-2 * time.Hour).Add(30 * 24 * time.Hour),
		},
		{
			name: "clinic cancels late: hold voided, no fee",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				cancelledBy(in3Days.Add(-2*time.Hour), "staff"),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				voided(in3Days.Add(-2*time.Hour), "void", workflows.PaymentVoided),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentVoided},
			wantEnd:      in3Days.Add(-2 * time.Hour).Add(30 * 24 * time.Hour),
		},
		{
			name: "patient cancels late after the capture: all but the fee refunded",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				news(checkInAt, workflows.NewsCheckedIn),
				cancelledBy(in3Days.Add(5*time.Minute), "patient"),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(checkInAt, price, "capture"),
				refunded(in3Days.Add(5*time.Minute), "cancel-refund", price-half, "cancelled"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentPartiallyRefunded, Captured: price, Refunded: price - half},
			wantEnd:      in3Days.Add(5 * time.Minute).Add(30 * 24 * time.Hour),
		},
		{
			name: "clinic cancels after the capture: everything refunded",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				news(checkInAt, workflows.NewsCheckedIn),
				cancelledBy(in3Days.Add(5*time.Minute), "practitioner"),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(checkInAt, price, "capture"),
				refunded(in3Days.Add(5*time.Minute), "cancel-refund", price, "cancelled"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentRefunded, Captured: price, Refunded: price},
			wantEnd:      in3Days.Add(5 * time.Minute).Add(30 * 24 * time.Hour),
		},
		{
			name: "a hold that lapses before a no-show is charged on the saved card",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				providerEvent(paidAt.Add(24*time.Hour), evCanceled),
				news(closesAt, workflows.NewsNoShow),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				{at: closesAt, activity: workflows.ActivityChargeNoShow, key: stepKey("charge-noshow"), amount: price, kind: "noshow"},
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price, Fee: price},
			wantEnd:      refundEnd,
		},
		{
			name: "a hold that lapses before the visit is charged on the saved card after it",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				providerEvent(paidAt.Add(24*time.Hour), evCanceled),
				news(closesAt, workflows.NewsFulfilled),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				{at: closesAt, activity: workflows.ActivityChargeNoShow, key: stepKey("charge-capture"), amount: price, kind: "capture"},
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price},
			wantEnd:      refundEnd,
		},
		{
			name: "no-show with a full fee captures the hold as the fee",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				news(closesAt, workflows.NewsNoShow),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(closesAt, price, "noshow"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price, Fee: price},
			wantEnd:      refundEnd,
		},
		{
			name: "no-show with a half fee captures half",
			in:   func(in *workflows.PaymentInput) { in.Policy.NoShowFeeBps = 5000 },
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				news(closesAt, workflows.NewsNoShow),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(closesAt, half, "noshow"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: half, Fee: half},
			wantEnd:      refundEnd,
		},
		{
			name: "no-show without a fee voids the hold",
			in:   func(in *workflows.PaymentInput) { in.Policy.NoShowFeeBps = 0 },
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				news(closesAt, workflows.NewsNoShow),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				voided(closesAt, "void", workflows.PaymentVoided),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentVoided},
			wantEnd:      refundEnd,
		},
		{
			name: "reschedule moves the free window: a cancel late for the old time is free",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				rescheduled(in3Days.Add(-30*time.Hour), movedTo),
				cancelledBy(in3Days.Add(-2*time.Hour), "patient"),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				voided(in3Days.Add(-2*time.Hour), "void", workflows.PaymentVoided),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentVoided},
			wantEnd:      in3Days.Add(-2 * time.Hour).Add(30 * 24 * time.Hour),
		},
		{
			name: "reschedule moves the free window: a cancel late for the new time pays the fee",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				rescheduled(in3Days.Add(-30*time.Hour), movedTo),
				cancelledBy(movedTo.Add(-2*time.Hour), "patient"),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(movedTo.Add(-2*time.Hour), half, "late_cancel"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: half, Fee: half},
			wantEnd:      movedTo.Add(-2 * time.Hour).Add(30 * 24 * time.Hour),
		},
		{
			name: "reschedule while the hold waits moves the free window too",
			msgs: []sagaMsg{
				rescheduled(t0.Add(time.Minute), movedTo),
				providerEvent(t0.Add(5*time.Minute), evAuthorized),
				cancelledBy(in3Days.Add(-2*time.Hour), "patient"),
			},
			want: []payCall{
				recorded(t0.Add(5*time.Minute), workflows.PaymentAuthorized, ""),
				voided(in3Days.Add(-2*time.Hour), "void", workflows.PaymentVoided),
			},
			wantOutcomes: []outcomeSent{{t0.Add(5 * time.Minute), workflows.OutcomeSecured}},
			wantMoney:    money{Status: workflows.PaymentVoided},
			wantEnd:      in3Days.Add(-2 * time.Hour).Add(30 * 24 * time.Hour),
		},
		{
			name: "rescheduled visit is charged once",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				rescheduled(in3Days.Add(-30*time.Hour), movedTo),
				rescheduled(movedTo.Add(-30*time.Hour), movedAgain),
				news(movedAgain.Add(-10*time.Minute), workflows.NewsCheckedIn),
				news(movedAgain.Add(visit+time.Hour), workflows.NewsFulfilled),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(movedAgain.Add(-10*time.Minute), price, "capture"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price},
			wantEnd:      movedAgain.Add(visit + time.Hour).Add(30 * 24 * time.Hour),
		},
		{
			name: "duplicate and out-of-order provider events change nothing",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				providerEvent(paidAt.Add(time.Minute), evAuthorized),
				declined(paidAt.Add(2*time.Minute), "card_declined"),
				news(checkInAt, workflows.NewsCheckedIn),
				// A cancellation after the capture is news of nothing.
				providerEvent(checkInAt.Add(30*time.Second), evCanceled),
				providerEvent(checkInAt.Add(time.Minute), evSucceeded),
				news(closesAt, workflows.NewsFulfilled),
			},
			probes: []probe{{paidAt.Add(5 * time.Minute), workflows.PaymentAuthorized}},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(checkInAt, price, "capture"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price},
			wantEnd:      refundEnd,
		},
		{
			name: "offline payment is secured at once, captured at check-in",
			in:   func(in *workflows.PaymentInput) { in.Provider = "offline" },
			msgs: []sagaMsg{
				news(checkInAt, workflows.NewsCheckedIn),
				news(closesAt, workflows.NewsFulfilled),
			},
			want: []payCall{
				recorded(t0, workflows.PaymentAuthorized, ""),
				captured(checkInAt, price, "capture"),
			},
			wantOutcomes: []outcomeSent{{t0, workflows.OutcomeSecured}},
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price},
			wantEnd:      refundEnd,
		},
		{
			name: "billing refunds part, is refused more than is left, then refunds the rest",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				news(checkInAt, workflows.NewsCheckedIn),
				news(closesAt, workflows.NewsFulfilled),
				billingRefund(closesAt.Add(24*time.Hour), 10000, "goodwill", ""),
				billingRefund(closesAt.Add(48*time.Hour), 40000, "too much", workflows.ErrTypeRefundTooLarge),
				billingRefund(closesAt.Add(49*time.Hour), 1000, "", workflows.ErrTypeRefundTooLarge),
				billingRefund(closesAt.Add(72*time.Hour), 35000, "rest", ""),
			},
			probes: []probe{{closesAt.Add(25 * time.Hour), workflows.PaymentPartiallyRefunded}},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(checkInAt, price, "capture"),
				refunded(closesAt.Add(24*time.Hour), "refund-1", 10000, "goodwill"),
				refunded(closesAt.Add(72*time.Hour), "refund-2", 35000, "rest"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentRefunded, Captured: price, Refunded: price, Refunds: 2},
			wantEnd:      refundEnd,
		},
		{
			name: "billing refund of an uncaptured hold is refused",
			msgs: []sagaMsg{
				providerEvent(paidAt, evAuthorized),
				billingRefund(paidAt.Add(time.Hour), 1000, "goodwill", workflows.ErrTypeRefundTooLarge),
				news(closesAt, workflows.NewsFulfilled),
			},
			want: []payCall{
				recorded(paidAt, workflows.PaymentAuthorized, ""),
				captured(closesAt, price, "capture"),
			},
			wantOutcomes: secured,
			wantMoney:    money{Status: workflows.PaymentCaptured, Captured: price},
			wantEnd:      refundEnd,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newSagaHarness(t)
			in := sagaInput()
			if tt.in != nil {
				tt.in(&in)
			}
			answers := make([]*answer, len(tt.msgs))
			for i, m := range tt.msgs {
				answers[i] = h.send(m)
			}
			statuses := make([]*string, len(tt.probes))
			for i, p := range tt.probes {
				statuses[i] = h.statusAt(p.at)
			}

			st := h.run(in)

			if got, want := h.pay.callLines(), callLines(tt.want...); !slices.Equal(got, want) {
				t.Errorf("payment calls:\n got %q\nwant %q", got, want)
			}
			var wantOutcomes []string
			for _, o := range tt.wantOutcomes {
				wantOutcomes = append(wantOutcomes, o.String())
			}
			if got := h.pay.outcomeLines(); !slices.Equal(got, wantOutcomes) {
				t.Errorf("outcomes told to the appointment:\n got %q\nwant %q", got, wantOutcomes)
			}
			if got := moneyOf(st); got != tt.wantMoney {
				t.Errorf("final state %+v, want %+v", got, tt.wantMoney)
			}
			if st.PaymentID != paymentID {
				t.Errorf("final state for payment %q, want %q", st.PaymentID, paymentID)
			}
			if got := h.env.Now(); !got.Equal(tt.wantEnd) {
				t.Errorf("saga ended at %v, want %v", got, tt.wantEnd)
			}
			for i, p := range tt.probes {
				if *statuses[i] != p.status {
					t.Errorf("status at %v = %q, want %q", p.at, *statuses[i], p.status)
				}
			}
			for i, a := range answers {
				if a != nil {
					a.check(t, fmt.Sprintf("refund of %d at %v", tt.msgs[i].refund.AmountMinor, tt.msgs[i].at), tt.msgs[i].wantReject)
				}
			}
		})
	}
}

// paidAppointments is fakeAppointments with a paid booking's held state:
// HoldSlot holds the row until ConfirmHeldAppointment books it, and a held
// row can be cancelled and rescheduled, as the real activities allow.
type paidAppointments struct {
	*fakeAppointments
	holds []workflows.BookRequest // HoldSlot's requests
}

func (f *paidAppointments) activities() map[string]any {
	fns := f.fakeAppointments.activities()
	fns[workflows.ActivityHoldSlot] = f.holdSlot
	fns[workflows.ActivityCancel] = f.cancel
	fns[workflows.ActivityReschedule] = f.reschedule
	fns[workflows.ActivityConfirmHeld] = f.confirmHeld
	return fns
}

func (f *paidAppointments) holdSlot(ctx context.Context, req workflows.BookRequest) (workflows.BookResult, error) {
	f.mu.Lock()
	f.holds = append(f.holds, req)
	fresh := f.row == nil
	f.mu.Unlock()
	res, err := f.fakeAppointments.holdSlot(ctx, req)
	if err != nil || res.Outcome != workflows.OutcomeBooked || !fresh || req.HoldExpiresAt.IsZero() {
		return res, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.row.Status = held
	res.State = *f.row
	return res, nil
}

func (f *paidAppointments) cancel(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	return f.transition(workflows.ActivityCancel, ch, func(row *workflows.AppointmentState) error {
		if ch.Cancel == nil {
			return invalidState("cancel without a request")
		}
		switch row.Status {
		case cancelled:
			return nil
		case booked, held:
			row.Status = cancelled
			f.reason = ch.Cancel.Reason
			return nil
		}
		return invalidState(row.Status)
	})
}

func (f *paidAppointments) reschedule(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	return f.transition(workflows.ActivityReschedule, ch, func(row *workflows.AppointmentState) error {
		r := ch.Reschedule
		if r == nil {
			return invalidState("reschedule without a request")
		}
		if row.Version != ch.ExpectedVersion {
			return temporal.NewNonRetryableApplicationError("the appointment changed meanwhile", workflows.ErrTypeVersionChanged, nil)
		}
		if row.Status != booked && row.Status != held {
			return invalidState(row.Status)
		}
		row.StartsAt, row.EndsAt = r.StartsAt, r.EndsAt
		row.Version++
		return nil
	})
}

func (f *paidAppointments) confirmHeld(ctx context.Context, ch workflows.AppointmentChange) (workflows.AppointmentState, error) {
	return f.transition(workflows.ActivityConfirmHeld, ch, func(row *workflows.AppointmentState) error {
		switch row.Status {
		case booked:
			return nil
		case held:
			row.Status = booked
			return nil
		}
		return invalidState(row.Status)
	})
}

// paidHarness runs the appointment workflow of a paid booking with the
// real payment saga as its child; the fakes stand behind the activities of
// both.
type paidHarness struct {
	*harness
	appt *paidAppointments
	pay  *fakePayments
}

func newPaidHarness(t *testing.T) *paidHarness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	// The saga signals its appointment by workflow ID.
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.AppointmentWorkflowID(appointmentID), TaskQueue: workflows.AppointmentTaskQueue})
	workers.RegisterAppointments(env, workers.Deps{Appointments: &activities.Appointments{}})
	appt := &paidAppointments{fakeAppointments: newFake(env.Now)}
	pay := newFakePayments(env.Now)
	for _, fns := range []map[string]any{appt.activities(), pay.activities()} {
		for name, fn := range fns {
			env.OnActivity(name, mock.Anything, mock.Anything).Return(fn)
		}
	}
	return &paidHarness{harness: &harness{t: t, env: env, fake: appt.fakeAppointments}, appt: appt, pay: pay}
}

// paidPolicy is sagaInput's policy.
func paidPolicy() workflows.PaymentPolicy {
	return sagaInput().Policy
}

// bookPaid sends a paid booking when the workflow starts, as the api's
// Update-With-Start does.
func (h *paidHarness) bookPaid(startsAt time.Time) *answer {
	return h.bookPaidAs(workflows.BookUpdateID, startsAt)
}

// bookPaidAs sends the paid booking under update ID id.
func (h *paidHarness) bookPaidAs(id string, startsAt time.Time) *answer {
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
		PriceMinor:        price,
		Currency:          currency,
		BookedBy:          patientUserID,
		PatientUserID:     patientUserID,
		Payment: &workflows.PaymentTerms{
			PaymentID:   paymentID,
			AmountMinor: price,
			Currency:    currency,
			HoldTTL:     holdTTL,
			Policy:      paidPolicy(),
		},
	}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(workflows.UpdateBook, id, a.callbacks(), req)
	}, 0)
	return a
}

// providerEvent sends m's event to the child saga at its time.
func (h *paidHarness) providerEvent(m sagaMsg) {
	h.env.RegisterDelayedCallback(func() {
		if err := h.env.SignalWorkflowByID(workflows.PaymentWorkflowID(paymentID), workflows.SignalProviderEvent, *m.event); err != nil {
			h.t.Errorf("provider event at %v: %v", m.at, err)
		}
	}, m.at.Sub(t0))
}

func confirmedAt(at time.Time) sent {
	return sent{at: at, key: "confirmed", template: workflows.TemplateConfirmed, scheduledFor: at}
}

func TestPaidBooking(t *testing.T) {
	half := price / 2
	// late is after the free window and before the 2 h reminder.
	late := in3Days.Add(-3 * time.Hour)
	tests := []struct {
		name     string
		events   []sagaMsg // provider events for the saga
		messages []message // updates for the appointment
		want     []sent
		// wantStatus is the appointment's final status; wantReason the
		// cancellation's reason; wantConfirms how often the held row was
		// confirmed; wantMoney the saga's payment calls.
		wantStatus   string
		wantReason   string
		wantConfirms int
		wantMoney    []payCall
	}{
		{
			name:     "secured payment confirms the booking, check-in captures",
			events:   []sagaMsg{providerEvent(t0.Add(3*time.Minute), evAuthorized)},
			messages: []message{{at: checkInAt, update: workflows.UpdateCheckIn, arg: checkIn()}},
			want: []sent{
				confirmedAt(t0.Add(3 * time.Minute)),
				reminder(in3Days, 24*time.Hour, 1),
				reminder(in3Days, 2*time.Hour, 1),
			},
			wantStatus:   fulfilled,
			wantConfirms: 1,
			wantMoney: []payCall{
				recorded(t0.Add(3*time.Minute), workflows.PaymentAuthorized, ""),
				captured(checkInAt, price, "capture"),
			},
		},
		{
			name:   "unpaid hold expires: slot released, nothing confirmed",
			events: []sagaMsg{declined(t0.Add(time.Minute), "card_declined")},
			want: []sent{
				cancelledAt(holdUntil),
			},
			wantStatus: cancelled,
			wantReason: "payment-not-completed",
			wantMoney: []payCall{
				recorded(t0.Add(time.Minute), workflows.PaymentRequiresPayment, "card_declined"),
				voided(holdUntil, "void", workflows.PaymentExpired),
			},
		},
		{
			name:     "patient cancels while the hold waits: hold voided, nothing confirmed",
			messages: []message{{at: t0.Add(5 * time.Minute), update: workflows.UpdateCancel, arg: cancelRequest("found another time")}},
			want: []sent{
				cancelledAt(t0.Add(5 * time.Minute)),
			},
			wantStatus: cancelled,
			wantReason: "found another time",
			wantMoney: []payCall{
				voided(t0.Add(5*time.Minute), "void", workflows.PaymentVoided),
			},
		},
		{
			name:     "late cancel of a paid visit keeps the fee",
			events:   []sagaMsg{providerEvent(t0.Add(3*time.Minute), evAuthorized)},
			messages: []message{{at: late, update: workflows.UpdateCancel, arg: cancelRequest("clash")}},
			want: []sent{
				confirmedAt(t0.Add(3 * time.Minute)),
				reminder(in3Days, 24*time.Hour, 1),
				cancelledAt(late),
			},
			wantStatus:   cancelled,
			wantReason:   "clash",
			wantConfirms: 1,
			wantMoney: []payCall{
				recorded(t0.Add(3*time.Minute), workflows.PaymentAuthorized, ""),
				captured(late, half, "late_cancel"),
			},
		},
		{
			name:   "no-show pays the fee when the visit closes",
			events: []sagaMsg{providerEvent(t0.Add(3*time.Minute), evAuthorized)},
			want: []sent{
				confirmedAt(t0.Add(3 * time.Minute)),
				reminder(in3Days, 24*time.Hour, 1),
				reminder(in3Days, 2*time.Hour, 1),
			},
			wantStatus:   noShow,
			wantConfirms: 1,
			wantMoney: []payCall{
				recorded(t0.Add(3*time.Minute), workflows.PaymentAuthorized, ""),
				captured(closesAt, price, "noshow"),
			},
		},
		{
			name:   "reschedule while the hold waits moves the saga's free window",
			events: []sagaMsg{providerEvent(t0.Add(5*time.Minute), evAuthorized)},
			messages: []message{
				{at: t0.Add(2 * time.Minute), update: workflows.UpdateReschedule, arg: rescheduleTo(movedTo)},
				{at: late, update: workflows.UpdateCancel, arg: cancelRequest("clash")},
			},
			want: []sent{
				rescheduledAt(t0.Add(2*time.Minute), 2),
				confirmedAt(t0.Add(5 * time.Minute)),
				cancelledAt(late),
			},
			wantStatus:   cancelled,
			wantReason:   "clash",
			wantConfirms: 1,
			wantMoney: []payCall{
				recorded(t0.Add(5*time.Minute), workflows.PaymentAuthorized, ""),
				voided(late, "void", workflows.PaymentVoided),
			},
		},
		{
			name:   "reschedule after payment keeps it: charged once at the new check-in",
			events: []sagaMsg{providerEvent(t0.Add(3*time.Minute), evAuthorized)},
			messages: []message{
				{at: in3Days.Add(-30 * time.Hour), update: workflows.UpdateReschedule, arg: rescheduleTo(movedTo)},
				{at: movedTo.Add(-10 * time.Minute), update: workflows.UpdateCheckIn, arg: checkIn()},
			},
			want: []sent{
				confirmedAt(t0.Add(3 * time.Minute)),
				rescheduledAt(in3Days.Add(-30*time.Hour), 2),
				reminder(movedTo, 24*time.Hour, 2),
				reminder(movedTo, 2*time.Hour, 2),
			},
			wantStatus:   fulfilled,
			wantConfirms: 1,
			wantMoney: []payCall{
				recorded(t0.Add(3*time.Minute), workflows.PaymentAuthorized, ""),
				captured(movedTo.Add(-10*time.Minute), price, "capture"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newPaidHarness(t)
			bookAnswer := h.bookPaid(in3Days)
			for _, ev := range tt.events {
				h.providerEvent(ev)
			}
			answers := make([]*answer, len(tt.messages))
			for i, m := range tt.messages {
				answers[i] = h.send(m)
			}

			st := h.run()

			bookAnswer.check(t, "book", "")
			wantHandle := workflows.PaymentHandle{PaymentID: paymentID, Provider: "stripe", ClientSecret: clientSecret, HoldExpiresAt: holdUntil}
			res, ok := bookAnswer.value.(workflows.BookResult)
			switch {
			case !ok || res.Outcome != workflows.OutcomeBooked || res.State.Status != held:
				t.Errorf("book answered %#v, want booked and held", bookAnswer.value)
			case res.Payment == nil || *res.Payment != wantHandle:
				t.Errorf("book answered payment %+v, want %+v", res.Payment, wantHandle)
			}
			for i, a := range answers {
				a.check(t, tt.messages[i].update, tt.messages[i].wantReject)
			}
			checkHoldAndStart(t, h)
			if got, want := h.outbox(), lines(tt.want...); !slices.Equal(got, want) {
				t.Errorf("notifications:\n got %q\nwant %q", got, want)
			}
			if st.Status != tt.wantStatus {
				t.Errorf("result status = %q, want %q", st.Status, tt.wantStatus)
			}
			if h.fake.reason != tt.wantReason {
				t.Errorf("cancel reason = %q, want %q", h.fake.reason, tt.wantReason)
			}
			if got := h.calls(workflows.ActivityConfirmHeld); got != tt.wantConfirms {
				t.Errorf("ConfirmHeldAppointment ran %d times, want %d", got, tt.wantConfirms)
			}
			if got, want := h.pay.callLines(), callLines(tt.wantMoney...); !slices.Equal(got, want) {
				t.Errorf("payment calls:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// checkHoldAndStart checks that the slot was held until now plus the hold's
// TTL and that the payment was started once, for that hold.
func checkHoldAndStart(t *testing.T, h *paidHarness) {
	t.Helper()
	h.appt.mu.Lock()
	holds := slices.Clone(h.appt.holds)
	h.appt.mu.Unlock()
	h.pay.mu.Lock()
	starts := slices.Clone(h.pay.starts)
	h.pay.mu.Unlock()
	if len(holds) != 1 || !holds[0].HoldExpiresAt.Equal(holdUntil) || holds[0].Payment == nil {
		t.Errorf("HoldSlot requests %+v, want one paid hold until %v", holds, holdUntil)
	}
	want := workflows.StartPaymentRequest{
		TenantID:       tenantID,
		PaymentID:      paymentID,
		AppointmentID:  appointmentID,
		PatientID:      "2a7d4f90-1c6b-4e35-8b2a-9f0e3d5c7b18",
		PractitionerID: "9c2e5a71-4b3d-4e8f-a6c1-5d7b0e2f9a43",
		AmountMinor:    price,
		Currency:       currency,
		HoldExpiresAt:  holdUntil,
	}
	if len(starts) != 1 || starts[0] != want {
		t.Errorf("StartPayment requests %+v, want one %+v", starts, want)
	}
}

// TestPaidBookingPaymentUnavailable has the provider refuse the intent: the
// booking fails, the held slot is given back, no saga starts and nothing is
// ever confirmed.
func TestPaidBookingPaymentUnavailable(t *testing.T) {
	h := newPaidHarness(t)
	h.pay.startErr = temporal.NewNonRetryableApplicationError("invalid currency", workflows.ErrTypeProviderReject, nil)
	first := h.bookPaid(in3Days)
	// A client retrying under a new update ID gets the same refusal, not
	// a booking.
	retry := h.bookPaidAs("book-retry", in3Days)

	st := h.run()

	for what, a := range map[string]*answer{"book": first, "retried book": retry} {
		var appErr *temporal.ApplicationError
		if !a.accepted || !a.done || !errors.As(a.err, &appErr) || appErr.Type() != workflows.ErrTypeProviderReject {
			t.Errorf("%s: accepted %v, completed %v with %v (value %#v); want accepted and failed with %s",
				what, a.accepted, a.done, a.err, a.value, workflows.ErrTypeProviderReject)
		}
	}
	checkHoldAndStart(t, h)
	if got := h.calls(workflows.ActivityCancel); got != 1 || h.fake.reason != "payment-unavailable" {
		t.Errorf("CancelAppointment ran %d times with reason %q, want once with payment-unavailable", got, h.fake.reason)
	}
	if st.Status != cancelled {
		t.Errorf("result status = %q, want %q", st.Status, cancelled)
	}
	if got := h.outbox(); len(got) != 0 {
		t.Errorf("notifications %q, want none", got)
	}
	if got := h.pay.callLines(); len(got) != 0 {
		t.Errorf("payment calls %q, want none: no saga may start", got)
	}
	if got := h.calls(workflows.ActivityConfirmHeld); got != 0 {
		t.Errorf("ConfirmHeldAppointment ran %d times, want none", got)
	}
	// The lifecycle ends with the refusal, not after the booking wait.
	if got := h.env.Now(); !got.Equal(t0) {
		t.Errorf("workflow ended at %v, want at its start %v", got, t0)
	}
}
