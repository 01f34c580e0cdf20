package provider

import (
	"context"
	"strings"
	"time"
)

// Provider is what the payment saga needs from a payment service provider.
//
// Every method that changes something takes an idempotency key and refuses
// an empty one with [ErrInvalidRequest] before any request is made. Failures
// are [*Error] values; [Retryable] tells the caller whether trying again can
// help.
type Provider interface {
	// Name returns NameStripe or NameOffline.
	Name() string

	// EnsureCustomer returns the provider's customer for a patient of a
	// tenant: req.CustomerID when that customer still exists, otherwise a
	// new one. Repeating a call with the same key returns the same customer.
	EnsureCustomer(ctx context.Context, req CustomerRequest) (customerID string, err error)

	// CreateIntent creates a payment to be authorized now and captured later
	// (a card hold). When req.SaveForOffSession is set, the card the patient
	// confirms with is kept on req.CustomerID for a later off-session charge.
	CreateIntent(ctx context.Context, req IntentRequest) (Intent, error)

	// GetIntent reads an intent's current state.
	GetIntent(ctx context.Context, id string) (Intent, error)

	// Capture takes amountMinor of an authorized intent, or all of it when
	// amountMinor is 0; the rest of the hold is released.
	Capture(ctx context.Context, id string, amountMinor int64, key string) (Intent, error)

	// CancelIntent voids an intent that has not been captured.
	CancelIntent(ctx context.Context, id string, key string) (Intent, error)

	// Refund returns money from a captured intent, in full or in part.
	Refund(ctx context.Context, req RefundRequest) (Refund, error)

	// ChargeOffSession charges a saved card without the patient present,
	// confirming and capturing at once (the no-show fee). A refusal by the
	// bank, including a demand for the patient to authenticate, is
	// [ErrDeclined].
	ChargeOffSession(ctx context.Context, req OffSessionRequest) (Intent, error)

	// BalanceTransactions lists the movements on the account's balance
	// created in [from, to), following every page.
	BalanceTransactions(ctx context.Context, from, to time.Time) ([]BalanceTransaction, error)

	// Payouts lists the payouts created in [from, to), following every page.
	Payouts(ctx context.Context, from, to time.Time) ([]Payout, error)
}

// Provider names, as returned by Provider.Name.
const (
	NameStripe  = "stripe"
	NameOffline = "offline"
)

// PaymentIntent statuses, spelled as Stripe spells them. The saga acts on
// these; others Stripe may add are passed through unchanged.
const (
	IntentRequiresPaymentMethod = "requires_payment_method"
	IntentRequiresConfirmation  = "requires_confirmation"
	IntentRequiresAction        = "requires_action"
	IntentProcessing            = "processing"
	IntentRequiresCapture       = "requires_capture"
	IntentCanceled              = "canceled"
	IntentSucceeded             = "succeeded"
)

// Refund statuses, spelled as Stripe spells them.
const (
	RefundPending        = "pending"
	RefundRequiresAction = "requires_action"
	RefundSucceeded      = "succeeded"
	RefundFailed         = "failed"
	RefundCanceled       = "canceled"
)

// Refund reasons Stripe accepts. An empty reason is allowed too; Stripe
// checks the value, not this package.
const (
	ReasonRequestedByCustomer = "requested_by_customer"
	ReasonDuplicate           = "duplicate"
	ReasonFraudulent          = "fraudulent"
)

// Metadata keys under which Carebook IDs are stored on provider objects.
// They use the same spelling as our log keys so that one search finds both.
const (
	MetaTenantID      = "tenantID"
	MetaPaymentID     = "paymentID"
	MetaAppointmentID = "appointmentID"
	MetaPatientID     = "patientID"
)

// Refs are the Carebook IDs attached to a payment object as metadata, so
// that a webhook event or a dashboard search leads back to our rows.
//
// Only opaque IDs belong here. Metadata is readable by everyone with access
// to the Stripe account and is copied into its reports, so a name, an
// e-mail address or the kind of visit would leak patient data.
type Refs struct {
	TenantID      string // required
	PaymentID     string // required
	AppointmentID string // optional
}

func (r Refs) metadata() map[string]string {
	m := map[string]string{
		MetaTenantID:  r.TenantID,
		MetaPaymentID: r.PaymentID,
	}
	if r.AppointmentID != "" {
		m[MetaAppointmentID] = r.AppointmentID
	}
	return m
}

// CustomerRequest asks for the provider's customer record of one patient.
type CustomerRequest struct {
	// IdempotencyKey is sent with the create call, e.g.
	// "customer:<tenant>:<patient>". Required.
	IdempotencyKey string

	// CustomerID is the customer found earlier, if any. It is returned as
	// is when it still exists at the provider and belongs to PatientID.
	CustomerID string

	TenantID  string // required
	PatientID string // required
}

