package activities_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"gorm.io/gorm"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/models/modelstest"
	"github.com/carebook/carebook/payments"
	"github.com/carebook/carebook/payments/provider"
	"github.com/carebook/carebook/payments/reconcile"
	"github.com/carebook/carebook/workflows"
)

// The day the settlement tests settle, and its bounds in the demo tenant's
// zone (its first facility by name is in Istanbul, UTC+3).
const settleDay = "2031-03-04"

var (
	settleFrom = time.Date(2031, 3, 3, 21, 0, 0, 0, time.UTC)
	settleTo   = settleFrom.Add(24 * time.Hour)
	// settleAt is an instant h hours into the day.
	settleAt = func(h float64) time.Time { return settleFrom.Add(time.Duration(h * float64(time.Hour))) }
)

// fakeProvider is a provider account with one day of history. stripe-mock
// answers every list with the same canned object, so a day with chosen
// charges, refunds and payouts needs a fake.
type fakeProvider struct {
	bts     []provider.BalanceTransaction
	payouts []provider.Payout
	intents map[string]provider.Intent

	mu        sync.Mutex
	btCalls   int
	getIntent []string
}

func (f *fakeProvider) Name() string { return provider.NameStripe }

func (f *fakeProvider) BalanceTransactions(_ context.Context, from, to time.Time) ([]provider.BalanceTransaction, error) {
	f.mu.Lock()
	f.btCalls++
	f.mu.Unlock()
	var out []provider.BalanceTransaction
	for _, bt := range f.bts {
		if !bt.Created.Before(from) && bt.Created.Before(to) {
			out = append(out, bt)
		}
	}
	return out, nil
}

