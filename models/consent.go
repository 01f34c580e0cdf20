package models

import (
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Consent purposes.
const (
	PurposeHealthData   = "health_data"   // processing of health data (KVKK art. 6, GDPR art. 9)
	PurposeSMSReminders = "sms_reminders" // appointment reminders by SMS
	PurposeMarketing    = "marketing"
)

// Notice is one version of a privacy or clarification notice in one
// language.
type Notice struct {
	ID          uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID    uuid.UUID `gorm:"type:uuid"`
	Kind        string
	Language    string
	Version     int
	Title       string
	Body        string
	PublishedAt time.Time
}

// Consent is one entry of the consent ledger: a grant or a withdrawal.
type Consent struct {
	ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID   uuid.UUID `gorm:"type:uuid"`
	PatientID  uuid.UUID `gorm:"type:uuid"`
	Purpose    string
	Granted    bool
	NoticeID   *uuid.UUID `gorm:"type:uuid"`
	Channel    string
	RecordedAt time.Time
	RecordedBy *uuid.UUID `gorm:"type:uuid"`
}

// Consents reports whether the patient's latest ledger entry for purpose
// grants it; no entry is no consent. tx must be a tenant transaction.
func Consents(tx *gorm.DB, patient uuid.UUID, purpose string) (bool, error) {
	var rows []Consent
	err := tx.Where("patient_id = ? AND purpose = ?", patient, purpose).
		Order("recorded_at DESC, id DESC").Limit(1).Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return false, err
	}
	return rows[0].Granted, nil
}
