package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/payments"
	"github.com/carebook/carebook/payments/provider"
	"github.com/carebook/carebook/payments/reconcile"
	"github.com/carebook/carebook/workflows"
)

// Settlement runs the steps of the nightly settlement: plan the days, list
// the provider's day, reconcile it with the ledger, write the report. Each
// step can run any number of times: listing changes nothing, the ledger
// facts are keyed, and the report and its discrepancies are upserts.
type Settlement struct {
	DB        *gorm.DB
	Providers ProviderSource
	// Store, when set, also keeps each report's files in the object store.
	Store *objstore.Store
	// Now reads the clock for the report's generated_at; nil means
	// time.Now.
	Now func() time.Time
}

// settlementLookback is how long before the day the provider is listed
// too. The ledger entry of a capture or refund is written after the
// provider's call returns, so an entry written just after midnight can
// stand for a balance transaction of the day before; an hour covers a step
// that was retried a few times. An entry written later than that is
// reported missing at the provider, for billing staff to check.
const settlementLookback = time.Hour

// fetchChunk is the span listed per provider call. Listing the day an hour
// at a time lets the activity heartbeat between calls, since the provider
// client follows every page of one call on its own.
const fetchChunk = time.Hour

// backfillDays is how many days before yesterday a nightly run checks for
// a missing report. Temporal does not fire a 02:00 calendar on a night
// whose clocks skip 02:00, and an outage can outlast the Schedule's
// catch-up window; three days covers a long weekend.
const backfillDays = 3

// Ledger entry kinds that Carebook writes on its own initiative, and that
// the provider must therefore show. Payouts and provider fees are copied
// from the provider by this settlement, so they are checked only against
// the items that produced them.
var ownKinds = []string{payments.KindCapture, payments.KindRefund, payments.KindFee}

