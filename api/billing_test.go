package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/workflows"
)

// capturedCardioVisit books demo's cardiology consult for Ayşe within the
// hour, secures it with a signed webhook and checks her in, which captures
// the hold (the type captures at check-in). Check-in opens two hours before
// the start and the type's two-hour notice keeps every regular slot beyond
// that, so the test gives the cardiologist extra hours soon and lifts the
// notice, through the owner connection.
func (st *stack) capturedCardioVisit(t *testing.T) (appointmentID, paymentID string) {
	t.Helper()
	cardio, cardioType, istanbul := st.Demo.Practitioners[0].ID, st.Demo.Types[1].ID, st.Demo.Facilities[0].ID
	// On the half hour, as the regular grid is, so that extra hours joined
	// to regular ones keep their starts on it.
	start := time.Now().UTC().Add(15 * time.Minute).Truncate(30 * time.Minute).Add(30 * time.Minute)
	if err := st.Admin.Exec(`UPDATE appointment_types SET min_notice_min = 0 WHERE id = ?`, cardioType).Error; err != nil {
		t.Fatal(err)
	}
	if err := st.Admin.Exec(`INSERT INTO schedule_exceptions (id, tenant_id, practitioner_id, facility_id, kind, starts_at, ends_at)
		VALUES (?, ?, ?, ?, 'extra_hours', ?, ?)`, uuid.New(), st.Demo.Tenant.ID, cardio, istanbul, start, start.Add(time.Hour)).Error; err != nil {
		t.Fatal(err)
	}
	ayse := st.login("demo", "ayse@demo.carebook.test")
	r := st.do("POST", "/v1/appointments", ayse, map[string]any{"practitioner_id": cardio, "appointment_type_id": cardioType,
		"start": start.Format(time.RFC3339)})
	if r.Status != http.StatusCreated || r.str("status") != "held" {
		t.Fatalf("paid booking: %d %s", r.Status, r.Raw)
	}
	appointmentID = r.str("id")
	paymentID = r.Body["payment"].(map[string]any)["id"].(string)

	secured := stripeEvent("evt_secured_"+paymentID[:8], "payment_intent.amount_capturable_updated", paymentID, "requires_capture")
	if w := st.webhook("demo", secured, time.Now(), testWebhookSecret); w.Status != http.StatusOK {
		t.Fatalf("webhook: %d %s", w.Status, w.Raw)
	}
	eventually(t, "the visit to be booked", func() bool {
		return st.do("GET", "/v1/appointments/"+appointmentID, ayse, nil).str("status") == "booked"
	})
	desk := st.login("demo", "staff.istanbul@demo.carebook.test")
	if c := st.do("POST", "/v1/appointments/"+appointmentID+"/check-in", desk, nil); c.Status != http.StatusOK {
		t.Fatalf("check-in: %d %s", c.Status, c.Raw)
	}
	eventually(t, "the capture at check-in", func() bool {
		return st.count("SELECT count(*) FROM payments WHERE id = ? AND status = 'captured' AND captured_minor = 12000", paymentID) == 1
	})
	return appointmentID, paymentID
}

// userID is a seeded user's ID.
func (st *stack) userID(email string) string {
	st.t.Helper()
	var id string
	if err := st.Admin.Raw("SELECT id::text FROM users WHERE email = ?", email).Scan(&id).Error; err != nil || id == "" {
		st.t.Fatalf("user %s: %v", email, err)
	}
	return id
}

func billingMoney(v any) (int64, string) {
	m, _ := v.(map[string]any)
	n, _ := m["amount_minor"].(float64)
	c, _ := m["currency"].(string)
	return int64(n), c
}

func billingList(v any) []map[string]any {
	raw, _ := v.([]any)
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i], _ = x.(map[string]any)
	}
	return out
}

