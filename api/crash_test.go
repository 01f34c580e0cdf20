package api_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/payments/provider"
)

// stallingSource hands out the tenant's real provider wrapped so that a
// capture, once the provider has taken the money, never returns: the
// worker is gone before it can record the charge.
type stallingSource struct {
	real    activities.ProviderSource
	stall   bool // false: record keys only
	mu      sync.Mutex
	keys    []string
	charged chan struct{}
}

func (s *stallingSource) Provider(ctx context.Context, tenant uuid.UUID) (provider.Provider, error) {
	p, err := s.real.Provider(ctx, tenant)
	return &stallingProvider{Provider: p, src: s}, err
}

type stallingProvider struct {
	provider.Provider
	src *stallingSource
}

func (p *stallingProvider) Capture(ctx context.Context, id string, amount int64, key string) (provider.Intent, error) {
	in, err := p.Provider.Capture(ctx, id, amount, key)
	p.src.mu.Lock()
	p.src.keys = append(p.src.keys, key)
	p.src.mu.Unlock()
	if !p.src.stall {
		return in, err
	}
	select {
	case p.src.charged <- struct{}{}:
	default:
	}
	<-ctx.Done() // the process dies here
	return provider.Intent{}, err
}

// TestWorkerKilledBetweenChargeAndRecordChargesOnce: the worker that ran
// the capture stops after Stripe took the money and before the ledger
// knew; a new worker picks the saga up, repeats the capture with the same
// idempotency key, and the books show exactly one charge.
func TestWorkerKilledBetweenChargeAndRecordChargesOnce(t *testing.T) {
	st := newStack(t)
	st.Worker.Stop()
	stall := &stallingSource{real: st.Deps.Payments.Accounts, stall: true, charged: make(chan struct{}, 1)}
	dying := st.Deps
	dying.Payments = &activities.Payments{DB: st.App, Accounts: stall}
	first := st.startWorker(dying)

	done := make(chan [2]string, 1)
	go func() {
		// Books, secures and checks in a paid visit; the check-in starts
		// the capture on the dying worker. Waiting for the capture to show
		// in the database only ends once the second worker has run.
		appt, pay := st.capturedCardioVisit(t)
		done <- [2]string{appt, pay}
	}()
	select {
	case <-stall.charged:
	case <-time.After(30 * time.Second):
		t.Fatal("the capture never reached the provider")
	}
	first.Stop()
	// The new worker records its capture keys in the same list.
	healthy := st.Deps
	healthy.Payments = &activities.Payments{DB: st.App, Accounts: &stallingSource{real: st.Deps.Payments.Accounts, charged: stall.charged}}
	st.startWorker(healthy)

	var ids [2]string
	select {
	case ids = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the saga did not finish the capture on the new worker")
	}
	paymentID := ids[1]
	second := healthy.Payments.Accounts.(*stallingSource)
	keys := append(append([]string{}, stall.keys...), second.keys...)
	if len(stall.keys) != 1 || len(second.keys) != 1 {
		t.Fatalf("capture attempts: %d on the dying worker, %d on the new one; want one each", len(stall.keys), len(second.keys))
	}
	for _, k := range keys {
		if k != "payment:"+paymentID+":capture" {
			t.Fatalf("capture sent with key %q", k)
		}
	}
	if n := st.count("SELECT count(*) FROM ledger_entries WHERE payment_id = ? AND kind = 'capture'", paymentID); n != 1 {
		t.Fatalf("capture entries = %d, want 1", n)
	}
	if n := st.count("SELECT count(*) FROM payments WHERE id = ? AND captured_minor = 12000 AND status = 'captured'", paymentID); n != 1 {
		t.Fatal("payment not captured exactly once")
	}
}
