package payments

import (
	"errors"
	"maps"
	"testing"
)

func usd(a int64) Money { return Money{Amount: a, Currency: "USD"} }

// entryMust returns a function that unwraps a builder's result, failing t
// on an error, so a test can write must(Captured(...)).
func entryMust(t *testing.T) func(Entry, error) Entry {
	return func(e Entry, err error) Entry {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
}

func TestBuilders(t *testing.T) {
	type want struct {
		key, kind     string
		debit, credit string
	}
	tests := []struct {
		name  string
		build func() (Entry, error)
		want  want
	}{
		{
			name:  "captured",
			build: func() (Entry, error) { return Captured("p1", usd(12000)) },
			want:  want{"payment:p1:capture", KindCapture, AccountProviderBalance, AccountClinicRevenue},
		},
		{
			name:  "refunded",
			build: func() (Entry, error) { return Refunded("p1", "r1", usd(12000)) },
			want:  want{"payment:p1:refund:r1", KindRefund, AccountRefunds, AccountProviderBalance},
		},
		{
			name:  "no-show fee",
			build: func() (Entry, error) { return FeeCharged("p1", FeeNoShow, usd(12000)) },
			want:  want{"payment:p1:fee:noshow", KindFee, AccountProviderBalance, AccountFees},
		},
		{
			name:  "late-cancel fee",
			build: func() (Entry, error) { return FeeCharged("p1", FeeLateCancel, usd(12000)) },
			want:  want{"payment:p1:fee:late_cancel", KindFee, AccountProviderBalance, AccountFees},
		},
		{
			name:  "provider fee",
			build: func() (Entry, error) { return ProviderFee("p1", usd(12000)) },
			want:  want{"payment:p1:provider_fee", KindProviderFee, AccountProviderFees, AccountProviderBalance},
		},
		{
			name:  "paid out",
			build: func() (Entry, error) { return PaidOut("po_1", usd(12000)) },
			want:  want{"payout:po_1", KindPayout, AccountPayouts, AccountProviderBalance},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entryMust(t)(tt.build())
			if err := e.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			got := want{e.Key, e.Kind, "", ""}
			for _, p := range e.Postings {
				switch {
				case p.Amount == usd(12000):
					got.debit = p.Account
				case p.Amount == usd(-12000):
					got.credit = p.Account
				default:
					t.Errorf("unexpected posting %+v", p)
				}
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if e.Memo == "" {
				t.Error("empty memo")
			}
		})
	}
}

func TestBuildersRefuse(t *testing.T) {
	tests := []struct {
		name  string
		build func() (Entry, error)
		want  error
	}{
		{name: "zero amount", build: func() (Entry, error) { return Captured("p1", usd(0)) }, want: ErrInvalidEntry},
		{name: "negative amount would reverse the entry", build: func() (Entry, error) { return Refunded("p1", "r1", usd(-5)) }, want: ErrInvalidEntry},
		{name: "bad currency", build: func() (Entry, error) { return PaidOut("po_1", Money{5, "usd"}) }, want: ErrInvalidCurrency},
		{name: "empty payment id", build: func() (Entry, error) { return Captured("", usd(5)) }, want: ErrInvalidEntry},
		{name: "colon in id could forge another key", build: func() (Entry, error) { return Refunded("p1", "r1:x", usd(5)) }, want: ErrInvalidEntry},
		{name: "space in id", build: func() (Entry, error) { return ProviderFee("p 1", usd(5)) }, want: ErrInvalidEntry},
		{name: "unknown fee kind", build: func() (Entry, error) { return FeeCharged("p1", "lateness", usd(5)) }, want: ErrInvalidEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.build(); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEntryValidate(t *testing.T) {
	eur := func(a int64) Money { return Money{a, "EUR"} }
	tests := []struct {
		name     string
		postings []Posting
		key      string
		want     error
	}{
		{
			name:     "balanced",
			postings: []Posting{{AccountProviderBalance, usd(100)}, {AccountClinicRevenue, usd(-100)}},
		},
		{
			name:     "three postings",
			postings: []Posting{{AccountProviderBalance, usd(100)}, {AccountClinicRevenue, usd(-70)}, {AccountFees, usd(-30)}},
		},
		{
			name: "two currencies each balanced",
			postings: []Posting{
				{AccountProviderBalance, usd(100)}, {AccountClinicRevenue, usd(-100)},
				{AccountProviderBalance, eur(5)}, {AccountClinicRevenue, eur(-5)},
			},
		},
		{
			name:     "empty key",
			key:      " ",
			postings: []Posting{{AccountProviderBalance, usd(100)}, {AccountClinicRevenue, usd(-100)}},
			want:     ErrInvalidEntry,
		},
		{name: "no postings", want: ErrInvalidEntry},
		{name: "one posting", postings: []Posting{{AccountProviderBalance, usd(0)}}, want: ErrInvalidEntry},
		{
			name:     "unbalanced",
			postings: []Posting{{AccountProviderBalance, usd(100)}, {AccountClinicRevenue, usd(-99)}},
			want:     ErrInvalidEntry,
		},
		{
			name:     "sums to zero only across currencies",
			postings: []Posting{{AccountProviderBalance, usd(100)}, {AccountClinicRevenue, eur(-100)}},
			want:     ErrInvalidEntry,
		},
		{
			name:     "zero posting",
			postings: []Posting{{AccountProviderBalance, usd(100)}, {AccountClinicRevenue, usd(-100)}, {AccountFees, usd(0)}},
			want:     ErrInvalidEntry,
		},
		{
			name:     "unknown account",
			postings: []Posting{{"provider-balance", usd(100)}, {AccountClinicRevenue, usd(-100)}},
			want:     ErrInvalidEntry,
		},
		{
			name:     "bad currency",
			postings: []Posting{{AccountProviderBalance, Money{100, "usd"}}, {AccountClinicRevenue, Money{-100, "usd"}}},
			want:     ErrInvalidCurrency,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == "" {
				key = "test:1"
			}
			e := Entry{Key: key, Kind: "test", Postings: tt.postings}
			if err := e.Validate(); !errors.Is(err, tt.want) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestBalancesSaga runs one payment's life through the ledger and checks
// the derived balances, including that the books balance as a whole.
func TestBalancesSaga(t *testing.T) {
	must := entryMust(t)
	capture := must(Captured("p1", usd(12000)))
	entries := []Entry{
		capture,
		must(ProviderFee("p1", usd(378))),
		must(Refunded("p1", "r1", usd(5000))),
		must(FeeCharged("p2", FeeNoShow, usd(2000))),
		must(Captured("p3", Money{900, "EUR"})),
		must(PaidOut("po_1", usd(6000))),
		capture, // a replayed step: counted once
	}
	want := map[string]map[string]int64{
		AccountProviderBalance: {"USD": 12000 - 378 - 5000 + 2000 - 6000, "EUR": 900},
		AccountClinicRevenue:   {"USD": -12000, "EUR": -900},
		AccountProviderFees:    {"USD": 378},
		AccountRefunds:         {"USD": 5000},
		AccountFees:            {"USD": -2000},
		AccountPayouts:         {"USD": 6000},
	}
	got := Balances(entries)
	if !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("Balances() = %v\nwant %v", got, want)
	}
	total := map[string]int64{}
	for _, byCur := range got {
		for cur, v := range byCur {
			total[cur] += v
		}
	}
	for cur, v := range total {
		if v != 0 {
			t.Errorf("all accounts in %s sum to %d, want 0", cur, v)
		}
	}
}

func TestBalancesEmpty(t *testing.T) {
	if got := Balances(nil); len(got) != 0 {
		t.Errorf("Balances(nil) = %v, want empty", got)
	}
}

func TestEntryEqual(t *testing.T) {
	must := entryMust(t)
	a := must(Captured("p1", usd(100)))
	b := must(Captured("p1", usd(100)))
	c := must(Captured("p1", usd(101)))
	tests := []struct {
		name string
		x, y Entry
		want bool
	}{
		{name: "replay", x: a, y: b, want: true},
		{name: "same key, different amount", x: a, y: c, want: false},
		{name: "different key", x: a, y: must(Captured("p2", usd(100))), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.x.Equal(tt.y); got != tt.want {
				t.Errorf("Equal() = %v, want %v", got, tt.want)
			}
		})
	}
}