// TestBillingPaymentTimelineAndRefunds follows one captured visit through
// the billing API: it is listed with its saga's link, its timeline shows
// the webhook events, ledger and the saga's steps, billing refunds part,
// more than is left is refused, a key replays, and a closed or missing
// saga still has a timeline but takes no refund.
func TestBillingPaymentTimelineAndRefunds(t *testing.T) {
	st := newStack(t)
	appointmentID, paymentID := st.capturedCardioVisit(t)
	billing := st.login("demo", "billing@demo.carebook.test")
	billingID := st.userID("billing@demo.carebook.test")

	l := st.do("GET", "/v1/payments", billing, nil)
	if l.Status != http.StatusOK || len(l.items()) != 1 {
		t.Fatalf("list: %d %s", l.Status, l.Raw)
	}
	p := l.items()[0]
	if amt, cur := billingMoney(p["captured"]); p["id"] != paymentID || p["status"] != "captured" || amt != 12000 || cur != "USD" ||
		p["appointment_id"] != appointmentID || p["workflow_id"] != "payment:"+paymentID ||
		!strings.HasSuffix(p["workflow_url"].(string), "/workflows/payment:"+paymentID) {
		t.Fatalf("listed payment: %v", p)
	}

	tl := st.do("GET", "/v1/payments/"+paymentID, billing, nil)
	if tl.Status != http.StatusOK {
		t.Fatalf("timeline: %d %s", tl.Status, tl.Raw)
	}
	events := billingList(tl.Body["webhook_events"])
	if len(events) != 1 || events[0]["id"] != "evt_secured_"+paymentID[:8] || events[0]["type"] != "payment_intent.amount_capturable_updated" ||
		events[0]["routed"] == nil || events[0]["payload"] != nil {
		t.Fatalf("webhook events: %v", events)
	}
	ledger := billingList(tl.Body["ledger"])
	if len(ledger) != 1 || ledger[0]["kind"] != "capture" || len(billingList(ledger[0]["postings"])) != 2 {
		t.Fatalf("ledger: %v", ledger)
	}
	var sum int64
	for _, post := range billingList(ledger[0]["postings"]) {
		n, _ := billingMoney(post["amount"])
		sum += n
	}
	if sum != 0 {
		t.Fatalf("capture postings sum to %d", sum)
	}
	saga := tl.Body["saga"].(map[string]any)
	if saga["execution"] != "running" || saga["status"] != "captured" || saga["workflow_url"] == "" {
		t.Fatalf("saga: %v", saga)
	}
	var whats []string
	for _, s := range billingList(saga["steps"]) {
		if s["at"] == nil {
			t.Fatalf("step without time: %v", s)
		}
		whats = append(whats, s["what"].(string))
	}
	if steps := strings.Join(whats, "|"); !strings.Contains(steps, "authorized") || !strings.Contains(steps, "captured capture") {
		t.Fatalf("saga steps: %v", whats)
	}

	// Billing refunds part; the answer is the payment after it, and a
	// retry with the same key replays it without a second refund.
	refund := map[string]any{"amount_minor": 5000, "reason": "goodwill after a long wait"}
	r := st.do("POST", "/v1/payments/"+paymentID+"/refund", billing, refund, "Idempotency-Key", "refund-1")
	if got, _ := billingMoney(r.Body["refunded"]); r.Status != http.StatusOK || got != 5000 || r.str("status") != workflows.PaymentPartiallyRefunded {
		t.Fatalf("refund: %d %s", r.Status, r.Raw)
	}
	again := st.do("POST", "/v1/payments/"+paymentID+"/refund", billing, refund, "Idempotency-Key", "refund-1")
	if again.Status != http.StatusOK || again.Header.Get("Idempotent-Replayed") != "true" || string(again.Raw) != string(r.Raw) {
		t.Fatalf("replayed refund: %d %s", again.Status, again.Raw)
	}
	if n := st.count("SELECT count(*) FROM refunds WHERE payment_id = ? AND requested_by = ? AND status = 'succeeded'", paymentID, billingID); n != 1 {
		t.Fatalf("refund rows by billing = %d, want 1", n)
	}
	// The request is in the audit log once, with who asked and why.
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'request-refund' AND resource_id = ? AND actor_user = ? AND reason = ?",
		paymentID, billingID, "goodwill after a long wait"); n != 1 {
		t.Fatalf("refund audit events = %d, want 1", n)
	}
	// 7000 is left; more is refused and nothing moves.
	big := st.do("POST", "/v1/payments/"+paymentID+"/refund", billing, map[string]any{"amount_minor": 8000, "reason": "too much"})
	if left, _ := billingMoney(big.Body["refundable"]); big.Status != http.StatusUnprocessableEntity || big.problemType() != "refund-too-large" || left != 7000 {
		t.Fatalf("refund beyond what is left: %d %s", big.Status, big.Raw)
	}
	if n := st.count("SELECT count(*) FROM refunds WHERE payment_id = ?", paymentID); n != 1 {
		t.Fatalf("refund rows = %d after a refused refund", n)
	}

	tl = st.do("GET", "/v1/payments/"+paymentID, billing, nil)
	refunds := billingList(tl.Body["refunds"])
	if len(refunds) != 1 || refunds[0]["requested_by"] != billingID || refunds[0]["reason"] != "goodwill after a long wait" || refunds[0]["status"] != "succeeded" {
		t.Fatalf("timeline refunds: %v", refunds)
	}
	if kinds := len(billingList(tl.Body["ledger"])); kinds != 2 {
		t.Fatalf("ledger entries after a refund = %d, want capture and refund", kinds)
	}

	// An admin refunds the rest.
	admin := st.login("demo", "admin@demo.carebook.test")
	rest := st.do("POST", "/v1/payments/"+paymentID+"/refund", admin, map[string]any{"amount_minor": 7000, "reason": "visit not held"})
	if got, _ := billingMoney(rest.Body["refunded"]); rest.Status != http.StatusOK || got != 12000 || rest.str("status") != workflows.PaymentRefunded {
		t.Fatalf("admin refund: %d %s", rest.Status, rest.Raw)
	}

	// Once the saga is over it takes no refunds, and the timeline says so.
	if err := st.Temporal.TerminateWorkflow(t.Context(), workflows.PaymentWorkflowID(paymentID), "", "test: refund window over"); err != nil {
		t.Fatal(err)
	}
	closed := st.do("POST", "/v1/payments/"+paymentID+"/refund", billing, map[string]any{"amount_minor": 1, "reason": "late"})
	if closed.Status != http.StatusConflict || closed.problemType() != "payment-closed" {
		t.Fatalf("refund on a closed saga: %d %s", closed.Status, closed.Raw)
	}
	tl = st.do("GET", "/v1/payments/"+paymentID, billing, nil)
	if saga := tl.Body["saga"].(map[string]any); tl.Status != http.StatusOK || saga["execution"] != "terminated" {
		t.Fatalf("timeline of a terminated saga: %d %s", tl.Status, tl.Raw)
	}

	// A payment whose workflow Temporal no longer has still has a timeline.
	orphan := st.seedPayment(t, st.Demo, seededPayment{patient: 0, practitioner: 0, status: "captured", amount: 3000, currency: "USD",
		created: time.Now().Add(-40 * 24 * time.Hour)})
	tl = st.do("GET", "/v1/payments/"+orphan, billing, nil)
	if saga := tl.Body["saga"].(map[string]any); tl.Status != http.StatusOK || saga["execution"] != "gone" || saga["note"] == "" {
		t.Fatalf("timeline without a workflow: %d %s", tl.Status, tl.Raw)
	}
	if g := st.do("POST", "/v1/payments/"+orphan+"/refund", billing, map[string]any{"amount_minor": 100, "reason": "late"}); g.Status != http.StatusConflict || g.problemType() != "payment-closed" {
		t.Fatalf("refund without a workflow: %d %s", g.Status, g.Raw)
	}
}

