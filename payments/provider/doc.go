// Package provider is the seam between the payment saga and whoever moves
// the money: Stripe for card payments, or the clinic's front desk when a
// tenant takes payment in person.
//
// The saga sees only the [Provider] interface. Two implementations exist:
//
//   - [Stripe] talks to the Stripe API through stripe-go v76, one instance
//     per tenant account, each with its own key, backend URL and HTTP
//     client. Nothing is set on stripe-go's package-level globals, so two
//     tenants can never share a key by accident.
//   - [Offline] stands for "pay at the desk". It keeps its state in memory
//     and never talks to anyone; see its documentation for what that means.
//
// # Stripe objects used
//
//   - Customer: created with our tenant and patient IDs as metadata and
//     nothing else, so that a card can be saved for a no-show fee.
//   - PaymentIntent: created with capture_method=manual and
//     payment_method_types=[card] for the booking hold (with
//     setup_future_usage=off_session when the card is to be kept); read;
//     captured, in full or in part; canceled; and created confirmed and
//     off-session, with automatic capture, for a no-show fee.
//   - Refund: against a PaymentIntent, in full or in part.
//   - BalanceTransaction and Payout: listed by creation time for the nightly
//     reconciliation, following every page.
//
// Every Stripe object we create carries Carebook IDs as metadata (see
// [Refs]), never names, e-mail addresses or anything clinical: metadata is
// visible to every dashboard user of the account and travels into Stripe's
// exports.
//
// # Not handled here
//
//   - Webhooks and their signatures: the api package verifies and routes
//     them; this package only makes calls.
//   - Confirming a PaymentIntent on the server with a card: the patient's
//     browser or app confirms with the client secret, so card numbers never
//     reach Carebook.
//   - 3-D Secure for off-session charges: when the bank wants the patient
//     present, Stripe answers with a card error (authentication_required)
//     and [Provider.ChargeOffSession] reports it as [ErrDeclined].
//   - Disputes, Connect transfers and application fees, payment methods
//     other than cards, incremental authorization, and listing or detaching
//     saved payment methods.
//   - Currencies whose smallest unit at Stripe differs from their ISO 4217
//     minor unit (Stripe documents a few special cases, e.g. ISK and HUF):
//     amounts are passed through as given.
//   - File uploads and OAuth: only Stripe's API backend is configured, so
//     calls to the upload or Connect OAuth hosts cannot happen by accident.
//
// # Errors
//
// Every failure is an [*Error] whose Kind is one of [ErrInvalidRequest],
// [ErrIdempotencyConflict], [ErrAuth], [ErrUnavailable] or an [ErrDeclined]
// value. [Retryable] says which of them a retry can cure. The text of an
// error holds only Stripe's error type, code, parameter name and request ID,
// never Stripe's human-readable message, which can echo what was sent
// (an e-mail address, for one).
//
// # Idempotency
//
// Every call that changes something at the provider takes an idempotency
// key, refuses an empty one before any request is made, and sends it as
// Stripe's Idempotency-Key header. Callers derive keys from the workflow and
// the step (for example "payment:<id>:capture"), so a retried activity
// repeats the same request and Stripe answers it with the first result.
// Stripe keeps keys for at least 24 hours; a retry later than that is a new
// request.
package provider
