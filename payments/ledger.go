package payments

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The ledger's accounts. Each Carebook tenant (clinic) has one set; the
// store scopes entries by tenant, so the names carry no tenant.
//
// With debits positive (see Posting), the accounts that normally hold a
// positive balance are provider_balance, patient_receivable, payouts,
// provider_fees and refunds; clinic_revenue and fees normally hold a
// negative one, because income is a credit.
const (
	// AccountPatientReceivable is money patients owe the clinic but have not
	// paid. The Stripe builders below do not touch it, because on that path
	// the clinic earns money at the instant Stripe secures it (capture, or a
	// successful off-session fee charge): a receivable would open and close
	// inside one entry and show nothing. It exists for the offline provider
	// (pay at the desk) and for fees whose charge has not yet succeeded.
	AccountPatientReceivable = "patient_receivable"
	// AccountClinicRevenue is income from visits, credited on capture.
	AccountClinicRevenue = "clinic_revenue"
	// AccountRefunds is money given back to patients. It is kept apart from
	// clinic_revenue (a contra-revenue account) rather than debiting revenue
	// directly, so billing staff see gross takings and refunds separately.
	AccountRefunds = "refunds"
	// AccountFees is income from no-show and late-cancellation fees, kept
	// apart from visit revenue because clinics report it separately.
	AccountFees = "fees"
	// AccountProviderFees is what Stripe keeps for processing, an expense.
	AccountProviderFees = "provider_fees"
	// AccountProviderBalance is money held for the clinic at Stripe. Its
	// balance is what nightly reconciliation compares with Stripe's own
	// balance: captures and fees in, minus refunds, Stripe's fees and payouts.
	AccountProviderBalance = "provider_balance"
	// AccountPayouts is money Stripe has paid out to the clinic's bank. It
	// only grows: the total ever paid out.
	AccountPayouts = "payouts"
)

// accounts is the closed chart of accounts: a posting to any other name is
// a typo, and a typo in a ledger is a silent hole in the books.
var accounts = []string{
	AccountPatientReceivable,
	AccountClinicRevenue,
	AccountRefunds,
	AccountFees,
	AccountProviderFees,
	AccountProviderBalance,
	AccountPayouts,
}

// The kinds of Entry the builders make, stored with each entry so billing
// staff can filter a payment's timeline without reading its postings.
const (
	// KindCapture is made by Captured.
	KindCapture = "capture"
	// KindRefund is made by Refunded.
	KindRefund = "refund"
	// KindFee is made by FeeCharged.
	KindFee = "fee"
	// KindProviderFee is made by ProviderFee.
	KindProviderFee = "provider_fee"
	// KindPayout is made by PaidOut.
	KindPayout = "payout"
)

// The fee kinds FeeCharged accepts. They appear in entry keys, so each kind
// of fee can be charged at most once per payment.
const (
	// FeeNoShow is the fee for not coming; "noshow" matches the name of the
	// appointment's closing state.
	FeeNoShow = "noshow"
	// FeeLateCancel is the fee for cancelling inside the paid window.
	FeeLateCancel = "late_cancel"
)

// ErrInvalidEntry is wrapped, with the reason, by Entry.Validate and by the
// builders when an entry would not balance or its inputs are unusable.
var ErrInvalidEntry = errors.New("payments: invalid ledger entry")

// Posting is one line of an Entry: an amount moved into or out of an
// account. The sign says which: a debit is positive and a credit negative,
// so the postings of a balanced entry sum to zero in each currency and an
// account's balance is the plain sum of its postings.
type Posting struct {
	Account string
	Amount  Money
}

// Entry is one business event in the ledger, recorded once and never
// changed; a mistake is corrected by a new entry, not by editing an old one.
//
// Key is the entry's idempotency key, unique per tenant: the store inserts
// an entry only if its key is new, so an activity that runs again after a
// crash writes nothing twice. The builders derive it from the business IDs,
// e.g. "payment:<id>:capture". Kind is one of the Kind constants; Memo is a
// short note for billing staff and must hold no patient data.
//
// An authorization (a card hold) is deliberately not an Entry: it moves no
// money, only reserves it, and an entry needs at least two non-zero
// postings. The hold is part of the payment's state and timeline instead;
// the ledger starts at capture.
type Entry struct {
	Key      string
	Kind     string
	Postings []Posting
	Memo     string
}

