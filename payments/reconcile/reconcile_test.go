package reconcile

import (
	"encoding/csv"
	"slices"
	"strings"
	"testing"
	"time"
)

// The day every case reconciles, in UTC for readability.
var (
	dayStart = time.Date(2031, 3, 4, 0, 0, 0, 0, time.UTC)
	at       = func(h int) time.Time { return dayStart.Add(time.Duration(h) * time.Hour) }
)

func charge(id, payment string, amount, fee int64) Transaction {
	return Transaction{ID: id, Type: "charge", AmountMinor: amount, FeeMinor: fee, Currency: "TRY", SourceID: "ch_" + id,
		Created: at(9), PaymentID: payment}
}

func refund(id, payment, refundID string, amount int64) Transaction {
	return Transaction{ID: id, Type: "refund", AmountMinor: -amount, Currency: "TRY", SourceID: "re_" + id,
		Created: at(11), PaymentID: payment, RefundID: refundID}
}

func capture(payment string, amount int64) Entry {
	return Entry{Key: "payment:" + payment + ":capture", Kind: "capture", PaymentID: payment, AmountMinor: amount,
		Currency: "TRY", Created: at(9), InDay: true}
}

func refunded(payment, refundID string, amount int64) Entry {
	return Entry{Key: "payment:" + payment + ":refund:" + refundID, Kind: "refund", PaymentID: payment,
		AmountMinor: -amount, Currency: "TRY", Created: at(11), InDay: true}
}

func providerFee(payment string, amount int64) Entry {
	return Entry{Key: "payment:" + payment + ":provider_fee", Kind: "provider_fee", PaymentID: payment,
		AmountMinor: -amount, Currency: "TRY", Created: at(26)}
}

func paidOut(id string, amount int64, inDay bool) Entry {
	return Entry{Key: "payout:" + id, Kind: "payout", AmountMinor: -amount, Currency: "TRY", Created: at(26), InDay: inDay}
}

func payout(id string, amount int64) Payout {
	return Payout{ID: id, Status: "paid", AmountMinor: amount, Currency: "TRY", Created: at(6)}
}

