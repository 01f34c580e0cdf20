package activities_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/payments/accounts"
	"github.com/carebook/carebook/payments/provider"
	"github.com/carebook/carebook/payments/provider/stripemock"
	"github.com/carebook/carebook/workflows"
)

// crashingProvider passes every call to the real provider, and fails the
// first Capture after the provider has taken the money: what a worker that
// dies between the charge and the database write looks like to Temporal.
type crashingProvider struct {
	provider.Provider
	mu       sync.Mutex
	captures []string // idempotency keys sent
	crashed  bool
}

func (c *crashingProvider) Capture(ctx context.Context, id string, amount int64, key string) (provider.Intent, error) {
	in, err := c.Provider.Capture(ctx, id, amount, key)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.captures = append(c.captures, key)
	if err == nil && !c.crashed {
		c.crashed = true
		return provider.Intent{}, errors.New("worker lost before recording the capture")
	}
	return in, err
}

type source struct{ p provider.Provider }

func (s source) Provider(context.Context, uuid.UUID) (provider.Provider, error) { return s.p, nil }

// TestCaptureRetriedAfterACrashChargesOnce: the retry repeats the provider
// call with the same idempotency key (Stripe answers it without charging
// again) and the ledger gets one capture.
func TestCaptureRetriedAfterACrashChargesOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mock, err := stripemock.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Stop()
	kek, err := keyring.NewLocalKEK(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	accts := &accounts.Accounts{DB: f.a.DB, Keys: keyring.New(f.a.DB, kek), StripeURL: mock.URL}
	if err := accts.Save(ctx, f.a.DB, f.net.Tenant.ID, accounts.Settings{Provider: "stripe", SecretKey: "sk_test_123"}); err != nil {
		t.Fatal(err)
	}
	real, err := accts.Provider(ctx, f.net.Tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	crash := &crashingProvider{Provider: real}
	pay := &activities.Payments{DB: f.a.DB, Accounts: source{crash}}

	start := time.Date(2031, 3, 5, 9, 0, 0, 0, time.UTC)
	book := f.request(start, 0)
	book.HoldExpiresAt = time.Now().Add(15 * time.Minute)
	if res, err := f.a.HoldSlot(ctx, book); err != nil || res.Outcome != workflows.OutcomeBooked {
		t.Fatalf("hold: %+v %v", res, err)
	}
	paymentID := uuid.NewString()
	started, err := pay.StartPayment(ctx, workflows.StartPaymentRequest{TenantID: book.TenantID, PaymentID: paymentID,
		AppointmentID: book.AppointmentID, PatientID: book.PatientID, PractitionerID: book.PractitionerID,
		AmountMinor: 12000, Currency: "USD", HoldExpiresAt: book.HoldExpiresAt})
	if err != nil || started.IntentID == "" || started.ClientSecret == "" {
		t.Fatalf("start payment: %+v %v", started, err)
	}

	step := workflows.PaymentStep{TenantID: book.TenantID, PaymentID: paymentID, IntentID: started.IntentID,
		Key: workflows.PaymentWorkflowID(paymentID) + ":capture", AmountMinor: 12000, Currency: "USD", Kind: "capture"}
	if _, err := pay.CapturePayment(ctx, step); err == nil {
		t.Fatal("the injected crash did not happen")
	}
	sum, err := pay.CapturePayment(ctx, step) // Temporal's retry
	if err != nil || sum.CapturedMinor != 12000 || sum.Status != workflows.PaymentCaptured {
		t.Fatalf("retried capture: %+v %v", sum, err)
	}
	if _, err := pay.CapturePayment(ctx, step); err != nil { // and once more, for good measure
		t.Fatal(err)
	}
	for _, k := range crash.captures {
		if k != step.Key {
			t.Fatalf("capture sent with key %q, want every attempt on %q", k, step.Key)
		}
	}
	admin, err := models.Open(f.db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	var entries, postings int64
	admin.Raw("SELECT count(*) FROM ledger_entries WHERE payment_id = ?", paymentID).Scan(&entries)
	admin.Raw("SELECT count(*) FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id WHERE e.payment_id = ?", paymentID).Scan(&postings)
	if entries != 1 || postings != 2 {
		t.Fatalf("ledger: %d entries, %d postings; want one capture of two postings", entries, postings)
	}

	// A refund retried the same way refunds once, and never more than was
	// captured.
	refund := step
	refund.Key, refund.AmountMinor, refund.Reason = workflows.PaymentWorkflowID(paymentID)+":refund-1", 5000, "goodwill"
	for i := 0; i < 2; i++ {
		if sum, err = pay.RefundPayment(ctx, refund); err != nil || sum.RefundedMinor != 5000 {
			t.Fatalf("refund #%d: %+v %v", i, sum, err)
		}
	}
	tooMuch := refund
	tooMuch.Key, tooMuch.AmountMinor = workflows.PaymentWorkflowID(paymentID)+":refund-2", 8000
	if _, err := pay.RefundPayment(ctx, tooMuch); errType(err) != workflows.ErrTypeRefundTooLarge {
		t.Fatalf("refund beyond the captured amount: %v", err)
	}
	var refunds int64
	admin.Raw("SELECT count(*) FROM refunds WHERE payment_id = ?", paymentID).Scan(&refunds)
	if refunds != 1 {
		t.Fatalf("refund rows = %d, want only the one made", refunds)
	}
}
