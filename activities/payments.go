package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/payments"
	"github.com/carebook/carebook/payments/accounts"
	"github.com/carebook/carebook/payments/provider"
	"github.com/carebook/carebook/workflows"
)

// Payments runs the payment saga's steps: one provider call, with the
// step's idempotency key, and then the payment row and its ledger entry in
// one transaction. A retry repeats the provider call with the same key
// (the provider answers as before) and finds its ledger entry already
// written, so no step moves or records money twice.
type Payments struct {
	DB       *gorm.DB
	Accounts ProviderSource
}

// ProviderSource hands out a tenant's payment provider;
// *accounts.Accounts is the real one.
type ProviderSource interface {
	Provider(ctx context.Context, tenant uuid.UUID) (provider.Provider, error)
}

var _ ProviderSource = (*accounts.Accounts)(nil)

// StartPayment creates the payment row and the provider's intent (a card
// hold, with the card saved for a no-show fee).
func (p *Payments) StartPayment(ctx context.Context, req workflows.StartPaymentRequest) (workflows.StartPaymentResult, error) {
	tenant, id, err := parseIDs(req.TenantID, req.PaymentID)
	if err != nil {
		return workflows.StartPaymentResult{}, err
	}
	prov, err := p.Accounts.Provider(ctx, tenant)
	if err != nil {
		return workflows.StartPaymentResult{}, err
	}
	hold := req.HoldExpiresAt.UTC()
	row := models.Payment{ID: id, TenantID: tenant, AppointmentID: uuid.MustParse(req.AppointmentID), PatientID: uuid.MustParse(req.PatientID),
		PractitionerID: uuid.MustParse(req.PractitionerID), Provider: prov.Name(), Status: workflows.PaymentRequiresPayment,
		AmountMinor: req.AmountMinor, Currency: req.Currency, HoldExpiresAt: &hold}
	if err := models.InTenant(ctx, p.DB, tenant, func(tx *gorm.DB) error {
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
	}); err != nil {
		return workflows.StartPaymentResult{}, fmt.Errorf("create payment: %w", err)
	}
	refs := provider.Refs{TenantID: req.TenantID, PaymentID: req.PaymentID, AppointmentID: req.AppointmentID}
	intentReq := provider.IntentRequest{IdempotencyKey: workflows.PaymentWorkflowID(req.PaymentID) + ":intent",
		AmountMinor: req.AmountMinor, Currency: req.Currency, Refs: refs}
	if prov.Name() == provider.NameStripe {
		customer, err := prov.EnsureCustomer(ctx, provider.CustomerRequest{
			IdempotencyKey: "customer:" + req.TenantID + ":" + req.PatientID, TenantID: req.TenantID, PatientID: req.PatientID})
		if err != nil {
			return workflows.StartPaymentResult{}, providerError(err)
		}
		intentReq.CustomerID, intentReq.SaveForOffSession = customer, true
	}
	intent, err := prov.CreateIntent(ctx, intentReq)
	if err != nil {
		return workflows.StartPaymentResult{}, providerError(err)
	}
	if err := p.update(ctx, tenant, id, map[string]any{"provider_intent_id": intent.ID}); err != nil {
		return workflows.StartPaymentResult{}, err
	}
	return workflows.StartPaymentResult{Provider: prov.Name(), IntentID: intent.ID, ClientSecret: intent.ClientSecret}, nil
}

// RecordPaymentStatus writes a status the provider reported.
func (p *Payments) RecordPaymentStatus(ctx context.Context, rec workflows.PaymentRecord) error {
	tenant, id, err := parseIDs(rec.TenantID, rec.PaymentID)
	if err != nil {
		return err
	}
	return p.update(ctx, tenant, id, map[string]any{"status": rec.Status, "failure_code": rec.FailureCode})
}