// TestBillingRoutesAreForBillingInTheirTenant: patients, doctors and desk
// staff are refused every billing route; another tenant's billing user
// finds nothing; bad input is refused before the saga is asked.
func TestBillingRoutesAreForBillingInTheirTenant(t *testing.T) {
	st := newStack(t)
	paymentID := st.seedPayment(t, st.Demo, seededPayment{patient: 0, practitioner: 0, status: "captured", amount: 12000, currency: "USD", created: time.Now()})
	discrepancy := st.seedDiscrepancy(t, st.Demo.Tenant.ID, "open", time.Now())
	billing := st.login("demo", "billing@demo.carebook.test")
	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/payments", nil},
		{"GET", "/v1/payments/" + paymentID, nil},
		{"POST", "/v1/payments/" + paymentID + "/refund", map[string]any{"amount_minor": 100, "reason": "x"}},
		{"GET", "/v1/billing/daily-totals", nil},
		{"GET", "/v1/discrepancies", nil},
		{"POST", "/v1/discrepancies/" + discrepancy + "/resolve", map[string]any{"note": "x"}},
	}
	for _, who := range []string{"ayse@demo.carebook.test", "doctor1@demo.carebook.test", "staff.istanbul@demo.carebook.test"} {
		token := st.login("demo", who)
		for _, rt := range routes {
			if r := st.do(rt.method, rt.path, token, rt.body); r.Status != http.StatusForbidden || r.problemType() != "forbidden" {
				t.Errorf("%s %s as %s: %d %s", rt.method, rt.path, who, r.Status, r.Raw)
			}
		}
	}

	harbor := st.login("harbor", "billing@harbor.carebook.test")
	tests := []struct {
		name     string
		method   string
		path     string
		body     any
		token    string
		want     int
		wantType string
	}{
		{"other tenant's payment", "GET", "/v1/payments/" + paymentID, nil, harbor, 404, "not-found"},
		{"other tenant's refund", "POST", "/v1/payments/" + paymentID + "/refund", map[string]any{"amount_minor": 100, "reason": "x"}, harbor, 404, "not-found"},
		{"other tenant's discrepancy", "POST", "/v1/discrepancies/" + discrepancy + "/resolve", map[string]any{"note": "x"}, harbor, 404, "not-found"},
		{"payment id not a uuid", "GET", "/v1/payments/42", nil, billing, 404, "not-found"},
		{"unknown payment", "GET", "/v1/payments/" + uuid.NewString(), nil, billing, 404, "not-found"},
		{"refund without reason", "POST", "/v1/payments/" + paymentID + "/refund", map[string]any{"amount_minor": 100}, billing, 400, "invalid-body"},
		{"refund with blank reason", "POST", "/v1/payments/" + paymentID + "/refund", map[string]any{"amount_minor": 100, "reason": "   "}, billing, 422, "invalid-reason"},
		{"refund of nothing", "POST", "/v1/payments/" + paymentID + "/refund", map[string]any{"amount_minor": 0, "reason": "x"}, billing, 400, "invalid-body"},
		{"refund with extra field", "POST", "/v1/payments/" + paymentID + "/refund", map[string]any{"amount_minor": 1, "reason": "x", "currency": "EUR"}, billing, 400, "invalid-body"},
		{"reason too long", "POST", "/v1/payments/" + paymentID + "/refund", map[string]any{"amount_minor": 1, "reason": strings.Repeat("x", 501)}, billing, 400, "invalid-body"},
		{"unknown status", "GET", "/v1/payments?status=paid", nil, billing, 400, "invalid-parameter"},
		{"limit zero", "GET", "/v1/payments?limit=0", nil, billing, 400, "invalid-parameter"},
		{"from not a time", "GET", "/v1/payments?from=yesterday", nil, billing, 400, "invalid-parameter"},
		{"totals backwards", "GET", "/v1/billing/daily-totals?from=2026-03-02&to=2026-03-01", nil, billing, 422, "invalid-range"},
		{"totals over a year", "GET", "/v1/billing/daily-totals?from=2024-01-01&to=2026-01-01", nil, billing, 422, "invalid-range"},
		{"discrepancy status", "GET", "/v1/discrepancies?status=closed", nil, billing, 400, "invalid-parameter"},
		{"resolve without note", "POST", "/v1/discrepancies/" + discrepancy + "/resolve", map[string]any{}, billing, 400, "invalid-body"},
		{"resolve with blank note", "POST", "/v1/discrepancies/" + discrepancy + "/resolve", map[string]any{"note": " \t "}, billing, 422, "invalid-note"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := st.do(tt.method, tt.path, tt.token, tt.body)
			if r.Status != tt.want || r.problemType() != tt.wantType {
				t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.problemType(), tt.want, tt.wantType, r.Raw)
			}
		})
	}
	if n := st.count("SELECT count(*) FROM refunds"); n != 0 {
		t.Fatalf("refused requests made %d refunds", n)
	}
	if n := st.count("SELECT count(*) FROM discrepancies WHERE status = 'resolved'"); n != 0 {
		t.Fatalf("refused requests resolved %d discrepancies", n)
	}
	// Harbor's list does not show demo's payment.
	if r := st.do("GET", "/v1/payments", harbor, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
		t.Fatalf("harbor's list: %d %s", r.Status, r.Raw)
	}
}