// PlanSettlement resolves the tenant's zone and the days to settle: the
// requested day, or yesterday plus the recent days that have no report.
// It refuses, as not retryable, a malformed request and a day that has not
// ended by req.Now.
func (s *Settlement) PlanSettlement(ctx context.Context, req workflows.SettlementPlanRequest) (workflows.SettlementPlan, error) {
	tenant, err := uuid.Parse(req.TenantID)
	if err != nil {
		return workflows.SettlementPlan{}, invalidSettlement("tenant ID is not a UUID")
	}
	var t models.Tenant
	err = s.DB.WithContext(ctx).Where("id = ?", tenant).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return workflows.SettlementPlan{}, temporal.NewNonRetryableApplicationError("no such tenant", workflows.ErrTypeNotFound, nil)
	}
	if err != nil {
		return workflows.SettlementPlan{}, fmt.Errorf("load tenant: %w", err)
	}
	zone := req.TimeZone
	if zone == "" {
		if zone, err = TenantTimeZone(ctx, s.DB, tenant); err != nil {
			return workflows.SettlementPlan{}, err
		}
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return workflows.SettlementPlan{}, invalidSettlement("unknown time zone " + zone)
	}
	plan := workflows.SettlementPlan{TimeZone: zone}

	if req.Day != "" {
		d, err := settlementDay(req.Day, loc)
		if err != nil {
			return plan, err
		}
		if d.To.After(req.Now) {
			return plan, invalidSettlement("day " + req.Day + " has not ended in " + zone)
		}
		plan.Days = []workflows.SettlementDay{d}
		return plan, nil
	}

	yesterday := reconcile.Yesterday(req.Now, loc)
	last, _ := time.Parse(reconcile.DayLayout, yesterday)
	first := last.AddDate(0, 0, -backfillDays)
	// A tenant has nothing to settle before it existed.
	if y, m, d := t.CreatedAt.In(loc).Date(); first.Before(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)) {
		first = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	var have []string
	err = models.InTenant(ctx, s.DB, tenant, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT to_char(day, 'YYYY-MM-DD') FROM settlement_reports WHERE day >= ? AND day < ?`,
			first.Format(reconcile.DayLayout), yesterday).Scan(&have).Error
	})
	if err != nil {
		return plan, fmt.Errorf("list settled days: %w", err)
	}
	for d := first; d.Before(last); d = d.AddDate(0, 0, 1) {
		if day := d.Format(reconcile.DayLayout); !slices.Contains(have, day) {
			sd, err := settlementDay(day, loc)
			if err != nil {
				return plan, err
			}
			plan.Days = append(plan.Days, sd)
		}
	}
	sd, err := settlementDay(yesterday, loc)
	if err != nil {
		return plan, err
	}
	plan.Days = append(plan.Days, sd)
	return plan, nil
}

func settlementDay(day string, loc *time.Location) (workflows.SettlementDay, error) {
	from, to, err := reconcile.DayWindow(day, loc)
	if err != nil {
		return workflows.SettlementDay{}, invalidSettlement("day is not YYYY-MM-DD")
	}
	return workflows.SettlementDay{Day: day, From: from.UTC(), To: to.UTC()}, nil
}

// TenantTimeZone returns the zone a tenant's days are settled in: that of
// its first facility by name (a clinic network's books follow its head
// site), or UTC for a tenant without facilities.
func TenantTimeZone(ctx context.Context, db *gorm.DB, tenant uuid.UUID) (string, error) {
	var zone string
	err := models.InTenant(ctx, db, tenant, func(tx *gorm.DB) error {
		var err error
		zone, err = models.TenantZone(tx)
		return err
	})
	if err != nil {
		return "", err
	}
	return zone, nil
}

// FetchProviderDay lists the provider's balance transactions of the day
// (and of the look-back hour before it) and its payouts of the day, an
// hour at a time with a heartbeat after each, and links each charge and
// refund to its Carebook payment and refund.
//
// A refund is linked through refunds.provider_refund_id. A charge is
// linked through the webhook events stored for it (charge.* events carry
// the charge, payment_intent.* events its latest_charge, both with the
// payment found when the event arrived); a charge no event names is looked
// up through the PaymentIntents of the payments that have capture or fee
// entries around the day. See reconcile for what an unlinked item becomes.
//
// The items travel to the next step through the workflow's history, whose
// payloads Temporal caps at 2 MB: about 5,000 balance transactions a day.
// TODO(#3): stage a busier tenant's day in the database and pass its key.
func (s *Settlement) FetchProviderDay(ctx context.Context, req workflows.SettlementDayRequest) (workflows.ProviderDay, error) {
	tenant, err := uuid.Parse(req.TenantID)
	if err != nil {
		return workflows.ProviderDay{}, invalidSettlement("tenant ID is not a UUID")
	}
	from, to := req.Day.From, req.Day.To
	if from.IsZero() || !from.Before(to) {
		return workflows.ProviderDay{}, invalidSettlement("empty settlement window")
	}
	prov, err := s.Providers.Provider(ctx, tenant)
	if err != nil {
		return workflows.ProviderDay{}, fmt.Errorf("provider of tenant: %w", err)
	}
	out := workflows.ProviderDay{Provider: prov.Name()}

	for start := from.Add(-settlementLookback); start.Before(to); {
		end := start.Add(fetchChunk)
		if end.After(to) {
			end = to
		}
		if start.Before(from) {
			end = from // the look-back is its own chunk
		}
		bts, err := prov.BalanceTransactions(ctx, start, end)
		if err != nil {
			return out, providerError(err)
		}
		for _, bt := range bts {
			out.Transactions = append(out.Transactions, reconcile.Transaction{
				ID: bt.ID, Type: bt.Type, AmountMinor: bt.AmountMinor, FeeMinor: bt.FeeMinor,
				Currency: strings.ToUpper(bt.Currency), SourceID: bt.SourceID, Created: bt.Created.UTC(),
				Lookback: start.Before(from),
			})
		}
		heartbeat(ctx, fmt.Sprintf("balance transactions to %s: %d", end.Format(time.RFC3339), len(out.Transactions)))
		start = end
	}
	pos, err := prov.Payouts(ctx, from, to)
	if err != nil {
		return out, providerError(err)
	}
	for _, p := range pos {
		out.Payouts = append(out.Payouts, reconcile.Payout{ID: p.ID, Status: p.Status, AmountMinor: p.AmountMinor,
			Currency: strings.ToUpper(p.Currency), Created: p.Created.UTC()})
	}
	heartbeat(ctx, fmt.Sprintf("payouts: %d", len(out.Payouts)))

	if err := s.link(ctx, tenant, prov, req.Day, out.Transactions); err != nil {
		return out, err
	}
	return out, nil
}

// link fills in PaymentID and RefundID of ts in place.
func (s *Settlement) link(ctx context.Context, tenant uuid.UUID, prov provider.Provider, day workflows.SettlementDay, ts []reconcile.Transaction) error {
	var refundIDs, chargeIDs []string
	for _, t := range ts {
		switch t.Type {
		case "refund", "payment_refund":
			refundIDs = append(refundIDs, t.SourceID)
		case "charge", "payment":
			chargeIDs = append(chargeIDs, t.SourceID)
		}
	}
	if len(refundIDs)+len(chargeIDs) == 0 {
		return nil
	}
	type refundRow struct {
		ID               uuid.UUID
		PaymentID        uuid.UUID
		ProviderRefundID string
	}
	type eventRow struct {
		ObjectID  string
		PaymentID uuid.UUID
	}
	var (
		refunds []refundRow
		events  []eventRow
	)
	objects := append(slices.Clone(refundIDs), chargeIDs...)
	err := models.InTenant(ctx, s.DB, tenant, func(tx *gorm.DB) error {
		if len(refundIDs) > 0 {
			if err := tx.Raw(`SELECT id, payment_id, provider_refund_id FROM refunds WHERE provider_refund_id IN ?`, refundIDs).
				Scan(&refunds).Error; err != nil {
				return err
			}
		}
		// DISTINCT: one object usually has several events, all naming the
		// same payment; two payments for one object make it ambiguous.
		return tx.Raw(`SELECT DISTINCT object_id, payment_id FROM webhook_events
			WHERE object_id IN ? AND payment_id IS NOT NULL
			UNION
			SELECT DISTINCT charge_id, payment_id FROM webhook_events
			WHERE charge_id IN ? AND payment_id IS NOT NULL`, objects, chargeIDs).Scan(&events).Error
	})
	if err != nil {
		return fmt.Errorf("link provider items: %w", err)
	}
	refundOf := map[string]refundRow{}
	for _, r := range refunds {
		refundOf[r.ProviderRefundID] = r
	}
	paymentOf := unambiguous(events, func(e eventRow) (string, uuid.UUID) { return e.ObjectID, e.PaymentID })

	var unlinked []string
	linked := map[uuid.UUID]bool{}
	for i := range ts {
		t := &ts[i]
		if r, ok := refundOf[t.SourceID]; ok && (t.Type == "refund" || t.Type == "payment_refund") {
			t.PaymentID, t.RefundID = r.PaymentID.String(), r.ID.String()
			continue
		}
		if p, ok := paymentOf[t.SourceID]; ok {
			t.PaymentID = p.String()
			if t.Type == "charge" || t.Type == "payment" {
				linked[p] = true
			}
			continue
		}
		if t.Type == "charge" || t.Type == "payment" {
			unlinked = append(unlinked, t.SourceID)
		}
	}
	if len(unlinked) == 0 {
		return nil
	}
	found, err := s.chargesByIntent(ctx, tenant, prov, day, unlinked, linked)
	if err != nil {
		return err
	}
	for i := range ts {
		if p, ok := found[ts[i].SourceID]; ok && ts[i].PaymentID == "" {
			ts[i].PaymentID = p.String()
		}
	}
	return nil
}

// chargesByIntent asks the provider for the PaymentIntents of the payments
// with capture or fee entries around the day whose charge is not linked
// yet, and maps the latest charge of each to its payment. It covers
// charges whose webhook events were never stored; a charge that is not an
// intent's latest one (a retried attempt) or that belongs to a fee's own
// intent is not found this way.
func (s *Settlement) chargesByIntent(ctx context.Context, tenant uuid.UUID, prov provider.Provider, day workflows.SettlementDay,
	charges []string, linked map[uuid.UUID]bool) (map[string]uuid.UUID, error) {
	type intentRow struct {
		IntentID  string
		PaymentID uuid.UUID
	}
	var rows []intentRow
	err := models.InTenant(ctx, s.DB, tenant, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT DISTINCT p.provider_intent_id AS intent_id, p.id AS payment_id
			FROM payments p JOIN ledger_entries e ON e.payment_id = p.id
			WHERE p.provider = ? AND p.provider_intent_id IS NOT NULL AND e.kind IN ?
			  AND e.created_at >= ? AND e.created_at < ?
			ORDER BY 1, 2`, prov.Name(), []string{payments.KindCapture, payments.KindFee},
			day.From.Add(-settlementLookback), day.To.Add(settlementLookback)).Scan(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("list intents of the day: %w", err)
	}
	// stripe-mock answers every create with the same intent ID; an intent
	// shared by several payments cannot tell them apart.
	byIntent := unambiguous(rows, func(r intentRow) (string, uuid.UUID) { return r.IntentID, r.PaymentID })
	intents := make([]string, 0, len(byIntent))
	for id, payment := range byIntent {
		if !linked[payment] {
			intents = append(intents, id)
		}
	}
	slices.Sort(intents)

	want := map[string]bool{}
	for _, c := range charges {
		want[c] = true
	}
	found := map[string]uuid.UUID{}
	for _, id := range intents {
		if len(found) == len(want) {
			break
		}
		in, err := prov.GetIntent(ctx, id)
		if errors.Is(err, provider.ErrInvalidRequest) {
			continue // gone at the provider: nothing to link through it
		}
		if err != nil {
			return nil, providerError(err)
		}
		heartbeat(ctx, "intent "+id)
		if want[in.LatestChargeID] {
			found[in.LatestChargeID] = byIntent[id]
		}
	}
	return found, nil
}

