package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carebook/carebook/payments"
	"github.com/carebook/carebook/payments/accounts"
)

// eventually polls cond until it holds or ten seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stripeEvent builds a payment_intent event about paymentID, as Stripe
// would send it.
func stripeEvent(id, typ, paymentID, status string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "created": time.Now().Unix(), "livemode": false, "api_version": "2023-10-16",
		"data": map[string]any{"object": map[string]any{
			"id": "pi_test_" + paymentID[:8], "object": "payment_intent", "status": status,
			"amount": 12000, "currency": "usd", "capture_method": "manual",
			"metadata": map[string]string{"paymentID": paymentID},
		}},
	})
	return b
}

func (st *stack) webhook(tenant string, body []byte, signedAt time.Time, secret string) response {
	return st.do("POST", "/v1/webhooks/stripe/"+tenant, "", body, "Stripe-Signature", payments.SignForTest(secret, signedAt, body))
}

// TestPaidBookingHoldsUntilThePaymentIsSecured: a paid visit is held, the
// patient gets a client secret, a signed webhook secures the money and
// confirms the visit; a duplicate webhook changes nothing; cancelling
// inside the free window voids the hold.
func TestPaidBookingHoldsUntilThePaymentIsSecured(t *testing.T) {
	st := newStack(t)
	token := st.login("demo", "ayse@demo.carebook.test")
	cardio, cardioType := st.Demo.Practitioners[0].ID, st.Demo.Types[1].ID
	free := st.freeSlots(token, cardio, cardioType)
	// A slot at least two days ahead, so cancelling is inside the free window.
	var start any
	for _, s := range free {
		if at, _ := time.Parse(time.RFC3339, s["start"].(string)); at.After(time.Now().Add(48 * time.Hour)) {
			start = s["start"]
			break
		}
	}
	r := st.do("POST", "/v1/appointments", token, map[string]any{"practitioner_id": cardio, "appointment_type_id": cardioType, "start": start})
	if r.Status != http.StatusCreated || r.str("status") != "held" {
		t.Fatalf("paid booking: %d %s", r.Status, r.Raw)
	}
	pay, _ := r.Body["payment"].(map[string]any)
	if pay == nil || pay["client_secret"] == "" || pay["provider"] != "stripe" || pay["status"] != "requires_payment" {
		t.Fatalf("payment in booking answer: %v", pay)
	}
	id, paymentID := r.str("id"), pay["id"].(string)
	if n := st.count("SELECT count(*) FROM payments WHERE id = ? AND status = 'requires_payment' AND provider_intent_id IS NOT NULL", paymentID); n != 1 {
		t.Fatalf("payment rows = %d", n)
	}

	// A failed attempt leaves the slot held; the patient may try again.
	failed := stripeEvent("evt_fail_1", "payment_intent.payment_failed", paymentID, "requires_payment_method")
	if w := st.webhook("demo", failed, time.Now(), testWebhookSecret); w.Status != http.StatusOK {
		t.Fatalf("webhook: %d %s", w.Status, w.Raw)
	}
	secured := stripeEvent("evt_ok_1", "payment_intent.amount_capturable_updated", paymentID, "requires_capture")
	if w := st.webhook("demo", secured, time.Now(), testWebhookSecret); w.Status != http.StatusOK {
		t.Fatalf("webhook: %d %s", w.Status, w.Raw)
	}
	eventually(t, "the visit to be booked", func() bool {
		g := st.do("GET", "/v1/appointments/"+id, token, nil)
		p, _ := g.Body["payment"].(map[string]any)
		return g.str("status") == "booked" && p != nil && p["status"] == "authorized"
	})
	// The same event again is recognised and not acted on twice.
	if w := st.webhook("demo", secured, time.Now(), testWebhookSecret); w.Status != http.StatusOK || w.Body["duplicate"] != true {
		t.Fatalf("duplicate webhook: %d %s", w.Status, w.Raw)
	}
	if n := st.count("SELECT count(*) FROM webhook_events WHERE payment_id = ?", paymentID); n != 2 {
		t.Fatalf("webhook events stored = %d, want 2", n)
	}
	// The confirmation went out only once the money was secured.
	eventually(t, "the confirmation", func() bool {
		return st.count("SELECT count(*) FROM notification_outbox WHERE appointment_id = ? AND template = 'appointment.confirmed'", id) == 1
	})

	c := st.do("POST", "/v1/appointments/"+id+"/cancel", token, map[string]any{"reason": "plans changed"})
	if c.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", c.Status, c.Raw)
	}
	eventually(t, "the hold to be voided", func() bool {
		return st.count("SELECT count(*) FROM payments WHERE id = ? AND status = 'voided' AND captured_minor = 0", paymentID) == 1
	})
	if n := st.count("SELECT count(*) FROM ledger_entries WHERE payment_id = ?", paymentID); n != 0 {
		t.Fatalf("a voided hold wrote %d ledger entries", n)
	}
	// A second paid booking gets its own payment (stripe-mock answers every
	// create with the same intent ID; our rows must not care).
	again := st.do("POST", "/v1/appointments", token, map[string]any{"practitioner_id": cardio, "appointment_type_id": cardioType, "start": start})
	if again.Status != http.StatusCreated || again.Body["payment"].(map[string]any)["id"] == paymentID {
		t.Fatalf("second paid booking: %d %s", again.Status, again.Raw)
	}
}

