package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/payments"
	"github.com/carebook/carebook/payments/provider"
	"github.com/carebook/carebook/workflows"
)

// webhookEvent is a row of webhook_events.
type webhookEvent struct {
	TenantID   uuid.UUID `gorm:"type:uuid;primaryKey"`
	EventID    string    `gorm:"primaryKey"`
	Type       string
	ObjectID   string
	PaymentID  *uuid.UUID `gorm:"type:uuid"`
	Payload    []byte
	CreatedAt  time.Time
	ReceivedAt time.Time
	RoutedAt   *time.Time
}

func (webhookEvent) TableName() string { return "webhook_events" }

// stripeWebhook handles POST /v1/webhooks/stripe/{tenant}. It verifies the
// Stripe-Signature over the raw body with the tenant's endpoint secret,
// keeps the event once by its ID, and only then signals the payment's
// saga: an event is stored before anything acts on it, so a worker or
// Temporal outage loses nothing (Stripe retries on a non-2xx answer, and
// the retry finds the event stored but not yet routed).
func (s *Server) stripeWebhook(c *gin.Context) error {
	ctx := c.Request.Context()
	tenant, err := s.tenantBySlug(ctx, c.Param("tenant"))
	if err != nil {
		return err
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	settings, err := s.Accounts.Load(ctx, tenant.ID)
	if err != nil {
		return internal(err)
	}
	if settings.WebhookSecret == "" {
		return notFound("webhook endpoint")
	}
	if err := payments.VerifySignature(c.GetHeader("Stripe-Signature"), body, settings.WebhookSecret, payments.DefaultTolerance, s.Now()); err != nil {
		p := badRequest("invalid-signature", "The Stripe-Signature header does not match this body, or it is too old.")
		p.Err = err
		return p
	}
	ev, err := payments.ParseEvent(body)
	if err != nil {
		return badRequest("invalid-event", "The body is not a Stripe event.")
	}

	var stored webhookEvent
	err = models.InTenant(ctx, s.DB, tenant.ID, func(tx *gorm.DB) error {
		pid := paymentOf(tx, ev)
		row := webhookEvent{TenantID: tenant.ID, EventID: ev.ID, Type: ev.Type, ObjectID: ev.ObjectID, PaymentID: pid,
			Payload: body, CreatedAt: ev.Created.UTC(), ReceivedAt: s.Now().UTC()}
		if err := tx.Exec(`INSERT INTO webhook_events (tenant_id, event_id, type, object_id, charge_id, payment_id, payload, created_at, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, event_id) DO NOTHING`,
			row.TenantID, row.EventID, row.Type, row.ObjectID, chargeOf(ev), row.PaymentID, row.Payload, row.CreatedAt, row.ReceivedAt).Error; err != nil {
			return err
		}
		return tx.Where("event_id = ?", ev.ID).Take(&stored).Error
	})
	if err != nil {
		return internal(err)
	}
	if stored.RoutedAt != nil {
		c.JSON(http.StatusOK, gin.H{"received": true, "duplicate": true})
		return nil
	}
	// Claim the routing: of deliveries of one event racing each other,
	// only the one that sets routed_at signals the saga.
	var claimed int64
	err = models.InTenant(ctx, s.DB, tenant.ID, func(tx *gorm.DB) error {
		res := tx.Model(&webhookEvent{}).Where("event_id = ? AND routed_at IS NULL", ev.ID).Update("routed_at", s.Now().UTC())
		claimed = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return internal(err)
	}
	if claimed == 0 {
		c.JSON(http.StatusOK, gin.H{"received": true, "duplicate": true})
		return nil
	}
	if stored.PaymentID != nil && (strings.HasPrefix(ev.Type, "payment_intent.") || strings.HasPrefix(ev.Type, "charge.")) {
		if err := s.signalPayment(ctx, *stored.PaymentID, ev); err != nil {
			// Give the claim back so that Stripe's retry routes it.
			_ = models.InTenant(ctx, s.DB, tenant.ID, func(tx *gorm.DB) error {
				return tx.Model(&webhookEvent{}).Where("event_id = ?", ev.ID).Update("routed_at", nil).Error
			})
			return err
		}
	}
	c.JSON(http.StatusOK, gin.H{"received": true})
	return nil
}

// chargeOf is the charge an event is about: the object of a charge event,
// the latest charge of a payment intent's.
func chargeOf(ev payments.Event) string {
	switch ev.ObjectType {
	case "charge":
		return ev.ObjectID
	case "payment_intent":
		var pi struct {
			LatestCharge any `json:"latest_charge"`
		}
		if json.Unmarshal(ev.Raw, &pi) == nil {
			switch v := pi.LatestCharge.(type) {
			case string:
				return v
			case map[string]any:
				id, _ := v["id"].(string)
				return id
			}
		}
	}
	return ""
}

// paymentOf finds the payment an event is about: by the payment ID we put
// in the intent's metadata, else by the intent's ID.
func paymentOf(tx *gorm.DB, ev payments.Event) *uuid.UUID {
	if id, err := uuid.Parse(ev.Metadata[provider.MetaPaymentID]); err == nil {
		var n int64
		if tx.Table("payments").Where("id = ?", id).Count(&n); n == 1 {
			return &id
		}
	}
	if ev.PaymentIntentID == "" {
		return nil
	}
	var ids []uuid.UUID
	tx.Table("payments").Where("provider_intent_id = ?", ev.PaymentIntentID).Pluck("id", &ids)
	if len(ids) == 1 {
		return &ids[0]
	}
	return nil
}

// signalPayment hands the event to the payment's saga. A saga that has
// finished has nothing left to do with it; an unreachable Temporal is a
// 503, so Stripe delivers the event again.
func (s *Server) signalPayment(ctx context.Context, paymentID uuid.UUID, ev payments.Event) error {
	pe := workflows.ProviderEvent{EventID: ev.ID, Type: ev.Type, Created: ev.Created}
	if ev.ObjectType == "payment_intent" {
		if pi, err := payments.ParsePaymentIntent(ev.Raw); err == nil {
			pe.IntentStatus, pe.DeclineCode = pi.Status, pi.LastPaymentError.DeclineCode
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := s.Temporal.SignalWorkflow(ctx, workflows.PaymentWorkflowID(paymentID.String()), "", workflows.SignalProviderEvent, pe)
	var gone *serviceerror.NotFound
	if err == nil || errors.As(err, &gone) {
		return nil
	}
	return unavailable(err)
}
