package payments

import (
	"errors"
	"fmt"
	"time"
)

// Fee is a charge a clinic keeps or collects when a patient cancels late or
// does not come: Fixed minor units of the price's currency plus Percent
// basis points (1/100 of a percent, so 2500 is 25%) of the price. Basis
// points keep percentages exact in integers.
type Fee struct {
	Fixed   int64
	Percent int
}

// Policy is an appointment type's cancellation and no-show policy.
// Cancelling at or before FreeCancelBefore ahead of the start costs nothing;
// cancelling later costs LateCancelFee; not coming costs NoShowFee. The
// zero Policy charges no fees; a zero FreeCancelBefore alone means free up
// to the start and LateCancelFee after it.
type Policy struct {
	FreeCancelBefore time.Duration
	LateCancelFee    Fee
	NoShowFee        Fee
}

// ErrInvalidPolicy is wrapped, with the reason, by Policy.Validate.
var ErrInvalidPolicy = errors.New("payments: invalid policy")

// Validate returns nil if p can be offered to patients, and otherwise an
// error wrapping ErrInvalidPolicy: a negative window, a negative fixed fee,
// or a percentage outside 0–100%. Clinics' settings are checked with it when
// saved, so that OnCancel and OnNoShow, which cannot fail, never meet such
// values in practice (they clamp them if they do).
func (p Policy) Validate() error {
	if p.FreeCancelBefore < 0 {
		return fmt.Errorf("%w: negative free-cancellation window %v", ErrInvalidPolicy, p.FreeCancelBefore)
	}
	for _, f := range []struct {
		name string
		fee  Fee
	}{{"late-cancellation", p.LateCancelFee}, {"no-show", p.NoShowFee}} {
		if f.fee.Fixed < 0 {
			return fmt.Errorf("%w: negative %s fixed fee %d", ErrInvalidPolicy, f.name, f.fee.Fixed)
		}
		if f.fee.Percent < 0 || f.fee.Percent > 10000 {
			return fmt.Errorf("%w: %s percentage %d basis points is outside 0–10000", ErrInvalidPolicy, f.name, f.fee.Percent)
		}
	}
	return nil
}

// OnCancel splits a paid price when the patient cancels at now a visit that
// starts at start. Up to and including the instant start-FreeCancelBefore
// the whole price is refunded and the fee is zero; after it the clinic keeps
// LateCancelFee and refunds the rest. Both results are in price's currency,
// never negative, and always add up to price: the fee is capped at the
// price, so a fee larger than the visit never asks the patient for more.
//
// The boundary instant counts as on time because "free until 24 hours
// before" reads, to a patient, as including the 24th hour. A negative price
// (never valid) gives zero for both.
func (p Policy) OnCancel(price Money, start, now time.Time) (refund, fee Money) {
	if price.Amount <= 0 {
		return Money{Currency: price.Currency}, Money{Currency: price.Currency}
	}
	if !now.After(start.Add(-p.FreeCancelBefore)) {
		return price, Money{Currency: price.Currency}
	}
	f := p.LateCancelFee.on(price.Amount)
	return Money{Amount: price.Amount - f, Currency: price.Currency},
		Money{Amount: f, Currency: price.Currency}
}

// OnNoShow returns the fee for not coming to a visit priced at price, in
// price's currency, capped at the price and never negative.
func (p Policy) OnNoShow(price Money) Money {
	if price.Amount <= 0 {
		return Money{Currency: price.Currency}
	}
	return Money{Amount: p.NoShowFee.on(price.Amount), Currency: price.Currency}
}

// on returns the fee on a positive price, between 0 and price. The
// percentage part rounds down to the minor unit, in the patient's favour,
// and is computed without overflow for any int64 price. Out-of-range
// settings are clamped so that a bad value can never refund more than was
// paid or charge more than the price.
func (f Fee) on(price int64) int64 {
	bp := int64(min(max(f.Percent, 0), 10000))
	// price*bp/10000 could overflow; split price into whole ten-thousands
	// and the remainder, each of which multiplies safely.
	pct := price/10000*bp + price%10000*bp/10000
	fixed := max(f.Fixed, 0)
	if fixed >= price-pct {
		return price
	}
	return fixed + pct
}
