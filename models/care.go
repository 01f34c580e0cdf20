package models

import (
	"time"

	"github.com/google/uuid"
)

// CareAssignment puts a patient in a doctor's care outside any
// appointment (a primary-care list, a referral, an inpatient stay), so the
// doctor reaches the patient's results while it lasts.
type CareAssignment struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID       uuid.UUID `gorm:"type:uuid"`
	PractitionerID uuid.UUID `gorm:"type:uuid"`
	PatientID      uuid.UUID `gorm:"type:uuid"`
	Reason         string
	AssignedBy     uuid.UUID `gorm:"type:uuid"`
	ValidFrom      time.Time
	ValidUntil     *time.Time
	CreatedAt      time.Time
	EndedAt        *time.Time
	EndedBy        *uuid.UUID `gorm:"type:uuid"`
}

// CareReasons are the codes a care assignment may give; the schema checks
// the same list.
var CareReasons = []string{"primary-care", "referral", "inpatient", "cover", "care-team"}

// ProxyRelation lets one patient (the proxy: a parent, guardian or
// caregiver) act for another (the dependant), as verified by staff from
// documents at the desk.
type ProxyRelation struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID       uuid.UUID `gorm:"type:uuid"`
	ProxyPatientID uuid.UUID `gorm:"type:uuid"`
	PatientID      uuid.UUID `gorm:"type:uuid"`
	Kind           string
	VerifiedBy     uuid.UUID `gorm:"type:uuid"`
	ValidFrom      time.Time
	ValidUntil     *time.Time
	CreatedAt      time.Time
	EndedAt        *time.Time
	EndedBy        *uuid.UUID `gorm:"type:uuid"`
}

// ProxyKinds are the kinds of proxy relation; the schema checks the same
// list.
var ProxyKinds = []string{"parent", "guardian", "caregiver"}

// Active reports whether the relation gives access at t.
func (r ProxyRelation) Active(t time.Time) bool {
	return active(r.ValidFrom, r.ValidUntil, r.EndedAt, t)
}

// Active reports whether the assignment gives access at t.
func (a CareAssignment) Active(t time.Time) bool {
	return active(a.ValidFrom, a.ValidUntil, a.EndedAt, t)
}

func active(from time.Time, until, ended *time.Time, t time.Time) bool {
	return ended == nil && !t.Before(from) && (until == nil || t.Before(*until))
}