// TestBillingListFiltersAndDailyTotals checks the list's filters and the
// daily totals against payments and ledger entries written directly, in
// both tenants.
func TestBillingListFiltersAndDailyTotals(t *testing.T) {
	st := newStack(t)
	// Noon UTC is the same date in Istanbul (demo's first facility) and
	// New York.
	day1 := time.Now().UTC().AddDate(0, 0, -10).Truncate(24 * time.Hour).Add(12 * time.Hour)
	day2 := day1.AddDate(0, 0, 1)
	p1 := st.seedPayment(t, st.Demo, seededPayment{patient: 0, practitioner: 0, status: "partially_refunded", amount: 10000, currency: "USD", created: day1})
	p2 := st.seedPayment(t, st.Demo, seededPayment{patient: 1, practitioner: 3, status: "captured", amount: 8000, currency: "USD", created: day2.Add(-2 * time.Hour)})
	p3 := st.seedPayment(t, st.Demo, seededPayment{patient: 1, practitioner: 0, status: "voided", amount: 12000, currency: "USD", created: day2.Add(-time.Hour)})
	p5 := st.seedPayment(t, st.Demo, seededPayment{patient: 0, practitioner: 3, status: "captured", amount: 7000, currency: "EUR", created: day2})
	foreign := st.seedPayment(t, st.Other, seededPayment{patient: 0, practitioner: 0, status: "captured", amount: 9900, currency: "USD", created: day1})

	demo := st.Demo.Tenant.ID
	st.seedEntry(t, demo, p1, "capture", day1, "clinic_revenue", -10000, "provider_balance", 10000, "USD")
	st.seedEntry(t, demo, p1, "provider_fee", day1.Add(time.Minute), "provider_fees", 320, "provider_balance", -320, "USD")
	st.seedEntry(t, demo, p1, "refund", day2, "refunds", 2500, "provider_balance", -2500, "USD")
	st.seedEntry(t, demo, p2, "fee", day2, "fees", -4000, "provider_balance", 4000, "USD")
	st.seedEntry(t, demo, p5, "capture", day2, "clinic_revenue", -7000, "provider_balance", 7000, "EUR")
	st.seedEntry(t, demo, "", "payout", day2, "payouts", 5000, "provider_balance", -5000, "USD")
	// 22:30 UTC is 01:30 the next day in Istanbul: it counts on day 3.
	st.seedEntry(t, demo, p2, "capture", day2.Add(10*time.Hour+30*time.Minute), "clinic_revenue", -8000, "provider_balance", 8000, "USD")
	st.seedEntry(t, st.Other.Tenant.ID, foreign, "capture", day1, "clinic_revenue", -9900, "provider_balance", 9900, "USD")

	billing := st.login("demo", "billing@demo.carebook.test")
	d1, d2, d3 := day1.Format(time.DateOnly), day2.Format(time.DateOnly), day2.AddDate(0, 0, 1).Format(time.DateOnly)
	john, pr0 := st.Demo.Patients[1].ID.String(), st.Demo.Practitioners[0].ID.String()
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"all, newest first", "", []string{p5, p3, p2, p1}},
		{"by status", "status=voided", []string{p3}},
		{"by patient", "patient_id=" + john, []string{p3, p2}},
		{"by practitioner", "practitioner_id=" + pr0, []string{p3, p1}},
		{"from a date", "from=" + d2, []string{p5, p3, p2}},
		{"to a date, included", "to=" + d1, []string{p1}},
		{"instants", "from=" + url.QueryEscape(day2.Add(-90*time.Minute).Format(time.RFC3339)) + "&to=" + url.QueryEscape(day2.Format(time.RFC3339)), []string{p3}},
		{"limit", "limit=2", []string{p5, p3}},
		{"combined", "patient_id=" + john + "&status=captured", []string{p2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := st.do("GET", "/v1/payments?"+tt.query, billing, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
			var got []string
			for _, it := range r.items() {
				got = append(got, it["id"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	r := st.do("GET", "/v1/billing/daily-totals?from="+d1+"&to="+d3, billing, nil)
	if r.Status != http.StatusOK || r.str("time_zone") != "Europe/Istanbul" || r.str("from") != d1 || r.str("to") != d3 {
		t.Fatalf("daily totals: %d %s", r.Status, r.Raw)
	}
	type total struct {
		day, currency                                                  string
		captured, refunded, fees, providerFees, net, paidOut, payments int64
	}
	want := []total{
		{d1, "USD", 10000, 0, 0, 320, 9680, 0, 1},
		{d2, "EUR", 7000, 0, 0, 0, 7000, 0, 1},
		{d2, "USD", 0, 2500, 4000, 0, 1500, 5000, 2},
		{d3, "USD", 8000, 0, 0, 0, 8000, 0, 1},
	}
	items := r.items()
	if len(items) != len(want) {
		t.Fatalf("daily totals: %s", r.Raw)
	}
	n := func(v any) int64 { f, _ := v.(float64); return int64(f) }
	for i, w := range want {
		it := items[i]
		got := total{it["day"].(string), it["currency"].(string), n(it["captured_minor"]), n(it["refunded_minor"]), n(it["fees_minor"]),
			n(it["provider_fees_minor"]), n(it["net_minor"]), n(it["paid_out_minor"]), n(it["payments"])}
		if got != w {
			t.Errorf("day %d: got %+v, want %+v", i, got, w)
		}
	}
	// The range bounds the days by the tenant's zone.
	if r := st.do("GET", "/v1/billing/daily-totals?from="+d2+"&to="+d2, billing, nil); len(r.items()) != 2 {
		t.Fatalf("one day's totals: %s", r.Raw)
	}
	// Harbor's totals hold only harbor's entry.
	harbor := st.login("harbor", "billing@harbor.carebook.test")
	if r := st.do("GET", "/v1/billing/daily-totals?from="+d1+"&to="+d3, harbor, nil); len(r.items()) != 1 || n(r.items()[0]["captured_minor"]) != 9900 {
		t.Fatalf("harbor's totals: %s", r.Raw)
	}
}

// TestBillingDiscrepanciesResolveOnce lists discrepancies by status and
// day, resolves one with a note, and refuses resolving it again.
func TestBillingDiscrepanciesResolveOnce(t *testing.T) {
	st := newStack(t)
	today := time.Now().UTC()
	older := st.seedDiscrepancy(t, st.Demo.Tenant.ID, "open", today.AddDate(0, 0, -3))
	newer := st.seedDiscrepancy(t, st.Demo.Tenant.ID, "open", today.AddDate(0, 0, -1))
	done := st.seedDiscrepancy(t, st.Demo.Tenant.ID, "resolved", today.AddDate(0, 0, -2))
	st.seedDiscrepancy(t, st.Other.Tenant.ID, "open", today.AddDate(0, 0, -1))
	billing := st.login("demo", "billing@demo.carebook.test")

	ids := func(r response) string {
		var out []string
		for _, it := range r.items() {
			out = append(out, it["id"].(string))
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"all, latest day first", "", []string{newer, done, older}},
		{"open", "status=open", []string{newer, older}},
		{"resolved", "status=resolved", []string{done}},
		{"from a day", "from=" + today.AddDate(0, 0, -2).Format(time.DateOnly), []string{newer, done}},
		{"to a day, included", "status=open&to=" + today.AddDate(0, 0, -3).Format(time.DateOnly), []string{older}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := st.do("GET", "/v1/discrepancies?"+tt.query, billing, nil)
			if r.Status != http.StatusOK || ids(r) != strings.Join(tt.want, ",") {
				t.Fatalf("got %d %s, want %v", r.Status, r.Raw, tt.want)
			}
		})
	}
	first := st.do("GET", "/v1/discrepancies?status=open", billing, nil).items()[0]
	if exp, cur := billingMoney(first["expected"]); first["kind"] != "amount_differs" || exp != 12000 || cur != "USD" || first["day"] != today.AddDate(0, 0, -1).Format(time.DateOnly) {
		t.Fatalf("discrepancy view: %v", first)
	}

	r := st.do("POST", "/v1/discrepancies/"+newer+"/resolve", billing, map[string]any{"note": "Stripe fee adjusted; matched by hand"})
	if r.Status != http.StatusOK || r.str("status") != "resolved" || r.str("resolution_note") != "Stripe fee adjusted; matched by hand" ||
		r.str("resolved_by") != st.userID("billing@demo.carebook.test") || r.str("resolved_at") == "" {
		t.Fatalf("resolve: %d %s", r.Status, r.Raw)
	}
	admin := st.login("demo", "admin@demo.carebook.test")
	again := st.do("POST", "/v1/discrepancies/"+newer+"/resolve", admin, map[string]any{"note": "me too"})
	if again.Status != http.StatusConflict || again.problemType() != "already-resolved" {
		t.Fatalf("resolve twice: %d %s", again.Status, again.Raw)
	}
	if n := st.count("SELECT count(*) FROM discrepancies WHERE id = ? AND resolution_note = 'Stripe fee adjusted; matched by hand'", newer); n != 1 {
		t.Fatal("the second resolve changed the first one's note")
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'resolve' AND resource_id = ?", newer); n != 1 {
		t.Fatalf("resolution audit events = %d, want 1 (the refused second resolve records nothing)", n)
	}
	if r := st.do("GET", "/v1/discrepancies?status=open", billing, nil); ids(r) != older {
		t.Fatalf("open after resolving: %s", r.Raw)
	}
}

// seededPayment is a payment written directly, with its appointment;
// patient and practitioner index the network's lists.
type seededPayment struct {
	patient, practitioner int
	status                string
	amount                int64
	currency              string
	created               time.Time
}

// seedPayment writes a closed appointment and its payment through the owner
// connection, with no workflow behind them, and returns the payment's ID.
func (st *stack) seedPayment(t *testing.T, n demo.Network, p seededPayment) string {
	t.Helper()
	pr := n.Practitioners[p.practitioner]
	facility := n.Facilities[0].ID
	if p.practitioner >= 3 {
		facility = n.Facilities[1].ID
	}
	start := p.created.Add(48 * time.Hour)
	appt := models.Appointment{ID: uuid.New(), TenantID: n.Tenant.ID, PractitionerID: pr.ID, PatientID: n.Patients[p.patient].ID,
		FacilityID: facility, AppointmentTypeID: n.Types[1].ID, StartsAt: start, EndsAt: start.Add(30 * time.Minute),
		BlockedFrom: start, BlockedUntil: start.Add(40 * time.Minute), Status: models.StatusFulfilled, Mode: models.ModeInPerson,
		PriceMinor: p.amount, Currency: p.currency, Version: 1, CreatedAt: p.created, UpdatedAt: p.created}
	if err := st.Admin.Create(&appt).Error; err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	captured := int64(0)
	if p.status != "voided" {
		captured = p.amount
	}
	if err := st.Admin.Exec(`INSERT INTO payments (id, tenant_id, appointment_id, patient_id, practitioner_id, provider, provider_intent_id,
		status, amount_minor, currency, captured_minor, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'stripe', ?, ?, ?, ?, ?, ?, ?)`,
		id, n.Tenant.ID, appt.ID, appt.PatientID, pr.ID, "pi_seed_"+id.String()[:8], p.status, p.amount, p.currency, captured, p.created, p.created).Error; err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// seedEntry writes a two-posting ledger entry at a given time (the amounts
// must balance); paymentID may be "" (a payout).
func (st *stack) seedEntry(t *testing.T, tenant uuid.UUID, paymentID, kind string, at time.Time, account1 string, amount1 int64, account2 string, amount2 int64, currency string) {
	t.Helper()
	id := uuid.New()
	var pay any
	if paymentID != "" {
		pay = paymentID
	}
	err := st.Admin.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO ledger_entries (id, tenant_id, key, kind, payment_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, tenant, "test:"+id.String(), kind, pay, at).Error; err != nil {
			return err
		}
		for _, post := range []struct {
			account string
			amount  int64
		}{{account1, amount1}, {account2, amount2}} {
			if err := tx.Exec(`INSERT INTO ledger_postings (tenant_id, entry_id, account, amount_minor, currency) VALUES (?, ?, ?, ?, ?)`,
				tenant, id, post.account, post.amount, currency).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// seedDiscrepancy writes an amount mismatch of a settlement day.
func (st *stack) seedDiscrepancy(t *testing.T, tenant uuid.UUID, status string, day time.Time) string {
	t.Helper()
	id := uuid.New()
	if err := st.Admin.Exec(`INSERT INTO discrepancies (id, tenant_id, day, key, kind, provider_object, expected_minor, actual_minor, currency, status)
		VALUES (?, ?, ?, ?, 'amount_differs', 'txn_test', 12000, 11650, 'USD', ?)`,
		id, tenant, day.Format(time.DateOnly), "test:"+id.String(), status).Error; err != nil {
		t.Fatal(err)
	}
	return id.String()
}