// CapturePayment takes s.AmountMinor of the hold: the visit's price, or a
// fee (s.Kind names it) with the rest released.
func (p *Payments) CapturePayment(ctx context.Context, s workflows.PaymentStep) (workflows.PaymentSummary, error) {
	tenant, pay, prov, err := p.load(ctx, s)
	if err != nil {
		return workflows.PaymentSummary{}, err
	}
	if prov.Name() != provider.NameOffline {
		amount := s.AmountMinor
		if amount == pay.AmountMinor {
			amount = 0 // all of it: the provider then needs no amount
		}
		if _, err := prov.Capture(ctx, s.IntentID, amount, s.Key); err != nil {
			return workflows.PaymentSummary{}, providerError(err)
		}
	}
	money := payments.Money{Amount: s.AmountMinor, Currency: s.Currency}
	var entry payments.Entry
	cols := map[string]any{"status": workflows.PaymentCaptured, "captured_minor": s.AmountMinor}
	if s.Kind == "capture" {
		entry, err = payments.Captured(s.PaymentID, money)
	} else {
		entry, err = payments.FeeCharged(s.PaymentID, s.Kind, money)
		cols["fee_minor"] = s.AmountMinor
	}
	if err != nil {
		return workflows.PaymentSummary{}, temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeProviderReject, nil)
	}
	return p.commit(ctx, tenant, pay.ID, cols, entry)
}

// VoidPayment cancels an uncaptured intent and records s.Kind (voided or
// expired). An intent the provider already cancelled counts as done.
func (p *Payments) VoidPayment(ctx context.Context, s workflows.PaymentStep) (workflows.PaymentSummary, error) {
	tenant, pay, prov, err := p.load(ctx, s)
	if err != nil {
		return workflows.PaymentSummary{}, err
	}
	if prov.Name() != provider.NameOffline {
		if _, err := prov.CancelIntent(ctx, s.IntentID, s.Key); err != nil {
			in, gerr := prov.GetIntent(ctx, s.IntentID)
			if gerr != nil || in.Status != provider.IntentCanceled {
				return workflows.PaymentSummary{}, providerError(err)
			}
		}
	}
	status := s.Kind
	if status != workflows.PaymentExpired {
		status = workflows.PaymentVoided
	}
	return p.commit(ctx, tenant, pay.ID, map[string]any{"status": status}, payments.Entry{})
}

