// Package reconcile matches what the payment provider says happened to a
// tenant's money on one day against what Carebook's ledger says, and
// describes every item, matched or not, as a line of the day's settlement
// report. A mismatch is a line whose status is one of the discrepancy
// kinds; its Key names it stably, so that settling the same day again finds
// the same discrepancy instead of opening another.
//
// The package is pure: no I/O and no clock. The settlement activities fetch
// the provider's items, link each to its Carebook payment or refund, load
// the ledger, and pass everything in; they record what Facts returns before
// calling Reconcile, so that the facts the ledger copies from the provider
// (payouts, the provider's fees) are matched like everything else.
//
// Amounts are signed movements of the provider balance in minor units,
// the way the ledger's provider_balance account sees them: a charge is
// positive; a refund, a payout and the provider's fee are negative.
package reconcile

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/carebook/carebook/payments"
)

// The statuses of a Line that are not discrepancies.
const (
	// StatusMatched means the provider's item and the ledger entry agree.
	StatusMatched = "matched"
	// StatusInfo marks a provider item that is checked through another
	// line: a balance transaction of type payout mirrors the payout
	// itself, which is matched against the ledger on its own line.
	StatusInfo = "info"
)

// The discrepancy kinds, spelled as the discrepancies.kind column.
const (
	// KindMissingInLedger: the provider moved money that no ledger entry
	// records (or that the entry cannot be found for).
	KindMissingInLedger = "missing_in_ledger"
	// KindMissingAtProvider: a ledger entry of the day has no provider
	// item behind it.
	KindMissingAtProvider = "missing_at_provider"
	// KindAmountDiffers: both sides know the movement but not its size.
	KindAmountDiffers = "amount_differs"
	// KindCurrencyDiffers: both sides know the movement but not its
	// currency (e.g. an account that settles in another currency).
	KindCurrencyDiffers = "currency_differs"
	// KindDuplicate: the provider lists the same item twice, or a second
	// item for a ledger entry that another item already matched.
	KindDuplicate = "duplicate"
)

// Kinds lists the discrepancy kinds.
var Kinds = []string{KindMissingInLedger, KindMissingAtProvider, KindAmountDiffers, KindCurrencyDiffers, KindDuplicate}

// IsDiscrepancy reports whether a line status is a discrepancy kind.
func IsDiscrepancy(status string) bool { return slices.Contains(Kinds, status) }

// What a Line is about, beyond the provider's own balance transaction types
// (which are passed through as they come).
const (
	TypeCharge      = "charge"
	TypeRefund      = "refund"
	TypePayout      = "payout"
	TypeProviderFee = "provider_fee"
)

// Stripe's balance transaction types that Carebook's ledger records. A
// "payment" is a charge by a non-card method; "payment_refund" its refund.
var (
	chargeTypes = []string{"charge", "payment"}
	refundTypes = []string{"refund", "payment_refund"}
	payoutTypes = []string{"payout"}
)

// Ledger entry kinds that a provider charge can stand behind: the capture
// of a visit, or a fee taken by capture or by an off-session charge.
var moneyInKinds = []string{payments.KindCapture, payments.KindFee}

// Transaction is one of the provider's balance transactions, with the
// Carebook IDs the settlement activity linked it to.
type Transaction struct {
	ID          string
	Type        string // the provider's type: charge, refund, payout, adjustment...
	AmountMinor int64  // gross, signed as the provider gives it
	FeeMinor    int64  // what the provider kept
	Currency    string
	SourceID    string // the charge, refund or payout behind it
	Created     time.Time

	// PaymentID is the Carebook payment the source belongs to, or "" when
	// it could not be linked.
	PaymentID string
	// RefundID is Carebook's ID of a refund, found by the provider's
	// refund ID; it completes the ledger key of the refund entry.
	RefundID string
	// Lookback marks an item created shortly before the day. It belongs to
	// the previous day's report and is used here only to explain a ledger
	// entry of the day that was written after midnight.
	Lookback bool
}

// Payout is one of the provider's payouts to the clinic's bank.
type Payout struct {
	ID          string
	Status      string
	AmountMinor int64 // positive, as the provider gives it
	Currency    string
	Created     time.Time
}