// IntentRequest asks for a card hold.
type IntentRequest struct {
	// IdempotencyKey, e.g. "payment:<id>:intent". Required.
	IdempotencyKey string

	AmountMinor int64  // in the currency's minor unit; more than 0
	Currency    string // ISO 4217 code, either case

	// CustomerID is the provider's customer; required with
	// SaveForOffSession, optional otherwise.
	CustomerID string

	// SaveForOffSession keeps the card on CustomerID after the patient
	// confirms, so that a no-show fee can be charged later.
	SaveForOffSession bool

	Refs Refs
}

// RefundRequest asks to return money from a captured intent.
type RefundRequest struct {
	// IdempotencyKey, e.g. "payment:<id>:refund:<n>". Required.
	IdempotencyKey string

	PaymentIntentID string // required

	// AmountMinor is how much to return; 0 means everything not yet
	// refunded.
	AmountMinor int64

	// Reason is one of the Reason constants, or empty.
	Reason string

	Refs Refs
}

// OffSessionRequest asks to charge a saved card with the patient absent.
type OffSessionRequest struct {
	// IdempotencyKey, e.g. "payment:<id>:noshow". Required.
	IdempotencyKey string

	CustomerID      string // required
	PaymentMethodID string // the saved card; required
	AmountMinor     int64  // more than 0
	Currency        string // ISO 4217 code, either case

	Refs Refs
}

// Intent is a payment as the provider sees it.
type Intent struct {
	ID     string
	Status string // one of the Intent constants, as Stripe gives it

	AmountMinor            int64  // what was asked for
	AmountCapturableMinor  int64  // what a capture could still take
	AmountReceivedMinor    int64  // what was captured
	Currency               string // upper-case ISO 4217 code
	CaptureMethod          string // "manual" or "automatic"
	CancellationReason     string
	LastPaymentErrorCode   string // code of the last failed attempt, if any
	LastPaymentDeclineCode string // the bank's reason for it, if any

	// ClientSecret lets the patient's browser or app confirm the intent.
	// It is a credential for this one payment: hand it to that patient
	// only, and never log it. Empty for offline intents.
	ClientSecret string

	LatestChargeID  string
	CustomerID      string
	PaymentMethodID string
	Metadata        map[string]string
	Created         time.Time
}

// Refund is a refund as the provider sees it.
type Refund struct {
	ID              string
	Status          string // one of the Refund constants, as Stripe gives it
	AmountMinor     int64
	Currency        string // upper-case ISO 4217 code
	PaymentIntentID string
	ChargeID        string
	Reason          string
	FailureReason   string
	Metadata        map[string]string
	Created         time.Time
}

// BalanceTransaction is one movement on the provider account's balance: a
// charge, a refund, a fee, a payout and so on.
type BalanceTransaction struct {
	ID                string
	Type              string // Stripe's type, e.g. "charge", "refund", "payout"
	ReportingCategory string // Stripe's coarser grouping of Type
	Status            string // "pending" or "available"
	AmountMinor       int64  // gross
	FeeMinor          int64  // taken by the provider
	NetMinor          int64  // AmountMinor - FeeMinor
	Currency          string // upper-case ISO 4217 code
	SourceID          string // the charge, refund, payout... that caused it
	Created           time.Time
	AvailableOn       time.Time
}

// Payout is a transfer from the provider balance to the clinic's bank.
type Payout struct {
	ID                   string
	Status               string // "paid", "pending", "in_transit", "canceled" or "failed"
	AmountMinor          int64
	Currency             string // upper-case ISO 4217 code
	Automatic            bool
	Method               string // "standard" or "instant"
	BalanceTransactionID string
	FailureCode          string
	ReconciliationStatus string
	Created              time.Time
	ArrivalDate          time.Time
}

// maxKeyLen is Stripe's limit on an Idempotency-Key.
const maxKeyLen = 255

// checkKey refuses a key Stripe would not take, before anything is sent.
func checkKey(name, op, key string) error {
	switch {
	case strings.TrimSpace(key) == "":
		return invalid(name, op, "idempotency_key_missing", "IdempotencyKey")
	case len(key) > maxKeyLen:
		return invalid(name, op, "idempotency_key_too_long", "IdempotencyKey")
	case key != strings.TrimSpace(key):
		// stripe-go trims the key before sending it; refusing here keeps
		// the key we record and the key Stripe sees the same.
		return invalid(name, op, "idempotency_key_untrimmed", "IdempotencyKey")
	}
	return nil
}

// checkCurrency accepts a three-letter code in either case.
func checkCurrency(name, op, currency string) error {
	if len(currency) != 3 {
		return invalid(name, op, "currency_invalid", "Currency")
	}
	for _, c := range currency {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return invalid(name, op, "currency_invalid", "Currency")
		}
	}
	return nil
}

func checkRefs(name, op string, r Refs) error {
	switch {
	case r.TenantID == "":
		return invalid(name, op, "parameter_missing", "Refs.TenantID")
	case r.PaymentID == "":
		return invalid(name, op, "parameter_missing", "Refs.PaymentID")
	}
	return nil
}

// checkRange accepts a non-empty half-open interval [from, to).
func checkRange(name, op string, from, to time.Time) error {
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return invalid(name, op, "range_invalid", "from")
	}
	return nil
}

// unixTime converts Stripe's epoch seconds, leaving 0 as the zero time.
func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}
