package api

import (
	"database/sql"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
)

// Row reach: beyond the role matrix, whose rows each caller may see. The
// rules are SQL fragments so that every list, read and change narrows in
// the same query that reads, and a row out of reach is simply not found
// (404), never "forbidden": its existence is not the caller's to learn.
//
//   - A patient reaches their own records and, through an active proxy
//     relation (parent, guardian, caregiver), their dependants'.
//   - A doctor reaches patients they have or had a booked, attended or
//     missed visit with (a cancelled or merely held one gives nothing, or
//     a patient could open their record to any doctor by booking and
//     cancelling), patients assigned to their care while the assignment
//     lasts, and results they ordered (labs.go).
//   - Staff reach patients seen at their facility (the same visit states
//     as doctors) and results ordered by a practitioner who works there;
//     appointments at their facility, whatever the state.
//   - Admins (and billing, for the routes it has) reach the whole tenant;
//     row security has already cut every query to it.
//
// Validity windows are compared with the database's clock, as break-glass
// grants are, so a relation and the reads it opens agree on "now".

// reachStates are the visit states that put a patient in a doctor's or a
// facility's reach.
const reachStates = "('booked', 'arrived', 'fulfilled', 'noshow')"

// activeWindow is the condition, on alias x, that a care assignment or
// proxy relation gives access now.
func activeWindow(x string) string {
	return x + ".ended_at IS NULL AND " + x + ".valid_from <= now() AND (" + x + ".valid_until IS NULL OR " + x + ".valid_until > now())"
}

// dependantsOf selects the patients @me acts for now.
var dependantsOf = "SELECT px.patient_id FROM proxy_relations px WHERE px.proxy_patient_id = @me AND " + activeWindow("px")

// patientReachSQL is the condition that the patient in col is @me or one
// of @me's dependants.
func patientReachSQL(col string) string {
	return "(" + col + " = @me OR " + col + " IN (" + dependantsOf + "))"
}

// assignedSQL is the condition that the patient in col is assigned to
// @doctor's care now.
func assignedSQL(col string) string {
	return "EXISTS (SELECT 1 FROM care_assignments ca WHERE ca.patient_id = " + col +
		" AND ca.practitioner_id = @doctor AND " + activeWindow("ca") + ")"
}

// seenByDoctorSQL is the condition that @doctor has or had a visit with
// the patient in col.
func seenByDoctorSQL(col string) string {
	return "EXISTS (SELECT 1 FROM appointments da WHERE da.patient_id = " + col +
		" AND da.practitioner_id = @doctor AND da.status IN " + reachStates + ")"
}

// seenAtFacilitySQL is the condition that the patient in col has or had a
// visit at @facility.
func seenAtFacilitySQL(col string) string {
	return "EXISTS (SELECT 1 FROM appointments fa WHERE fa.patient_id = " + col +
		" AND fa.facility_id = @facility AND fa.status IN " + reachStates + ")"
}

// worksAtFacilitySQL is the condition that the practitioner in col works
// at @facility.
func worksAtFacilitySQL(col string) string {
	return "EXISTS (SELECT 1 FROM practitioner_roles fr WHERE fr.practitioner_id = " + col +
		" AND fr.facility_id = @facility AND fr.active)"
}

// reachArgs are the named arguments every fragment above may use.
func reachArgs(p Principal) []any {
	return []any{sql.Named("me", p.PatientID), sql.Named("doctor", p.PractitionerID), sql.Named("facility", p.FacilityID)}
}

// where applies a fragment with the caller's named arguments.
func where(q *gorm.DB, p Principal, cond string) *gorm.DB {
	return q.Where(cond, reachArgs(p)...)
}

// patientReach narrows a query whose patient column is col to the patients
// p may reach outside of lab results: a patient's own and dependants',
// a doctor's seen or assigned patients, a facility's seen patients.
func patientReach(p Principal, col string) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB {
		switch p.Role {
		case models.RolePatient:
			return where(q, p, patientReachSQL(col))
		case models.RoleDoctor:
			return where(q, p, "("+seenByDoctorSQL(col)+" OR "+assignedSQL(col)+")")
		case models.RoleStaff:
			return where(q, p, seenAtFacilitySQL(col))
		case models.RoleAdmin:
			return q
		}
		return q.Where("false")
	}
}

// reachesPatient reports whether p may act on patient's records (consent,
// booking for a dependant), in tx.
func reachesPatient(tx *gorm.DB, p Principal, patient uuid.UUID) (bool, error) {
	var n int64
	err := tx.Table("patients pt").Where("pt.id = ?", patient).Scopes(patientReach(p, "pt.id")).Count(&n).Error
	return n > 0, err
}

// actsFor reports whether p is a patient acting for someone else: the
// audit event then names both (the actor as its user, the dependant as its
// patient, "proxy" as its reason).
func actsFor(p Principal, patient *uuid.UUID) bool {
	return p.Role == models.RolePatient && patient != nil && *patient != p.PatientID
}

// inList renders a fixed list of codes for a problem's detail.
func inList(codes []string) string { return strings.Join(codes, ", ") }

// auditAppointment records a read or change of one appointment, by anyone:
// a patient's own, a proxy's for a dependant (the event says so), a
// doctor's or the desk's.
func (s *Server) auditAppointment(c *gin.Context, action string, id, patient uuid.UUID) error {
	return s.inTenant(c, func(tx *gorm.DB) error { return s.audit(c, tx, action, "appointment", &id, &patient, "") })
}

// auditAppointmentList records, in tx (the read's own transaction), one
// "list" event for each patient whose appointments rows show, so that an
// auditor asking who saw a patient's visits finds schedules and lists too.
func (s *Server) auditAppointmentList(c *gin.Context, tx *gorm.DB, rows []appointmentRow) error {
	patients := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		patients[i] = r.PatientID
	}
	return s.auditListed(c, tx, "appointment", patients)
}

// auditListed records, in tx (the read's own transaction), one "list"
// event of resourceType for each distinct patient a list showed.
func (s *Server) auditListed(c *gin.Context, tx *gorm.DB, resourceType string, patients []uuid.UUID) error {
	seen := map[uuid.UUID]bool{}
	for _, patient := range patients {
		if seen[patient] {
			continue
		}
		seen[patient] = true
		if err := s.audit(c, tx, "list", resourceType, nil, &patient, ""); err != nil {
			return err
		}
	}
	return nil
}

// patientErased reports whether the patient's data was erased, holding a
// share lock on the patient's row until tx ends: an erasure (which locks
// the row for update) either waits for the caller's change or is seen by
// this check.
func patientErased(tx *gorm.DB, patient uuid.UUID) (bool, error) {
	var erased bool
	err := tx.Raw(`SELECT erased_at IS NOT NULL FROM patients WHERE id = ? FOR SHARE`, patient).Scan(&erased).Error
	return erased, err
}
