package payments

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a webhook's signed timestamp may be from now.
// Five minutes is Stripe's own default: long enough for clock skew and
// Stripe's delivery delay, short enough that a captured request cannot be
// replayed later. Stripe retries a failed delivery with a fresh timestamp
// and signature, so the window never rejects a genuine retry.
const DefaultTolerance = 5 * time.Minute

// The errors of VerifySignature. The webhook endpoint answers all three the
// same way (400, no detail), and logs which one it was.
var (
	// ErrNoSignature means the Stripe-Signature header is missing, cannot
	// be parsed, has no timestamp, or carries no v1 signature.
	ErrNoSignature = errors.New("payments: no usable Stripe signature")
	// ErrSignatureMismatch means no v1 signature matches the body under the
	// secret: the body was altered, or the secret is wrong or empty.
	ErrSignatureMismatch = errors.New("payments: Stripe signature does not match")
	// ErrTimestampOutOfTolerance means the signature is genuine but its
	// timestamp is further than the tolerance from now, in the past (a
	// replay) or in the future.
	ErrTimestampOutOfTolerance = errors.New("payments: Stripe signature timestamp outside tolerance")
)

// VerifySignature checks a Stripe webhook's Stripe-Signature header against
// the raw request body, exactly as received, and the endpoint's signing
// secret. It returns nil if the header's timestamp is within tolerance of
// now (either way) and at least one of its v1 signatures equals the
// HMAC-SHA256, keyed by secret, of the timestamp, a '.', and body; it
// returns an error matching ErrNoSignature, ErrSignatureMismatch or
// ErrTimestampOutOfTolerance otherwise.
//
// The header is "t=<unix seconds>,v1=<hex>[,v1=<hex>...]"; Stripe sends
// several v1 values while an endpoint's secret is being rolled. Other
// schemes, such as the legacy v0, are ignored: accepting one would let an
// attacker pick the weakest. The body must be the exact bytes: any change,
// even a re-encoded line ending, breaks the signature, so parse it only
// after this returns nil.
//
// The signature is checked before the timestamp, so a timestamp error is
// only ever reported for a body Stripe really signed. An empty secret is
// refused with ErrSignatureMismatch, because anyone can compute an HMAC with
// an empty key; a tenant without a secret must get no webhooks at all.
func VerifySignature(header string, body []byte, secret string, tolerance time.Duration, now time.Time) error {
	ts, sigs, err := parseSignatureHeader(header)
	if err != nil {
		return err
	}
	if secret == "" {
		return fmt.Errorf("%w: empty secret", ErrSignatureMismatch)
	}
	want := computeSignature(secret, ts, body)
	matched := false
	for _, s := range sigs {
		// hmac.Equal takes time independent of where the bytes differ, so
		// response timing tells an attacker nothing about the right value.
		// Every candidate is compared, for the same reason.
		if hmac.Equal(s, want) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	age := now.Sub(time.Unix(ts, 0))
	if age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed %v from now, tolerance %v", ErrTimestampOutOfTolerance, -age, tolerance)
	}
	return nil
}

// SignForTest returns a Stripe-Signature header value for body signed with
// secret at t, in the form VerifySignature accepts. It is for tests and
// local tools that post webhook events of their own, e.g. to drive the
// payment saga through states stripe-mock cannot produce. Production code
// never signs: only Stripe does.
func SignForTest(secret string, t time.Time, body []byte) string {
	ts := t.Unix()
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(computeSignature(secret, ts, body))
}

// computeSignature is the v1 scheme: HMAC-SHA256 over "<t>.<body>".
func computeSignature(secret string, ts int64, body []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// maxSignatures bounds how many v1 values one header may carry. Stripe sends
// one, or two while a secret rolls; the bound stops a forged header from
// making each request compute many comparisons.
const maxSignatures = 8

// parseSignatureHeader returns the timestamp and the decoded v1 signatures
// of a Stripe-Signature header. A v1 value that is not hex cannot match any
// HMAC and is dropped; an item that is not key=value, a repeated or
// non-numeric t, or no v1 left makes the whole header unusable.
func parseSignatureHeader(header string) (int64, [][]byte, error) {
	if strings.TrimSpace(header) == "" {
		return 0, nil, fmt.Errorf("%w: header missing", ErrNoSignature)
	}
	var (
		ts    int64
		haveT bool
		sigs  [][]byte
	)
	for item := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return 0, nil, fmt.Errorf("%w: malformed item", ErrNoSignature)
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || haveT || n <= 0 {
				return 0, nil, fmt.Errorf("%w: bad timestamp", ErrNoSignature)
			}
			ts, haveT = n, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				continue
			}
			if len(sigs) == maxSignatures {
				return 0, nil, fmt.Errorf("%w: more than %d v1 signatures", ErrNoSignature, maxSignatures)
			}
			sigs = append(sigs, b)
		}
	}
	if !haveT {
		return 0, nil, fmt.Errorf("%w: no timestamp", ErrNoSignature)
	}
	if len(sigs) == 0 {
		return 0, nil, fmt.Errorf("%w: no v1 signature", ErrNoSignature)
	}
	return ts, sigs, nil
}

