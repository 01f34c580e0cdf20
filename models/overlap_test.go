package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
)

// TestExclusionConstraintsRefuseOverlaps writes appointments straight to the
// table, below every application check, and the database refuses the ones
// that overlap an active appointment of the same practitioner (buffers
// included) or of the same patient.
func TestExclusionConstraintsRefuseOverlaps(t *testing.T) {
	_, app, a, _ := seedTwo(t)
	ctx := context.Background()
	base := time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)
	doc1, doc2 := a.Practitioners[0].ID, a.Practitioners[1].ID
	pat1, pat2 := a.Patients[0].ID, a.Patients[1].ID
	mk := func(doc, pat uuid.UUID, start time.Time, minutes, bufAfter int, status models.Status) models.Appointment {
		end := start.Add(time.Duration(minutes) * time.Minute)
		return models.Appointment{ID: uuid.New(), TenantID: a.Tenant.ID, PractitionerID: doc, PatientID: pat,
			FacilityID: a.Facilities[0].ID, AppointmentTypeID: a.Types[0].ID, StartsAt: start, EndsAt: end,
			BlockedFrom: start, BlockedUntil: end.Add(time.Duration(bufAfter) * time.Minute),
			Status: status, Mode: models.ModeInPerson, Currency: "USD", Version: 1}
	}
	first := mk(doc1, pat1, base, 30, 10, models.StatusBooked)
	tests := []struct {
		name string
		row  models.Appointment
		want string // constraint that refuses it, or "" for accepted
	}{
		{"same practitioner, same time", mk(doc1, pat2, base, 30, 0, models.StatusBooked), models.ConstraintPractitionerOverlap},
		{"same practitioner, inside the buffer", mk(doc1, pat2, base.Add(35*time.Minute), 30, 0, models.StatusBooked), models.ConstraintPractitionerOverlap},
		{"same practitioner, after the buffer", mk(doc1, pat2, base.Add(40*time.Minute), 30, 0, models.StatusBooked), ""},
		{"same patient, other practitioner, overlapping", mk(doc2, pat1, base.Add(15*time.Minute), 30, 0, models.StatusBooked), models.ConstraintPatientOverlap},
		{"held counts as active", mk(doc1, pat2, base.Add(-10*time.Minute), 20, 0, models.StatusHeld), models.ConstraintPractitionerOverlap},
		{"cancelled does not block", mk(doc1, pat2, base, 30, 0, models.StatusCancelled), ""},
	}
	if err := models.InTenant(ctx, app, a.Tenant.ID, func(tx *gorm.DB) error { return tx.Create(&first).Error }); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := models.InTenant(ctx, app, a.Tenant.ID, func(tx *gorm.DB) error { return tx.Create(&tt.row).Error })
			if got := models.OverlapConstraint(err); got != tt.want {
				t.Fatalf("constraint = %q, want %q (err %v)", got, tt.want, err)
			}
			if tt.want == "" && err != nil {
				t.Fatal(err)
			}
		})
	}
}
