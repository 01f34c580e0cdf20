package payments

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The errors of the Money functions. Each is wrapped with the values that
// caused it; callers tell them apart with errors.Is.
var (
	// ErrInvalidCurrency means a currency code is not three upper-case
	// ASCII letters, the shape of an ISO 4217 alphabetic code.
	ErrInvalidCurrency = errors.New("payments: invalid currency code")
	// ErrNegativeAmount means an amount that must not be negative (a price,
	// a refund, a fee) is.
	ErrNegativeAmount = errors.New("payments: negative amount")
	// ErrCurrencyMismatch means two amounts in different currencies were
	// combined. Carebook never converts between currencies, so this is
	// always a bug or bad input, not something to round away.
	ErrCurrencyMismatch = errors.New("payments: currency mismatch")
	// ErrOverflow means a sum left the int64 range. No real payment comes
	// near it, so it points at corrupt input rather than a large clinic.
	ErrOverflow = errors.New("payments: amount overflow")
)

// Money is an amount in a currency's minor unit (cents, kuruş, yen) with
// its ISO 4217 alphabetic code in upper case, e.g. {12000, "USD"} for
// 120.00 USD. Integer minor units keep every sum exact; see New for the
// checked way to build one.
type Money struct {
	Amount   int64
	Currency string
}

// minorUnits lists the ISO 4217 exponent of the currencies Carebook shows
// today. JPY and KRW have no minor unit, so their amount is whole yen or
// won, which is also what Stripe sends for them.
var minorUnits = map[string]int{
	"USD": 2,
	"EUR": 2,
	"GBP": 2,
	"TRY": 2,
	"JPY": 0,
	"KRW": 0,
}

// MinorUnits returns how many decimal places the currency's minor unit has:
// 2 for USD, EUR, GBP and TRY, 0 for JPY and KRW, and 2 for any other code.
// Two is the most common exponent; a currency that differs (e.g. a
// three-decimal dinar) must be added to the table before it is offered.
func MinorUnits(currency string) int {
	if n, ok := minorUnits[currency]; ok {
		return n
	}
	return 2
}

// CheckCurrency returns nil if code is three upper-case ASCII letters and an
// error wrapping ErrInvalidCurrency otherwise. It checks the shape only, not
// membership of the ISO list, so a newly offered currency needs no code
// change here; lower-case codes (as Stripe sends them) are refused so that
// one spelling reaches the ledger and comparisons stay plain ==.
func CheckCurrency(code string) error {
	if len(code) != 3 {
		return fmt.Errorf("%w: %q", ErrInvalidCurrency, code)
	}
	for i := 0; i < 3; i++ {
		if code[i] < 'A' || code[i] > 'Z' {
			return fmt.Errorf("%w: %q", ErrInvalidCurrency, code)
		}
	}
	return nil
}

// New returns amount minor units of currency. It refuses a bad currency code
// (ErrInvalidCurrency) and a negative amount (ErrNegativeAmount): prices,
// refunds and fees are never negative, and the ledger expresses direction
// by the sign of a Posting, not of the amount it was built from.
func New(amount int64, currency string) (Money, error) {
	if err := CheckCurrency(currency); err != nil {
		return Money{}, err
	}
	if amount < 0 {
		return Money{}, fmt.Errorf("%w: %d %s", ErrNegativeAmount, amount, currency)
	}
	return Money{Amount: amount, Currency: currency}, nil
}

// Validate returns nil if m has a well-formed currency code. Any sign is
// allowed, because ledger postings and balances are signed; use New where
// the amount must not be negative.
func (m Money) Validate() error {
	return CheckCurrency(m.Currency)
}

// IsZero reports whether the amount is zero, whatever the currency.
func (m Money) IsZero() bool {
	return m.Amount == 0
}

// Add returns m + o. It fails with ErrCurrencyMismatch if the currencies
// differ and with ErrOverflow if the sum leaves the int64 range.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, fmt.Errorf("%w: %s + %s", ErrCurrencyMismatch, m.Currency, o.Currency)
	}
	sum, ok := addInt64(m.Amount, o.Amount)
	if !ok {
		return Money{}, fmt.Errorf("%w: %d + %d %s", ErrOverflow, m.Amount, o.Amount, m.Currency)
	}
	return Money{Amount: sum, Currency: m.Currency}, nil
}

// Sub returns m - o. It fails with ErrCurrencyMismatch if the currencies
// differ and with ErrOverflow if the difference leaves the int64 range. The
// result may be negative; callers that need otherwise check it.
func (m Money) Sub(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, fmt.Errorf("%w: %s - %s", ErrCurrencyMismatch, m.Currency, o.Currency)
	}
	if o.Amount == math.MinInt64 {
		// -MinInt64 does not exist, so subtracting it always overflows
		// unless m is negative enough; handle it without negating.
		if m.Amount >= 0 {
			return Money{}, fmt.Errorf("%w: %d - %d %s", ErrOverflow, m.Amount, o.Amount, m.Currency)
		}
		return Money{Amount: m.Amount - o.Amount, Currency: m.Currency}, nil
	}
	diff, ok := addInt64(m.Amount, -o.Amount)
	if !ok {
		return Money{}, fmt.Errorf("%w: %d - %d %s", ErrOverflow, m.Amount, o.Amount, m.Currency)
	}
	return Money{Amount: diff, Currency: m.Currency}, nil
}

// String formats m for people and logs as "<amount> <code>", with the
// currency's number of decimal places: "120.00 USD", "-0.05 EUR",
// "1500 JPY". It never goes through a float, so no amount is misprinted.
func (m Money) String() string {
	// The absolute value as uint64 so that MinInt64 prints correctly.
	abs := uint64(m.Amount)
	sign := ""
	if m.Amount < 0 {
		abs = -abs
		sign = "-"
	}
	digits := strconv.FormatUint(abs, 10)
	exp := MinorUnits(m.Currency)
	if exp == 0 {
		return sign + digits + " " + m.Currency
	}
	if len(digits) <= exp {
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	cut := len(digits) - exp
	return sign + digits[:cut] + "." + digits[cut:] + " " + m.Currency
}

// addInt64 returns a+b and whether it fit in an int64.
func addInt64(a, b int64) (int64, bool) {
	s := a + b
	// Overflow happened iff both operands have the same sign and the sum's
	// sign differs from it.
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, false
	}
	return s, true
}
