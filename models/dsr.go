package models

import (
	"errors"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Data subject request kinds.
const (
	DSRExport  = "export"
	DSRErasure = "erasure"
)

// Data subject request states.
const (
	DSRPending   = "pending"
	DSRRunning   = "running"
	DSRCompleted = "completed"
	DSRRefused   = "refused"
	DSRFailed    = "failed"
	// DSRExpired is an export whose archive was deleted after
	// ExportArchiveLifetime.
	DSRExpired = "expired"
)

// ExportArchiveLifetime is how long an export's archive stays in the
// object store after the export completed. A week is time enough to
// download it, even for a patient who reads their mail on weekends; after
// that a copy of everything about the patient should not lie around, and
// asking again makes a fresh one. The nightly retention run deletes the
// archive and marks the request expired; the api refuses a link to it
// from this age on, whether or not the run has come yet.
const ExportArchiveLifetime = 7 * 24 * time.Hour

// DSROutcomeLegalHold is the outcome of an erasure refused because a legal
// hold on the patient was active when it ran.
const DSROutcomeLegalHold = "legal-hold"

// DSRRequest is one export or erasure request about a patient.
type DSRRequest struct {
	ID                     uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID               uuid.UUID `gorm:"type:uuid"`
	PatientID              uuid.UUID `gorm:"type:uuid"`
	Kind                   string
	RequestedBy            uuid.UUID `gorm:"type:uuid"`
	RequestedRole          string
	Status                 string
	Outcome                string
	WorkflowID             string
	ArchiveKey             string
	MedicalRetainedUntil   *time.Time `gorm:"type:date"`
	FinancialRetainedUntil *time.Time `gorm:"type:date"`
	RequestedAt            time.Time
	StartedAt              *time.Time
	CompletedAt            *time.Time
}

// TableName keeps GORM on the schema's name.
func (DSRRequest) TableName() string { return "dsr_requests" }

// LegalHold keeps a patient's records from erasure until released.
type LegalHold struct {
	ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID      uuid.UUID `gorm:"type:uuid"`
	PatientID     uuid.UUID `gorm:"type:uuid"`
	Reason        string
	PlacedBy      uuid.UUID `gorm:"type:uuid"`
	PlacedAt      time.Time
	ReleasedBy    *uuid.UUID `gorm:"type:uuid"`
	ReleasedAt    *time.Time
	ReleaseReason string
}

// RetentionSettings says how many years a tenant must keep medical and
// financial records after an erasure request.
type RetentionSettings struct {
	TenantID              uuid.UUID `gorm:"type:uuid;primaryKey"`
	Jurisdiction          string
	MedicalRecordsYears   int
	FinancialRecordsYears int
	UpdatedBy             *uuid.UUID `gorm:"type:uuid"`
	UpdatedAt             time.Time
}

// DefaultRetention applies to a tenant that has not set its own. The
// numbers are deliberately the longest common ones, because keeping a
// record too long is a smaller wrong than destroying one a court or an
// inspector asks for:
//
//   - medical records, 20 years: Turkey's hospital archive rules keep
//     patient files for decades, and most US states ask for 6 to 10 years
//     after the last visit for adults (longer for minors);
//   - financial records, 10 years: the Turkish Commercial Code (article
//     82) keeps books and their vouchers for ten years, longer than US
//     federal tax rules (at most 7) ask.
//
// A tenant's privacy officer sets the real values for its jurisdiction
// (PUT /v1/retention-settings); these are a safe start, not legal advice.
var DefaultRetention = RetentionSettings{Jurisdiction: "TR", MedicalRecordsYears: 20, FinancialRecordsYears: 10}

// Retention returns the tenant's retention settings, or the defaults, and
// whether they are the defaults. tx must be a tenant transaction.
func Retention(tx *gorm.DB) (RetentionSettings, bool, error) {
	var r RetentionSettings
	err := tx.Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return DefaultRetention, true, nil
	}
	return r, false, err
}

// ActiveLegalHold reports whether the patient has a legal hold that is not
// released. tx must be a tenant transaction.
func ActiveLegalHold(tx *gorm.DB, patient uuid.UUID) (bool, error) {
	var n int64
	err := tx.Model(&LegalHold{}).Where("patient_id = ? AND released_at IS NULL", patient).Count(&n).Error
	return n > 0, err
}
