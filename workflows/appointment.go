// Package workflows holds Carebook's Temporal workflows and their contracts.
// Workflow code here is deterministic: it imports the Temporal SDK and pure
// packages only, reads time through workflow.Now, and reaches the database
// through activities named in the contracts.
package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// bookWait is how long a started lifecycle waits for its booking update. The
// api sends it with the start, so only a broken client reaches it.
const bookWait = 10 * time.Minute

// checkInEarly is how long before the start the desk may check a patient in.
const checkInEarly = 2 * time.Hour

// Appointment runs one appointment from hold to close: it holds the slot when
// asked to book, confirms, reminds 24 h and 2 h before the start, takes
// cancel, reschedule and check-in at any time, and after the end plus a grace
// period closes the visit as fulfilled or no-show.
func Appointment(ctx workflow.Context, in AppointmentInput) (AppointmentState, error) {
	if in.GracePeriod <= 0 {
		in.GracePeriod = DefaultGrace
	}
	a := &appointment{
		in:    in,
		mu:    workflow.NewMutex(ctx),
		state: AppointmentState{AppointmentID: in.AppointmentID},
		done:  map[string]bool{},
	}
	if err := a.register(ctx); err != nil {
		return a.state, err
	}
	return a.run(ctx)
}

type appointment struct {
	in      AppointmentInput
	mu      workflow.Mutex // serialises state changes from handlers and timers
	req     BookRequest
	decided bool // the book update has run: booked or taken
	result  BookResult
	state   AppointmentState
	changes int             // bumped on every change so the timer loop re-plans
	done    map[string]bool // reminder keys sent or skipped
	// cancelling counts cancels by signal still running. Signals are not
	// update handlers, so finish waits for them itself.
	cancelling int
	// payment is the paid booking's saga, empty for free visits; outcome
	// is what the saga reported.
	payment *PaymentHandle
	outcome string
	// bookErr is why a paid booking failed after its slot was held; a
	// later book answers with it.
	bookErr error
}

func (a *appointment) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (AppointmentState, error) {
		return a.state, nil
	}); err != nil {
		return fmt.Errorf("register query: %w", err)
	}
	handlers := []struct {
		name      string
		handler   any
		validator any
	}{
		{UpdateBook, a.book, a.validateBook},
		{UpdateCancel, a.cancel, a.validateCancel},
		{UpdateReschedule, a.reschedule, a.validateReschedule},
		{UpdateCheckIn, a.checkIn, a.validateCheckIn},
	}
	for _, h := range handlers {
		err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, h.handler, workflow.UpdateHandlerOptions{Validator: h.validator})
		if err != nil {
			return fmt.Errorf("register update %s: %w", h.name, err)
		}
	}
	outcomes := workflow.GetSignalChannel(ctx, SignalPaymentOutcome)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var o PaymentOutcome
			outcomes.Receive(ctx, &o)
			a.outcome = o.Outcome
			a.changes++
		}
	})
	cancels := workflow.GetSignalChannel(ctx, SignalCancel)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var req CancelRequest
			cancels.Receive(ctx, &req)
			if a.validateCancel(ctx, req) != nil {
				continue
			}
			a.cancelling++
			if _, err := a.cancel(ctx, req); err != nil {
				workflow.GetLogger(ctx).Warn("cancel by signal failed", "appointmentID", a.in.AppointmentID, "error", err)
			}
			a.cancelling--
		}
	})
	return nil
}

