package api

import (
	"context"

	"github.com/google/uuid"

	"github.com/carebook/carebook/keyring"
)

// SecretSealer encrypts small secrets that belong to one tenant (TOTP
// secrets) for storage, and opens them again. A sealed secret is bound to
// its tenant: it does not open for another.
type SecretSealer interface {
	Seal(ctx context.Context, tenant uuid.UUID, plain string) ([]byte, error)
	Open(ctx context.Context, tenant uuid.UUID, sealed []byte) (string, error)
}

// KeyringSecrets seals TOTP secrets under the tenant's data key, bound to
// their purpose so that no other sealed column's value opens as one. The
// pending and the active secret share the purpose: confirming an enrolment
// moves the value from one column to the other unchanged.
type KeyringSecrets struct{ Keys *keyring.Keyring }

// Seal seals plain for tenant.
func (k KeyringSecrets) Seal(ctx context.Context, tenant uuid.UUID, plain string) ([]byte, error) {
	return k.Keys.SealFor(ctx, tenant, keyring.Binding{Purpose: keyring.PurposeTOTPSecret}, plain)
}

// Open opens what Seal sealed for the same tenant.
func (k KeyringSecrets) Open(ctx context.Context, tenant uuid.UUID, sealed []byte) (string, error) {
	return k.Keys.OpenFor(ctx, tenant, keyring.Binding{Purpose: keyring.PurposeTOTPSecret}, sealed)
}