// Event is what Carebook needs from a Stripe event to record and route it.
//
// ObjectType and ObjectID are data.object's "object" and "id" (e.g.
// "charge", "ch_..."). PaymentIntentID is the PaymentIntent the event is
// about: the object's own ID when it is a payment_intent, else its
// payment_intent field (charges and refunds carry one), else empty; it is
// what routes the event to its payment:<id> workflow. Metadata is the
// object's metadata, where Carebook puts its own IDs when creating Stripe
// objects. Raw is data.object as sent, so a handler can decode the fields
// it needs, e.g. ParsePaymentIntent(ev.Raw).
type Event struct {
	ID, Type        string
	Created         time.Time
	Livemode        bool
	APIVersion      string
	ObjectType      string
	ObjectID        string
	PaymentIntentID string
	Metadata        map[string]string
	Raw             json.RawMessage
}

// ErrUnexpectedObject is wrapped, with the reason, by ParseEvent for a body
// that is valid JSON but not a Stripe event, and by ParsePaymentIntent for
// one that is not a PaymentIntent. The webhook endpoint answers it with 400:
// a signed body of the wrong shape will not become right on a retry.
var ErrUnexpectedObject = errors.New("payments: not the expected Stripe object")

// stripeEvent is the wire shape of the fields ParseEvent reads.
type stripeEvent struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	Livemode   bool   `json:"livemode"`
	APIVersion string `json:"api_version"`
	Data       struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// stripeObject is the common head of any Stripe object that ParseEvent
// reads. PaymentIntent stays raw because Stripe sends either an ID string
// or, when expanded, the whole object.
type stripeObject struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	PaymentIntent json.RawMessage   `json:"payment_intent"`
	Metadata      map[string]string `json:"metadata"`
}

// ParseEvent decodes a Stripe event body. Call it only after
// VerifySignature has accepted the body. It fails with an error wrapping
// ErrUnexpectedObject when the body is not a Stripe event (no id, no type,
// "object" other than "event", or no data.object), and with a JSON error
// when it is not valid JSON. Fields Carebook does not use are ignored, so a
// newer API version does not break parsing.
func ParseEvent(body []byte) (Event, error) {
	var w stripeEvent
	if err := json.Unmarshal(body, &w); err != nil {
		return Event{}, fmt.Errorf("payments: decode Stripe event: %w", err)
	}
	switch {
	case w.Object != "event":
		return Event{}, fmt.Errorf("%w: object is %q, want \"event\"", ErrUnexpectedObject, w.Object)
	case w.ID == "":
		return Event{}, fmt.Errorf("%w: event has no id", ErrUnexpectedObject)
	case w.Type == "":
		return Event{}, fmt.Errorf("%w: event %s has no type", ErrUnexpectedObject, w.ID)
	}
	raw := bytes.TrimSpace(w.Data.Object)
	if len(raw) == 0 || raw[0] != '{' {
		return Event{}, fmt.Errorf("%w: event %s has no data.object", ErrUnexpectedObject, w.ID)
	}
	var o stripeObject
	if err := json.Unmarshal(raw, &o); err != nil {
		return Event{}, fmt.Errorf("payments: decode data.object of event %s: %w", w.ID, err)
	}
	ev := Event{
		ID:         w.ID,
		Type:       w.Type,
		Livemode:   w.Livemode,
		APIVersion: w.APIVersion,
		ObjectType: o.Object,
		ObjectID:   o.ID,
		Metadata:   o.Metadata,
		// A copy, so the Event stays valid if the caller reuses its buffer.
		Raw: bytes.Clone(raw),
	}
	if w.Created != 0 {
		ev.Created = time.Unix(w.Created, 0).UTC()
	}
	if o.Object == "payment_intent" {
		ev.PaymentIntentID = o.ID
	} else {
		id, err := idOrExpanded(o.PaymentIntent)
		if err != nil {
			return Event{}, fmt.Errorf("payments: decode payment_intent of event %s: %w", w.ID, err)
		}
		ev.PaymentIntentID = id
	}
	return ev, nil
}

