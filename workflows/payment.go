package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/carebook/carebook/payments"
)

// providerRetry is for activities that call the payment provider. Stripe
// asks clients to back off on 429 and 5xx; every call carries an
// idempotency key, so retrying for as long as it takes (up to a minute
// apart) is safe and a provider outage only delays money, never loses or
// doubles it. Declines and invalid requests are final.
var providerRetry = &temporal.RetryPolicy{
	InitialInterval:        time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        time.Minute,
	NonRetryableErrorTypes: []string{ErrTypeDeclined, ErrTypeProviderReject, ErrTypeRefundTooLarge, ErrTypeNotFound},
}

// providerStep sets the options of one provider call and its database
// write: 30 s covers Stripe's slowest answers.
func providerStep(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         providerRetry,
	})
}

// Payment is the saga of one paid appointment: it waits for the provider
// to secure the money before the hold expires, tells the appointment, then
// captures, voids, refunds or charges fees as the visit goes, each step
// written to the ledger by its activity. A success that arrives after the
// hold was released is voided or refunded, never kept.
func Payment(ctx workflow.Context, in PaymentInput) (PaymentState, error) {
	if in.LateWindow <= 0 {
		in.LateWindow = DefaultLateWindow
	}
	if in.RefundWindow <= 0 {
		in.RefundWindow = DefaultRefundWindow
	}
	p := &payment{
		in:     in,
		state:  PaymentState{PaymentID: in.PaymentID, Status: PaymentRequiresPayment},
		events: workflow.GetSignalChannel(ctx, SignalProviderEvent),
		news:   workflow.GetSignalChannel(ctx, SignalAppointmentNews),
		mu:     workflow.NewMutex(ctx),
	}
	if err := p.register(ctx); err != nil {
		return p.state, err
	}
	return p.run(ctx)
}

type payment struct {
	in     PaymentInput
	state  PaymentState
	events workflow.ReceiveChannel
	news   workflow.ReceiveChannel
	mu     workflow.Mutex // serialises money steps from the saga and refunds
	closed bool           // the visit is over: only refunds remain
	// lapsed is set when the provider cancelled the secured hold before
	// it was captured (card authorizations last about a week): money is
	// then charged off-session on the card saved with the intent.
	lapsed bool
}

func (p *payment) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryPayment, func() (PaymentState, error) { return p.state, nil }); err != nil {
		return fmt.Errorf("register query: %w", err)
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateRefund, p.refund, workflow.UpdateHandlerOptions{Validator: p.validateRefund})
}

func (p *payment) run(ctx workflow.Context) (PaymentState, error) {
	secured, cancelled := p.awaitAuthorization(ctx)

	switch {
	case cancelled:
		p.void(ctx, PaymentVoided)
		p.watchLateSuccess(ctx)
	case !secured:
		p.void(ctx, PaymentExpired)
		p.tellAppointment(ctx, OutcomeExpired)
		p.watchLateSuccess(ctx)
	default:
		p.tellAppointment(ctx, OutcomeSecured)
		workflow.Go(ctx, p.noteProviderEvents)
		p.followVisit(ctx)
		p.awaitRefunds(ctx)
	}

	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return p.state, err
	}
	workflow.GetLogger(ctx).Info("payment saga done", "paymentID", p.in.PaymentID, "status", p.state.Status)
	return p.state, nil
}

// awaitAuthorization waits for the money to be secured, for the
// appointment to be cancelled first, or for the hold to expire. A failed
// attempt is recorded and the wait goes on: the patient may try another
// card until the hold expires.
func (p *payment) awaitAuthorization(ctx workflow.Context) (secured, cancelled bool) {
	if p.in.Provider == "offline" {
		// Paid at the desk: nothing to wait for; the desk captures.
		p.record(ctx, PaymentAuthorized, "")
		return true, false
	}
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	expired := false
	timer := workflow.NewTimer(timerCtx, p.in.HoldExpiresAt.Sub(workflow.Now(ctx)))
	for !secured && !cancelled && !expired {
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(workflow.Future) { expired = true })
		sel.AddReceive(p.events, func(c workflow.ReceiveChannel, _ bool) {
			var ev ProviderEvent
			c.Receive(ctx, &ev)
			switch {
			case authorizedBy(ev):
				p.record(ctx, PaymentAuthorized, "")
				secured = true
			case ev.Type == "payment_intent.payment_failed":
				p.record(ctx, PaymentRequiresPayment, ev.DeclineCode)
			case ev.Type == "payment_intent.canceled":
				expired = true
			}
		})
		sel.AddReceive(p.news, func(c workflow.ReceiveChannel, _ bool) {
			var n AppointmentNews
			c.Receive(ctx, &n)
			switch n.Kind {
			case NewsCancelled:
				cancelled = true
			case NewsRescheduled:
				// A held slot can be moved too; the cancellation window
				// must follow it, as it does once the money is secured.
				p.in.StartsAt = n.StartsAt
				p.note(ctx, "rescheduled while waiting")
			}
		})
		sel.Select(ctx)
	}
	return secured, cancelled
}

