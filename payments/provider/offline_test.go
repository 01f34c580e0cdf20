package provider_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/carebook/carebook/payments/provider"
)

var offlineNow = time.Date(2026, 3, 29, 9, 30, 0, 0, time.UTC)

func newOffline() *provider.Offline {
	return provider.NewOffline(provider.WithClock(func() time.Time { return offlineNow }))
}

// hold creates a 300.00 TRY promise to pay at the desk.
func hold(t *testing.T, o *provider.Offline) provider.Intent {
	t.Helper()
	in, err := o.CreateIntent(context.Background(), provider.IntentRequest{
		IdempotencyKey: "payment:pay_1:intent",
		AmountMinor:    30000,
		Currency:       "try",
		CustomerID:     "cus_1",
		Refs:           refs,
	})
	if err != nil {
		t.Fatalf("CreateIntent: %v", err)
	}
	return in
}

// code returns the Code of a *provider.Error, or "".
func code(err error) string {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestOfflineCreateIntent(t *testing.T) {
	o := newOffline()
	got := hold(t, o)

	want := provider.Intent{
		ID:                    got.ID,
		Status:                provider.IntentRequiresCapture,
		AmountMinor:           30000,
		AmountCapturableMinor: 30000,
		Currency:              "TRY",
		CaptureMethod:         "manual",
		CustomerID:            "cus_1",
		Created:               offlineNow,
	}
	gotNoMeta := got
	gotNoMeta.Metadata = nil
	if !reflect.DeepEqual(gotNoMeta, want) {
		t.Errorf("intent = %+v\nwant     %+v", gotNoMeta, want)
	}
	if !strings.HasPrefix(got.ID, "offline_pi_") {
		t.Errorf("ID = %q, want offline_pi_...", got.ID)
	}
	if got.ClientSecret != "" {
		t.Error("an offline intent has a client secret")
	}
	if got.Metadata[provider.MetaPaymentID] != "pay_1" || got.Metadata[provider.MetaTenantID] != "ten_1" {
		t.Errorf("Metadata = %v, want our IDs", got.Metadata)
	}

	// The caller's copy is its own.
	got.Metadata[provider.MetaPaymentID] = "changed"
	again, err := o.GetIntent(context.Background(), got.ID)
	if err != nil {
		t.Fatalf("GetIntent: %v", err)
	}
	if again.Metadata[provider.MetaPaymentID] != "pay_1" {
		t.Error("changing a returned intent changed the stored one")
	}
}

func TestOfflineIdempotency(t *testing.T) {
	ctx := context.Background()
	base := provider.IntentRequest{IdempotencyKey: "payment:pay_1:intent", AmountMinor: 30000, Currency: "TRY", Refs: refs}

	tests := []struct {
		name     string
		second   provider.IntentRequest
		wantSame bool
		wantErr  error
	}{
		{name: "same request answers the same", second: base, wantSame: true},
		{name: "currency case does not matter", second: func() provider.IntentRequest { r := base; r.Currency = "try"; return r }(), wantSame: true},
		{name: "other amount under the same key", second: func() provider.IntentRequest { r := base; r.AmountMinor = 1; return r }(), wantErr: provider.ErrIdempotencyConflict},
		{name: "other key is another intent", second: func() provider.IntentRequest { r := base; r.IdempotencyKey = "payment:pay_2:intent"; return r }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOffline()
			first, err := o.CreateIntent(ctx, base)
			if err != nil {
				t.Fatalf("first: %v", err)
			}
			second, err := o.CreateIntent(ctx, tt.second)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("second: err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if provider.Retryable(err) {
					t.Error("conflict is retryable")
				}
				return
			}
			if same := first.ID == second.ID; same != tt.wantSame {
				t.Errorf("same ID = %t, want %t (%s, %s)", same, tt.wantSame, first.ID, second.ID)
			}
		})
	}

	t.Run("IDs survive a restart", func(t *testing.T) {
		a, _ := newOffline().CreateIntent(ctx, base)
		b, _ := newOffline().CreateIntent(ctx, base)
		if a.ID != b.ID {
			t.Errorf("IDs differ across instances: %s, %s", a.ID, b.ID)
		}
	})
}

