package models

import (
	"time"

	"github.com/google/uuid"
)

// ClinicalNote is a doctor's note about a patient: a draft its author may
// rewrite, then signed and never rewritten again. A correction of a signed
// note is an addendum, a note of its own whose Amends names the original.
// The text is in BodySealed only, sealed with the tenant's data key
// (keyring.PurposeClinicalNote, bound to the patient and the note).
type ClinicalNote struct {
	ID            uuid.UUID  `gorm:"type:uuid;primaryKey"`
	TenantID      uuid.UUID  `gorm:"type:uuid"`
	PatientID     uuid.UUID  `gorm:"type:uuid"`
	AuthorID      uuid.UUID  `gorm:"type:uuid"`
	AppointmentID *uuid.UUID `gorm:"type:uuid"`
	Kind          string
	Amends        *uuid.UUID `gorm:"type:uuid"`
	BodySealed    []byte
	Version       int
	CreatedAt     time.Time
	UpdatedAt     time.Time
	SignedAt      *time.Time
	SignedBy      *uuid.UUID `gorm:"type:uuid"`
}

// NoteKinds are the kinds of clinical note; the schema checks the same
// list.
var NoteKinds = []string{"progress", "consultation", "discharge", "procedure", "telephone"}

// Signed reports whether the note is signed, and so part of the record.
func (n ClinicalNote) Signed() bool { return n.SignedAt != nil }
