package models

import (
	"time"

	"github.com/google/uuid"
)

// BreakGlass is a doctor's emergency access to one patient's record.
type BreakGlass struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID       uuid.UUID `gorm:"type:uuid"`
	UserID         uuid.UUID `gorm:"type:uuid"`
	PractitionerID uuid.UUID `gorm:"type:uuid"`
	PatientID      uuid.UUID `gorm:"type:uuid"`
	Reason         string
	GrantedAt      time.Time
	ExpiresAt      time.Time
	ReviewedBy     *uuid.UUID `gorm:"type:uuid"`
	ReviewedAt     *time.Time
	ReviewNote     string
}

// TableName keeps GORM on the schema's name.
func (BreakGlass) TableName() string { return "break_glass_grants" }
