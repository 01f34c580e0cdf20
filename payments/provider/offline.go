package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"
)

// Offline is the Provider for clinics that take payment at the front desk.
// Nothing leaves the process and no money moves through it; it gives the
// saga the same shapes as Stripe so that one workflow serves both.
//
// What each call means at the desk:
//
//   - CreateIntent answers at once with status requires_capture: the
//     patient has promised to pay on arrival. There is no card and no
//     client secret, so nothing is held and a no-show costs the clinic the
//     visit fee.
//   - Capture marks the intent succeeded: the desk took the money.
//   - CancelIntent marks it canceled: the promise is withdrawn.
//   - Refund answers succeeded at once: the desk owes the patient that
//     amount back, in whatever way the clinic pays out cash refunds.
//   - ChargeOffSession always fails with ErrDeclined{Code: "offline"}:
//     the desk keeps no cards.
//   - EnsureCustomer returns a made-up customer ID; there is no record.
//   - BalanceTransactions and Payouts return nothing: money taken at the
//     desk is reconciled against the clinic's own cash book, not here.
//
// Like Stripe, it remembers each idempotency key and answers a repeat with
// the first result, and refuses a key reused for a different request with
// ErrIdempotencyConflict. IDs are derived from the key, so they are the
// same after a restart.
//
// Its state lives in memory only. After the worker restarts, intents made
// before are unknown and calls on them fail with ErrInvalidRequest (code
// resource_missing); the ledger is the record of offline payments. It is
// safe for concurrent use.
type Offline struct {
	now func() time.Time

	mu      sync.Mutex
	done    map[string]offlineResult // by idempotency key
	intents map[string]*offlineIntent
}

var _ Provider = (*Offline)(nil)

// OfflineOption changes how NewOffline builds an Offline.
type OfflineOption func(*Offline)

// WithClock makes the Offline read the time from now, for tests.
func WithClock(now func() time.Time) OfflineOption {
	return func(o *Offline) { o.now = now }
}