// idOrExpanded reads a Stripe reference field, which is null, an ID string,
// or the expanded object with an "id".
func idOrExpanded(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var o struct {
		ID string `json:"id"`
	}
	err := json.Unmarshal(raw, &o)
	return o.ID, err
}

// PaymentIntent is what the payment saga needs from a Stripe PaymentIntent.
// Amounts are in minor units with the currency upper-cased (Stripe sends
// "eur"; the ledger uses "EUR"). AmountCapturable is what a manual-capture
// hold still allows capturing; AmountReceived is what has been collected.
// LastPaymentError is the zero value when the last attempt did not fail.
type PaymentIntent struct {
	ID               string
	Status           string
	Amount           Money
	AmountCapturable Money
	AmountReceived   Money
	CaptureMethod    string
	Metadata         map[string]string
	LastPaymentError PaymentError
}

// PaymentError is why Stripe declined the last attempt at a payment. Code
// is Stripe's error code (e.g. "card_declined"); DeclineCode is the card
// issuer's reason when there is one (e.g. "generic_decline"); Type is the
// error's category (e.g. "card_error"). None holds card or patient data,
// so they can be logged and shown to billing staff.
type PaymentError struct {
	Code        string
	DeclineCode string
	Type        string
}

// stripePaymentIntent is the wire shape of the fields ParsePaymentIntent
// reads.
type stripePaymentIntent struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Status           string            `json:"status"`
	Amount           int64             `json:"amount"`
	AmountCapturable int64             `json:"amount_capturable"`
	AmountReceived   int64             `json:"amount_received"`
	Currency         string            `json:"currency"`
	CaptureMethod    string            `json:"capture_method"`
	Metadata         map[string]string `json:"metadata"`
	LastPaymentError *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Type        string `json:"type"`
	} `json:"last_payment_error"`
}

// ParsePaymentIntent decodes a Stripe PaymentIntent, as returned by the API
// or found in a payment_intent.* event's data.object (Event.Raw). It fails
// with an error wrapping ErrUnexpectedObject when the body's "object" is not
// "payment_intent" or it has no id, with ErrInvalidCurrency or
// ErrNegativeAmount for amounts the ledger could not hold, and with a JSON
// error when it is not valid JSON.
func ParsePaymentIntent(body []byte) (PaymentIntent, error) {
	var w stripePaymentIntent
	if err := json.Unmarshal(body, &w); err != nil {
		return PaymentIntent{}, fmt.Errorf("payments: decode Stripe PaymentIntent: %w", err)
	}
	if w.Object != "payment_intent" {
		return PaymentIntent{}, fmt.Errorf("%w: object is %q, want \"payment_intent\"", ErrUnexpectedObject, w.Object)
	}
	if w.ID == "" {
		return PaymentIntent{}, fmt.Errorf("%w: payment_intent has no id", ErrUnexpectedObject)
	}
	cur := strings.ToUpper(w.Currency)
	pi := PaymentIntent{
		ID:            w.ID,
		Status:        w.Status,
		CaptureMethod: w.CaptureMethod,
		Metadata:      w.Metadata,
	}
	for _, f := range []struct {
		dst *Money
		amt int64
	}{
		{&pi.Amount, w.Amount},
		{&pi.AmountCapturable, w.AmountCapturable},
		{&pi.AmountReceived, w.AmountReceived},
	} {
		m, err := New(f.amt, cur)
		if err != nil {
			return PaymentIntent{}, fmt.Errorf("payments: PaymentIntent %s: %w", w.ID, err)
		}
		*f.dst = m
	}
	if e := w.LastPaymentError; e != nil {
		pi.LastPaymentError = PaymentError{Code: e.Code, DeclineCode: e.DeclineCode, Type: e.Type}
	}
	return pi, nil
}