// Entry is a ledger entry reduced to what matching needs.
type Entry struct {
	Key       string
	Kind      string
	PaymentID string
	// AmountMinor is the entry's posting to provider_balance.
	AmountMinor int64
	Currency    string
	Created     time.Time
	// InDay marks an entry the day is answerable for: if no provider
	// item matches it, it is missing at the provider. Entries loaded only
	// because a provider item refers to them are not InDay.
	InDay bool
}

// Input is one day of one tenant.
type Input struct {
	Transactions []Transaction
	Payouts      []Payout
	Ledger       []Entry
}

// Line is one row of the settlement report.
type Line struct {
	// Status is StatusMatched, StatusInfo, or one of the Kinds.
	Status string `json:"status"`
	// Key identifies a discrepancy across runs (see discrepancyKey); empty
	// on other lines.
	Key            string `json:"key,omitempty"`
	Type           string `json:"type"`
	ProviderObject string `json:"providerObject,omitempty"` // balance transaction or payout ID
	SourceID       string `json:"sourceID,omitempty"`
	LedgerKey      string `json:"ledgerKey,omitempty"`
	PaymentID      string `json:"paymentID,omitempty"`
	// The two sides, signed as provider-balance movements; nil where a
	// side has nothing.
	ProviderMinor    *int64 `json:"providerMinor,omitempty"`
	ProviderCurrency string `json:"providerCurrency,omitempty"`
	LedgerMinor      *int64 `json:"ledgerMinor,omitempty"`
	LedgerCurrency   string `json:"ledgerCurrency,omitempty"`
	Note             string `json:"note,omitempty"`
}

// Currency is the line's currency: the provider's, else the ledger's.
func (l Line) Currency() string { return cmp.Or(l.ProviderCurrency, l.LedgerCurrency) }

// Result is a day's reconciliation.
type Result struct {
	Lines []Line `json:"lines"`
	// Transactions and Payouts count the provider's items of the day (not
	// the look-back ones); Matched and Discrepancies count lines.
	Transactions  int `json:"transactions"`
	Payouts       int `json:"payouts"`
	Matched       int `json:"matched"`
	Discrepancies int `json:"discrepancies"`
}

// The statuses of a report, as settlement_reports.status.
const (
	ReportMatched    = "matched"
	ReportMismatched = "mismatched"
)

// Status is ReportMatched when no line is a discrepancy.
func (r Result) Status() string {
	if r.Discrepancies > 0 {
		return ReportMismatched
	}
	return ReportMatched
}

// Reconcile matches in's provider items against its ledger entries and
// returns one line per provider item, per payment's provider fee, and per
// ledger entry of the day that nothing matched, in a stable order: the
// day's balance transactions by time, the look-back ones that explain an
// entry, the provider fees by payment, the payouts by time, then the
// entries missing at the provider by key.
//
// A charge is matched to an unmatched capture or fee entry of its payment,
// preferring one of the same amount and currency; a refund to the entry
// "payment:<id>:refund:<refund id>"; a payout to "payout:<id>"; the sum of
// the provider's fees on a payment's charges of the day to
// "payment:<id>:provider_fee". A second charge for a payment whose entries
// are all matched is a duplicate, as is an item listed twice.
func Reconcile(in Input) Result {
	r := &reconciler{
		entries:   map[string]Entry{},
		byPayment: map[string][]Entry{},
		used:      map[string]bool{},
	}
	for _, e := range in.Ledger {
		if _, ok := r.entries[e.Key]; ok {
			continue // the store's keys are unique; a repeat is the same entry
		}
		r.entries[e.Key] = e
		if e.PaymentID != "" && slices.Contains(moneyInKinds, e.Kind) {
			r.byPayment[e.PaymentID] = append(r.byPayment[e.PaymentID], e)
		}
	}
	for _, es := range r.byPayment {
		slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	}

	day, lookback := splitTransactions(in.Transactions)
	r.res.Transactions = len(day)
	seen := map[string]string{} // balance transaction ID → status of its first line
	for _, t := range day {
		if _, dup := seen[t.ID]; dup {
			r.add(Line{Status: KindDuplicate, Type: t.Type, ProviderObject: t.ID, SourceID: t.SourceID, PaymentID: t.PaymentID,
				ProviderMinor: ptr(t.AmountMinor), ProviderCurrency: t.Currency, Note: "the provider listed this balance transaction twice"})
			continue
		}
		r.transaction(t)
		seen[t.ID] = ""
	}
	for _, t := range lookback {
		if _, ok := seen[t.ID]; ok {
			continue
		}
		seen[t.ID] = ""
		r.lookback(t)
	}
	r.providerFees(day)
	r.payouts(in.Payouts)
	r.missingAtProvider()
	return r.res
}

