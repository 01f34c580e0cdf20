package models

import (
	"time"

	"github.com/google/uuid"
)

// UserMFA is a user's TOTP enrolment. The secrets are sealed by the api's
// SecretSealer; LastStep is the newest TOTP step already spent.
type UserMFA struct {
	UserID           uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID         uuid.UUID `gorm:"type:uuid"`
	TOTPSecretEnc    []byte    `gorm:"column:totp_secret_enc"`
	EnrolledAt       *time.Time
	PendingSecretEnc []byte
	PendingAt        *time.Time
	LastStep         int64
	UpdatedAt        time.Time
}

// TableName keeps GORM on the schema's name.
func (UserMFA) TableName() string { return "user_mfa" }

// Enrolled reports whether the user has a confirmed TOTP secret.
func (m UserMFA) Enrolled() bool { return m.EnrolledAt != nil && len(m.TOTPSecretEnc) > 0 }

// RecoveryCode is one single-use MFA recovery code, kept as a hash only.
type RecoveryCode struct {
	TenantID  uuid.UUID `gorm:"type:uuid"`
	UserID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	CodeHash  string    `gorm:"primaryKey"`
	CreatedAt time.Time
	UsedAt    *time.Time
}

// TableName keeps GORM on the schema's name.
func (RecoveryCode) TableName() string { return "mfa_recovery_codes" }