// authorizedBy reports whether ev says the money is secured: held for a
// manual capture, or (for intents captured automatically) taken.
func authorizedBy(ev ProviderEvent) bool {
	switch ev.Type {
	case "payment_intent.amount_capturable_updated", "payment_intent.succeeded":
		return true
	}
	return ev.IntentStatus == "requires_capture" || ev.IntentStatus == "succeeded"
}

// watchLateSuccess keeps listening after the hold was released: a success
// the provider reports late is voided (a hold) or refunded (a charge), so
// the patient never pays for a visit they do not have.
func (p *payment) watchLateSuccess(ctx workflow.Context) {
	timer := workflow.NewTimer(ctx, p.in.LateWindow)
	for {
		done := false
		var ev ProviderEvent
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(workflow.Future) { done = true })
		sel.AddReceive(p.events, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &ev) })
		sel.Select(ctx)
		if done {
			return
		}
		if !authorizedBy(ev) {
			continue
		}
		// Every late event is acted on (a hold, then its capture, may both
		// arrive); the keys make a repeat of either step a no-op.
		if ev.IntentStatus == "succeeded" || ev.Type == "payment_intent.succeeded" {
			p.step(ctx, "late success refunded", ActivityRefundPayment, PaymentStep{Key: p.key("late-refund"), AmountMinor: p.in.AmountMinor, Reason: "late-success"})
		} else {
			p.step(ctx, "late hold voided", ActivityVoidPayment, PaymentStep{Key: p.key("late-void"), Kind: p.state.Status})
		}
	}
}

// noteProviderEvents follows what the provider reports once the money is
// secured: a hold that lapses before its capture switches the saga to
// charging the saved card; the rest (refunds it confirms, disputes) is
// recorded in the saga's steps, which the billing timeline shows.
// TODO(#3): act on disputes (evidence, and a discrepancy for billing).
func (p *payment) noteProviderEvents(ctx workflow.Context) {
	for {
		var ev ProviderEvent
		p.events.Receive(ctx, &ev)
		if ev.Type == "payment_intent.canceled" && p.state.CapturedMinor == 0 && !p.closed {
			p.lapsed = true
			p.note(ctx, "hold lapsed; the saved card will be charged")
			continue
		}
		p.note(ctx, "provider reported "+ev.Type)
	}
}

// followVisit acts on the appointment's news until the visit is over.
func (p *payment) followVisit(ctx workflow.Context) {
	for !p.closed {
		var n AppointmentNews
		p.news.Receive(ctx, &n)
		switch n.Kind {
		case NewsRescheduled:
			// The payment stays; only the cancellation window moves.
			p.in.StartsAt = n.StartsAt
			p.note(ctx, "rescheduled, payment kept")
		case NewsCheckedIn:
			if p.in.Policy.CaptureAt == CaptureAtCheckIn {
				p.capture(ctx, p.in.AmountMinor, "capture")
			}
		case NewsFulfilled:
			// A visit captured at check-in is paid already: capture only
			// what was not, so the visit is charged once.
			if p.state.CapturedMinor == 0 {
				p.capture(ctx, p.in.AmountMinor, "capture")
			}
			p.closed = true
		case NewsNoShow:
			p.noShow(ctx)
			p.closed = true
		case NewsCancelled:
			p.cancelled(ctx, n)
			p.closed = true
		}
	}
}

func (p *payment) policy() payments.Policy {
	return payments.Policy{
		FreeCancelBefore: p.in.Policy.FreeCancelBefore,
		LateCancelFee:    payments.Fee{Percent: p.in.Policy.LateCancelFeeBps},
		NoShowFee:        payments.Fee{Percent: p.in.Policy.NoShowFeeBps},
	}
}

func (p *payment) price() payments.Money {
	return payments.Money{Amount: p.in.AmountMinor, Currency: p.in.Currency}
}

// cancelled refunds by policy. A clinic-side cancellation is always free
// for the patient; a patient's late one keeps the late-cancel fee.
func (p *payment) cancelled(ctx workflow.Context, n AppointmentNews) {
	fee := payments.Money{Currency: p.in.Currency}
	if n.By == "patient" {
		_, fee = p.policy().OnCancel(p.price(), p.in.StartsAt, n.At)
	}
	switch {
	case p.state.CapturedMinor == 0 && fee.Amount == 0 && p.lapsed:
		p.record(ctx, PaymentVoided, "")
	case p.state.CapturedMinor == 0 && fee.Amount == 0:
		p.void(ctx, PaymentVoided)
	case p.state.CapturedMinor == 0:
		p.capture(ctx, fee.Amount, payments.FeeLateCancel)
	case p.state.CapturedMinor-fee.Amount > 0:
		p.step(ctx, "cancellation refund", ActivityRefundPayment, PaymentStep{
			Key: p.key("cancel-refund"), AmountMinor: p.state.CapturedMinor - fee.Amount, Reason: "cancelled"})
	}
}

// noShow charges the no-show fee: from the hold when it still stands,
// otherwise off-session on the saved card.
func (p *payment) noShow(ctx workflow.Context) {
	fee := p.policy().OnNoShow(p.price())
	switch {
	case fee.Amount == 0 && p.state.CapturedMinor == 0:
		p.void(ctx, PaymentVoided)
	case fee.Amount == 0:
	default:
		p.capture(ctx, fee.Amount, payments.FeeNoShow)
	}
}