func (f *fakeProvider) Payouts(_ context.Context, from, to time.Time) ([]provider.Payout, error) {
	var out []provider.Payout
	for _, p := range f.payouts {
		if !p.Created.Before(from) && p.Created.Before(to) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (f *fakeProvider) GetIntent(_ context.Context, id string) (provider.Intent, error) {
	f.mu.Lock()
	f.getIntent = append(f.getIntent, id)
	f.mu.Unlock()
	if in, ok := f.intents[id]; ok {
		return in, nil
	}
	return provider.Intent{}, fmt.Errorf("get intent: %w", provider.ErrInvalidRequest)
}

var errNotInSettlement = errors.New("fake provider: not used by settlement")

func (f *fakeProvider) EnsureCustomer(context.Context, provider.CustomerRequest) (string, error) {
	return "", errNotInSettlement
}
func (f *fakeProvider) CreateIntent(context.Context, provider.IntentRequest) (provider.Intent, error) {
	return provider.Intent{}, errNotInSettlement
}
func (f *fakeProvider) Capture(context.Context, string, int64, string) (provider.Intent, error) {
	return provider.Intent{}, errNotInSettlement
}
func (f *fakeProvider) CancelIntent(context.Context, string, string) (provider.Intent, error) {
	return provider.Intent{}, errNotInSettlement
}
func (f *fakeProvider) Refund(context.Context, provider.RefundRequest) (provider.Refund, error) {
	return provider.Refund{}, errNotInSettlement
}
func (f *fakeProvider) ChargeOffSession(context.Context, provider.OffSessionRequest) (provider.Intent, error) {
	return provider.Intent{}, errNotInSettlement
}

// oneProvider hands out the same provider for every tenant.
type oneProvider struct{ p provider.Provider }

func (o oneProvider) Provider(context.Context, uuid.UUID) (provider.Provider, error) { return o.p, nil }

// settlementFixture is a seeded tenant with a day of payments in the
// ledger, and a provider whose account history of the day mostly agrees.
type settlementFixture struct {
	t        *testing.T
	admin    *gorm.DB
	app      *gorm.DB
	tenant   uuid.UUID
	net      demo.Network
	prov     *fakeProvider
	s        *activities.Settlement
	payments map[string]uuid.UUID // by the test's name for it
}

func newSettlementFixture(t *testing.T) *settlementFixture {
	t.Helper()
	db := modelstest.New(t)
	admin, err := models.Open(db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	n, err := demo.Seed(context.Background(), admin, demo.Options{Slug: "settle", Name: "Settle", Now: time.Now(),
		HashPassword: func(string) (string, error) { return "x", nil }})
	if err != nil {
		t.Fatal(err)
	}
	app, err := models.Open(db.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	f := &settlementFixture{t: t, admin: admin, app: app, tenant: n.Tenant.ID, net: n, payments: map[string]uuid.UUID{},
		prov: &fakeProvider{intents: map[string]provider.Intent{}}}
	f.s = &activities.Settlement{DB: app, Providers: oneProvider{f.prov}, Now: func() time.Time { return settleTo.Add(5 * time.Hour) }}
	return f
}

// payment seeds a captured Stripe payment of amount TRY with intent
// "pi_<name>", its appointment, and its capture entry written at captured.
func (f *settlementFixture) payment(name string, amount int64, captured time.Time) uuid.UUID {
	f.t.Helper()
	id, appt := uuid.New(), uuid.New()
	start := time.Date(2031, 3, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(len(f.payments)) * time.Hour)
	f.exec(`INSERT INTO appointments (id, tenant_id, practitioner_id, patient_id, facility_id, appointment_type_id,
			starts_at, ends_at, blocked_from, blocked_until, status, mode)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'fulfilled', 'in_person')`,
		appt, f.tenant, f.net.Practitioners[0].ID, f.net.Patients[0].ID, f.net.Facilities[0].ID, f.net.Types[0].ID,
		start, start.Add(20*time.Minute), start, start.Add(20*time.Minute))
	f.exec(`INSERT INTO payments (id, tenant_id, appointment_id, patient_id, practitioner_id, provider, provider_intent_id,
			status, amount_minor, currency, captured_minor, created_at)
		VALUES (?, ?, ?, ?, ?, 'stripe', ?, 'captured', ?, 'TRY', ?, ?)`,
		id, f.tenant, appt, f.net.Patients[0].ID, f.net.Practitioners[0].ID, "pi_"+name, amount, amount, captured)
	f.payments[name] = id
	e, err := payments.Captured(id.String(), payments.Money{Amount: amount, Currency: "TRY"})
	if err != nil {
		f.t.Fatal(err)
	}
	f.entry(id, e, captured)
	return id
}

// entry writes e as the payment activities do, but at a chosen time.
func (f *settlementFixture) entry(payment uuid.UUID, e payments.Entry, at time.Time) {
	f.t.Helper()
	err := f.admin.Transaction(func(tx *gorm.DB) error {
		id := uuid.New()
		if err := tx.Exec(`INSERT INTO ledger_entries (id, tenant_id, key, kind, payment_id, memo, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, f.tenant, e.Key, e.Kind, payment, e.Memo, at).Error; err != nil {
			return err
		}
		for _, p := range e.Postings {
			if err := tx.Exec(`INSERT INTO ledger_postings (tenant_id, entry_id, account, amount_minor, currency) VALUES (?, ?, ?, ?, ?)`,
				f.tenant, id, p.Account, p.Amount.Amount, p.Amount.Currency).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *settlementFixture) exec(sql string, args ...any) {
	f.t.Helper()
	if err := f.admin.Exec(sql, args...).Error; err != nil {
		f.t.Fatal(err)
	}
}

func (f *settlementFixture) charge(txn, chargeID string, amount, fee int64, at time.Time) {
	f.prov.bts = append(f.prov.bts, provider.BalanceTransaction{ID: txn, Type: "charge", ReportingCategory: "charge",
		Status: "available", AmountMinor: amount, FeeMinor: fee, NetMinor: amount - fee, Currency: "TRY", SourceID: chargeID, Created: at})
}

// settle runs the day's steps in order, as the workflow does, each in the
// SDK's activity test environment so that heartbeats have somewhere to go.
func (f *settlementFixture) settle() (workflows.ReconcileResult, workflows.DaySettlement) {
	f.t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(f.s)
	run := func(name string, in, out any) {
		f.t.Helper()
		v, err := env.ExecuteActivity(name, in)
		if err != nil {
			f.t.Fatalf("%s: %v", name, err)
		}
		if err := v.Get(out); err != nil {
			f.t.Fatal(err)
		}
	}
	var plan workflows.SettlementPlan
	run(workflows.ActivityPlanSettlement, workflows.SettlementPlanRequest{TenantID: f.tenant.String(), Day: settleDay,
		Now: settleTo.Add(3 * time.Hour)}, &plan)
	if plan.TimeZone != "Europe/Istanbul" || len(plan.Days) != 1 || !plan.Days[0].From.Equal(settleFrom) || !plan.Days[0].To.Equal(settleTo) {
		f.t.Fatalf("plan %+v", plan)
	}
	var items workflows.ProviderDay
	run(workflows.ActivityFetchProviderDay, workflows.SettlementDayRequest{TenantID: f.tenant.String(), TimeZone: plan.TimeZone,
		Day: plan.Days[0]}, &items)
	var rec workflows.ReconcileResult
	run(workflows.ActivityReconcileDay, workflows.ReconcileRequest{TenantID: f.tenant.String(), Day: plan.Days[0], Items: items}, &rec)
	var out workflows.DaySettlement
	run(workflows.ActivityWriteSettlementReport, workflows.SettlementReportRequest{TenantID: f.tenant.String(),
		TimeZone: plan.TimeZone, Provider: items.Provider, Day: plan.Days[0], Result: rec.Result}, &out)
	return rec, out
}

// discrepancyRow is a row of discrepancies.
type discrepancyRow struct {
	ID             uuid.UUID
	Key            string
	Kind           string
	PaymentID      *uuid.UUID
	ProviderObject string
	LedgerKey      string
	ExpectedMinor  *int64
	ActualMinor    *int64
	Currency       string
	Status         string
	ResolutionNote string
}

func (f *settlementFixture) discrepancies() []discrepancyRow {
	f.t.Helper()
	var rows []discrepancyRow
	if err := f.admin.Raw(`SELECT id, key, kind, payment_id, provider_object, ledger_key, expected_minor, actual_minor,
			currency, status, resolution_note FROM discrepancies WHERE tenant_id = ? ORDER BY key`, f.tenant).Scan(&rows).Error; err != nil {
		f.t.Fatal(err)
	}
	return rows
}

type reportRow struct {
	ID            uuid.UUID
	Day           string
	TimeZone      string
	Provider      string
	Status        string
	Transactions  int
	Payouts       int
	Matched       int
	Discrepancies int
	ReportJSON    string
	ReportCSV     string
}

func (f *settlementFixture) reports() []reportRow {
	f.t.Helper()
	var rows []reportRow
	if err := f.admin.Raw(`SELECT id, to_char(day, 'YYYY-MM-DD') AS day, time_zone, provider, status, transactions, payouts,
			matched, discrepancies, report_json::text AS report_json, report_csv
		FROM settlement_reports WHERE tenant_id = ?`, f.tenant).Scan(&rows).Error; err != nil {
		f.t.Fatal(err)
	}
	return rows
}

func (f *settlementFixture) count(sql string, args ...any) int64 {
	f.t.Helper()
	var n int64
	if err := f.admin.Raw(sql, args...).Scan(&n).Error; err != nil {
		f.t.Fatal(err)
	}
	return n
}

// TestSettlementReportsInjectedMismatch settles a day whose provider
// history disagrees with the ledger in three ways (a charge of the wrong
// amount, a capture the provider never made, a charge Carebook knows
// nothing of) and checks the report and the discrepancies; then settles it
// again and checks that nothing changed and that what billing staff
// resolved stays resolved.
func TestSettlementReportsInjectedMismatch(t *testing.T) {
	f := newSettlementFixture(t)

	// Linked by its charge.captured event; refunded in part.
	p1 := f.payment("p1", 45000, settleAt(2))
	f.charge("txn_1", "ch_1", 45000, 1500, settleAt(2).Add(-time.Second))
	f.exec(`INSERT INTO webhook_events (tenant_id, event_id, type, object_id, payment_id, payload, created_at)
		VALUES (?, 'evt_1', 'charge.captured', 'ch_1', ?, '{}', ?)`, f.tenant, p1, settleAt(2))
	refundID := uuid.New()
	f.exec(`INSERT INTO refunds (id, tenant_id, payment_id, provider_refund_id, amount_minor, currency, reason, status, idempotency_key)
		VALUES (?, ?, ?, 're_1', 5000, 'TRY', 'requested_by_customer', 'succeeded', 'payment:p1:refund:1')`, refundID, f.tenant, p1)
	re, _ := payments.Refunded(p1.String(), refundID.String(), payments.Money{Amount: 5000, Currency: "TRY"})
	f.entry(p1, re, settleAt(5))
	f.prov.bts = append(f.prov.bts, provider.BalanceTransaction{ID: "txn_r1", Type: "refund", AmountMinor: -5000, Currency: "TRY",
		SourceID: "re_1", Created: settleAt(5).Add(-time.Second)})

	// Linked through its PaymentIntent: no webhook event names the charge.
	f.payment("p2", 30000, settleAt(3))
	f.charge("txn_2", "ch_2", 30000, 900, settleAt(3).Add(-time.Second))
	f.prov.intents["pi_p2"] = provider.Intent{ID: "pi_p2", LatestChargeID: "ch_2"}

	// The injected mismatch: the provider took 25000, the ledger says 20000.
	// Linked by the latest_charge of its payment_intent.succeeded event.
	p3 := f.payment("p3", 20000, settleAt(4))
	f.charge("txn_3", "ch_3", 25000, 800, settleAt(4).Add(-time.Second))
	f.exec(`INSERT INTO webhook_events (tenant_id, event_id, type, object_id, charge_id, payment_id, payload, created_at)
		VALUES (?, 'evt_3', 'payment_intent.succeeded', 'pi_p3', 'ch_3', ?, '{"data":{"object":{"id":"pi_p3","latest_charge":"ch_3"}}}', ?)`,
		f.tenant, p3, settleAt(4))

	// Captured in the ledger; the provider has no charge for it.
	p4 := f.payment("p4", 10000, settleAt(6))

	// A charge at the provider that no Carebook payment explains.
	f.charge("txn_x", "ch_x", 7000, 200, settleAt(7))

	// Charged at 23:59:50 the day before, written to the ledger after
	// midnight: the look-back hour explains it.
	p6 := f.payment("p6", 12000, settleFrom.Add(20*time.Second))
	f.charge("txn_6", "ch_6", 12000, 0, settleFrom.Add(-10*time.Second))
	f.exec(`INSERT INTO webhook_events (tenant_id, event_id, type, object_id, payment_id, payload, created_at)
		VALUES (?, 'evt_6', 'charge.captured', 'ch_6', ?, '{}', ?)`, f.tenant, p6, settleFrom)

	// The day before: neither side is this day's business.
	f.payment("p5", 8000, settleFrom.Add(-5*time.Hour))
	f.charge("txn_5", "ch_5", 8000, 0, settleFrom.Add(-5*time.Hour))

	// A payout of the day and its balance transaction.
	f.prov.payouts = []provider.Payout{{ID: "po_1", Status: "paid", AmountMinor: 30000, Currency: "TRY", Created: settleAt(1)}}
	f.prov.bts = append(f.prov.bts, provider.BalanceTransaction{ID: "txn_po1", Type: "payout", AmountMinor: -30000, Currency: "TRY",
		SourceID: "po_1", Created: settleAt(1)})

	entriesBefore := f.count(`SELECT count(*) FROM ledger_entries WHERE tenant_id = ?`, f.tenant)
	rec, first := f.settle()

	t.Run("lists the day an hour at a time, with the look-back hour", func(t *testing.T) {
		if f.prov.btCalls != 25 {
			t.Errorf("%d balance transaction calls, want 25", f.prov.btCalls)
		}
		// p1, p3 and p6 are linked by their events; p4 has no charge, so
		// its intent is asked about in the search for ch_x.
		if !slices.Equal(f.prov.getIntent, []string{"pi_p2", "pi_p4"}) {
			t.Errorf("looked up intents %q, want pi_p2 and pi_p4", f.prov.getIntent)
		}
	})

	t.Run("records payouts and provider fees once", func(t *testing.T) {
		if rec.Recorded != 4 || first.Recorded != 0 {
			t.Errorf("recorded %d, want 4 (3 provider fees and a payout)", rec.Recorded)
		}
		if got := f.count(`SELECT count(*) FROM ledger_entries WHERE tenant_id = ?`, f.tenant); got != entriesBefore+4 {
			t.Errorf("%d entries, want %d", got, entriesBefore+4)
		}
		bal := f.count(`SELECT coalesce(sum(p.amount_minor), 0) FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id
			WHERE e.key = ? AND p.account = 'provider_fees'`, "payment:"+p1.String()+":provider_fee")
		if bal != 1500 {
			t.Errorf("provider fee of p1 is %d, want 1500", bal)
		}
		if n := f.count(`SELECT count(*) FROM ledger_entries WHERE key = 'payout:po_1' AND payment_id IS NULL AND kind = 'payout'`); n != 1 {
			t.Errorf("%d payout entries, want 1 without a payment", n)
		}
	})

	wantLines := []string{
		"matched charge txn_6",
		"matched charge txn_1",
		"matched charge txn_2",
		"amount_differs charge txn_3",
		"matched refund txn_r1",
		"missing_in_ledger charge txn_x",
		"info payout txn_po1",
		"matched provider_fee",
		"matched provider_fee",
		"matched provider_fee",
		"matched payout po_1",
		"missing_at_provider capture payment:" + p4.String() + ":capture",
	}
	t.Run("report", func(t *testing.T) {
		var got []string
		for _, l := range rec.Result.Lines {
			subject := l.ProviderObject
			if l.Type == reconcile.TypeProviderFee {
				subject = ""
			} else if subject == "" {
				subject = l.LedgerKey
			}
			got = append(got, strings.TrimSpace(l.Status+" "+l.Type+" "+subject))
		}
		// The look-back line comes after the day's transactions, which
		// are ordered by time; sort both for a readable comparison.
		slices.Sort(got)
		want := slices.Clone(wantLines)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("lines:\n got %q\nwant %q", got, want)
		}
		want1 := workflows.DaySettlement{Day: settleDay, ReportID: first.ReportID, Status: reconcile.ReportMismatched,
			Transactions: 6, Payouts: 1, Matched: 8, Discrepancies: 3, Opened: 3}
		if first != want1 {
			t.Errorf("outcome %+v, want %+v", first, want1)
		}
		rows := f.reports()
		if len(rows) != 1 {
			t.Fatalf("%d reports, want 1", len(rows))
		}
		r := rows[0]
		if r.ID.String() != first.ReportID || r.Day != settleDay || r.TimeZone != "Europe/Istanbul" || r.Provider != "stripe" ||
			r.Status != "mismatched" || r.Transactions != 6 || r.Payouts != 1 || r.Matched != 8 || r.Discrepancies != 3 {
			t.Errorf("report row %+v", r)
		}
		var doc struct {
			Day   string           `json:"day"`
			Lines []reconcile.Line `json:"lines"`
		}
		if err := json.Unmarshal([]byte(r.ReportJSON), &doc); err != nil || doc.Day != settleDay || len(doc.Lines) != len(wantLines) {
			t.Errorf("report JSON: %v, day %q, %d lines", err, doc.Day, len(doc.Lines))
		}
		csvRows, err := csv.NewReader(strings.NewReader(r.ReportCSV)).ReadAll()
		if err != nil || len(csvRows) != 1+len(wantLines) {
			t.Errorf("report CSV: %v, %d rows", err, len(csvRows))
		}
	})

	got := f.discrepancies()
	t.Run("discrepancies", func(t *testing.T) {
		want := []discrepancyRow{
			{Key: "amount_differs:txn_3", Kind: "amount_differs", PaymentID: &p3, ProviderObject: "txn_3",
				LedgerKey: "payment:" + p3.String() + ":capture", ExpectedMinor: ptr(20000), ActualMinor: ptr(25000), Currency: "TRY", Status: "open"},
			{Key: "missing_at_provider:payment:" + p4.String() + ":capture", Kind: "missing_at_provider", PaymentID: &p4,
				LedgerKey: "payment:" + p4.String() + ":capture", ExpectedMinor: ptr(10000), Currency: "TRY", Status: "open"},
			{Key: "missing_in_ledger:txn_x", Kind: "missing_in_ledger", ProviderObject: "txn_x", ActualMinor: ptr(7000),
				Currency: "TRY", Status: "open"},
		}
		if len(got) != len(want) {
			t.Fatalf("%d discrepancies, want %d: %+v", len(got), len(want), got)
		}
		for i := range want {
			g, w := got[i], want[i]
			if !sameDiscrepancy(g, w) {
				t.Errorf("discrepancy %d:\n got %s\nwant %s", i, show(g), show(w))
			}
		}
	})

	// Billing staff resolve the unknown charge.
	f.exec(`UPDATE discrepancies SET status = 'resolved', resolution_note = 'test charge', resolved_at = now() WHERE key = 'missing_in_ledger:txn_x'`)
	entriesAfter := f.count(`SELECT count(*) FROM ledger_entries WHERE tenant_id = ?`, f.tenant)

	rec2, second := f.settle()
	t.Run("settling again changes nothing", func(t *testing.T) {
		if second.ReportID != first.ReportID || second.Opened != 0 || rec2.Recorded != 0 {
			t.Errorf("second run %+v, recorded %d; want report %s, nothing opened or recorded", second, rec2.Recorded, first.ReportID)
		}
		want2 := first
		want2.Opened = 0
		if second != want2 {
			t.Errorf("outcome %+v, want %+v", second, want2)
		}
		if n := len(f.reports()); n != 1 {
			t.Errorf("%d reports, want 1", n)
		}
		if n := f.count(`SELECT count(*) FROM ledger_entries WHERE tenant_id = ?`, f.tenant); n != entriesAfter {
			t.Errorf("%d entries after the re-run, want %d", n, entriesAfter)
		}
		again := f.discrepancies()
		if len(again) != len(got) {
			t.Fatalf("%d discrepancies after the re-run, want %d", len(again), len(got))
		}
		for i := range again {
			if again[i].ID != got[i].ID || again[i].Key != got[i].Key {
				t.Errorf("discrepancy %d changed: %s, was %s", i, show(again[i]), show(got[i]))
			}
			wantStatus := "open"
			if again[i].Key == "missing_in_ledger:txn_x" {
				wantStatus = "resolved"
			}
			if again[i].Status != wantStatus {
				t.Errorf("%s is %s, want %s", again[i].Key, again[i].Status, wantStatus)
			}
		}
	})
}

// TestPlanSettlement checks the days a settlement run is given.
func TestPlanSettlement(t *testing.T) {
	f := newSettlementFixture(t)
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(f.s)
	// A report exists for 2031-03-04 only.
	f.exec(`INSERT INTO settlement_reports (id, tenant_id, day, time_zone, provider, status, report_json, report_csv)
		VALUES (?, ?, '2031-03-04', 'Europe/Istanbul', 'stripe', 'matched', '{}', '')`, uuid.New(), f.tenant)

	tests := []struct {
		name     string
		req      workflows.SettlementPlanRequest
		want     []string
		wantZone string
		wantErr  string // application error type
	}{
		{
			name: "a requested day",
			req:  workflows.SettlementPlanRequest{Day: "2031-03-04", Now: settleTo},
			want: []string{"2031-03-04"}, wantZone: "Europe/Istanbul",
		},
		{
			name: "a requested day in another zone",
			req:  workflows.SettlementPlanRequest{Day: "2031-03-04", TimeZone: "UTC", Now: settleTo.Add(3 * time.Hour)},
			want: []string{"2031-03-04"}, wantZone: "UTC",
		},
		{
			name: "nightly: yesterday and the recent days without a report",
			// 02:00 on 6 March in Istanbul.
			req:  workflows.SettlementPlanRequest{Now: time.Date(2031, 3, 5, 23, 0, 0, 0, time.UTC)},
			want: []string{"2031-03-02", "2031-03-03", "2031-03-05"}, wantZone: "Europe/Istanbul",
		},
		{
			name:    "a day that has not ended",
			req:     workflows.SettlementPlanRequest{Day: "2031-03-04", Now: settleTo.Add(-time.Minute)},
			wantErr: workflows.ErrTypeInvalidSettlement,
		},
		{
			name:    "a malformed day",
			req:     workflows.SettlementPlanRequest{Day: "4.3.2031", Now: settleTo},
			wantErr: workflows.ErrTypeInvalidSettlement,
		},
		{
			name:    "an unknown zone",
			req:     workflows.SettlementPlanRequest{Day: "2031-03-04", TimeZone: "Mars/Olympus", Now: settleTo},
			wantErr: workflows.ErrTypeInvalidSettlement,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.TenantID = f.tenant.String()
			v, err := env.ExecuteActivity(workflows.ActivityPlanSettlement, tt.req)
			if tt.wantErr != "" {
				if got := settlementErrType(err); got != tt.wantErr {
					t.Fatalf("error %v (type %q), want type %q", err, got, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var plan workflows.SettlementPlan
			if err := v.Get(&plan); err != nil {
				t.Fatal(err)
			}
			var days []string
			for _, d := range plan.Days {
				days = append(days, d.Day)
			}
			if !slices.Equal(days, tt.want) || plan.TimeZone != tt.wantZone {
				t.Errorf("plan %q in %s, want %q in %s", days, plan.TimeZone, tt.want, tt.wantZone)
			}
		})
	}
}

func ptr(v int64) *int64 { return &v }

func settlementErrType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// sameDiscrepancy compares the fields a report run sets.
func sameDiscrepancy(a, b discrepancyRow) bool {
	eqID := func(x, y *uuid.UUID) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqN := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Key == b.Key && a.Kind == b.Kind && eqID(a.PaymentID, b.PaymentID) && a.ProviderObject == b.ProviderObject &&
		a.LedgerKey == b.LedgerKey && eqN(a.ExpectedMinor, b.ExpectedMinor) && eqN(a.ActualMinor, b.ActualMinor) &&
		a.Currency == b.Currency && a.Status == b.Status
}

func show(d discrepancyRow) string {
	n := func(v *int64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprint(*v)
	}
	p := "-"
	if d.PaymentID != nil {
		p = d.PaymentID.String()
	}
	return fmt.Sprintf("{%s %s payment=%s object=%s ledger=%s expected=%s actual=%s %s %s}",
		d.Key, d.Kind, p, d.ProviderObject, d.LedgerKey, n(d.ExpectedMinor), n(d.ActualMinor), d.Currency, d.Status)
}