type reconciler struct {
	entries   map[string]Entry
	byPayment map[string][]Entry // capture and fee entries by payment, by key
	used      map[string]bool    // ledger keys a provider item has matched
	res       Result
}

func (r *reconciler) add(l Line) {
	switch {
	case l.Status == StatusMatched:
		r.res.Matched++
	case IsDiscrepancy(l.Status):
		r.res.Discrepancies++
		l.Key = discrepancyKey(l)
	}
	r.res.Lines = append(r.res.Lines, l)
}

// discrepancyKey names a discrepancy by its kind and the object it is
// about: the provider's item when there is one (a balance transaction or
// payout ID, never reused by the provider), else the ledger entry's key
// (itself unique per tenant). A provider-fee line sums several charges,
// so it is named by its ledger key. The same mismatch found again, by a
// re-run or by the next day's look-back, gets the same key.
func discrepancyKey(l Line) string {
	subject := l.ProviderObject
	if subject == "" || l.Type == TypeProviderFee {
		subject = l.LedgerKey
	}
	return l.Status + ":" + subject
}

// splitTransactions orders the day's items and the look-back ones by time
// and ID, so that "the first" of two is the same on every run.
func splitTransactions(ts []Transaction) (day, lookback []Transaction) {
	for _, t := range ts {
		if t.Lookback {
			lookback = append(lookback, t)
		} else {
			day = append(day, t)
		}
	}
	byTime := func(a, b Transaction) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	}
	slices.SortStableFunc(day, byTime)
	slices.SortStableFunc(lookback, byTime)
	return day, lookback
}

func (r *reconciler) transaction(t Transaction) {
	base := Line{Type: t.Type, ProviderObject: t.ID, SourceID: t.SourceID, PaymentID: t.PaymentID,
		ProviderMinor: ptr(t.AmountMinor), ProviderCurrency: t.Currency}
	switch {
	case slices.Contains(chargeTypes, t.Type):
		r.charge(t, base)
	case slices.Contains(refundTypes, t.Type):
		r.refund(t, base)
	case slices.Contains(payoutTypes, t.Type):
		base.Status = StatusInfo
		base.Note = "mirrors payout " + t.SourceID + ", matched on its own line"
		r.add(base)
	default:
		// Disputes, adjustments, failed or cancelled payouts, the
		// provider's own billing: money moved and the ledger has no entry
		// kind for it, so billing staff must book it by hand.
		base.Status = KindMissingInLedger
		base.Note = "the ledger records no balance transactions of type " + t.Type
		r.add(base)
	}
}

func (r *reconciler) charge(t Transaction, l Line) {
	if t.PaymentID == "" {
		l.Status = KindMissingInLedger
		l.Note = "charge " + t.SourceID + " is not linked to a Carebook payment"
		r.add(l)
		return
	}
	e, ok := r.pickMoneyIn(t)
	if !ok {
		if len(r.byPayment[t.PaymentID]) > 0 {
			l.Status = KindDuplicate
			l.Note = "every capture and fee entry of the payment is already matched by another charge"
		} else {
			l.Status = KindMissingInLedger
			l.LedgerKey = "payment:" + t.PaymentID + ":capture"
			l.Note = "no capture or fee entry for the payment"
		}
		r.add(l)
		return
	}
	r.compare(l, e)
}

