package api

import (
	"context"

	"github.com/google/uuid"

	"github.com/carebook/carebook/payments/accounts"
)

// SecretSealer encrypts small secrets that belong to one tenant (TOTP
// secrets) for storage, and opens them again. A sealed secret is bound to
// its tenant: it does not open for another.
type SecretSealer interface {
	Seal(ctx context.Context, tenant uuid.UUID, plain string) ([]byte, error)
	Open(ctx context.Context, tenant uuid.UUID, sealed []byte) (string, error)
}

// KEKSealer is a SecretSealer over the payment accounts' sealer, which
// uses the one key-encryption key from configuration for every tenant.
// TODO(#5): replaced by per-tenant data keys wrapped by a KMS.
type KEKSealer struct{ Sealer *accounts.Sealer }

// Seal seals plain for tenant.
func (k KEKSealer) Seal(_ context.Context, tenant uuid.UUID, plain string) ([]byte, error) {
	return k.Sealer.Seal(tenant, plain)
}

// Open opens what Seal sealed for the same tenant.
func (k KEKSealer) Open(_ context.Context, tenant uuid.UUID, sealed []byte) (string, error) {
	return k.Sealer.Open(tenant, sealed)
}
