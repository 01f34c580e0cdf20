package models

import (
	"time"

	"github.com/google/uuid"
)

// Account token purposes: what a single-use link sent by e-mail may do.
const (
	PurposeVerifyEmail   = "verify-email"
	PurposePasswordReset = "password-reset"
)

// AccountToken is a single-use secret sent in an account e-mail. Only the
// SHA-256 of the secret is stored; the secret itself exists only in the
// e-mail.
type AccountToken struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID  uuid.UUID `gorm:"type:uuid"`
	UserID    uuid.UUID `gorm:"type:uuid"`
	Purpose   string
	TokenHash []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}