// pickMoneyIn chooses the unmatched capture or fee entry of t's payment
// that t most likely stands for: same amount and currency, else same
// currency, else the first by key.
func (r *reconciler) pickMoneyIn(t Transaction) (Entry, bool) {
	var free []Entry
	for _, e := range r.byPayment[t.PaymentID] {
		if !r.used[e.Key] {
			free = append(free, e)
		}
	}
	if len(free) == 0 {
		return Entry{}, false
	}
	for _, e := range free {
		if e.AmountMinor == t.AmountMinor && e.Currency == t.Currency {
			return e, true
		}
	}
	for _, e := range free {
		if e.Currency == t.Currency {
			return e, true
		}
	}
	return free[0], true
}

func (r *reconciler) refund(t Transaction, l Line) {
	if t.PaymentID == "" || t.RefundID == "" {
		l.Status = KindMissingInLedger
		l.Note = "refund " + t.SourceID + " is not linked to a Carebook refund"
		r.add(l)
		return
	}
	key := refundKey(t)
	l.LedgerKey = key
	e, ok := r.entries[key]
	switch {
	case !ok:
		l.Status = KindMissingInLedger
		l.Note = "the refund has no ledger entry"
		r.add(l)
	case r.used[key]:
		l.Status = KindDuplicate
		l.Note = "the refund's entry is already matched by another balance transaction"
		r.add(l)
	default:
		r.compare(l, e)
	}
}

func refundKey(t Transaction) string { return "payment:" + t.PaymentID + ":refund:" + t.RefundID }

// lookback matches an item of the previous day only to an entry the day
// is answerable for and that nothing of the day matched; anything else
// about it is the previous day's report's business.
func (r *reconciler) lookback(t Transaction) {
	var e Entry
	switch {
	case t.PaymentID == "":
		return
	case slices.Contains(chargeTypes, t.Type):
		var ok bool
		if e, ok = r.pickMoneyIn(t); !ok || !e.InDay {
			return
		}
	case slices.Contains(refundTypes, t.Type) && t.RefundID != "":
		var ok bool
		if e, ok = r.entries[refundKey(t)]; !ok || !e.InDay || r.used[e.Key] {
			return
		}
	default:
		return
	}
	r.compare(Line{Type: t.Type, ProviderObject: t.ID, SourceID: t.SourceID, PaymentID: t.PaymentID,
		ProviderMinor: ptr(t.AmountMinor), ProviderCurrency: t.Currency,
		Note: "provider item of the previous day; its ledger entry was written after midnight"}, e)
}

// compare fills in the ledger side of l from e, marks e matched and adds
// the line with the status the two sides earn.
func (r *reconciler) compare(l Line, e Entry) {
	r.used[e.Key] = true
	l.LedgerKey = e.Key
	l.LedgerMinor = ptr(e.AmountMinor)
	l.LedgerCurrency = e.Currency
	if l.PaymentID == "" {
		l.PaymentID = e.PaymentID
	}
	switch {
	case l.ProviderCurrency != e.Currency:
		l.Status = KindCurrencyDiffers
	case *l.ProviderMinor != e.AmountMinor:
		l.Status = KindAmountDiffers
	default:
		l.Status = StatusMatched
	}
	r.add(l)
}

// feeSum is the provider's fees on one payment's charges of the day.
type feeSum struct {
	paymentID string
	first     string // the first charge's balance transaction
	minor     int64
	currency  string
	mixed     bool // the charges were in more than one currency
}

// providerFees sums, per payment, the fees on the day's charges, each
// balance transaction once, ordered by payment.
func providerFees(day []Transaction) []feeSum {
	byPayment := map[string]*feeSum{}
	seen := map[string]bool{}
	for _, t := range day {
		if t.Lookback || t.PaymentID == "" || t.FeeMinor == 0 || seen[t.ID] || !slices.Contains(chargeTypes, t.Type) {
			continue
		}
		seen[t.ID] = true
		f := byPayment[t.PaymentID]
		if f == nil {
			f = &feeSum{paymentID: t.PaymentID, first: t.ID, currency: t.Currency}
			byPayment[t.PaymentID] = f
		}
		if f.currency != t.Currency {
			f.mixed = true
		}
		f.minor += t.FeeMinor
	}
	out := make([]feeSum, 0, len(byPayment))
	for _, f := range byPayment {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b feeSum) int { return strings.Compare(a.paymentID, b.paymentID) })
	return out
}

