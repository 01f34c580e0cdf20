package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/stripe/stripe-go/v76"
)

// The kinds of failure the saga tells apart. Test with errors.Is; a decline
// is the [ErrDeclined] type instead, tested with errors.As.
var (
	// ErrInvalidRequest means the request can never succeed as sent: a
	// missing or malformed parameter, an unknown ID, or an object in the
	// wrong state (capturing a canceled intent, refunding more than was
	// taken). It points at a bug or a race; retrying does not help.
	ErrInvalidRequest = errors.New("invalid request")

	// ErrIdempotencyConflict means the key was used before for a different
	// request. Keys derive from the workflow step, so this is a bug.
	ErrIdempotencyConflict = errors.New("idempotency key reused for a different request")

	// ErrAuth means the provider refused the account's key, or the key may
	// not do this. The tenant's settings need fixing; retrying does not
	// help.
	ErrAuth = errors.New("authentication failed")

	// ErrUnavailable covers everything a later attempt may cure: network
	// failures, timeouts, rate limits, lock contention and server errors.
	ErrUnavailable = errors.New("provider unavailable")
)

// ErrDeclined reports that the bank, or the desk, refused the payment. It
// is a value type: find it with
//
//	var d provider.ErrDeclined
//	if errors.As(err, &d) { ... d.DeclineCode ... }
//
// A decline is not retryable as such: the patient has to act (another card,
// authenticating, paying at the desk).
type ErrDeclined struct {
	// Code is Stripe's error code, e.g. "card_declined", "expired_card",
	// "authentication_required", or "offline" from the [Offline] provider.
	Code string

	// DeclineCode is the bank's reason when it gave one, e.g.
	// "insufficient_funds" or "generic_decline".
	DeclineCode string

	// PaymentIntentID is the intent the failed attempt belongs to, when
	// the provider said so. An off-session attempt leaves it behind in
	// status requires_payment_method.
	PaymentIntentID string
}

// Error implements error.
func (d ErrDeclined) Error() string {
	if d.DeclineCode == "" {
		return fmt.Sprintf("payment declined (%s)", d.Code)
	}
	return fmt.Sprintf("payment declined (%s, %s)", d.Code, d.DeclineCode)
}

// Error is returned by every provider method that fails.
//
// Its text and fields hold only what is safe to log: the provider's error
// type and code, the name of the parameter at fault and the request ID, by
// which Stripe support and the dashboard find the full story. Stripe's
// human-readable message is left out on purpose, because it can quote what
// was sent.
type Error struct {
	Provider string // NameStripe or NameOffline
	Op       string // what was attempted, e.g. "capture intent"

	// Kind is ErrInvalidRequest, ErrIdempotencyConflict, ErrAuth,
	// ErrUnavailable or an ErrDeclined value.
	Kind error

	HTTPStatus int    // 0 when no response arrived or no request was made
	Type       string // Stripe's error type, e.g. "invalid_request_error"

	// Code is Stripe's error code, or, when this package refused the
	// request before sending it, one of its own (e.g.
	// "idempotency_key_missing").
	Code      string
	Param     string // the parameter at fault, if known
	RequestID string // Stripe's Request-Id, if a response arrived

	// Err is the transport failure underneath, if any (e.g. a refused
	// connection or a context deadline). Never a response body.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(": ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Kind.Error())

	var details []string
	add := func(label, v string) {
		if v != "" {
			details = append(details, label+" "+v)
		}
	}
	if e.HTTPStatus != 0 {
		add("status", fmt.Sprint(e.HTTPStatus))
	}
	add("type", e.Type)
	var d ErrDeclined
	if !errors.As(e.Kind, &d) { // a decline already names its code
		add("code", e.Code)
	}
	add("param", e.Param)
	add("request", e.RequestID)
	if len(details) > 0 {
		b.WriteString(" [")
		b.WriteString(strings.Join(details, ", "))
		b.WriteString("]")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap makes Kind and Err visible to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Retryable reports whether trying the same request again (with the same
// idempotency key) may succeed. It is false for nil, invalid requests,
// idempotency conflicts, authentication failures and declines, and true for
// everything else, including errors this package did not make.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var d ErrDeclined
	switch {
	case errors.As(err, &d),
		errors.Is(err, ErrInvalidRequest),
		errors.Is(err, ErrIdempotencyConflict),
		errors.Is(err, ErrAuth):
		return false
	}
	return true
}

// invalid reports a request this package refused before sending it.
func invalid(name, op, code, param string) error {
	return &Error{Provider: name, Op: op, Kind: ErrInvalidRequest, Code: code, Param: param}
}

// errUnreadable stands in for a failure whose text may quote a response
// body (stripe-go puts a sample of an undecodable body into its error).
var errUnreadable = errors.New("unreadable response from provider")

// fromStripe maps whatever stripe-go returned to an *Error.
func fromStripe(op string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return &Error{Provider: NameStripe, Op: op, Kind: ErrUnavailable, Err: transportCause(err)}
	}

	e := &Error{
		Provider:   NameStripe,
		Op:         op,
		HTTPStatus: se.HTTPStatusCode,
		Type:       string(se.Type),
		Code:       string(se.Code),
		Param:      se.Param,
		RequestID:  se.RequestID,
	}
	status := se.HTTPStatusCode
	switch {
	case se.Type == stripe.ErrorTypeCard:
		d := ErrDeclined{Code: string(se.Code), DeclineCode: string(se.DeclineCode)}
		if se.PaymentIntent != nil {
			d.PaymentIntentID = se.PaymentIntent.ID
		}
		e.Kind = d

	// Contention on the key or the object: the first request is still
	// running, or an object lock timed out. Stripe asks for a retry.
	case se.Code == stripe.ErrorCodeIdempotencyKeyInUse,
		se.Code == stripe.ErrorCodeLockTimeout,
		se.Code == stripe.ErrorCodeRateLimit:
		e.Kind = ErrUnavailable

	case se.Type == stripe.ErrorTypeIdempotency:
		e.Kind = ErrIdempotencyConflict
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		e.Kind = ErrAuth
	case status == http.StatusTooManyRequests,
		status == http.StatusConflict,
		status >= 500,
		se.Type == stripe.ErrorTypeAPI:
		e.Kind = ErrUnavailable
	case status >= 400:
		e.Kind = ErrInvalidRequest
	default:
		e.Kind = ErrUnavailable
	}
	return e
}

// transportCause keeps a network or context failure as the cause and
// replaces anything else, which may quote a response body.
func transportCause(err error) error {
	var ue *url.Error
	switch {
	case errors.As(err, &ue):
		return ue
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return errUnreadable
}