func (a *appointment) run(ctx workflow.Context) (AppointmentState, error) {
	logger := workflow.GetLogger(ctx)
	ok, err := workflow.AwaitWithTimeout(ctx, bookWait, func() bool { return a.decided })
	if err != nil {
		return a.state, err
	}
	if !ok || a.result.Outcome != OutcomeBooked {
		return a.finish(ctx)
	}

	if a.payment != nil {
		if done, err := a.awaitPayment(ctx); err != nil || done {
			if err != nil {
				return a.state, err
			}
			return a.finish(ctx)
		}
	}
	a.notify(ctx, TemplateConfirmed, "confirmed", workflow.Now(ctx))

	for !terminal(a.state.Status) {
		at, step := a.next(workflow.Now(ctx))
		seen := a.changes
		changed, err := workflow.AwaitWithTimeout(ctx, at.Sub(workflow.Now(ctx)), func() bool { return a.changes != seen })
		if err != nil {
			return a.state, err
		}
		if changed {
			continue
		}
		step(ctx)
	}

	logger.Info("appointment closed", "appointmentID", a.in.AppointmentID, "status", a.state.Status)
	return a.finish(ctx)
}

// finish lets running handlers answer, and a cancel by signal enqueue its
// notification, before the workflow completes.
func (a *appointment) finish(ctx workflow.Context) (AppointmentState, error) {
	if err := workflow.Await(ctx, func() bool { return a.cancelling == 0 && workflow.AllHandlersFinished(ctx) }); err != nil {
		return a.state, err
	}
	return a.state, nil
}

// next returns the next timed step: a reminder still due for the current
// version, or the close. Reminders whose time has passed are skipped, not
// sent late.
func (a *appointment) next(now time.Time) (time.Time, func(workflow.Context)) {
	for _, lead := range ReminderLeads {
		key := reminderKey(lead, a.state.Version)
		if a.done[key] {
			continue
		}
		at := a.state.StartsAt.Add(-lead)
		if !at.After(now) {
			a.done[key] = true
			continue
		}
		version := a.state.Version
		return at, func(ctx workflow.Context) { a.remind(ctx, key, version, at) }
	}
	return a.state.EndsAt.Add(a.in.GracePeriod), a.close
}

func reminderKey(lead time.Duration, version int) string {
	return fmt.Sprintf("reminder-%s-v%d", lead, version)
}

// remind sends the reminder planned as key for the given version at its time.
func (a *appointment) remind(ctx workflow.Context, key string, version int, at time.Time) {
	if err := a.mu.Lock(ctx); err != nil {
		return
	}
	defer a.mu.Unlock()
	// The lock may have waited for a reschedule or a cancel; a reminder of
	// an older version or of a closed visit is dropped, and the timer loop
	// plans the new version's reminders.
	if version != a.state.Version || a.done[key] || terminal(a.state.Status) {
		return
	}
	a.done[key] = true
	a.notify(ctx, TemplateReminder, key, at)
	a.state.RemindersSent = append(a.state.RemindersSent, key)
}

func (a *appointment) close(ctx workflow.Context) {
	if err := a.mu.Lock(ctx); err != nil {
		return
	}
	defer a.mu.Unlock()
	// The lock may have waited for a reschedule that moved the end; the
	// timer loop then plans the close again for the new end.
	if terminal(a.state.Status) || workflow.Now(ctx).Before(a.state.EndsAt.Add(a.in.GracePeriod)) {
		return
	}
	var st AppointmentState
	err := workflow.ExecuteActivity(databaseStep(ctx, databaseRetry), ActivityClose, a.change()).Get(ctx, &st)
	if err != nil {
		// Only a permanent error ends the retries, and it means the row was
		// changed outside this workflow; keep the workflow's view in step
		// by ending the lifecycle with what the row says next time it is read.
		workflow.GetLogger(ctx).Error("close failed", "appointmentID", a.in.AppointmentID, "error", err)
		a.state.Status = "closed-with-error"
		a.changes++
		return
	}
	a.apply(st)
	news := NewsFulfilled
	if st.Status == statusNoShow {
		news = NewsNoShow
	}
	a.tellPayment(ctx, AppointmentNews{Kind: news})
}

func (a *appointment) validateBook(ctx workflow.Context, req BookRequest) error {
	if req.AppointmentID != a.in.AppointmentID || req.TenantID != a.in.TenantID {
		return errors.New("booking is for another appointment")
	}
	if !req.EndsAt.After(req.StartsAt) {
		return errors.New("booking ends before it starts")
	}
	return nil
}