// RefundPayment returns s.AmountMinor of what was captured.
func (p *Payments) RefundPayment(ctx context.Context, s workflows.PaymentStep) (workflows.PaymentSummary, error) {
	tenant, pay, prov, err := p.load(ctx, s)
	if err != nil {
		return workflows.PaymentSummary{}, err
	}
	// A late success was captured by the provider without us: record the
	// capture it made before refunding it.
	lateCapture := s.Reason == "late-success" && pay.CapturedMinor == 0
	captured := pay.CapturedMinor
	if lateCapture {
		captured = s.AmountMinor
	}
	var refund models.Refund
	err = models.InTenant(ctx, p.DB, tenant, func(tx *gorm.DB) error {
		err := tx.Where("idempotency_key = ?", s.Key).Take(&refund).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			// Checked when the refund is first recorded; a retry of a
			// recorded one finishes it whatever came since.
			if left := captured - pay.RefundedMinor; s.AmountMinor > left {
				return temporal.NewNonRetryableApplicationError("refund exceeds what is left", workflows.ErrTypeRefundTooLarge, nil)
			}
			refund = models.Refund{ID: uuid.New(), TenantID: tenant, PaymentID: pay.ID, AmountMinor: s.AmountMinor, Currency: s.Currency,
				Reason: s.Reason, Status: "pending", IdempotencyKey: s.Key}
			if u, err := uuid.Parse(s.UserID); err == nil {
				refund.RequestedBy = &u
			}
			return tx.Create(&refund).Error
		}
		return err
	})
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return workflows.PaymentSummary{}, err
	}
	if err != nil {
		return workflows.PaymentSummary{}, fmt.Errorf("record refund: %w", err)
	}
	if refund.Status == "succeeded" {
		return summaryOf(pay), nil
	}
	var providerRefundID string
	if prov.Name() != provider.NameOffline {
		r, err := prov.Refund(ctx, provider.RefundRequest{IdempotencyKey: s.Key, PaymentIntentID: s.IntentID, AmountMinor: s.AmountMinor,
			Reason: provider.ReasonRequestedByCustomer, Refs: provider.Refs{TenantID: s.TenantID, PaymentID: s.PaymentID}})
		if err != nil {
			return workflows.PaymentSummary{}, providerError(err)
		}
		providerRefundID = r.ID
	}
	money := payments.Money{Amount: s.AmountMinor, Currency: s.Currency}
	entry, err := payments.Refunded(s.PaymentID, refund.ID.String(), money)
	if err != nil {
		return workflows.PaymentSummary{}, temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeProviderReject, nil)
	}
	refunded := pay.RefundedMinor + s.AmountMinor
	status := workflows.PaymentPartiallyRefunded
	if refunded == captured {
		status = workflows.PaymentRefunded
	}
	var sum workflows.PaymentSummary
	err = models.InTenant(ctx, p.DB, tenant, func(tx *gorm.DB) error {
		// Only the transaction that turns the refund from pending to
		// succeeded adds it to the payment.
		res := tx.Model(&models.Refund{}).Where("id = ? AND status = 'pending'", refund.ID).
			Updates(map[string]any{"status": "succeeded", "provider_refund_id": providerRefundID})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 1 {
			if lateCapture {
				capEntry, err := payments.Captured(s.PaymentID, money)
				if err != nil {
					return err
				}
				if err := writeEntry(tx, tenant, pay.ID, capEntry); err != nil {
					return err
				}
			}
			if err := tx.Model(&models.Payment{}).Where("id = ?", pay.ID).Updates(map[string]any{
				"status": status, "refunded_minor": refunded, "captured_minor": captured, "updated_at": time.Now().UTC()}).Error; err != nil {
				return err
			}
			if err := writeEntry(tx, tenant, pay.ID, entry); err != nil {
				return err
			}
		}
		var after models.Payment
		if err := tx.Where("id = ?", pay.ID).Take(&after).Error; err != nil {
			return err
		}
		sum = summaryOf(after)
		return nil
	})
	if err != nil {
		return workflows.PaymentSummary{}, fmt.Errorf("record refund: %w", err)
	}
	return sum, nil
}

// ChargeNoShowFee charges off-session on the card saved with the original
// intent, once its hold has lapsed: the no-show or late-cancel fee (s.Kind
// names it), or the visit itself (s.Kind "capture").
func (p *Payments) ChargeNoShowFee(ctx context.Context, s workflows.PaymentStep) (workflows.PaymentSummary, error) {
	tenant, pay, prov, err := p.load(ctx, s)
	if err != nil {
		return workflows.PaymentSummary{}, err
	}
	if prov.Name() != provider.NameOffline {
		orig, err := prov.GetIntent(ctx, s.IntentID)
		if err != nil {
			return workflows.PaymentSummary{}, providerError(err)
		}
		if _, err := prov.ChargeOffSession(ctx, provider.OffSessionRequest{IdempotencyKey: s.Key, CustomerID: orig.CustomerID,
			PaymentMethodID: orig.PaymentMethodID, AmountMinor: s.AmountMinor, Currency: s.Currency,
			Refs: provider.Refs{TenantID: s.TenantID, PaymentID: s.PaymentID}}); err != nil {
			return workflows.PaymentSummary{}, providerError(err)
		}
	}
	money := payments.Money{Amount: s.AmountMinor, Currency: s.Currency}
	cols := map[string]any{"captured_minor": pay.CapturedMinor + s.AmountMinor, "status": workflows.PaymentCaptured}
	var entry payments.Entry
	if s.Kind == "capture" {
		entry, err = payments.Captured(s.PaymentID, money)
	} else {
		entry, err = payments.FeeCharged(s.PaymentID, s.Kind, money)
		cols["fee_minor"] = s.AmountMinor
	}
	if err != nil {
		return workflows.PaymentSummary{}, temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeProviderReject, nil)
	}
	return p.commit(ctx, tenant, pay.ID, cols, entry)
}