// unambiguous maps each key to its value, dropping keys seen with more
// than one value.
func unambiguous[T any](rows []T, kv func(T) (string, uuid.UUID)) map[string]uuid.UUID {
	out := map[string]uuid.UUID{}
	bad := map[string]bool{}
	for _, r := range rows {
		k, v := kv(r)
		if old, ok := out[k]; ok && old != v {
			bad[k] = true
		}
		out[k] = v
	}
	for k := range bad {
		delete(out, k)
	}
	return out
}

// ReconcileDay records the facts the ledger copies from the provider (each
// payout, and each payment's provider fee, once by key) and matches the
// day's provider items against the ledger.
//
// The ledger entries matched are: the capture, refund and fee entries
// written during the day for payments of this provider, which the
// provider must show (see reconcile.Entry.InDay); and every entry of the
// payments and payouts the provider's items refer to, whenever written.
func (s *Settlement) ReconcileDay(ctx context.Context, req workflows.ReconcileRequest) (workflows.ReconcileResult, error) {
	tenant, err := uuid.Parse(req.TenantID)
	if err != nil {
		return workflows.ReconcileResult{}, invalidSettlement("tenant ID is not a UUID")
	}
	in := reconcile.Input{Transactions: req.Items.Transactions, Payouts: req.Items.Payouts}
	var recorded int
	err = models.InTenant(ctx, s.DB, tenant, func(tx *gorm.DB) error {
		ledger, err := loadLedger(tx, req)
		if err != nil {
			return err
		}
		in.Ledger = ledger
		facts := reconcile.Facts(in)
		for _, f := range facts {
			var pid *uuid.UUID
			if u, err := uuid.Parse(f.PaymentID); err == nil {
				pid = &u
			}
			added, err := appendFact(tx, tenant, pid, f.Entry)
			if err != nil {
				return fmt.Errorf("record %s: %w", f.Entry.Key, err)
			}
			if added {
				recorded++
			}
		}
		if len(facts) > 0 {
			// Read back what is stored: a key another writer got to
			// first keeps that writer's amounts, and those are what the
			// provider must agree with.
			if in.Ledger, err = loadLedger(tx, req); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return workflows.ReconcileResult{}, fmt.Errorf("reconcile day: %w", err)
	}
	return workflows.ReconcileResult{Result: reconcile.Reconcile(in), Recorded: recorded}, nil
}

// loadLedger reads the entries the day is matched against, each reduced to
// its posting to provider_balance.
func loadLedger(tx *gorm.DB, req workflows.ReconcileRequest) ([]reconcile.Entry, error) {
	paymentIDs := []uuid.UUID{}
	seen := map[string]bool{}
	for _, t := range req.Items.Transactions {
		if id, err := uuid.Parse(t.PaymentID); err == nil && !seen[t.PaymentID] {
			seen[t.PaymentID] = true
			paymentIDs = append(paymentIDs, id)
		}
	}
	payoutKeys := []string{}
	for _, p := range req.Items.Payouts {
		payoutKeys = append(payoutKeys, "payout:"+p.ID)
	}
	type row struct {
		Key         string
		Kind        string
		PaymentID   *uuid.UUID
		CreatedAt   time.Time
		AmountMinor int64
		Currency    string
	}
	var rows []row
	// IN () is not valid SQL; a nil UUID and an empty key match nothing.
	if len(paymentIDs) == 0 {
		paymentIDs = append(paymentIDs, uuid.Nil)
	}
	if len(payoutKeys) == 0 {
		payoutKeys = append(payoutKeys, "")
	}
	err := tx.Raw(`SELECT e.key, e.kind, e.payment_id, e.created_at, sum(p.amount_minor) AS amount_minor, min(p.currency) AS currency
		FROM ledger_entries e
		JOIN ledger_postings p ON p.entry_id = e.id AND p.account = ?
		LEFT JOIN payments pay ON pay.id = e.payment_id
		WHERE (e.kind IN ? AND e.created_at >= ? AND e.created_at < ? AND pay.provider = ?)
		   OR e.payment_id IN ?
		   OR e.key IN ?
		GROUP BY e.id, e.key, e.kind, e.payment_id, e.created_at
		ORDER BY e.key`,
		payments.AccountProviderBalance, ownKinds, req.Day.From, req.Day.To, req.Items.Provider, paymentIDs, payoutKeys).
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("load ledger: %w", err)
	}
	out := make([]reconcile.Entry, 0, len(rows))
	for _, r := range rows {
		e := reconcile.Entry{Key: r.Key, Kind: r.Kind, AmountMinor: r.AmountMinor, Currency: r.Currency, Created: r.CreatedAt.UTC()}
		if r.PaymentID != nil {
			e.PaymentID = r.PaymentID.String()
		}
		e.InDay = slices.Contains(ownKinds, r.Kind) && !r.CreatedAt.Before(req.Day.From) && r.CreatedAt.Before(req.Day.To)
		out = append(out, e)
	}
	return out, nil
}

// appendFact appends a ledger entry once by its key, like writeEntry, and
// says whether this call added it. The entry ID derives from the key as in
// writeEntry, so whichever writes a key first, the entry is the same. A
// payout belongs to no payment, so paymentID may be nil.
func appendFact(tx *gorm.DB, tenant uuid.UUID, paymentID *uuid.UUID, e payments.Entry) (bool, error) {
	if err := e.Validate(); err != nil {
		return false, err
	}
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("ledger:"+tenant.String()+":"+e.Key))
	res := tx.Exec(`INSERT INTO ledger_entries (id, tenant_id, key, kind, payment_id, memo) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, key) DO NOTHING`, id, tenant, e.Key, e.Kind, paymentID, e.Memo)
	if res.Error != nil || res.RowsAffected == 0 {
		return false, res.Error
	}
	for _, p := range e.Postings {
		if err := tx.Exec(`INSERT INTO ledger_postings (tenant_id, entry_id, account, amount_minor, currency) VALUES (?, ?, ?, ?, ?)`,
			tenant, id, p.Account, p.Amount.Amount, p.Amount.Currency).Error; err != nil {
			return false, err
		}
	}
	return true, nil
}