func providerFeeKey(paymentID string) string { return "payment:" + paymentID + ":provider_fee" }

func (r *reconciler) providerFees(day []Transaction) {
	for _, f := range providerFees(day) {
		key := providerFeeKey(f.paymentID)
		l := Line{Type: TypeProviderFee, ProviderObject: f.first, LedgerKey: key, PaymentID: f.paymentID,
			ProviderMinor: ptr(-f.minor), ProviderCurrency: f.currency}
		e, ok := r.entries[key]
		switch {
		case f.mixed:
			l.Status = KindCurrencyDiffers
			l.Note = "the payment's charges are in more than one currency"
			r.add(l)
		case !ok:
			l.Status = KindMissingInLedger
			l.Note = "the provider's fee on the payment is not recorded"
			r.add(l)
		default:
			r.compare(l, e)
		}
	}
}

func payoutKey(id string) string { return "payout:" + id }

func (r *reconciler) payouts(ps []Payout) {
	ps = slices.Clone(ps)
	slices.SortStableFunc(ps, func(a, b Payout) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	seen := map[string]bool{}
	for _, p := range ps {
		l := Line{Type: TypePayout, ProviderObject: p.ID, ProviderMinor: ptr(-p.AmountMinor), ProviderCurrency: p.Currency,
			LedgerKey: payoutKey(p.ID)}
		if seen[p.ID] {
			l.Status = KindDuplicate
			l.Note = "the provider listed this payout twice"
			r.add(l)
			continue
		}
		seen[p.ID] = true
		r.res.Payouts++
		if p.Status != "" && p.Status != "paid" {
			l.Note = "payout is " + p.Status + " at the provider"
		}
		e, ok := r.entries[l.LedgerKey]
		if !ok {
			l.Status = KindMissingInLedger
			l.Note = strings.TrimPrefix(l.Note+"; the payout has no ledger entry", "; ")
			r.add(l)
			continue
		}
		r.compare(l, e)
	}
}

func (r *reconciler) missingAtProvider() {
	var keys []string
	for k, e := range r.entries {
		if e.InDay && !r.used[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		e := r.entries[k]
		r.add(Line{Status: KindMissingAtProvider, Type: e.Kind, LedgerKey: k, PaymentID: e.PaymentID,
			LedgerMinor: ptr(e.AmountMinor), LedgerCurrency: e.Currency,
			Note: "no provider item of the day matches this ledger entry"})
	}
}

// Fact is a ledger entry that copies a fact from the provider, with the
// payment it belongs to ("" for a payout).
type Fact struct {
	Entry     payments.Entry
	PaymentID string
}

// Facts returns the ledger entries that copy facts from the provider and
// are not in in.Ledger yet: a PaidOut entry per payout, and a ProviderFee
// entry per payment with the sum of the provider's fees on its charges of
// the day. Payouts are recorded whatever their status: the provider takes
// the money from the balance when the payout is created, and a failure or
// cancellation comes back as its own balance transaction, which Reconcile
// reports for billing staff to book.
//
// An item the ledger builders refuse (a zero amount, an ID with ':') gets
// no entry; Reconcile then reports it as missing in the ledger. The ledger
// holds one provider fee per payment, so a fee on a payment's charge of a
// later day cannot be added and is reported as an amount difference.
func Facts(in Input) []Fact {
	have := map[string]bool{}
	for _, e := range in.Ledger {
		have[e.Key] = true
	}
	var out []Fact
	day, _ := splitTransactions(in.Transactions)
	for _, f := range providerFees(day) {
		if f.mixed || f.minor <= 0 || have[providerFeeKey(f.paymentID)] {
			continue
		}
		if e, err := payments.ProviderFee(f.paymentID, payments.Money{Amount: f.minor, Currency: f.currency}); err == nil {
			out = append(out, Fact{Entry: e, PaymentID: f.paymentID})
			have[e.Key] = true
		}
	}
	for _, p := range in.Payouts {
		if have[payoutKey(p.ID)] {
			continue
		}
		if e, err := payments.PaidOut(p.ID, payments.Money{Amount: p.AmountMinor, Currency: p.Currency}); err == nil {
			out = append(out, Fact{Entry: e})
			have[e.Key] = true
		}
	}
	return out
}

// FromEntry reduces a ledger entry to what matching needs: its posting to
// provider_balance (the first, in its currency). An entry that does not
// touch provider_balance has nothing to match and returns false.
func FromEntry(e payments.Entry, paymentID string, created time.Time, inDay bool) (Entry, bool) {
	for _, p := range e.Postings {
		if p.Account == payments.AccountProviderBalance {
			return Entry{Key: e.Key, Kind: e.Kind, PaymentID: paymentID, AmountMinor: p.Amount.Amount,
				Currency: p.Amount.Currency, Created: created, InDay: inDay}, true
		}
	}
	return Entry{}, false
}

// csvHeader names the report's CSV columns. Amounts are signed minor units
// of the provider balance, as in Line.
var csvHeader = []string{"status", "key", "type", "provider_object", "source_id", "ledger_key", "payment_id",
	"provider_minor", "provider_currency", "ledger_minor", "ledger_currency", "note"}

// CSV renders every line of r, matched or not, with a header row.
func (r Result) CSV() string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(csvHeader) // a bytes.Buffer does not fail
	for _, l := range r.Lines {
		_ = w.Write([]string{l.Status, l.Key, l.Type, l.ProviderObject, l.SourceID, l.LedgerKey, l.PaymentID,
			minor(l.ProviderMinor), l.ProviderCurrency, minor(l.LedgerMinor), l.LedgerCurrency, l.Note})
	}
	w.Flush()
	return b.String()
}

func minor(v *int64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(*v, 10)
}

func ptr(v int64) *int64 { return &v }

// DayLayout is how a settlement day is written: an ISO 8601 calendar date.
const DayLayout = time.DateOnly

// DayWindow returns the instants [from, to) that bound day (YYYY-MM-DD) in
// loc: from the day's first instant to the next day's, so a day with a
// daylight saving shift is 23 or 25 hours long. In a zone whose clocks
// skip midnight itself (America/Santiago in September), the day starts at
// the shift.
func DayWindow(day string, loc *time.Location) (from, to time.Time, err error) {
	d, err := time.Parse(DayLayout, day)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("reconcile: day %q is not YYYY-MM-DD", day)
	}
	return startOfDay(d, loc), startOfDay(d.AddDate(0, 0, 1), loc), nil
}