// lines renders each line as "status type subject", the subject being the
// provider object, or the ledger key when there is none.
func lines(r Result) []string {
	var out []string
	for _, l := range r.Lines {
		out = append(out, l.Status+" "+l.Type+" "+cmpOr(l.ProviderObject, l.LedgerKey))
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name          string
		in            Input
		want          []string
		wantMatched   int
		wantDiscrep   int
		wantKeys      []string
		wantPayouts   int
		wantTxnsOfDay int
	}{
		{
			name: "all matched",
			in: Input{
				Transactions: []Transaction{
					charge("txn_1", "P1", 45000, 1500),
					refund("txn_2", "P1", "R1", 5000),
					{ID: "txn_3", Type: "payout", AmountMinor: -30000, Currency: "TRY", SourceID: "po_1", Created: at(6)},
				},
				Payouts: []Payout{payout("po_1", 30000)},
				Ledger: []Entry{capture("P1", 45000), refunded("P1", "R1", 5000), providerFee("P1", 1500),
					paidOut("po_1", 30000, false)},
			},
			want: []string{
				"info payout txn_3",
				"matched charge txn_1",
				"matched refund txn_2",
				"matched provider_fee txn_1",
				"matched payout po_1",
			},
			wantMatched: 4, wantPayouts: 1, wantTxnsOfDay: 3,
		},
		{
			name: "charge missing in ledger",
			in: Input{
				Transactions: []Transaction{
					charge("txn_1", "", 45000, 0),   // no payment linked
					charge("txn_2", "P2", 30000, 0), // payment linked, no entry
				},
			},
			want:        []string{"missing_in_ledger charge txn_1", "missing_in_ledger charge txn_2"},
			wantDiscrep: 2, wantTxnsOfDay: 2,
			wantKeys: []string{"missing_in_ledger:txn_1", "missing_in_ledger:txn_2"},
		},
		{
			name: "ledger capture missing at provider",
			in: Input{
				Ledger: []Entry{capture("P1", 45000), {Key: "payment:P9:capture", Kind: "capture", PaymentID: "P9",
					AmountMinor: 1000, Currency: "TRY"}}, // not of the day: not answerable
			},
			want:        []string{"missing_at_provider capture payment:P1:capture"},
			wantDiscrep: 1,
			wantKeys:    []string{"missing_at_provider:payment:P1:capture"},
		},
		{
			name: "amount differs",
			in: Input{
				Transactions: []Transaction{charge("txn_1", "P1", 25000, 0)},
				Ledger:       []Entry{capture("P1", 20000)},
			},
			want:        []string{"amount_differs charge txn_1"},
			wantDiscrep: 1, wantTxnsOfDay: 1,
			wantKeys: []string{"amount_differs:txn_1"},
		},
		{
			name: "currency differs",
			in: Input{
				Transactions: []Transaction{{ID: "txn_1", Type: "charge", AmountMinor: 45000, Currency: "USD", SourceID: "ch_1",
					Created: at(9), PaymentID: "P1"}},
				Ledger: []Entry{capture("P1", 45000)},
			},
			want:        []string{"currency_differs charge txn_1"},
			wantDiscrep: 1, wantTxnsOfDay: 1,
			wantKeys: []string{"currency_differs:txn_1"},
		},
		{
			name: "duplicate provider item",
			in: Input{
				Transactions: []Transaction{
					charge("txn_1", "P1", 45000, 0),
					charge("txn_1", "P1", 45000, 0), // listed twice
					charge("txn_2", "P1", 45000, 0), // a second charge for one capture
				},
				Ledger: []Entry{capture("P1", 45000)},
			},
			want:        []string{"matched charge txn_1", "duplicate charge txn_1", "duplicate charge txn_2"},
			wantMatched: 1, wantDiscrep: 2, wantTxnsOfDay: 3,
			wantKeys: []string{"duplicate:txn_1", "duplicate:txn_2"},
		},
		{
			name: "payout matched and missing",
			in: Input{
				Payouts: []Payout{payout("po_1", 30000), payout("po_2", 12000)},
				Ledger:  []Entry{paidOut("po_1", 30000, false), paidOut("po_9", 5000, true)},
			},
			want: []string{
				"matched payout po_1",
				"missing_in_ledger payout po_2",
				"missing_at_provider payout payout:po_9",
			},
			wantMatched: 1, wantDiscrep: 2, wantPayouts: 2,
			wantKeys: []string{"missing_in_ledger:po_2", "missing_at_provider:payout:po_9"},
		},
		{
			name: "payout amount differs",
			in: Input{
				Payouts: []Payout{payout("po_1", 30000)},
				Ledger:  []Entry{paidOut("po_1", 29000, false)},
			},
			want:        []string{"amount_differs payout po_1"},
			wantDiscrep: 1, wantPayouts: 1,
		},
		{
			name: "refund missing in ledger",
			in: Input{
				Transactions: []Transaction{
					refund("txn_1", "P1", "R1", 5000), // refund row found, entry missing
					refund("txn_2", "P1", "", 700),    // made outside Carebook
				},
			},
			want:        []string{"missing_in_ledger refund txn_1", "missing_in_ledger refund txn_2"},
			wantDiscrep: 2, wantTxnsOfDay: 2,
		},
		{
			name: "provider fee missing and different",
			in: Input{
				Transactions: []Transaction{charge("txn_1", "P1", 45000, 1500), charge("txn_2", "P2", 30000, 900)},
				Ledger:       []Entry{capture("P1", 45000), capture("P2", 30000), providerFee("P2", 800)},
			},
			want: []string{
				"matched charge txn_1",
				"matched charge txn_2",
				"missing_in_ledger provider_fee txn_1",
				"amount_differs provider_fee txn_2",
			},
			wantMatched: 2, wantDiscrep: 2, wantTxnsOfDay: 2,
			wantKeys: []string{"missing_in_ledger:payment:P1:provider_fee", "amount_differs:payment:P2:provider_fee"},
		},
		{
			name: "unrecorded balance transaction type",
			in: Input{
				Transactions: []Transaction{{ID: "txn_1", Type: "adjustment", AmountMinor: -45000, Currency: "TRY", Created: at(3)}},
			},
			want:        []string{"missing_in_ledger adjustment txn_1"},
			wantDiscrep: 1, wantTxnsOfDay: 1,
		},
		{
			name: "look-back item explains an entry written after midnight",
			in: Input{
				Transactions: []Transaction{
					{ID: "txn_0", Type: "charge", AmountMinor: 45000, Currency: "TRY", SourceID: "ch_0",
						Created: dayStart.Add(-time.Second), PaymentID: "P1", Lookback: true},
					{ID: "txn_9", Type: "charge", AmountMinor: 9000, Currency: "TRY", SourceID: "ch_9",
						Created: dayStart.Add(-time.Minute), PaymentID: "P9", Lookback: true}, // yesterday's business
				},
				Ledger: []Entry{capture("P1", 45000)},
			},
			want:        []string{"matched charge txn_0"},
			wantMatched: 1,
		},
		{
			name: "fee charged by a capture matches the fee entry",
			in: Input{
				Transactions: []Transaction{charge("txn_1", "P1", 9000, 0)},
				Ledger: []Entry{{Key: "payment:P1:fee:late_cancel", Kind: "fee", PaymentID: "P1", AmountMinor: 9000,
					Currency: "TRY", Created: at(9), InDay: true}},
			},
			want:        []string{"matched charge txn_1"},
			wantMatched: 1, wantTxnsOfDay: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Reconcile(tt.in)
			if !slices.Equal(lines(got), tt.want) {
				t.Errorf("lines:\n got %q\nwant %q", lines(got), tt.want)
			}
			if got.Matched != tt.wantMatched || got.Discrepancies != tt.wantDiscrep {
				t.Errorf("matched %d, discrepancies %d; want %d, %d", got.Matched, got.Discrepancies, tt.wantMatched, tt.wantDiscrep)
			}
			if got.Payouts != tt.wantPayouts || got.Transactions != tt.wantTxnsOfDay {
				t.Errorf("payouts %d, transactions %d; want %d, %d", got.Payouts, got.Transactions, tt.wantPayouts, tt.wantTxnsOfDay)
			}
			wantStatus := ReportMatched
			if tt.wantDiscrep > 0 {
				wantStatus = ReportMismatched
			}
			if got.Status() != wantStatus {
				t.Errorf("status %s, want %s", got.Status(), wantStatus)
			}
			var keys []string
			for _, l := range got.Lines {
				if IsDiscrepancy(l.Status) != (l.Key != "") {
					t.Errorf("line %+v: key %q does not fit status", l, l.Key)
				}
				if l.Key != "" {
					keys = append(keys, l.Key)
				}
			}
			if tt.wantKeys != nil && !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("keys %q, want %q", keys, tt.wantKeys)
			}
			// The same input in another order is the same report.
			rev := tt.in
			rev.Transactions = slices.Clone(tt.in.Transactions)
			slices.Reverse(rev.Transactions)
			rev.Ledger = slices.Clone(tt.in.Ledger)
			slices.Reverse(rev.Ledger)
			if again := Reconcile(rev); !slices.Equal(lines(again), lines(got)) {
				t.Errorf("order changed the report:\n%q\n%q", lines(again), lines(got))
			}
		})
	}
}