// book holds the slot. A second book (a client retrying with a new update)
// gets the first answer.
func (a *appointment) book(ctx workflow.Context, req BookRequest) (BookResult, error) {
	if err := a.mu.Lock(ctx); err != nil {
		return BookResult{}, err
	}
	defer a.mu.Unlock()
	if a.decided {
		return a.result, a.bookErr
	}
	if req.Payment != nil {
		req.HoldExpiresAt = workflow.Now(ctx).Add(req.Payment.HoldTTL)
	}
	var res BookResult
	if err := workflow.ExecuteActivity(databaseStep(ctx, interactiveRetry), ActivityHoldSlot, req).Get(ctx, &res); err != nil {
		return BookResult{}, err
	}
	a.req = req
	if res.Outcome == OutcomeBooked && req.Payment != nil {
		handle, err := a.startPayment(ctx, req)
		if err != nil {
			// No intent, no saga: give the slot back rather than hold it
			// for a payment that cannot happen, and let the client retry.
			// The booking failed, so the lifecycle ends here: the result
			// is not booked (nothing is confirmed, no change is accepted)
			// and a later book gets the same error.
			a.apply(res.State)
			ch := a.change()
			ch.Cancel = &CancelRequest{Reason: "payment-unavailable", By: "system"}
			var st AppointmentState
			if cerr := workflow.ExecuteActivity(databaseStep(ctx, databaseRetry), ActivityCancel, ch).Get(ctx, &st); cerr != nil {
				workflow.GetLogger(ctx).Error("held slot not released", "appointmentID", a.in.AppointmentID, "error", cerr)
			} else {
				a.apply(st)
			}
			a.decided, a.result, a.bookErr = true, BookResult{}, err
			return BookResult{}, err
		}
		res.Payment = handle
		a.payment = handle
	}
	a.result = res
	a.decided = true
	if res.Outcome == OutcomeBooked {
		a.apply(res.State)
	}
	a.changes++
	return res, nil
}

// startPayment creates the payment and its intent, then starts the saga as
// a child that outlives this workflow (refunds can follow a cancellation).
func (a *appointment) startPayment(ctx workflow.Context, req BookRequest) (*PaymentHandle, error) {
	t := req.Payment
	start := StartPaymentRequest{
		TenantID: req.TenantID, PaymentID: t.PaymentID, AppointmentID: req.AppointmentID,
		PatientID: req.PatientID, PractitionerID: req.PractitionerID,
		AmountMinor: t.AmountMinor, Currency: t.Currency, HoldExpiresAt: req.HoldExpiresAt,
	}
	// The patient is waiting on this answer: a few quick attempts only.
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumAttempts: 3,
			NonRetryableErrorTypes: providerRetry.NonRetryableErrorTypes},
	})
	var started StartPaymentResult
	if err := workflow.ExecuteActivity(actx, ActivityStartPayment, start).Get(ctx, &started); err != nil {
		return nil, err
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        PaymentWorkflowID(t.PaymentID),
		TaskQueue:         AppointmentTaskQueue,
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	child := workflow.ExecuteChildWorkflow(cctx, PaymentWorkflowType, PaymentInput{
		TenantID: req.TenantID, PaymentID: t.PaymentID, AppointmentID: req.AppointmentID, IntentID: started.IntentID, Provider: started.Provider,
		AmountMinor: t.AmountMinor, Currency: t.Currency, HoldExpiresAt: req.HoldExpiresAt, StartsAt: req.StartsAt, Policy: t.Policy,
	})
	if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		return nil, err
	}
	return &PaymentHandle{PaymentID: t.PaymentID, Provider: started.Provider, ClientSecret: started.ClientSecret, HoldExpiresAt: req.HoldExpiresAt}, nil
}

