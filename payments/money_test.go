package payments

import (
	"errors"
	"math"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		amount   int64
		currency string
		want     error
	}{
		{name: "usd", amount: 12000, currency: "USD"},
		{name: "zero is a valid amount", amount: 0, currency: "TRY"},
		{name: "unknown but well-formed code", amount: 1, currency: "CHF"},
		{name: "negative", amount: -1, currency: "USD", want: ErrNegativeAmount},
		{name: "lower case as Stripe sends it", amount: 1, currency: "usd", want: ErrInvalidCurrency},
		{name: "empty code", amount: 1, currency: "", want: ErrInvalidCurrency},
		{name: "two letters", amount: 1, currency: "US", want: ErrInvalidCurrency},
		{name: "four letters", amount: 1, currency: "USDT", want: ErrInvalidCurrency},
		{name: "digits", amount: 1, currency: "840", want: ErrInvalidCurrency},
		{name: "non-ascii", amount: 1, currency: "TRŸ", want: ErrInvalidCurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.amount, tt.currency)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New(%d, %q) error = %v, want %v", tt.amount, tt.currency, err, tt.want)
			}
			if err == nil && (m.Amount != tt.amount || m.Currency != tt.currency) {
				t.Errorf("New(%d, %q) = %+v", tt.amount, tt.currency, m)
			}
		})
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		name string
		m    Money
		want string
	}{
		{name: "usd", m: Money{12000, "USD"}, want: "120.00 USD"},
		{name: "cents only", m: Money{5, "EUR"}, want: "0.05 EUR"},
		{name: "zero", m: Money{0, "GBP"}, want: "0.00 GBP"},
		{name: "negative", m: Money{-5, "EUR"}, want: "-0.05 EUR"},
		{name: "negative whole", m: Money{-123456, "TRY"}, want: "-1234.56 TRY"},
		{name: "yen has no minor unit", m: Money{1500, "JPY"}, want: "1500 JPY"},
		{name: "won has no minor unit", m: Money{-7, "KRW"}, want: "-7 KRW"},
		{name: "unknown code defaults to two places", m: Money{199, "CHF"}, want: "1.99 CHF"},
		{name: "largest", m: Money{math.MaxInt64, "USD"}, want: "92233720368547758.07 USD"},
		{name: "smallest", m: Money{math.MinInt64, "USD"}, want: "-92233720368547758.08 USD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.String(); got != tt.want {
				t.Errorf("%#v.String() = %q, want %q", tt.m, got, tt.want)
			}
		})
	}
}

func TestMoneyAddSub(t *testing.T) {
	usd := func(a int64) Money { return Money{a, "USD"} }
	tests := []struct {
		name    string
		a, b    Money
		sub     bool
		want    Money
		wantErr error
	}{
		{name: "add", a: usd(100), b: usd(250), want: usd(350)},
		{name: "sub", a: usd(100), b: usd(250), sub: true, want: usd(-150)},
		{name: "add mixed currencies", a: usd(1), b: Money{1, "EUR"}, wantErr: ErrCurrencyMismatch},
		{name: "sub mixed currencies", a: usd(1), b: Money{1, "EUR"}, sub: true, wantErr: ErrCurrencyMismatch},
		{name: "add overflow", a: usd(math.MaxInt64), b: usd(1), wantErr: ErrOverflow},
		{name: "add underflow", a: usd(math.MinInt64), b: usd(-1), wantErr: ErrOverflow},
		{name: "sub overflow", a: usd(math.MinInt64), b: usd(1), sub: true, wantErr: ErrOverflow},
		{name: "sub min from zero", a: usd(0), b: usd(math.MinInt64), sub: true, wantErr: ErrOverflow},
		{name: "sub min from negative", a: usd(-1), b: usd(math.MinInt64), sub: true, want: usd(math.MaxInt64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, got, err := "Add", Money{}, error(nil)
			if tt.sub {
				op = "Sub"
				got, err = tt.a.Sub(tt.b)
			} else {
				got, err = tt.a.Add(tt.b)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("%v.%s(%v) error = %v, want %v", tt.a, op, tt.b, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("%v.%s(%v) = %v, want %v", tt.a, op, tt.b, got, tt.want)
			}
		})
	}
}