// step is one thing done to the held intent before the call under test.
type step func(ctx context.Context, o *provider.Offline, id string) error

func capture(amount int64, key string) step {
	return func(ctx context.Context, o *provider.Offline, id string) error {
		_, err := o.Capture(ctx, id, amount, key)
		return err
	}
}

func cancel(key string) step {
	return func(ctx context.Context, o *provider.Offline, id string) error {
		_, err := o.CancelIntent(ctx, id, key)
		return err
	}
}

func refund(amount int64, key string) step {
	return func(ctx context.Context, o *provider.Offline, id string) error {
		_, err := o.Refund(ctx, provider.RefundRequest{IdempotencyKey: key, PaymentIntentID: id, AmountMinor: amount, Refs: refs})
		return err
	}
}

func prepare(t *testing.T, o *provider.Offline, id string, steps []step) {
	t.Helper()
	for i, s := range steps {
		if err := s(context.Background(), o, id); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

func TestOfflineCapture(t *testing.T) {
	tests := []struct {
		name         string
		before       []step
		amount       int64
		key          string
		wantStatus   string
		wantReceived int64
		wantCode     string
	}{
		{name: "full", amount: 0, key: "c1", wantStatus: provider.IntentSucceeded, wantReceived: 30000},
		{name: "partial", amount: 10000, key: "c1", wantStatus: provider.IntentSucceeded, wantReceived: 10000},
		{name: "more than promised", amount: 30001, key: "c1", wantCode: "amount_too_large"},
		{name: "repeat with the same key", before: []step{capture(10000, "c1")}, amount: 10000, key: "c1",
			wantStatus: provider.IntentSucceeded, wantReceived: 10000},
		{name: "second capture with another key", before: []step{capture(0, "c1")}, amount: 0, key: "c2", wantCode: "intent_invalid_state"},
		{name: "after cancel", before: []step{cancel("x1")}, amount: 0, key: "c1", wantCode: "intent_invalid_state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOffline()
			id := hold(t, o).ID
			prepare(t, o, id, tt.before)

			got, err := o.Capture(context.Background(), id, tt.amount, tt.key)
			if tt.wantCode != "" {
				if !errors.Is(err, provider.ErrInvalidRequest) || code(err) != tt.wantCode {
					t.Fatalf("err = %v, want ErrInvalidRequest %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Capture: %v", err)
			}
			if got.Status != tt.wantStatus || got.AmountReceivedMinor != tt.wantReceived || got.AmountCapturableMinor != 0 {
				t.Errorf("intent = %+v, want %s with %d received and nothing capturable", got, tt.wantStatus, tt.wantReceived)
			}
			stored, _ := o.GetIntent(context.Background(), id)
			if stored.Status != got.Status || stored.AmountReceivedMinor != got.AmountReceivedMinor {
				t.Errorf("stored %+v differs from answer %+v", stored, got)
			}
		})
	}
}

func TestOfflineCancelIntent(t *testing.T) {
	tests := []struct {
		name       string
		before     []step
		key        string
		wantStatus string
		wantCode   string
	}{
		{name: "promise withdrawn", key: "x1", wantStatus: provider.IntentCanceled},
		{name: "repeat with the same key", before: []step{cancel("x1")}, key: "x1", wantStatus: provider.IntentCanceled},
		{name: "after the desk took the money", before: []step{capture(0, "c1")}, key: "x1", wantCode: "intent_invalid_state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOffline()
			id := hold(t, o).ID
			prepare(t, o, id, tt.before)

			got, err := o.CancelIntent(context.Background(), id, tt.key)
			if tt.wantCode != "" {
				if !errors.Is(err, provider.ErrInvalidRequest) || code(err) != tt.wantCode {
					t.Fatalf("err = %v, want ErrInvalidRequest %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("CancelIntent: %v", err)
			}
			if got.Status != tt.wantStatus || got.AmountCapturableMinor != 0 {
				t.Errorf("intent = %+v, want %s with nothing capturable", got, tt.wantStatus)
			}
		})
	}
}

func TestOfflineRefund(t *testing.T) {
	tests := []struct {
		name       string
		before     []step
		amount     int64
		key        string
		reason     string
		wantAmount int64
		wantCode   string
	}{
		{name: "full", before: []step{capture(0, "c1")}, amount: 0, key: "r1", wantAmount: 30000},
		{name: "partial", before: []step{capture(0, "c1")}, amount: 5000, key: "r1", reason: provider.ReasonRequestedByCustomer, wantAmount: 5000},
		{name: "the rest after a partial", before: []step{capture(0, "c1"), refund(5000, "r1")}, amount: 0, key: "r2", wantAmount: 25000},
		{name: "only what was captured", before: []step{capture(10000, "c1")}, amount: 0, key: "r1", wantAmount: 10000},
		{name: "repeat does not refund twice", before: []step{capture(0, "c1"), refund(5000, "r1"), refund(5000, "r1")}, amount: 0, key: "r2", wantAmount: 25000},
		{name: "more than is left", before: []step{capture(0, "c1"), refund(20000, "r1")}, amount: 10001, key: "r2", wantCode: "amount_too_large"},
		{name: "nothing left", before: []step{capture(0, "c1"), refund(0, "r1")}, amount: 0, key: "r2", wantCode: "charge_already_refunded"},
		{name: "before the desk took the money", amount: 0, key: "r1", wantCode: "intent_invalid_state"},
		{name: "reason Stripe would not take", before: []step{capture(0, "c1")}, amount: 0, key: "r1", reason: "changed_mind", wantCode: "reason_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOffline()
			id := hold(t, o).ID
			prepare(t, o, id, tt.before)

			got, err := o.Refund(context.Background(), provider.RefundRequest{
				IdempotencyKey: tt.key, PaymentIntentID: id, AmountMinor: tt.amount, Reason: tt.reason, Refs: refs,
			})
			if tt.wantCode != "" {
				if !errors.Is(err, provider.ErrInvalidRequest) || code(err) != tt.wantCode {
					t.Fatalf("err = %v, want ErrInvalidRequest %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Refund: %v", err)
			}
			if got.Status != provider.RefundSucceeded || got.AmountMinor != tt.wantAmount || got.Currency != "TRY" ||
				got.PaymentIntentID != id || got.Reason != tt.reason || !strings.HasPrefix(got.ID, "offline_re_") {
				t.Errorf("refund = %+v, want succeeded %d TRY on %s", got, tt.wantAmount, id)
			}
		})
	}
}

func TestOfflineChargeOffSessionDeclines(t *testing.T) {
	tests := []struct {
		name         string
		req          provider.OffSessionRequest
		wantDeclined bool
	}{
		{
			name:         "no cards at the desk",
			req:          provider.OffSessionRequest{IdempotencyKey: "payment:pay_1:noshow", CustomerID: "cus_1", PaymentMethodID: "pm_1", AmountMinor: 15000, Currency: "TRY", Refs: refs},
			wantDeclined: true,
		},
		{
			name: "bad request is still a bad request",
			req:  provider.OffSessionRequest{IdempotencyKey: "payment:pay_1:noshow", CustomerID: "cus_1", AmountMinor: 15000, Currency: "TRY", Refs: refs},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newOffline().ChargeOffSession(context.Background(), tt.req)
			var d provider.ErrDeclined
			if got := errors.As(err, &d); got != tt.wantDeclined {
				t.Fatalf("declined = %t, want %t (err %v)", got, tt.wantDeclined, err)
			}
			if tt.wantDeclined && d != (provider.ErrDeclined{Code: "offline"}) {
				t.Errorf("declined = %+v, want Code offline only", d)
			}
			if !tt.wantDeclined && !errors.Is(err, provider.ErrInvalidRequest) {
				t.Errorf("err = %v, want ErrInvalidRequest", err)
			}
			if provider.Retryable(err) {
				t.Error("Retryable = true, want false")
			}
		})
	}
}

func TestOfflineRefusesBadKey(t *testing.T) {
	for _, m := range mutations {
		for _, k := range []struct{ name, key string }{{"empty", ""}, {"blank", "  "}} {
			t.Run(m.name+"/"+k.name, func(t *testing.T) {
				err := m.call(context.Background(), newOffline(), k.key)
				if !errors.Is(err, provider.ErrInvalidRequest) || code(err) != "idempotency_key_missing" {
					t.Errorf("err = %v, want ErrInvalidRequest idempotency_key_missing", err)
				}
			})
		}
	}
}

func TestOfflineEnsureCustomer(t *testing.T) {
	tests := []struct {
		name    string
		req     provider.CustomerRequest
		want    string // exact, or a prefix ending in "_"
		wantErr error
	}{
		{name: "made up from the key", req: provider.CustomerRequest{IdempotencyKey: "customer:ten_1:pat_1", TenantID: "ten_1", PatientID: "pat_1"}, want: "offline_cus_"},
		{name: "known customer kept", req: provider.CustomerRequest{IdempotencyKey: "customer:ten_1:pat_1", CustomerID: "cus_1", TenantID: "ten_1", PatientID: "pat_1"}, want: "cus_1"},
		{name: "patient required", req: provider.CustomerRequest{IdempotencyKey: "customer:ten_1:", TenantID: "ten_1"}, wantErr: provider.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOffline()
			got, err := o.EnsureCustomer(context.Background(), tt.req)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if strings.HasSuffix(tt.want, "_") && !strings.HasPrefix(got, tt.want) ||
				!strings.HasSuffix(tt.want, "_") && got != tt.want {
				t.Errorf("customer = %q, want %q", got, tt.want)
			}
			again, err := o.EnsureCustomer(context.Background(), tt.req)
			if err != nil || again != got {
				t.Errorf("repeat = %q, %v; want %q", again, err, got)
			}
		})
	}
}

func TestOfflineReadsAndLists(t *testing.T) {
	ctx := context.Background()
	from := offlineNow.Truncate(24 * time.Hour)
	tests := []struct {
		name     string
		call     func(o *provider.Offline) (int, error)
		wantN    int
		wantCode string
	}{
		{name: "unknown intent", call: func(o *provider.Offline) (int, error) {
			_, err := o.GetIntent(ctx, "offline_pi_unknown")
			return 0, err
		}, wantCode: "resource_missing"},
		{name: "no balance transactions", call: func(o *provider.Offline) (int, error) {
			bts, err := o.BalanceTransactions(ctx, from, from.AddDate(0, 0, 1))
			return len(bts), err
		}},
		{name: "no payouts", call: func(o *provider.Offline) (int, error) {
			pos, err := o.Payouts(ctx, from, from.AddDate(0, 0, 1))
			return len(pos), err
		}},
		{name: "backwards range", call: func(o *provider.Offline) (int, error) {
			_, err := o.Payouts(ctx, from.AddDate(0, 0, 1), from)
			return 0, err
		}, wantCode: "range_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOffline()
			if o.Name() != provider.NameOffline {
				t.Fatalf("Name = %q", o.Name())
			}
			n, err := tt.call(o)
			if tt.wantCode != "" {
				if !errors.Is(err, provider.ErrInvalidRequest) || code(err) != tt.wantCode {
					t.Fatalf("err = %v, want ErrInvalidRequest %s", err, tt.wantCode)
				}
				return
			}
			if err != nil || n != tt.wantN {
				t.Errorf("got %d, %v; want %d, nil", n, err, tt.wantN)
			}
		})
	}
}