// NewOffline returns an empty Offline provider.
func NewOffline(opts ...OfflineOption) *Offline {
	o := &Offline{
		now:     time.Now,
		done:    make(map[string]offlineResult),
		intents: make(map[string]*offlineIntent),
	}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// offlineResult is the first answer given under one idempotency key.
type offlineResult struct {
	request    string // the call and its parameters, to spot a reused key
	customerID string
	intent     Intent
	refund     Refund
}

type offlineIntent struct {
	Intent
	refundedMinor int64
}

// Name returns NameOffline.
func (o *Offline) Name() string { return NameOffline }

// EnsureCustomer returns req.CustomerID if set, or an ID derived from the
// key.
func (o *Offline) EnsureCustomer(ctx context.Context, req CustomerRequest) (string, error) {
	const op = "ensure customer"
	if err := checkKey(NameOffline, op, req.IdempotencyKey); err != nil {
		return "", err
	}
	if err := checkCustomerRequest(NameOffline, op, req); err != nil {
		return "", err
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	request := fmt.Sprintf("%s|%s|%s|%s", op, req.CustomerID, req.TenantID, req.PatientID)
	if r, ok, err := o.replay(op, req.IdempotencyKey, request); ok || err != nil {
		return r.customerID, err
	}
	id := req.CustomerID
	if id == "" {
		id = offlineID("offline_cus_", req.IdempotencyKey)
	}
	o.done[req.IdempotencyKey] = offlineResult{request: request, customerID: id}
	return id, nil
}

// CreateIntent records a promise to pay at the desk, in status
// requires_capture.
func (o *Offline) CreateIntent(ctx context.Context, req IntentRequest) (Intent, error) {
	const op = "create intent"
	if err := checkKey(NameOffline, op, req.IdempotencyKey); err != nil {
		return Intent{}, err
	}
	if err := checkIntentRequest(NameOffline, op, req); err != nil {
		return Intent{}, err
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	request := fmt.Sprintf("%s|%d|%s|%s|%t|%v", op, req.AmountMinor, strings.ToUpper(req.Currency),
		req.CustomerID, req.SaveForOffSession, req.Refs)
	if r, ok, err := o.replay(op, req.IdempotencyKey, request); ok || err != nil {
		return r.intent, err
	}

	in := &offlineIntent{Intent: Intent{
		ID:                    offlineID("offline_pi_", req.IdempotencyKey),
		Status:                IntentRequiresCapture,
		AmountMinor:           req.AmountMinor,
		AmountCapturableMinor: req.AmountMinor,
		Currency:              strings.ToUpper(req.Currency),
		CaptureMethod:         "manual",
		CustomerID:            req.CustomerID,
		Metadata:              req.Refs.metadata(),
		Created:               o.now().UTC(),
	}}
	o.intents[in.ID] = in
	return o.record(req.IdempotencyKey, offlineResult{request: request, intent: in.snapshot()}).intent, nil
}

// GetIntent returns an intent made by this Offline since it started.
func (o *Offline) GetIntent(ctx context.Context, id string) (Intent, error) {
	const op = "get intent"
	o.mu.Lock()
	defer o.mu.Unlock()
	in, err := o.intent(op, id)
	if err != nil {
		return Intent{}, err
	}
	return in.snapshot(), nil
}

// Capture records that the desk took amountMinor, or everything promised
// when amountMinor is 0.
func (o *Offline) Capture(ctx context.Context, id string, amountMinor int64, key string) (Intent, error) {
	const op = "capture intent"
	if err := checkKey(NameOffline, op, key); err != nil {
		return Intent{}, err
	}
	if amountMinor < 0 {
		return Intent{}, invalid(NameOffline, op, "amount_invalid", "amountMinor")
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	request := fmt.Sprintf("%s|%s|%d", op, id, amountMinor)
	if r, ok, err := o.replay(op, key, request); ok || err != nil {
		return r.intent, err
	}
	in, err := o.intent(op, id)
	if err != nil {
		return Intent{}, err
	}
	if in.Status != IntentRequiresCapture {
		return Intent{}, invalid(NameOffline, op, "intent_invalid_state", "id")
	}
	if amountMinor == 0 {
		amountMinor = in.AmountCapturableMinor
	}
	if amountMinor > in.AmountCapturableMinor {
		return Intent{}, invalid(NameOffline, op, "amount_too_large", "amountMinor")
	}
	in.Status = IntentSucceeded
	in.AmountReceivedMinor = amountMinor
	in.AmountCapturableMinor = 0
	return o.record(key, offlineResult{request: request, intent: in.snapshot()}).intent, nil
}

// CancelIntent withdraws a promise that was not yet paid.
func (o *Offline) CancelIntent(ctx context.Context, id string, key string) (Intent, error) {
	const op = "cancel intent"
	if err := checkKey(NameOffline, op, key); err != nil {
		return Intent{}, err
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	request := fmt.Sprintf("%s|%s", op, id)
	if r, ok, err := o.replay(op, key, request); ok || err != nil {
		return r.intent, err
	}
	in, err := o.intent(op, id)
	if err != nil {
		return Intent{}, err
	}
	if in.Status != IntentRequiresCapture {
		return Intent{}, invalid(NameOffline, op, "intent_invalid_state", "id")
	}
	in.Status = IntentCanceled
	in.AmountCapturableMinor = 0
	return o.record(key, offlineResult{request: request, intent: in.snapshot()}).intent, nil
}

// Refund records that the desk owes the patient money back, and answers
// succeeded: there is nobody else to wait for.
func (o *Offline) Refund(ctx context.Context, req RefundRequest) (Refund, error) {
	const op = "refund"
	if err := checkKey(NameOffline, op, req.IdempotencyKey); err != nil {
		return Refund{}, err
	}
	if err := checkRefundRequest(NameOffline, op, req); err != nil {
		return Refund{}, err
	}
	switch req.Reason {
	case "", ReasonRequestedByCustomer, ReasonDuplicate, ReasonFraudulent:
	default:
		return Refund{}, invalid(NameOffline, op, "reason_invalid", "Reason")
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	request := fmt.Sprintf("%s|%s|%d|%s|%v", op, req.PaymentIntentID, req.AmountMinor, req.Reason, req.Refs)
	if r, ok, err := o.replay(op, req.IdempotencyKey, request); ok || err != nil {
		return r.refund, err
	}
	in, err := o.intent(op, req.PaymentIntentID)
	if err != nil {
		return Refund{}, err
	}
	if in.Status != IntentSucceeded {
		return Refund{}, invalid(NameOffline, op, "intent_invalid_state", "PaymentIntentID")
	}
	left := in.AmountReceivedMinor - in.refundedMinor
	amount := req.AmountMinor
	switch {
	case left == 0:
		return Refund{}, invalid(NameOffline, op, "charge_already_refunded", "PaymentIntentID")
	case amount == 0:
		amount = left
	case amount > left:
		return Refund{}, invalid(NameOffline, op, "amount_too_large", "AmountMinor")
	}
	in.refundedMinor += amount

	r := Refund{
		ID:              offlineID("offline_re_", req.IdempotencyKey),
		Status:          RefundSucceeded,
		AmountMinor:     amount,
		Currency:        in.Currency,
		PaymentIntentID: in.ID,
		Reason:          req.Reason,
		Metadata:        req.Refs.metadata(),
		Created:         o.now().UTC(),
	}
	return o.record(req.IdempotencyKey, offlineResult{request: request, refund: r}).refund, nil
}

// ChargeOffSession always fails with ErrDeclined{Code: "offline"}: the
// desk keeps no cards to charge.
func (o *Offline) ChargeOffSession(ctx context.Context, req OffSessionRequest) (Intent, error) {
	const op = "charge off-session"
	if err := checkKey(NameOffline, op, req.IdempotencyKey); err != nil {
		return Intent{}, err
	}
	if err := checkOffSessionRequest(NameOffline, op, req); err != nil {
		return Intent{}, err
	}
	return Intent{}, &Error{
		Provider: NameOffline,
		Op:       op,
		Kind:     ErrDeclined{Code: "offline"},
		Code:     "offline",
	}
}

// BalanceTransactions returns none: desk payments never touch a provider
// balance.
func (o *Offline) BalanceTransactions(ctx context.Context, from, to time.Time) ([]BalanceTransaction, error) {
	return nil, checkRange(NameOffline, "list balance transactions", from, to)
}

// Payouts returns none: there is no provider balance to pay out.
func (o *Offline) Payouts(ctx context.Context, from, to time.Time) ([]Payout, error) {
	return nil, checkRange(NameOffline, "list payouts", from, to)
}

// replay returns the first result under key when request matches it, and
// ErrIdempotencyConflict when the key was used for something else. The
// caller holds o.mu.
func (o *Offline) replay(op, key, request string) (offlineResult, bool, error) {
	r, ok := o.done[key]
	switch {
	case !ok:
		return offlineResult{}, false, nil
	case r.request != request:
		return offlineResult{}, false, &Error{
			Provider: NameOffline,
			Op:       op,
			Kind:     ErrIdempotencyConflict,
			Code:     "idempotency_key_reused",
		}
	}
	r.intent.Metadata = maps.Clone(r.intent.Metadata)
	r.refund.Metadata = maps.Clone(r.refund.Metadata)
	return r, true, nil
}

// record keeps r as the answer under key and returns it. The caller holds
// o.mu.
func (o *Offline) record(key string, r offlineResult) offlineResult {
	o.done[key] = r
	r.intent.Metadata = maps.Clone(r.intent.Metadata)
	r.refund.Metadata = maps.Clone(r.refund.Metadata)
	return r
}

// intent finds an intent by ID. The caller holds o.mu.
func (o *Offline) intent(op, id string) (*offlineIntent, error) {
	if id == "" {
		return nil, invalid(NameOffline, op, "parameter_missing", "id")
	}
	in, ok := o.intents[id]
	if !ok {
		return nil, invalid(NameOffline, op, "resource_missing", "id")
	}
	return in, nil
}

// snapshot copies the intent so that callers never share its metadata map.
func (in *offlineIntent) snapshot() Intent {
	out := in.Intent
	out.Metadata = maps.Clone(in.Metadata)
	return out
}

// offlineID derives a stable ID from an idempotency key, so that the same
// request gets the same ID even after a restart.
func offlineID(prefix, key string) string {
	sum := sha256.Sum256([]byte(key))
	return prefix + hex.EncodeToString(sum[:12])
}