func TestFacts(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want []string // entry key and provider_balance amount
	}{
		{
			name: "payouts and provider fees not yet in the ledger",
			in: Input{
				Transactions: []Transaction{
					charge("txn_1", "P1", 45000, 1500),
					charge("txn_1", "P1", 45000, 1500), // listed twice, counted once
					charge("txn_2", "P2", 30000, 0),    // no fee
					charge("txn_3", "", 30000, 900),    // no payment to hang it on
					{ID: "txn_0", Type: "charge", AmountMinor: 100, FeeMinor: 10, Currency: "TRY", PaymentID: "P7", Lookback: true},
				},
				Payouts: []Payout{payout("po_1", 30000), {ID: "po_2", Status: "failed", AmountMinor: 700, Currency: "TRY"}},
			},
			want: []string{"payment:P1:provider_fee -1500", "payout:po_1 -30000", "payout:po_2 -700"},
		},
		{
			name: "nothing twice",
			in: Input{
				Transactions: []Transaction{charge("txn_1", "P1", 45000, 1500)},
				Payouts:      []Payout{payout("po_1", 30000)},
				Ledger:       []Entry{providerFee("P1", 1400), paidOut("po_1", 30000, false)},
			},
		},
		{
			name: "refused by the builders",
			in:   Input{Payouts: []Payout{{ID: "po:bad", AmountMinor: 10, Currency: "TRY"}, {ID: "po_0", Currency: "TRY"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range Facts(tt.in) {
				e, ok := FromEntry(f.Entry, f.PaymentID, time.Time{}, false)
				if !ok {
					t.Fatalf("%s does not touch provider_balance", f.Entry.Key)
				}
				got = append(got, e.Key+" "+minor(&e.AmountMinor))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDayWindow(t *testing.T) {
	tests := []struct {
		name     string
		day      string
		zone     string
		wantFrom string // RFC 3339 in UTC
		wantLen  time.Duration
	}{
		{name: "Istanbul", day: "2031-03-04", zone: "Europe/Istanbul", wantFrom: "2031-03-03T21:00:00Z", wantLen: 24 * time.Hour},
		{name: "spring forward is 23 hours", day: "2024-03-10", zone: "America/New_York", wantFrom: "2024-03-10T05:00:00Z", wantLen: 23 * time.Hour},
		{name: "fall back is 25 hours", day: "2024-11-03", zone: "America/New_York", wantFrom: "2024-11-03T04:00:00Z", wantLen: 25 * time.Hour},
		{name: "a zone that skips midnight starts at the shift", day: "2024-09-08", zone: "America/Santiago", wantFrom: "2024-09-08T04:00:00Z", wantLen: 23 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := time.LoadLocation(tt.zone)
			if err != nil {
				t.Skipf("no zone data for %s: %v", tt.zone, err)
			}
			from, to, err := DayWindow(tt.day, loc)
			if err != nil {
				t.Fatal(err)
			}
			if got := from.UTC().Format(time.RFC3339); got != tt.wantFrom || to.Sub(from) != tt.wantLen {
				t.Errorf("from %s, length %v; want %s, %v", got, to.Sub(from), tt.wantFrom, tt.wantLen)
			}
			if got := from.In(loc).Format(DayLayout); got != tt.day {
				t.Errorf("window starts on %s, want %s", got, tt.day)
			}
		})
	}
	if _, _, err := DayWindow("2031-3-4", time.UTC); err == nil {
		t.Error("a malformed day was accepted")
	}
}

func TestYesterday(t *testing.T) {
	ist, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		t.Skip(err)
	}
	tests := []struct {
		name string
		now  time.Time
		want string
	}{
		{name: "02:00 local is already the next day", now: time.Date(2031, 3, 4, 23, 0, 0, 0, time.UTC), want: "2031-03-04"},
		{name: "late evening UTC is still today", now: time.Date(2031, 3, 4, 20, 59, 0, 0, time.UTC), want: "2031-03-03"},
		{name: "across a month", now: time.Date(2031, 3, 1, 0, 0, 0, 0, ist), want: "2031-02-28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Yesterday(tt.now, ist); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDays(t *testing.T) {
	tests := []struct {
		name        string
		first, last string
		want        []string
		wantErr     bool
	}{
		{name: "one day", first: "2031-03-04", last: "2031-03-04", want: []string{"2031-03-04"}},
		{name: "across a month", first: "2031-02-27", last: "2031-03-01", want: []string{"2031-02-27", "2031-02-28", "2031-03-01"}},
		{name: "backwards", first: "2031-03-04", last: "2031-03-03", wantErr: true},
		{name: "malformed", first: "yesterday", last: "2031-03-03", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Days(tt.first, tt.last)
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCSVHasEveryLine(t *testing.T) {
	r := Reconcile(Input{
		Transactions: []Transaction{charge("txn_1", "P1", 45000, 0), charge("txn_2", "P2", 100, 0)},
		Ledger:       []Entry{capture("P1", 45000)},
	})
	rows, err := csv.NewReader(strings.NewReader(r.CSV())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(r.Lines) || !slices.Equal(rows[0], csvHeader) {
		t.Fatalf("rows %q", rows)
	}
	if rows[1][0] != StatusMatched || rows[1][7] != "45000" || rows[1][9] != "45000" {
		t.Errorf("matched row %q", rows[1])
	}
	if rows[2][0] != KindMissingInLedger || rows[2][1] != "missing_in_ledger:txn_2" || rows[2][9] != "" {
		t.Errorf("missing row %q", rows[2])
	}
}
