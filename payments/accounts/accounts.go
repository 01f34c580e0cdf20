// Package accounts keeps each tenant's payment provider account: which
// provider it uses and its secrets, sealed with the tenant's data key
// (keyring) before they reach the database, and builds the provider client
// for a tenant on demand.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/payments/provider"
)

// Settings is a tenant's provider account, in the clear.
type Settings struct {
	Provider      string // provider.NameStripe or provider.NameOffline
	SecretKey     string
	WebhookSecret string
}

type row struct {
	TenantID           uuid.UUID `gorm:"type:uuid;primaryKey"`
	Provider           string
	StripeSecretKeyEnc []byte
	WebhookSecretEnc   []byte
}

func (row) TableName() string { return "tenant_payment_settings" }

// Accounts reads and writes tenant settings and hands out providers.
type Accounts struct {
	DB *gorm.DB
	// Keys seals the secrets under the tenant's data key, bound to the
	// column, so a secret copied into the other column or to another
	// tenant does not open.
	Keys *keyring.Keyring
	// StripeURL is the Stripe API base; empty means Stripe's own. Dev and
	// tests point it at a local stripe-mock.
	StripeURL string

	mu      sync.Mutex
	cache   map[uuid.UUID]provider.Provider
	offline *provider.Offline
}

// Save stores a tenant's settings, sealing the secrets, and drops the
// cached client so the next call uses them.
func (a *Accounts) Save(ctx context.Context, db *gorm.DB, tenant uuid.UUID, s Settings) error {
	r := row{TenantID: tenant, Provider: s.Provider}
	var err error
	if s.SecretKey != "" {
		if r.StripeSecretKeyEnc, err = a.Keys.SealFor(ctx, tenant, keyring.Binding{Purpose: keyring.PurposeStripeSecretKey}, s.SecretKey); err != nil {
			return err
		}
	}
	if s.WebhookSecret != "" {
		if r.WebhookSecretEnc, err = a.Keys.SealFor(ctx, tenant, keyring.Binding{Purpose: keyring.PurposeWebhookSecret}, s.WebhookSecret); err != nil {
			return err
		}
	}
	err = models.InTenant(ctx, db, tenant, func(tx *gorm.DB) error {
		return tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&r).Error
	})
	if err != nil {
		return fmt.Errorf("save payment settings: %w", err)
	}
	a.mu.Lock()
	delete(a.cache, tenant)
	a.mu.Unlock()
	return nil
}

// Load returns a tenant's settings; a tenant without any pays at the desk.
func (a *Accounts) Load(ctx context.Context, tenant uuid.UUID) (Settings, error) {
	var r row
	err := models.InTenant(ctx, a.DB, tenant, func(tx *gorm.DB) error {
		return tx.Where("tenant_id = ?", tenant).Take(&r).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Settings{Provider: provider.NameOffline}, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("load payment settings: %w", err)
	}
	s := Settings{Provider: r.Provider}
	if len(r.StripeSecretKeyEnc) > 0 {
		if s.SecretKey, err = a.Keys.OpenFor(ctx, tenant, keyring.Binding{Purpose: keyring.PurposeStripeSecretKey}, r.StripeSecretKeyEnc); err != nil {
			return Settings{}, err
		}
	}
	if len(r.WebhookSecretEnc) > 0 {
		if s.WebhookSecret, err = a.Keys.OpenFor(ctx, tenant, keyring.Binding{Purpose: keyring.PurposeWebhookSecret}, r.WebhookSecretEnc); err != nil {
			return Settings{}, err
		}
	}
	return s, nil
}

// Provider returns the tenant's provider client, built once and cached.
func (a *Accounts) Provider(ctx context.Context, tenant uuid.UUID) (provider.Provider, error) {
	a.mu.Lock()
	if p, ok := a.cache[tenant]; ok {
		a.mu.Unlock()
		return p, nil
	}
	a.mu.Unlock()
	s, err := a.Load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var p provider.Provider
	switch s.Provider {
	case provider.NameStripe:
		if p, err = provider.NewStripe(provider.StripeConfig{SecretKey: s.SecretKey, BackendURL: a.StripeURL}); err != nil {
			return nil, err
		}
	default:
		a.mu.Lock()
		if a.offline == nil {
			a.offline = provider.NewOffline()
		}
		p = a.offline
		a.mu.Unlock()
	}
	a.mu.Lock()
	if a.cache == nil {
		a.cache = map[uuid.UUID]provider.Provider{}
	}
	a.cache[tenant] = p
	a.mu.Unlock()
	return p, nil
}