// settlementReport is the JSON form of a report. It holds no generation
// time, so that settling a day again with nothing changed stores the same
// document; the row's generated_at says when it was last written.
type settlementReport struct {
	TenantID      string           `json:"tenantID"`
	Day           string           `json:"day"`
	TimeZone      string           `json:"timeZone"`
	From          time.Time        `json:"from"`
	To            time.Time        `json:"to"`
	Provider      string           `json:"provider"`
	Status        string           `json:"status"`
	Transactions  int              `json:"transactions"`
	Payouts       int              `json:"payouts"`
	Matched       int              `json:"matched"`
	Discrepancies int              `json:"discrepancies"`
	Lines         []reconcile.Line `json:"lines"`
}

// WriteSettlementReport stores the day's report, replacing an earlier one
// of the same day in place (its ID stays), and one discrepancy per
// mismatched line by the line's key: a discrepancy found before is not
// opened again, an open one gets the latest amounts, and a resolved one
// stays resolved as billing staff left it. In a discrepancy,
// expected_minor is the ledger's amount and actual_minor the provider's.
//
// A discrepancy that a later run no longer finds is left as it is, for
// billing staff to resolve with a note; the report always shows the latest
// run. With an object store, the JSON and CSV files are also kept there
// (under the tenant's settlement/ prefix, named by the day; a re-run
// overwrites them) and object_key names the JSON.
func (s *Settlement) WriteSettlementReport(ctx context.Context, req workflows.SettlementReportRequest) (workflows.DaySettlement, error) {
	tenant, err := uuid.Parse(req.TenantID)
	if err != nil {
		return workflows.DaySettlement{}, invalidSettlement("tenant ID is not a UUID")
	}
	res := req.Result
	doc, err := json.Marshal(settlementReport{
		TenantID: req.TenantID, Day: req.Day.Day, TimeZone: req.TimeZone, From: req.Day.From.UTC(), To: req.Day.To.UTC(),
		Provider: req.Provider, Status: res.Status(), Transactions: res.Transactions, Payouts: res.Payouts,
		Matched: res.Matched, Discrepancies: res.Discrepancies, Lines: res.Lines,
	})
	if err != nil {
		return workflows.DaySettlement{}, fmt.Errorf("encode report: %w", err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	out := workflows.DaySettlement{Day: req.Day.Day, Status: res.Status(), Transactions: res.Transactions,
		Payouts: res.Payouts, Matched: res.Matched, Discrepancies: res.Discrepancies}
	csv := res.CSV()
	objectKey := ""
	if s.Store != nil {
		base := objstore.TenantPrefix(tenant) + "settlement/" + req.Day.Day
		obj, err := s.Store.PutKey(ctx, tenant, base+".json", doc, "application/json")
		if err != nil {
			return out, fmt.Errorf("store report: %w", err)
		}
		if _, err := s.Store.PutKey(ctx, tenant, base+".csv", []byte(csv), "text/csv"); err != nil {
			return out, fmt.Errorf("store report CSV: %w", err)
		}
		objectKey = obj.Key
	}
	err = models.InTenant(ctx, s.DB, tenant, func(tx *gorm.DB) error {
		var report struct{ ID uuid.UUID }
		err := tx.Raw(`INSERT INTO settlement_reports (id, tenant_id, day, time_zone, provider, status, transactions, payouts,
				matched, discrepancies, report_json, report_csv, object_key, generated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, day) DO UPDATE SET time_zone = EXCLUDED.time_zone, provider = EXCLUDED.provider,
				status = EXCLUDED.status, transactions = EXCLUDED.transactions, payouts = EXCLUDED.payouts,
				matched = EXCLUDED.matched, discrepancies = EXCLUDED.discrepancies, report_json = EXCLUDED.report_json,
				report_csv = EXCLUDED.report_csv, object_key = EXCLUDED.object_key, generated_at = EXCLUDED.generated_at
			RETURNING id`,
			uuid.NewSHA1(uuid.NameSpaceURL, []byte("settlement-report:"+tenant.String()+":"+req.Day.Day)), tenant, req.Day.Day,
			req.TimeZone, req.Provider, res.Status(), res.Transactions, res.Payouts, res.Matched, res.Discrepancies,
			string(doc), csv, objectKey, now().UTC()).Scan(&report).Error
		if err != nil {
			return fmt.Errorf("upsert report: %w", err)
		}
		out.ReportID = report.ID.String()
		for _, l := range res.Lines {
			if !reconcile.IsDiscrepancy(l.Status) {
				continue
			}
			var pid *uuid.UUID
			if u, err := uuid.Parse(l.PaymentID); err == nil {
				pid = &u
			}
			// xmax is 0 on a row this statement inserted; an update of an
			// open item returns it with xmax set, a resolved one not at all.
			var inserted []struct{ Inserted bool }
			err := tx.Raw(`INSERT INTO discrepancies (id, tenant_id, day, key, kind, payment_id, provider_object, ledger_key,
					expected_minor, actual_minor, currency)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (tenant_id, key) DO UPDATE SET payment_id = EXCLUDED.payment_id,
					provider_object = EXCLUDED.provider_object, ledger_key = EXCLUDED.ledger_key,
					expected_minor = EXCLUDED.expected_minor, actual_minor = EXCLUDED.actual_minor, currency = EXCLUDED.currency
				WHERE discrepancies.status = 'open'
				RETURNING (xmax = 0) AS inserted`,
				uuid.NewSHA1(uuid.NameSpaceURL, []byte("discrepancy:"+tenant.String()+":"+l.Key)), tenant, req.Day.Day, l.Key,
				l.Status, pid, l.ProviderObject, l.LedgerKey, l.LedgerMinor, l.ProviderMinor, l.Currency()).Scan(&inserted).Error
			if err != nil {
				return fmt.Errorf("upsert discrepancy: %w", err)
			}
			if len(inserted) == 1 && inserted[0].Inserted {
				out.Opened++
			}
		}
		return nil
	})
	if err != nil {
		return workflows.DaySettlement{}, err
	}
	return out, nil
}

func invalidSettlement(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, workflows.ErrTypeInvalidSettlement, nil)
}

// heartbeat records progress when ctx is an activity's; the methods can
// also be called directly, e.g. from a maintenance command.
func heartbeat(ctx context.Context, details string) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, details)
	}
}
