package workflows

import (
	"time"
)

// PaymentWorkflowID is the workflow ID of a payment's saga.
func PaymentWorkflowID(paymentID string) string {
	return "payment:" + paymentID
}

// PaymentWorkflowType is the registered name of Payment. It runs on
// AppointmentTaskQueue: the two workflows talk to each other on every
// booking, and one worker pool keeps that local.
const PaymentWorkflowType = "Payment"

// The payment saga's message names.
const (
	// SignalProviderEvent carries a verified provider webhook event.
	SignalProviderEvent = "provider-event"
	// SignalAppointmentNews tells the saga what happened to its
	// appointment: cancelled, rescheduled, checked in, closed.
	SignalAppointmentNews = "appointment-news"
	// SignalPaymentOutcome tells the appointment whether its payment was
	// secured before the hold expired.
	SignalPaymentOutcome = "payment-outcome"
	// UpdateRefund is billing staff's refund.
	UpdateRefund = "refund"
	// QueryPayment returns the saga's PaymentState.
	QueryPayment = "payment"
)

// Activity names of the payment saga (methods of activities.Payments).
const (
	ActivityStartPayment   = "StartPayment"
	ActivityRecordPayment  = "RecordPaymentStatus"
	ActivityCapturePayment = "CapturePayment"
	ActivityVoidPayment    = "VoidPayment"
	ActivityRefundPayment  = "RefundPayment"
	ActivityChargeNoShow   = "ChargeNoShowFee"
	ActivityConfirmHeld    = "ConfirmHeldAppointment"
)

// Payment error types.
const (
	ErrTypeDeclined       = "PaymentDeclined"       // the bank said no; not retryable
	ErrTypeProviderReject = "PaymentProviderReject" // the provider refused the request as invalid
	ErrTypeRefundTooLarge = "RefundTooLarge"        // more than is left to refund
)

// Payment statuses, as stored in payments.status.
const (
	PaymentRequiresPayment   = "requires_payment"
	PaymentAuthorized        = "authorized"
	PaymentCaptured          = "captured"
	PaymentVoided            = "voided"
	PaymentFailed            = "failed"
	PaymentExpired           = "expired"
	PaymentRefunded          = "refunded"
	PaymentPartiallyRefunded = "partially_refunded"
)

// Payment outcomes sent to the appointment.
const (
	OutcomeSecured = "secured"
	OutcomeExpired = "expired"
)

// Kinds of appointment news.
const (
	NewsCancelled   = "cancelled"
	NewsRescheduled = "rescheduled"
	NewsCheckedIn   = "checked_in"
	NewsFulfilled   = "fulfilled"
	NewsNoShow      = "noshow"
)

// Capture points of an appointment type.
const (
	CaptureAtCheckIn  = "check_in"
	CaptureAfterVisit = "after_visit"
)

// PaymentPolicy is an appointment type's money rules, copied into the
// booking so that a later change of the type does not change a booked
// visit's terms.
type PaymentPolicy struct {
	FreeCancelBefore time.Duration
	LateCancelFeeBps int // basis points of the price kept on a late cancel
	NoShowFeeBps     int // basis points of the price charged on a no-show
	CaptureAt        string
}

// PaymentInput starts a payment saga. The intent already exists: the
// booking created it to hand its client secret back in the same answer.
type PaymentInput struct {
	TenantID      string
	PaymentID     string
	AppointmentID string
	IntentID      string
	Provider      string // "stripe" or "offline" (paid at the desk: secured at once)
	AmountMinor   int64
	Currency      string
	HoldExpiresAt time.Time
	StartsAt      time.Time
	Policy        PaymentPolicy
	// LateWindow is how long after expiry a late success is still watched
	// for (and voided or refunded); RefundWindow how long after the visit
	// billing staff can refund through the saga. Zero means the defaults.
	LateWindow   time.Duration
	RefundWindow time.Duration
}

// Defaults of PaymentInput's windows: card authorizations lapse after about
// a week, so a success later than that cannot arrive; 30 days covers a
// clinic's usual refund period.
const (
	DefaultLateWindow   = 8 * 24 * time.Hour
	DefaultRefundWindow = 30 * 24 * time.Hour
)

// ProviderEvent is a webhook event reduced to what the saga acts on.
type ProviderEvent struct {
	EventID      string
	Type         string // e.g. payment_intent.amount_capturable_updated
	IntentStatus string // the intent's status in the event, when it carries one
	DeclineCode  string
	Created      time.Time
}

// AppointmentNews is what the appointment workflow tells its payment.
type AppointmentNews struct {
	Kind     string
	At       time.Time
	StartsAt time.Time // for NewsRescheduled
	By       string    // for NewsCancelled: patient, practitioner, staff, admin, system
}

// PaymentOutcome is what the saga tells its appointment.
type PaymentOutcome struct {
	Outcome string
}

// BillingRefund is a refund asked for by billing staff.
type BillingRefund struct {
	AmountMinor int64
	Reason      string
	UserID      string
}

// PaymentState is what the saga knows; QueryPayment returns it.
type PaymentState struct {
	PaymentID     string
	Status        string
	CapturedMinor int64
	RefundedMinor int64
	FeeMinor      int64
	Refunds       int
	// Steps records what the saga did, in order, for the billing timeline.
	Steps []string
}

// StartPaymentRequest creates the payment row and its provider intent.
type StartPaymentRequest struct {
	TenantID       string
	PaymentID      string
	AppointmentID  string
	PatientID      string
	PractitionerID string
	AmountMinor    int64
	Currency       string
	HoldExpiresAt  time.Time
}

// StartPaymentResult is the intent to hand to the patient's client.
type StartPaymentResult struct {
	Provider     string
	IntentID     string
	ClientSecret string
}

// PaymentStep is the input of the capture, void, refund and fee
// activities. Key is the provider idempotency key, derived from the saga
// and the step, so a retried step never moves money twice.
type PaymentStep struct {
	TenantID    string
	PaymentID   string
	IntentID    string
	Key         string
	AmountMinor int64
	Currency    string
	// Kind says what a capture is for: "capture" (the visit), or a fee
	// kind ("noshow", "late_cancel"). For a void, the status to record
	// (voided or expired).
	Kind   string
	Reason string
	UserID string
}

// PaymentRecord sets a payment's status from a provider event.
type PaymentRecord struct {
	TenantID    string
	PaymentID   string
	Status      string
	FailureCode string
}

// PaymentSummary is what the capture, void, refund and fee activities
// answer: the payment's amounts after the step.
type PaymentSummary struct {
	Status        string
	CapturedMinor int64
	RefundedMinor int64
	FeeMinor      int64
}
