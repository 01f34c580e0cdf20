package models

import (
	"time"

	"github.com/google/uuid"
)

// IdentityProvider is a tenant's own OpenID Connect provider, through
// which its people sign in instead of with a Carebook password.
type IdentityProvider struct {
	TenantID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	Issuer          string
	ClientID        string
	ClientSecretEnc []byte
	EmailDomains    []string `gorm:"serializer:json"`
	TrustIdPMFA     bool     `gorm:"column:trust_idp_mfa"`
	Enabled         bool
	UpdatedBy       uuid.UUID `gorm:"type:uuid"`
	UpdatedAt       time.Time
}

// UserIdentity links a provider's subject to a Carebook account.
type UserIdentity struct {
	TenantID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	Issuer      string    `gorm:"primaryKey"`
	Subject     string    `gorm:"primaryKey"`
	UserID      uuid.UUID `gorm:"type:uuid"`
	CreatedAt   time.Time
	LastLoginAt *time.Time
}