// TestWebhookSignatures checks the endpoint against Stripe's published
// vector (read in place from ../shared/cases) and its tampered variants.
func TestWebhookSignatures(t *testing.T) {
	st := newStack(t)
	body := sharedCase(t, "stripe", "stripe_dotnet_event_test_signature.json")
	const header = "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef"
	signedAt := time.Unix(1533204620, 0)
	// Tenant harbor's endpoint uses the vector's secret.
	if err := st.Server.Accounts.Save(t.Context(), st.App, st.Other.Tenant.ID, accounts.Settings{Provider: "stripe", SecretKey: "sk_test_123", WebhookSecret: "webhook_secret"}); err != nil {
		t.Fatal(err)
	}
	post := func(b []byte, hdr string, now time.Time) response {
		st.Server.Now = func() time.Time { return now }
		defer func() { st.Server.Now = time.Now }()
		return st.do("POST", "/v1/webhooks/stripe/harbor", "", b, "Stripe-Signature", hdr)
	}
	tests := []struct {
		name string
		body []byte
		hdr  string
		now  time.Time
		want int
	}{
		{"the published vector", body, header, signedAt.Add(100 * time.Second), http.StatusOK},
		{"too old", body, header, signedAt.Add(400 * time.Second), http.StatusBadRequest},
		{"one byte changed", []byte(strings.Replace(string(body), "evt_123", "evt_124", 1)), header, signedAt.Add(100 * time.Second), http.StatusBadRequest},
		{"trailing newline removed", body[:len(body)-1], header, signedAt.Add(100 * time.Second), http.StatusBadRequest},
		{"CRLF line endings", []byte(strings.ReplaceAll(string(body), "\n", "\r\n")), header, signedAt.Add(100 * time.Second), http.StatusBadRequest},
		{"no signature", body, "t=1533204620", signedAt.Add(100 * time.Second), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(tt.body, tt.hdr, tt.now)
			if r.Status != tt.want {
				t.Fatalf("got %d, want %d: %s", r.Status, tt.want, r.Raw)
			}
		})
	}
	if n := st.count("SELECT count(*) FROM webhook_events"); n != 1 {
		t.Fatalf("stored events = %d, want only the verified one", n)
	}
	// A tenant without a Stripe account has no endpoint.
	if r := st.do("POST", "/v1/webhooks/stripe/nowhere", "", body, "Stripe-Signature", header); r.Status != http.StatusNotFound {
		t.Fatalf("unknown tenant: %d", r.Status)
	}
}

// TestWebhookDeliveriesRaceAndOddText: Stripe may deliver one event several
// times at once; the saga hears it once. A verified event whose text
// Postgres's json would refuse (a lone surrogate escape) is still kept.
func TestWebhookDeliveriesRaceAndOddText(t *testing.T) {
	st := newStack(t)
	token := st.login("demo", "ayse@demo.carebook.test")
	cardio, cardioType := st.Demo.Practitioners[0].ID, st.Demo.Types[1].ID
	free := st.freeSlots(token, cardio, cardioType)
	r := st.do("POST", "/v1/appointments", token, map[string]any{"practitioner_id": cardio, "appointment_type_id": cardioType, "start": free[len(free)-1]["start"]})
	if r.Status != http.StatusCreated {
		t.Fatalf("paid booking: %d %s", r.Status, r.Raw)
	}
	paymentID := r.Body["payment"].(map[string]any)["id"].(string)
	secured := stripeEvent("evt_race_1", "payment_intent.amount_capturable_updated", paymentID, "requires_capture")
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i] = st.webhook("demo", secured, time.Now(), testWebhookSecret).Status
		}(i)
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("delivery %d: %d", i, c)
		}
	}
	eventually(t, "the visit to be booked", func() bool {
		return st.do("GET", "/v1/appointments/"+r.str("id"), token, nil).str("status") == "booked"
	})
	resp, err := st.Temporal.QueryWorkflow(t.Context(), "payment:"+paymentID, "", "payment")
	if err != nil {
		t.Fatal(err)
	}
	var state struct{ Steps []string }
	if err := resp.Get(&state); err != nil {
		t.Fatal(err)
	}
	for _, step := range state.Steps {
		if strings.Contains(step, "provider reported") {
			t.Fatalf("a duplicate delivery reached the saga: %v", state.Steps)
		}
	}

	odd := []byte(strings.Replace(string(stripeEvent("evt_odd_1", "charge.succeeded", paymentID, "")), `"status":""`, `"status":"","billing_details":{"name":"\ud800 \u0000"}`, 1))
	if w := st.webhook("demo", odd, time.Now(), testWebhookSecret); w.Status != http.StatusOK {
		t.Fatalf("odd but verified event: %d %s", w.Status, w.Raw)
	}
	if n := st.count("SELECT count(*) FROM webhook_events WHERE event_id = 'evt_odd_1'"); n != 1 {
		t.Fatal("the odd event was not kept")
	}
	// The charge an intent's event names is kept for settlement to link.
	withCharge := []byte(strings.Replace(string(stripeEvent("evt_charge_1", "payment_intent.succeeded", paymentID, "succeeded")),
		`"status":"succeeded"`, `"status":"succeeded","latest_charge":"ch_carebook_1"`, 1))
	if w := st.webhook("demo", withCharge, time.Now(), testWebhookSecret); w.Status != http.StatusOK {
		t.Fatalf("event with a charge: %d %s", w.Status, w.Raw)
	}
	if n := st.count("SELECT count(*) FROM webhook_events WHERE event_id = 'evt_charge_1' AND charge_id = 'ch_carebook_1'"); n != 1 {
		t.Fatal("the intent's latest charge was not recorded")
	}
}