// awaitRefunds keeps the saga open for billing's refunds for RefundWindow.
func (p *payment) awaitRefunds(ctx workflow.Context) {
	_ = workflow.Sleep(ctx, p.in.RefundWindow)
}

func (p *payment) validateRefund(ctx workflow.Context, r BillingRefund) error {
	if r.AmountMinor <= 0 || r.Reason == "" {
		return temporal.NewApplicationError("a refund needs a positive amount and a reason", ErrTypeRefundTooLarge)
	}
	if left := p.state.CapturedMinor - p.state.RefundedMinor; r.AmountMinor > left {
		return temporal.NewApplicationError(fmt.Sprintf("only %d can still be refunded", left), ErrTypeRefundTooLarge)
	}
	return nil
}

func (p *payment) refund(ctx workflow.Context, r BillingRefund) (PaymentState, error) {
	if err := p.mu.Lock(ctx); err != nil {
		return p.state, err
	}
	defer p.mu.Unlock()
	if err := p.validateRefund(ctx, r); err != nil {
		return p.state, err
	}
	p.state.Refunds++
	err := p.exec(ctx, "refund by billing", ActivityRefundPayment, PaymentStep{
		Key: p.key(fmt.Sprintf("refund-%d", p.state.Refunds)), AmountMinor: r.AmountMinor, Reason: r.Reason, UserID: r.UserID})
	return p.state, err
}

// capture takes amount for kind: from the hold while it stands, otherwise
// off-session from the saved card.
func (p *payment) capture(ctx workflow.Context, amount int64, kind string) {
	if p.lapsed {
		p.step(ctx, "charged off-session "+kind, ActivityChargeNoShow, PaymentStep{Key: p.key("charge-" + kind), AmountMinor: amount, Kind: kind})
		return
	}
	p.step(ctx, "captured "+kind, ActivityCapturePayment, PaymentStep{Key: p.key("capture"), AmountMinor: amount, Kind: kind})
}

func (p *payment) void(ctx workflow.Context, status string) {
	p.step(ctx, "voided as "+status, ActivityVoidPayment, PaymentStep{Key: p.key("void"), Kind: status})
}

func (p *payment) key(step string) string {
	return PaymentWorkflowID(p.in.PaymentID) + ":" + step
}

// step runs one money step under the lock; a step that fails for good is
// recorded in Steps and logged for billing to follow up, and the saga goes
// on: the ledger never claims what the provider refused.
func (p *payment) step(ctx workflow.Context, what, activity string, s PaymentStep) {
	if err := p.mu.Lock(ctx); err != nil {
		return
	}
	defer p.mu.Unlock()
	_ = p.exec(ctx, what, activity, s)
}

func (p *payment) exec(ctx workflow.Context, what, activity string, s PaymentStep) error {
	s.TenantID, s.PaymentID, s.IntentID, s.Currency = p.in.TenantID, p.in.PaymentID, p.in.IntentID, p.in.Currency
	var sum PaymentSummary
	err := workflow.ExecuteActivity(providerStep(ctx), activity, s).Get(ctx, &sum)
	if err != nil {
		var appErr *temporal.ApplicationError
		kind := "failed"
		if errors.As(err, &appErr) {
			kind = appErr.Type()
		}
		p.note(ctx, what+": "+kind)
		workflow.GetLogger(ctx).Error("payment step failed", "paymentID", p.in.PaymentID, "step", what, "error", err)
		return err
	}
	p.state.Status, p.state.CapturedMinor, p.state.RefundedMinor, p.state.FeeMinor = sum.Status, sum.CapturedMinor, sum.RefundedMinor, sum.FeeMinor
	p.note(ctx, what)
	return nil
}

func (p *payment) record(ctx workflow.Context, status, failure string) {
	ctx = databaseStep(ctx, databaseRetry)
	rec := PaymentRecord{TenantID: p.in.TenantID, PaymentID: p.in.PaymentID, Status: status, FailureCode: failure}
	if err := workflow.ExecuteActivity(ctx, ActivityRecordPayment, rec).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("payment status not recorded", "paymentID", p.in.PaymentID, "error", err)
	}
	p.state.Status = status
	if failure != "" {
		p.note(ctx, "attempt failed: "+failure)
	} else {
		p.note(ctx, status)
	}
}

func (p *payment) note(ctx workflow.Context, what string) {
	p.state.Steps = append(p.state.Steps, workflow.Now(ctx).UTC().Format(time.RFC3339)+" "+what)
}

// tellAppointment signals the outcome to the appointment workflow.
func (p *payment) tellAppointment(ctx workflow.Context, outcome string) {
	f := workflow.SignalExternalWorkflow(ctx, AppointmentWorkflowID(p.in.AppointmentID), "", SignalPaymentOutcome, PaymentOutcome{Outcome: outcome})
	if err := f.Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("appointment not told of payment", "paymentID", p.in.PaymentID, "error", err)
	}
	p.note(ctx, "appointment told: "+outcome)
}
