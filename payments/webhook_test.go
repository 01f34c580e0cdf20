package payments

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/carebook/carebook/internal/sharedcases"
)

// The shared Stripe vector, described in
// shared/cases/stripe/stripe_signature_test_vector.md.
const (
	vectorSecret = "webhook_secret"
	vectorT      = 1533204620
	vectorV1     = "2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7"
	vectorV0     = "63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef"
	vectorHeader = "t=1533204620,v1=" + vectorV1 + ",v0=" + vectorV0
)

func readCase(t *testing.T, name string) []byte { return sharedcases.Read(t, "stripe", name) }

func TestVerifySignatureSharedVector(t *testing.T) {
	body := readCase(t, "stripe_dotnet_event_test_signature.json")
	if len(body) != 484 {
		t.Fatalf("vector body is %d bytes, the vector says 484", len(body))
	}
	signedAt := time.Unix(vectorT, 0)

	oneByte := bytes.Clone(body)
	oneByte[bytes.Index(oneByte, []byte("evt_123"))+6] = '4' // evt_124
	noNewline := bytes.TrimSuffix(body, []byte("\n"))
	crlf := bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
	wrongV1 := strings.Repeat("0", 64)

	tests := []struct {
		name   string
		header string
		body   []byte
		secret string
		now    time.Time
		want   error
	}{
		{name: "known-good header inside tolerance", header: vectorHeader, body: body, now: signedAt.Add(100 * time.Second)},
		{name: "exactly at the tolerance", header: vectorHeader, body: body, now: signedAt.Add(300 * time.Second)},
		{name: "one second past the tolerance", header: vectorHeader, body: body, now: signedAt.Add(301 * time.Second), want: ErrTimestampOutOfTolerance},
		{name: "too old", header: vectorHeader, body: body, now: signedAt.Add(400 * time.Second), want: ErrTimestampOutOfTolerance},
		{name: "body changed by one byte", header: vectorHeader, body: oneByte, now: signedAt.Add(100 * time.Second), want: ErrSignatureMismatch},
		{name: "trailing newline removed", header: vectorHeader, body: noNewline, now: signedAt.Add(100 * time.Second), want: ErrSignatureMismatch},
		{name: "LF turned into CRLF", header: vectorHeader, body: crlf, now: signedAt.Add(100 * time.Second), want: ErrSignatureMismatch},
		{name: "empty body", header: vectorHeader, body: nil, now: signedAt, want: ErrSignatureMismatch},
		{
			name:   "wrong v1 before the right one",
			header: "t=1533204620,v1=" + wrongV1 + ",v1=" + vectorV1,
			body:   body, now: signedAt.Add(100 * time.Second),
		},
		{
			name:   "right v1 before a wrong one",
			header: "t=1533204620,v1=" + vectorV1 + ",v1=" + wrongV1 + ",v0=" + vectorV0,
			body:   body, now: signedAt.Add(100 * time.Second),
		},
		{
			name:   "unknown scheme ignored",
			header: "t=1533204620,v9=abc,v1=" + vectorV1,
			body:   body, now: signedAt,
		},
		{
			name:   "spaces after commas",
			header: "t=1533204620, v1=" + vectorV1,
			body:   body, now: signedAt,
		},
		{
			name:   "upper-case hex",
			header: "t=1533204620,v1=" + strings.ToUpper(vectorV1),
			body:   body, now: signedAt,
		},
		{name: "only v0", header: "t=1533204620,v0=" + vectorV0, body: body, now: signedAt, want: ErrNoSignature},
		{name: "v0 holding the v1 value", header: "t=1533204620,v0=" + vectorV1, body: body, now: signedAt, want: ErrNoSignature},
		{name: "only wrong v1s", header: "t=1533204620,v1=" + wrongV1, body: body, now: signedAt, want: ErrSignatureMismatch},
		{name: "wrong secret", header: vectorHeader, body: body, secret: "whsec_other", now: signedAt.Add(100 * time.Second), want: ErrSignatureMismatch},
		{name: "empty secret", header: SignForTest("", signedAt, body), body: body, secret: "-", now: signedAt, want: ErrSignatureMismatch},
		{
			name:   "signature moved to another timestamp",
			header: "t=1533204621,v1=" + vectorV1,
			body:   body, now: signedAt,
			want: ErrSignatureMismatch,
		},
		{
			name:   "future timestamp beyond tolerance",
			header: SignForTest(vectorSecret, signedAt.Add(400*time.Second), body),
			body:   body, now: signedAt,
			want: ErrTimestampOutOfTolerance,
		},
		{
			name:   "future timestamp inside tolerance",
			header: SignForTest(vectorSecret, signedAt.Add(299*time.Second), body),
			body:   body, now: signedAt,
		},
		{name: "missing header", header: "", body: body, now: signedAt, want: ErrNoSignature},
		{name: "garbage header", header: "garbage", body: body, now: signedAt, want: ErrNoSignature},
		{name: "no timestamp", header: "v1=" + vectorV1, body: body, now: signedAt, want: ErrNoSignature},
		{name: "non-numeric timestamp", header: "t=soon,v1=" + vectorV1, body: body, now: signedAt, want: ErrNoSignature},
		{name: "two timestamps", header: "t=1533204620,t=1533204620,v1=" + vectorV1, body: body, now: signedAt, want: ErrNoSignature},
		{name: "v1 not hex", header: "t=1533204620,v1=zz", body: body, now: signedAt, want: ErrNoSignature},
		{
			name:   "too many v1 values",
			header: "t=1533204620" + strings.Repeat(",v1="+wrongV1, maxSignatures) + ",v1=" + vectorV1,
			body:   body, now: signedAt,
			want: ErrNoSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := tt.secret
			switch secret {
			case "":
				secret = vectorSecret
			case "-":
				secret = ""
			}
			err := VerifySignature(tt.header, tt.body, secret, 300*time.Second, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifySignature() = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSignForTestMatchesVector checks the signer against the values the
// vector's notes measured with openssl, so the tests that sign their own
// events sign exactly as Stripe does.
func TestSignForTestMatchesVector(t *testing.T) {
	body := readCase(t, "stripe_dotnet_event_test_signature.json")
	at := time.Unix(vectorT, 0)
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{name: "vector body", body: body, want: "t=1533204620,v1=" + vectorV1},
		{
			name: "without trailing newline",
			body: bytes.TrimSuffix(body, []byte("\n")),
			want: "t=1533204620,v1=8c506d7d19ece69e9a38e398964787dda54eeb2583381ffc7f56070c28d7f119",
		},
		{
			name: "CRLF line endings",
			body: bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n")),
			want: "t=1533204620,v1=35e3126117160dcc892a54b185a9bc70ce4dd4812320e9b8c6375a70e6619043",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SignForTest(vectorSecret, at, tt.body); got != tt.want {
				t.Errorf("SignForTest() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSignForTestRoundTrip(t *testing.T) {
	body := []byte(`{"id":"evt_1","object":"event"}`)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	h := SignForTest("whsec_test", now, body)
	if err := VerifySignature(h, body, "whsec_test", DefaultTolerance, now); err != nil {
		t.Fatalf("VerifySignature(SignForTest(...)) = %v", err)
	}
}

func TestParseEventSharedCases(t *testing.T) {
	tests := []struct {
		name string
		file string
		want Event
	}{
		{
			name: "customer event of the signature vector",
			file: "stripe_dotnet_event_test_signature.json",
			want: Event{
				ID:         "evt_123",
				Type:       "customer.created",
				Created:    time.Unix(1533204620, 0).UTC(),
				APIVersion: "2017-05-25",
				ObjectType: "customer",
				ObjectID:   "cus_123",
				Metadata:   map[string]string{},
			},
		},
		{
			name: "failed charge names its payment intent",
			file: "zulip_stripe_charge_failed_with_pi.json",
			want: Event{
				ID:              "evt_3TbGfyJEe0yY0QKr08P0MBRO",
				Type:            "charge.failed",
				Created:         time.Unix(1779785366, 0).UTC(),
				APIVersion:      "2026-04-22.dahlia",
				ObjectType:      "charge",
				ObjectID:        "ch_3TbGfyJEe0yY0QKr0Nh9uVjd",
				PaymentIntentID: "pi_3TbGfyJEe0yY0QKr0V9PBbP9",
				Metadata:        map[string]string{},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := readCase(t, tt.file)
			got, err := ParseEvent(body)
			if err != nil {
				t.Fatal(err)
			}
			checkEvent(t, got, tt.want)
			if !bytes.Contains(got.Raw, []byte(`"id": "`+tt.want.ObjectID+`"`)) || got.Raw[0] != '{' {
				t.Errorf("Raw is not data.object: %.80s", got.Raw)
			}
		})
	}
}

func checkEvent(t *testing.T, got, want Event) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || !got.Created.Equal(want.Created) ||
		got.Livemode != want.Livemode || got.APIVersion != want.APIVersion ||
		got.ObjectType != want.ObjectType || got.ObjectID != want.ObjectID ||
		got.PaymentIntentID != want.PaymentIntentID {
		t.Errorf("ParseEvent() =\n%+v\nwant\n%+v", got, want)
	}
	if len(got.Metadata) != len(want.Metadata) || (got.Metadata == nil) != (want.Metadata == nil) {
		t.Errorf("Metadata = %#v, want %#v", got.Metadata, want.Metadata)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Errorf("Metadata[%q] = %q, want %q", k, got.Metadata[k], v)
		}
	}
}

func TestParseEventBuilt(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Event
	}{
		{
			name: "payment intent event uses the object's own id",
			body: `{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1700000000,"livemode":true,
				"api_version":"2024-06-20","data":{"object":{"id":"pi_1","object":"payment_intent","amount":5000,"currency":"usd",
				"status":"succeeded","metadata":{"paymentID":"pay-1","tenantID":"t-1"}}}}`,
			want: Event{
				ID: "evt_1", Type: "payment_intent.succeeded", Created: time.Unix(1700000000, 0).UTC(), Livemode: true,
				APIVersion: "2024-06-20", ObjectType: "payment_intent", ObjectID: "pi_1", PaymentIntentID: "pi_1",
				Metadata: map[string]string{"paymentID": "pay-1", "tenantID": "t-1"},
			},
		},
		{
			name: "refund event names its payment intent",
			body: `{"id":"evt_2","object":"event","type":"charge.refund.updated","created":1,
				"data":{"object":{"id":"re_1","object":"refund","payment_intent":"pi_9"}}}`,
			want: Event{
				ID: "evt_2", Type: "charge.refund.updated", Created: time.Unix(1, 0).UTC(),
				ObjectType: "refund", ObjectID: "re_1", PaymentIntentID: "pi_9",
			},
		},
		{
			name: "expanded payment intent",
			body: `{"id":"evt_3","object":"event","type":"charge.succeeded",
				"data":{"object":{"id":"ch_1","object":"charge","payment_intent":{"id":"pi_7","object":"payment_intent"}}}}`,
			want: Event{ID: "evt_3", Type: "charge.succeeded", ObjectType: "charge", ObjectID: "ch_1", PaymentIntentID: "pi_7"},
		},
		{
			name: "payout has no payment intent",
			body: `{"id":"evt_4","object":"event","type":"payout.paid",
				"data":{"object":{"id":"po_1","object":"payout","payment_intent":null}}}`,
			want: Event{ID: "evt_4", Type: "payout.paid", ObjectType: "payout", ObjectID: "po_1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			checkEvent(t, got, tt.want)
		})
	}
}

func TestParseEventRejects(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want error // nil: any error
	}{
		{name: "bare payment intent", body: readCase(t, "stripe_dotnet_payment_intent_last_payment_error.json"), want: ErrUnexpectedObject},
		{name: "no id", body: []byte(`{"object":"event","type":"x.y","data":{"object":{}}}`), want: ErrUnexpectedObject},
		{name: "no type", body: []byte(`{"id":"evt_1","object":"event","data":{"object":{}}}`), want: ErrUnexpectedObject},
		{name: "no object field", body: []byte(`{"id":"evt_1","type":"x.y","data":{"object":{}}}`), want: ErrUnexpectedObject},
		{name: "no data.object", body: []byte(`{"id":"evt_1","object":"event","type":"x.y","data":{}}`), want: ErrUnexpectedObject},
		{name: "data.object not an object", body: []byte(`{"id":"evt_1","object":"event","type":"x.y","data":{"object":"pi_1"}}`), want: ErrUnexpectedObject},
		{name: "not json", body: []byte(`not json`)},
		{name: "json array", body: []byte(`[]`)},
		{name: "trailing garbage", body: []byte(`{"id":"evt_1","object":"event","type":"x.y","data":{"object":{}}} x`)},
		{name: "metadata value not a string", body: []byte(`{"id":"evt_1","object":"event","type":"x.y","data":{"object":{"metadata":{"a":1}}}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEvent(tt.body)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("ParseEvent() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParsePaymentIntentSharedCase(t *testing.T) {
	got, err := ParsePaymentIntent(readCase(t, "stripe_dotnet_payment_intent_last_payment_error.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := PaymentIntent{
		ID:               "pi_123",
		Status:           "requires_payment_method",
		Amount:           Money{100, "EUR"},
		AmountCapturable: Money{0, "EUR"},
		AmountReceived:   Money{0, "EUR"},
		CaptureMethod:    "automatic",
		LastPaymentError: PaymentError{Code: "card_declined", DeclineCode: "generic_decline", Type: "card_error"},
	}
	if got.ID != want.ID || got.Status != want.Status || got.Amount != want.Amount ||
		got.AmountCapturable != want.AmountCapturable || got.AmountReceived != want.AmountReceived ||
		got.CaptureMethod != want.CaptureMethod || got.LastPaymentError != want.LastPaymentError ||
		len(got.Metadata) != 0 {
		t.Errorf("ParsePaymentIntent() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParsePaymentIntentFromEvent(t *testing.T) {
	body := []byte(`{"id":"evt_1","object":"event","type":"payment_intent.amount_capturable_updated",
		"data":{"object":{"id":"pi_1","object":"payment_intent","amount":12000,"amount_capturable":12000,
		"amount_received":0,"currency":"try","capture_method":"manual","status":"requires_capture",
		"last_payment_error":null,"metadata":{"paymentID":"pay-1"}}}}`)
	ev, err := ParseEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePaymentIntent(ev.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "pi_1" || got.Status != "requires_capture" || got.Amount != (Money{12000, "TRY"}) ||
		got.AmountCapturable != (Money{12000, "TRY"}) || got.CaptureMethod != "manual" ||
		got.LastPaymentError != (PaymentError{}) || got.Metadata["paymentID"] != "pay-1" {
		t.Errorf("ParsePaymentIntent(ev.Raw) = %+v", got)
	}
}

func TestParsePaymentIntentRejects(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want error // nil: any error
	}{
		{name: "an event", body: readCase(t, "stripe_dotnet_event_test_signature.json"), want: ErrUnexpectedObject},
		{name: "a charge", body: []byte(`{"id":"ch_1","object":"charge","amount":1,"currency":"usd"}`), want: ErrUnexpectedObject},
		{name: "no id", body: []byte(`{"object":"payment_intent","amount":1,"currency":"usd"}`), want: ErrUnexpectedObject},
		{name: "no currency", body: []byte(`{"id":"pi_1","object":"payment_intent","amount":1}`), want: ErrInvalidCurrency},
		{name: "negative amount", body: []byte(`{"id":"pi_1","object":"payment_intent","amount":-1,"currency":"usd"}`), want: ErrNegativeAmount},
		{name: "fractional amount", body: []byte(`{"id":"pi_1","object":"payment_intent","amount":1.5,"currency":"usd"}`)},
		{name: "not json", body: []byte(`{`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePaymentIntent(tt.body)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("ParsePaymentIntent() error = %v, want %v", err, tt.want)
			}
		})
	}
}