// startOfDay is the first instant of d's calendar date in loc. For a
// local time that does not exist, time.Date may answer an instant of the
// day before; the day then starts where that instant's zone offset ends.
func startOfDay(d time.Time, loc *time.Location) time.Time {
	y, m, dd := d.Date()
	t := time.Date(y, m, dd, 0, 0, 0, 0, loc)
	if ly, lm, ld := t.Date(); ly != y || lm != m || ld != dd {
		if _, end := t.ZoneBounds(); !end.IsZero() {
			t = end
		}
	}
	return t
}

// Yesterday returns the calendar day before now's day in loc.
func Yesterday(now time.Time, loc *time.Location) string {
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d-1, 12, 0, 0, 0, loc).Format(DayLayout)
}

// Days lists the calendar days from first to last, both included, or
// returns an error when either is malformed or last is before first.
func Days(first, last string) ([]string, error) {
	a, err := time.Parse(DayLayout, first)
	if err != nil {
		return nil, fmt.Errorf("reconcile: day %q is not YYYY-MM-DD", first)
	}
	b, err := time.Parse(DayLayout, last)
	if err != nil {
		return nil, fmt.Errorf("reconcile: day %q is not YYYY-MM-DD", last)
	}
	if b.Before(a) {
		return nil, fmt.Errorf("reconcile: %s is before %s", last, first)
	}
	var out []string
	for d := a; !d.After(b); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(DayLayout))
	}
	return out, nil
}
