package payments

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestPolicyOnCancel(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	day := Policy{
		FreeCancelBefore: 24 * time.Hour,
		LateCancelFee:    Fee{Fixed: 500, Percent: 2000},
	}
	boundary := start.Add(-24 * time.Hour)
	late := start.Add(time.Minute)
	price := Money{10000, "USD"}
	type want struct{ refund, fee int64 }
	tests := []struct {
		name   string
		policy Policy
		price  Money
		now    time.Time
		want   want
	}{
		{name: "well before the window", policy: day, price: price, now: boundary.Add(-48 * time.Hour), want: want{10000, 0}},
		{name: "at the exact boundary instant", policy: day, price: price, now: boundary, want: want{10000, 0}},
		{name: "one nanosecond late", policy: day, price: price, now: boundary.Add(time.Nanosecond), want: want{7500, 2500}},
		{name: "an hour before start", policy: day, price: price, now: start.Add(-time.Hour), want: want{7500, 2500}},
		{name: "after the start", policy: day, price: price, now: start.Add(time.Hour), want: want{7500, 2500}},
		{
			name:   "fixed fee larger than the price",
			policy: Policy{FreeCancelBefore: time.Hour, LateCancelFee: Fee{Fixed: 20000}},
			price:  price, now: start, want: want{0, 10000},
		},
		{
			name:   "fixed plus percent just over the price",
			policy: Policy{LateCancelFee: Fee{Fixed: 5001, Percent: 5000}},
			price:  price, now: late, want: want{0, 10000},
		},
		{
			name:   "fixed plus percent exactly the price",
			policy: Policy{LateCancelFee: Fee{Fixed: 5000, Percent: 5000}},
			price:  price, now: late, want: want{0, 10000},
		},
		{
			name:   "percent rounds down in the patient's favour",
			policy: Policy{LateCancelFee: Fee{Percent: 3333}},
			price:  Money{999, "EUR"}, now: late, want: want{667, 332},
		},
		{
			name:   "zero-decimal currency",
			policy: Policy{LateCancelFee: Fee{Percent: 1000}},
			price:  Money{5000, "JPY"}, now: late, want: want{4500, 500},
		},
		{name: "zero policy is always free", policy: Policy{}, price: price, now: start.Add(time.Hour), want: want{10000, 0}},
		{
			name:   "no free window is free up to the start",
			policy: Policy{LateCancelFee: Fee{Fixed: 100}},
			price:  price, now: start, want: want{10000, 0},
		},
		{
			name:   "no free window charges after the start",
			policy: Policy{LateCancelFee: Fee{Fixed: 100}},
			price:  price, now: start.Add(time.Second), want: want{9900, 100},
		},
		{
			name:   "free price",
			policy: day, price: Money{0, "USD"}, now: start, want: want{0, 0},
		},
		{
			name:   "negative price gives nothing",
			policy: day, price: Money{-100, "USD"}, now: start, want: want{0, 0},
		},
		{
			name:   "negative fixed fee is clamped to zero",
			policy: Policy{LateCancelFee: Fee{Fixed: -700}},
			price:  price, now: late, want: want{10000, 0},
		},
		{
			name:   "percent over 100 is clamped to the price",
			policy: Policy{LateCancelFee: Fee{Percent: 25000}},
			price:  price, now: late, want: want{0, 10000},
		},
		{
			name:   "largest price does not overflow",
			policy: Policy{LateCancelFee: Fee{Percent: 5000}},
			price:  Money{math.MaxInt64, "USD"}, now: late, want: want{math.MaxInt64 - 4611686018427387903, 4611686018427387903},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refund, fee := tt.policy.OnCancel(tt.price, start, tt.now)
			got := want{refund.Amount, fee.Amount}
			if got != tt.want {
				t.Errorf("OnCancel = refund %d, fee %d; want refund %d, fee %d", got.refund, got.fee, tt.want.refund, tt.want.fee)
			}
			if refund.Currency != tt.price.Currency || fee.Currency != tt.price.Currency {
				t.Errorf("currencies %q, %q; want %q", refund.Currency, fee.Currency, tt.price.Currency)
			}
			if tt.price.Amount >= 0 && refund.Amount+fee.Amount != tt.price.Amount {
				t.Errorf("refund %d + fee %d != price %d", refund.Amount, fee.Amount, tt.price.Amount)
			}
			if refund.Amount < 0 || fee.Amount < 0 {
				t.Errorf("negative result: refund %d, fee %d", refund.Amount, fee.Amount)
			}
		})
	}
}

func TestPolicyOnNoShow(t *testing.T) {
	price := Money{10000, "TRY"}
	tests := []struct {
		name  string
		fee   Fee
		price Money
		want  int64
	}{
		{name: "fixed", fee: Fee{Fixed: 2500}, price: price, want: 2500},
		{name: "percent", fee: Fee{Percent: 5000}, price: price, want: 5000},
		{name: "fixed plus percent", fee: Fee{Fixed: 100, Percent: 1000}, price: price, want: 1100},
		{name: "whole price", fee: Fee{Percent: 10000}, price: price, want: 10000},
		{name: "fee larger than the price", fee: Fee{Fixed: 99999}, price: price, want: 10000},
		{name: "no fee", fee: Fee{}, price: price, want: 0},
		{name: "free visit", fee: Fee{Fixed: 500}, price: Money{0, "TRY"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Policy{NoShowFee: tt.fee}.OnNoShow(tt.price)
			if got.Amount != tt.want || got.Currency != tt.price.Currency {
				t.Errorf("OnNoShow(%v) = %v, want %d %s", tt.price, got, tt.want, tt.price.Currency)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		want   error
	}{
		{name: "zero", policy: Policy{}},
		{name: "typical", policy: Policy{FreeCancelBefore: 24 * time.Hour, LateCancelFee: Fee{Percent: 5000}, NoShowFee: Fee{Fixed: 5000}}},
		{name: "negative window", policy: Policy{FreeCancelBefore: -time.Hour}, want: ErrInvalidPolicy},
		{name: "negative late fee", policy: Policy{LateCancelFee: Fee{Fixed: -1}}, want: ErrInvalidPolicy},
		{name: "negative no-show percent", policy: Policy{NoShowFee: Fee{Percent: -1}}, want: ErrInvalidPolicy},
		{name: "percent over 100", policy: Policy{LateCancelFee: Fee{Percent: 10001}}, want: ErrInvalidPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.Validate(); !errors.Is(err, tt.want) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}