// Validate returns nil if e can be appended to the ledger, and otherwise an
// error wrapping ErrInvalidEntry that says why: the key is empty, there are
// fewer than two postings, a posting names an unknown account, has a
// malformed currency or a zero amount, or the postings do not sum to zero in
// every currency.
func (e Entry) Validate() error {
	if strings.TrimSpace(e.Key) == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidEntry)
	}
	if len(e.Postings) < 2 {
		return fmt.Errorf("%w: %s: %d postings, need at least 2", ErrInvalidEntry, e.Key, len(e.Postings))
	}
	sums := make(map[string]int64)
	for i, p := range e.Postings {
		if !slices.Contains(accounts, p.Account) {
			return fmt.Errorf("%w: %s: posting %d: unknown account %q", ErrInvalidEntry, e.Key, i, p.Account)
		}
		if err := p.Amount.Validate(); err != nil {
			return fmt.Errorf("%w: %s: posting %d: %w", ErrInvalidEntry, e.Key, i, err)
		}
		if p.Amount.IsZero() {
			// A zero line records nothing and usually means an amount was
			// lost on the way in.
			return fmt.Errorf("%w: %s: posting %d: zero amount", ErrInvalidEntry, e.Key, i)
		}
		s, ok := addInt64(sums[p.Amount.Currency], p.Amount.Amount)
		if !ok {
			return fmt.Errorf("%w: %s: %w", ErrInvalidEntry, e.Key, ErrOverflow)
		}
		sums[p.Amount.Currency] = s
	}
	for cur, s := range sums {
		if s != 0 {
			return fmt.Errorf("%w: %s: postings in %s sum to %d, not 0", ErrInvalidEntry, e.Key, cur, s)
		}
	}
	return nil
}

// Equal reports whether e and o are the same entry: same key, kind, memo
// and postings in the same order. A store that finds an existing entry
// under a new entry's key uses it to tell a harmless replay (equal) from a
// key reused for different money (a bug to surface, not to swallow).
func (e Entry) Equal(o Entry) bool {
	return e.Key == o.Key && e.Kind == o.Kind && e.Memo == o.Memo &&
		slices.Equal(e.Postings, o.Postings)
}

// Balances derives every account's balance from entries, as
// account → currency → sum of postings in minor units (debits positive).
// Balances are never stored or edited, only computed from the entries, so
// they cannot drift from the history that explains them.
//
// An entry whose key was already seen is skipped, as the store skips it on
// insert, so a replayed step cannot count twice. Entries are not validated
// here; the store validates each one before appending it.
func Balances(entries []Entry) map[string]map[string]int64 {
	out := make(map[string]map[string]int64)
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if seen[e.Key] {
			continue
		}
		seen[e.Key] = true
		for _, p := range e.Postings {
			byCur := out[p.Account]
			if byCur == nil {
				byCur = make(map[string]int64)
				out[p.Account] = byCur
			}
			byCur[p.Amount.Currency] += p.Amount.Amount
		}
	}
	return out
}

// Captured records the capture of a payment: the money is now held at
// Stripe (debit provider_balance) and earned by the clinic (credit
// clinic_revenue). Key: "payment:<paymentID>:capture", so a payment is
// captured at most once.
//
// For a hold that a late cancellation turns into a fee, record the captured
// part with FeeCharged instead, so clinic_revenue counts only visits.
func Captured(paymentID string, amount Money) (Entry, error) {
	return build(
		"payment:"+paymentID+":capture",
		KindCapture,
		"capture of payment "+paymentID,
		AccountProviderBalance,
		AccountClinicRevenue,
		amount,
		paymentID,
	)
}