func (p *Payments) load(ctx context.Context, s workflows.PaymentStep) (uuid.UUID, models.Payment, provider.Provider, error) {
	tenant, id, err := parseIDs(s.TenantID, s.PaymentID)
	if err != nil {
		return tenant, models.Payment{}, nil, err
	}
	var pay models.Payment
	err = models.InTenant(ctx, p.DB, tenant, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&pay).Error })
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return tenant, pay, nil, temporal.NewNonRetryableApplicationError("no such payment", workflows.ErrTypeNotFound, nil)
	}
	if err != nil {
		return tenant, pay, nil, fmt.Errorf("load payment: %w", err)
	}
	prov, err := p.Accounts.Provider(ctx, tenant)
	return tenant, pay, prov, err
}

// commit updates the payment and writes entry (when it has postings) in
// one transaction, and answers the payment's amounts after it.
func (p *Payments) commit(ctx context.Context, tenant, id uuid.UUID, cols map[string]any, entry payments.Entry) (workflows.PaymentSummary, error) {
	var after models.Payment
	err := models.InTenant(ctx, p.DB, tenant, func(tx *gorm.DB) error {
		cols["updated_at"] = time.Now().UTC()
		if err := tx.Model(&models.Payment{}).Where("id = ?", id).Updates(cols).Error; err != nil {
			return err
		}
		if len(entry.Postings) > 0 {
			if err := writeEntry(tx, tenant, id, entry); err != nil {
				return err
			}
		}
		return tx.Where("id = ?", id).Take(&after).Error
	})
	if err != nil {
		return workflows.PaymentSummary{}, fmt.Errorf("record payment step: %w", err)
	}
	return summaryOf(after), nil
}

func (p *Payments) update(ctx context.Context, tenant, id uuid.UUID, cols map[string]any) error {
	cols["updated_at"] = time.Now().UTC()
	err := models.InTenant(ctx, p.DB, tenant, func(tx *gorm.DB) error {
		return tx.Model(&models.Payment{}).Where("id = ?", id).Updates(cols).Error
	})
	if err != nil {
		return fmt.Errorf("update payment: %w", err)
	}
	return nil
}

// writeEntry appends a ledger entry once: its key is unique per tenant, so
// a repeat inserts nothing.
func writeEntry(tx *gorm.DB, tenant, paymentID uuid.UUID, e payments.Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("ledger:"+tenant.String()+":"+e.Key))
	res := tx.Exec(`INSERT INTO ledger_entries (id, tenant_id, key, kind, payment_id, memo) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, key) DO NOTHING`, id, tenant, e.Key, e.Kind, paymentID, e.Memo)
	if res.Error != nil || res.RowsAffected == 0 {
		return res.Error
	}
	for _, post := range e.Postings {
		if err := tx.Exec(`INSERT INTO ledger_postings (tenant_id, entry_id, account, amount_minor, currency) VALUES (?, ?, ?, ?, ?)`,
			tenant, id, post.Account, post.Amount.Amount, post.Amount.Currency).Error; err != nil {
			return err
		}
	}
	return nil
}

func summaryOf(p models.Payment) workflows.PaymentSummary {
	return workflows.PaymentSummary{Status: p.Status, CapturedMinor: p.CapturedMinor, RefundedMinor: p.RefundedMinor, FeeMinor: p.FeeMinor}
}

// providerError turns a provider failure into what the saga's retry policy
// understands: declines and refused requests are final, the rest retried.
func providerError(err error) error {
	var d provider.ErrDeclined
	if errors.As(err, &d) {
		return temporal.NewNonRetryableApplicationError("payment declined", workflows.ErrTypeDeclined, nil, d.Code, d.DeclineCode)
	}
	if errors.Is(err, provider.ErrInvalidRequest) || errors.Is(err, provider.ErrIdempotencyConflict) || errors.Is(err, provider.ErrAuth) {
		return temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeProviderReject, nil)
	}
	return err
}