// awaitPayment waits for the saga's word on a held slot. Secured confirms
// the appointment; expired releases the slot. done reports that the
// lifecycle is over (released, or cancelled meanwhile).
func (a *appointment) awaitPayment(ctx workflow.Context) (done bool, err error) {
	// The saga owns the hold timer; this one only guards against a saga
	// that never answers.
	guard := a.req.HoldExpiresAt.Sub(workflow.Now(ctx)) + time.Hour
	ok, err := workflow.AwaitWithTimeout(ctx, guard, func() bool { return a.outcome != "" || terminal(a.state.Status) })
	if err != nil {
		return true, err
	}
	if terminal(a.state.Status) {
		return true, nil
	}
	if err := a.mu.Lock(ctx); err != nil {
		return true, err
	}
	defer a.mu.Unlock()
	if terminal(a.state.Status) {
		return true, nil
	}
	if ok && a.outcome == OutcomeSecured {
		var st AppointmentState
		if err := workflow.ExecuteActivity(databaseStep(ctx, databaseRetry), ActivityConfirmHeld, a.change()).Get(ctx, &st); err != nil {
			return true, err
		}
		a.apply(st)
		return false, nil
	}
	ch := a.change()
	ch.Cancel = &CancelRequest{Reason: "payment-not-completed", By: "system"}
	var st AppointmentState
	if err := workflow.ExecuteActivity(databaseStep(ctx, databaseRetry), ActivityCancel, ch).Get(ctx, &st); err != nil {
		return true, err
	}
	a.apply(st)
	a.notify(ctx, TemplateCancelled, "cancelled", workflow.Now(ctx))
	return true, nil
}

// tellPayment passes news of the visit to its payment saga, if any.
func (a *appointment) tellPayment(ctx workflow.Context, n AppointmentNews) {
	if a.payment == nil {
		return
	}
	n.At = workflow.Now(ctx)
	f := workflow.SignalExternalWorkflow(ctx, PaymentWorkflowID(a.payment.PaymentID), "", SignalAppointmentNews, n)
	if err := f.Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("payment not told", "appointmentID", a.in.AppointmentID, "news", n.Kind, "error", err)
	}
}

func (a *appointment) validateCancel(ctx workflow.Context, req CancelRequest) error {
	if err := a.validateOpen(); err != nil {
		return err
	}
	if req.Reason == "" {
		return errors.New("a cancellation needs a reason")
	}
	return nil
}

func (a *appointment) cancel(ctx workflow.Context, req CancelRequest) (AppointmentState, error) {
	if err := a.mu.Lock(ctx); err != nil {
		return a.state, err
	}
	defer a.mu.Unlock()
	if err := a.validateOpen(); err != nil {
		return a.state, err
	}
	ch := a.change()
	ch.Cancel = &req
	var st AppointmentState
	if err := workflow.ExecuteActivity(databaseStep(ctx, interactiveRetry), ActivityCancel, ch).Get(ctx, &st); err != nil {
		return a.state, err
	}
	a.apply(st)
	a.tellPayment(ctx, AppointmentNews{Kind: NewsCancelled, By: req.By})
	a.notify(ctx, TemplateCancelled, "cancelled", workflow.Now(ctx))
	return a.state, nil
}

func (a *appointment) validateReschedule(ctx workflow.Context, req RescheduleRequest) error {
	if err := a.validateOpen(); err != nil {
		return err
	}
	if a.state.Status == statusArrived {
		return temporal.NewApplicationError("the patient has already arrived", ErrTypeInvalidState)
	}
	if !req.EndsAt.After(req.StartsAt) {
		return errors.New("new time ends before it starts")
	}
	return nil
}