// Refunded records a refund, full or partial, of a captured payment: money
// leaves the Stripe balance (credit provider_balance) and is counted as
// given back (debit refunds). Key: "payment:<paymentID>:refund:<refundID>",
// where refundID is Carebook's ID for the refund, fixed before Stripe is
// called, so each refund is recorded once however often its step retries.
//
// Stripe does not return its processing fee on a refund, so no provider fee
// is reversed here.
func Refunded(paymentID, refundID string, amount Money) (Entry, error) {
	return build(
		"payment:"+paymentID+":refund:"+refundID,
		KindRefund,
		"refund "+refundID+" of payment "+paymentID,
		AccountRefunds,
		AccountProviderBalance,
		amount,
		paymentID, refundID,
	)
}

// FeeCharged records a no-show or late-cancellation fee that Stripe has
// collected, either by an off-session charge of the saved card or by
// capturing part of a hold: the money is held at Stripe (debit
// provider_balance) and earned as fee income (credit fees). kind is
// FeeNoShow or FeeLateCancel. Key: "payment:<paymentID>:fee:<kind>", so each
// kind of fee is charged at most once per payment.
//
// When the full price was captured earlier and a late cancellation refunds
// only part of it, the kept part is already in clinic_revenue; record only
// the Refunded entry then, not a FeeCharged one, or it counts twice.
func FeeCharged(paymentID, kind string, amount Money) (Entry, error) {
	if kind != FeeNoShow && kind != FeeLateCancel {
		return Entry{}, fmt.Errorf("%w: unknown fee kind %q", ErrInvalidEntry, kind)
	}
	return build(
		"payment:"+paymentID+":fee:"+kind,
		KindFee,
		kind+" fee for payment "+paymentID,
		AccountProviderBalance,
		AccountFees,
		amount,
		paymentID,
	)
}

// ProviderFee records Stripe's processing fee on a payment, which Stripe
// takes out of the balance it holds (credit provider_balance) as an expense
// (debit provider_fees). Key: "payment:<paymentID>:provider_fee", so one fee
// is recorded per payment; a fee charged as its own PaymentIntent needs its
// own payment ID to have its Stripe fee recorded too.
func ProviderFee(paymentID string, amount Money) (Entry, error) {
	return build(
		"payment:"+paymentID+":provider_fee",
		KindProviderFee,
		"provider fee for payment "+paymentID,
		AccountProviderFees,
		AccountProviderBalance,
		amount,
		paymentID,
	)
}

// PaidOut records a payout from Stripe to the clinic's bank: money leaves
// the Stripe balance (credit provider_balance) and joins the total paid out
// (debit payouts). Key: "payout:<payoutID>", with Stripe's payout ID, which
// is what reconciliation matches on.
func PaidOut(payoutID string, amount Money) (Entry, error) {
	return build(
		"payout:"+payoutID,
		KindPayout,
		"payout "+payoutID,
		AccountPayouts,
		AccountProviderBalance,
		amount,
		payoutID,
	)
}

// build makes the two-posting entry that moves amount from credit to
// debit. The amount must be positive: the builders name the direction, so a
// negative amount would silently reverse it, and a zero one records nothing.
// IDs must be non-empty and free of ':' and spaces, because they are joined
// into the key with ':' and two different ID pairs must never make the same
// key.
func build(key, kind, memo, debit, credit string, amount Money, ids ...string) (Entry, error) {
	for _, id := range ids {
		if id == "" || strings.ContainsAny(id, ": \t\r\n") {
			return Entry{}, fmt.Errorf("%w: %s: bad id %q", ErrInvalidEntry, kind, id)
		}
	}
	if err := amount.Validate(); err != nil {
		return Entry{}, fmt.Errorf("%w: %s: %w", ErrInvalidEntry, key, err)
	}
	if amount.Amount <= 0 {
		return Entry{}, fmt.Errorf("%w: %s: amount %s is not positive", ErrInvalidEntry, key, amount)
	}
	e := Entry{
		Key:  key,
		Kind: kind,
		Postings: []Posting{
			{Account: debit, Amount: amount},
			{Account: credit, Amount: Money{Amount: -amount.Amount, Currency: amount.Currency}},
		},
		Memo: memo,
	}
	// The builders are the ledger's only writers; checking their output
	// here makes a bug in one of them an error, not an unbalanced book.
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}