func (a *appointment) reschedule(ctx workflow.Context, req RescheduleRequest) (AppointmentState, error) {
	if err := a.mu.Lock(ctx); err != nil {
		return a.state, err
	}
	defer a.mu.Unlock()
	if err := a.validateReschedule(ctx, req); err != nil {
		return a.state, err
	}
	ch := a.change()
	ch.Reschedule = &req
	var st AppointmentState
	if err := workflow.ExecuteActivity(databaseStep(ctx, interactiveRetry), ActivityReschedule, ch).Get(ctx, &st); err != nil {
		return a.state, err
	}
	a.apply(st)
	a.tellPayment(ctx, AppointmentNews{Kind: NewsRescheduled, StartsAt: st.StartsAt})
	a.notify(ctx, TemplateRescheduled, fmt.Sprintf("rescheduled-v%d", st.Version), workflow.Now(ctx))
	return a.state, nil
}

func (a *appointment) validateCheckIn(ctx workflow.Context, req CheckInRequest) error {
	if err := a.validateOpen(); err != nil {
		return err
	}
	if a.state.Status == statusArrived {
		return temporal.NewApplicationError("already checked in", ErrTypeInvalidState)
	}
	now := workflow.Now(ctx)
	if now.Before(a.state.StartsAt.Add(-checkInEarly)) || now.After(a.state.EndsAt.Add(a.in.GracePeriod)) {
		return temporal.NewApplicationError("check-in is open from two hours before the start until the visit closes", ErrTypeCheckInWindow)
	}
	return nil
}

func (a *appointment) checkIn(ctx workflow.Context, req CheckInRequest) (AppointmentState, error) {
	if err := a.mu.Lock(ctx); err != nil {
		return a.state, err
	}
	defer a.mu.Unlock()
	if err := a.validateCheckIn(ctx, req); err != nil {
		return a.state, err
	}
	var st AppointmentState
	if err := workflow.ExecuteActivity(databaseStep(ctx, interactiveRetry), ActivityCheckIn, a.change()).Get(ctx, &st); err != nil {
		return a.state, err
	}
	a.apply(st)
	a.tellPayment(ctx, AppointmentNews{Kind: NewsCheckedIn})
	return a.state, nil
}

// validateOpen refuses changes before the booking and after the close.
func (a *appointment) validateOpen() error {
	if !a.decided || a.result.Outcome != OutcomeBooked {
		return temporal.NewApplicationError("the appointment is not booked", ErrTypeInvalidState)
	}
	if terminal(a.state.Status) {
		return temporal.NewApplicationError("the appointment is "+a.state.Status, ErrTypeInvalidState)
	}
	return nil
}

func (a *appointment) change() AppointmentChange {
	return AppointmentChange{
		TenantID:        a.in.TenantID,
		AppointmentID:   a.in.AppointmentID,
		ExpectedVersion: a.state.Version,
	}
}

// apply takes the row's state as the workflow's and wakes the timer loop.
func (a *appointment) apply(st AppointmentState) {
	st.RemindersSent = a.state.RemindersSent
	a.state = st
	a.changes++
}

// notify enqueues a notification for the patient. The dedupe key carries the
// workflow's appointment and the step, so a retried activity or a replayed
// workflow never enqueues twice. Failures are retried for a day: a reminder
// that cannot be written for that long is not worth sending late.
func (a *appointment) notify(ctx workflow.Context, template, step string, at time.Time) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy:            databaseRetry,
	})
	n := Notification{
		TenantID:      a.in.TenantID,
		DedupeKey:     AppointmentWorkflowID(a.in.AppointmentID) + ":" + step,
		RecipientUser: a.req.PatientUserID,
		Template:      template,
		AppointmentID: a.in.AppointmentID,
		ScheduledFor:  at,
	}
	if err := workflow.ExecuteActivity(ctx, ActivityEnqueueNote, n).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("notification not enqueued", "appointmentID", a.in.AppointmentID, "template", template, "error", err)
	}
}

// Status strings the workflow compares; the models package owns the full
// vocabulary, which this package does not import.
const (
	statusArrived   = "arrived"
	statusFulfilled = "fulfilled"
	statusCancelled = "cancelled"
	statusNoShow    = "noshow"
)

func terminal(status string) bool {
	switch status {
	case statusFulfilled, statusCancelled, statusNoShow, "closed-with-error":
		return true
	}
	return false
}
