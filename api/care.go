package api

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
)

// Care assignments and proxy relations: the two ways, besides a visit, that
// someone reaches a patient's record (reach.go). Staff and admins create
// and end both; an ended row is kept, so the audit of who could see what
// can be answered later.

type careAssignmentRequest struct {
	PractitionerID string     `json:"practitioner_id"`
	PatientID      string     `json:"patient_id"`
	Reason         string     `json:"reason"`
	ValidFrom      *time.Time `json:"valid_from,omitempty"`
	ValidUntil     *time.Time `json:"valid_until,omitempty"`
}

type careAssignmentView struct {
	ID             string     `json:"id"`
	PractitionerID string     `json:"practitioner_id"`
	PatientID      string     `json:"patient_id"`
	Reason         string     `json:"reason"`
	AssignedBy     string     `json:"assigned_by"`
	ValidFrom      time.Time  `json:"valid_from"`
	ValidUntil     *time.Time `json:"valid_until,omitempty"`
	EndedAt        *time.Time `json:"ended_at,omitempty"`
	EndedBy        string     `json:"ended_by,omitempty"`
	Active         bool       `json:"active"`
}

func (s *Server) viewCare(a models.CareAssignment) careAssignmentView {
	return careAssignmentView{ID: a.ID.String(), PractitionerID: a.PractitionerID.String(), PatientID: a.PatientID.String(),
		Reason: a.Reason, AssignedBy: a.AssignedBy.String(), ValidFrom: a.ValidFrom.UTC(), ValidUntil: utcPtr(a.ValidUntil),
		EndedAt: utcPtr(a.EndedAt), EndedBy: optionalString(a.EndedBy), Active: a.Active(s.Now())}
}

// careScope narrows care assignments (alias ca) to the caller's: a doctor
// their own, staff those of practitioners who work at their facility,
// admins the tenant's.
func careScope(p Principal) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB {
		switch p.Role {
		case models.RoleDoctor:
			return q.Where("ca.practitioner_id = ?", p.PractitionerID)
		case models.RoleStaff:
			return where(q, p, worksAtFacilitySQL("ca.practitioner_id"))
		case models.RoleAdmin:
			return q
		}
		return q.Where("false")
	}
}

// period checks a validity window: from defaults to now; until, when
// given, must lie after both.
func (s *Server) period(from, until *time.Time) (time.Time, *time.Time, error) {
	now := s.Now().UTC()
	start := now
	if from != nil {
		start = from.UTC()
	}
	if until != nil {
		u := until.UTC()
		if !u.After(start) || !u.After(now) {
			return start, nil, invalid("invalid-period", "valid_until must be after valid_from and in the future.")
		}
		return start, &u, nil
	}
	return start, nil, nil
}

// createCareAssignment handles POST /v1/care-assignments: staff or an
// admin puts a patient in a doctor's care, with a reason code, from
// valid_from (default now) until valid_until or until it is ended. Staff
// assign only doctors who work at their facility. An Idempotency-Key
// makes a retry return the first answer.
func (s *Server) createCareAssignment(c *gin.Context) error {
	var req careAssignmentRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if !slices.Contains(models.CareReasons, req.Reason) {
		return invalid("unknown-reason", "reason is one of "+inList(models.CareReasons)+".")
	}
	doctor, err := uuid.Parse(req.PractitionerID)
	if err != nil {
		return invalid("unknown-practitioner", "practitioner_id names no practitioner.")
	}
	patient, err := uuid.Parse(req.PatientID)
	if err != nil {
		return invalid("unknown-patient", "patient_id names no patient.")
	}
	from, until, err := s.period(req.ValidFrom, req.ValidUntil)
	if err != nil {
		return err
	}
	p := principal(c)
	return s.idempotent(c, func(id uuid.UUID) error {
		a := models.CareAssignment{ID: id, TenantID: p.TenantID, PractitionerID: doctor, PatientID: patient, Reason: req.Reason,
			AssignedBy: p.UserID, ValidFrom: from, ValidUntil: until, CreatedAt: s.Now().UTC()}
		err := s.inTenant(c, func(tx *gorm.DB) error {
			var pr models.Practitioner
			if err := tx.Where("id = ?", doctor).Take(&pr).Error; err != nil {
				return lookupProblem(err, "unknown-practitioner", "practitioner_id names no practitioner.")
			}
			var pt models.Patient
			// FOR SHARE waits for an erasure holding the patient's row, and
			// makes one wait for this.
			if err := tx.Clauses(clause.Locking{Strength: "SHARE"}).Where("id = ?", patient).Take(&pt).Error; err != nil {
				return lookupProblem(err, "unknown-patient", "patient_id names no patient.")
			}
			if pt.ErasedAt != nil {
				return conflict("patient-erased", "The patient was erased; no doctor can be assigned to them.")
			}
			if p.Role == models.RoleStaff {
				var n int64
				if err := where(tx.Table("practitioners ca_pr"), p, worksAtFacilitySQL("ca_pr.id")).Where("ca_pr.id = ?", doctor).Count(&n).Error; err != nil {
					return internal(err)
				}
				if n == 0 {
					return forbidden()
				}
				// An assignment opens the patient's records to the doctor:
				// a desk gives only what it reaches itself (a patient seen
				// at its facility). A referral from elsewhere is an admin's.
				if err := staffReaches(tx, p, patient); err != nil {
					return err
				}
			}
			if done, err := retried(tx, id, &a); err != nil || done {
				return err
			}
			// One active assignment per doctor and patient: concurrent
			// requests for the pair queue on the lock, and the second
			// finds the first's row.
			if err := lockPair(tx, "care", doctor, patient); err != nil {
				return internal(err)
			}
			var n int64
			if err := tx.Table("care_assignments ca").Where("ca.practitioner_id = ? AND ca.patient_id = ? AND "+activeWindow("ca"), doctor, patient).
				Count(&n).Error; err != nil {
				return internal(err)
			}
			if n > 0 {
				return conflict("assignment-exists", "This doctor is already assigned to the patient; end that assignment first.")
			}
			if err := tx.Create(&a).Error; err != nil {
				return internal(err)
			}
			return s.audit(c, tx, "care-assign", "care_assignment", &a.ID, &patient, a.Reason)
		})
		if err != nil {
			return err
		}
		c.Header("Location", "/v1/care-assignments/"+a.ID.String())
		c.JSON(http.StatusCreated, s.viewCare(a))
		return nil
	})
}

// listCareAssignments handles GET /v1/care-assignments?patient_id=
// &practitioner_id=&state=active|all: the caller's assignments (doctors
// their own, staff their facility's doctors', admins all), newest first,
// at most 500; state defaults to active.
func (s *Server) listCareAssignments(c *gin.Context) error {
	p := principal(c)
	state := c.DefaultQuery("state", "active")
	if state != "active" && state != "all" {
		return badRequest("invalid-parameter", "state is active or all.")
	}
	var patient, doctor *uuid.UUID
	for _, f := range []struct {
		name string
		into **uuid.UUID
	}{{"patient_id", &patient}, {"practitioner_id", &doctor}} {
		if v := c.Query(f.name); v != "" {
			id, err := uuid.Parse(v)
			if err != nil {
				return badRequest("invalid-parameter", f.name+" must be a UUID.")
			}
			*f.into = &id
		}
	}
	var rows []models.CareAssignment
	err := s.inTenant(c, func(tx *gorm.DB) error {
		q := tx.Table("care_assignments ca").Scopes(careScope(p)).Order("ca.created_at DESC, ca.id").Limit(500)
		if state == "active" {
			q = q.Where(activeWindow("ca"))
		}
		if patient != nil {
			q = q.Where("ca.patient_id = ?", *patient)
		}
		if doctor != nil {
			q = q.Where("ca.practitioner_id = ?", *doctor)
		}
		if err := q.Find(&rows).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "list", "care_assignment", nil, patient, "")
	})
	if err != nil {
		return err
	}
	out := make([]careAssignmentView, len(rows))
	for i, a := range rows {
		out[i] = s.viewCare(a)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

// endCareAssignment handles POST /v1/care-assignments/{id}/end: the doctor
// loses the reach it gave at once. Ending twice is a conflict.
func (s *Server) endCareAssignment(c *gin.Context) error {
	id, err := uuidParam(c, "care assignment")
	if err != nil {
		return err
	}
	p := principal(c)
	var a models.CareAssignment
	err = s.inTenant(c, func(tx *gorm.DB) error {
		err := tx.Table("care_assignments ca").Scopes(careScope(p)).Clauses(clause.Locking{Strength: "UPDATE", Table: clause.Table{Name: "ca"}}).
			Where("ca.id = ?", id).Take(&a).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound("care assignment")
		} else if err != nil {
			return internal(err)
		}
		if a.EndedAt != nil {
			return conflict("already-ended", "This care assignment has ended already.")
		}
		now := s.Now().UTC()
		a.EndedAt, a.EndedBy = &now, &p.UserID
		if err := tx.Model(&models.CareAssignment{}).Where("id = ?", id).
			Updates(map[string]any{"ended_at": now, "ended_by": p.UserID}).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "care-end", "care_assignment", &a.ID, &a.PatientID, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, s.viewCare(a))
	return nil
}

type proxyRequest struct {
	ProxyPatientID   string     `json:"proxy_patient_id"`
	PatientID        string     `json:"patient_id"`
	Kind             string     `json:"kind"`
	ValidUntil       *time.Time `json:"valid_until,omitempty"`
	DocumentsChecked bool       `json:"documents_checked"`
}

type proxyView struct {
	ID             string     `json:"id"`
	ProxyPatientID string     `json:"proxy_patient_id"`
	PatientID      string     `json:"patient_id"`
	Kind           string     `json:"kind"`
	VerifiedBy     string     `json:"verified_by"`
	ValidFrom      time.Time  `json:"valid_from"`
	ValidUntil     *time.Time `json:"valid_until,omitempty"`
	EndedAt        *time.Time `json:"ended_at,omitempty"`
	EndedBy        string     `json:"ended_by,omitempty"`
	Active         bool       `json:"active"`
}

func (s *Server) viewProxy(r models.ProxyRelation) proxyView {
	return proxyView{ID: r.ID.String(), ProxyPatientID: r.ProxyPatientID.String(), PatientID: r.PatientID.String(), Kind: r.Kind,
		VerifiedBy: r.VerifiedBy.String(), ValidFrom: r.ValidFrom.UTC(), ValidUntil: utcPtr(r.ValidUntil),
		EndedAt: utcPtr(r.EndedAt), EndedBy: optionalString(r.EndedBy), Active: r.Active(s.Now())}
}

// proxyScope narrows proxy relations (alias px): a patient sees those they
// are either side of; staff and admins the tenant's. A proxy relation is
// an identity fact checked from documents at whichever desk the family
// comes to, and one made at one facility must be endable at another (a
// custody change), so the desk's reach here is the tenant's; the rows
// carry IDs, a kind and dates, no clinical data.
func proxyScope(p Principal) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB {
		switch p.Role {
		case models.RolePatient:
			return q.Where("px.proxy_patient_id = ? OR px.patient_id = ?", p.PatientID, p.PatientID)
		case models.RoleStaff, models.RoleAdmin:
			return q
		}
		return q.Where("false")
	}
}

// adulthood is the age at which a parent's or guardian's access ends by
// default.
const adulthood = 18

// createProxyRelation handles POST /v1/proxy-relations: after checking
// documents at the desk (documents_checked must be true), staff or an
// admin lets one patient act for another. A parent's or guardian's
// relation ends by default on the dependant's 18th birthday when their
// birth date is on file; past it, or for a caregiver, valid_until is
// what the documents say (none: until ended). An Idempotency-Key makes a
// retry return the first answer.
func (s *Server) createProxyRelation(c *gin.Context) error {
	var req proxyRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if !req.DocumentsChecked {
		return invalid("documents-unchecked", "Check the documents that show the relation (birth certificate, court order, power of attorney) and say so with documents_checked: true.")
	}
	if !slices.Contains(models.ProxyKinds, req.Kind) {
		return invalid("unknown-kind", "kind is one of "+inList(models.ProxyKinds)+".")
	}
	proxy, err := uuid.Parse(req.ProxyPatientID)
	if err != nil {
		return invalid("unknown-patient", "proxy_patient_id names no patient.")
	}
	dependant, err := uuid.Parse(req.PatientID)
	if err != nil {
		return invalid("unknown-patient", "patient_id names no patient.")
	}
	if proxy == dependant {
		return invalid("self-proxy", "A patient cannot act as their own proxy.")
	}
	from, until, err := s.period(nil, req.ValidUntil)
	if err != nil {
		return err
	}
	p := principal(c)
	return s.idempotent(c, func(id uuid.UUID) error {
		r := models.ProxyRelation{ID: id, TenantID: p.TenantID, ProxyPatientID: proxy, PatientID: dependant, Kind: req.Kind,
			VerifiedBy: p.UserID, ValidFrom: from, ValidUntil: until, CreatedAt: s.Now().UTC()}
		err := s.inTenant(c, func(tx *gorm.DB) error {
			var pts []models.Patient
			// FOR SHARE: an erasure of either patient waits, or is waited for.
			if err := tx.Clauses(clause.Locking{Strength: "SHARE"}).Where("id IN ?", []uuid.UUID{proxy, dependant}).Find(&pts).Error; err != nil {
				return internal(err)
			}
			if len(pts) != 2 {
				return invalid("unknown-patient", "proxy_patient_id and patient_id must both name patients.")
			}
			// A relation opens the dependant's records to the proxy: a desk
			// makes one only for a dependant it reaches itself.
			if p.Role == models.RoleStaff {
				if err := staffReaches(tx, p, dependant); err != nil {
					return err
				}
			}
			for _, pt := range pts {
				if pt.ErasedAt != nil {
					return conflict("patient-erased", "The patient was erased; nobody can act for or through them.")
				}
			}
			if r.ValidUntil == nil && r.Kind != "caregiver" {
				for _, pt := range pts {
					if pt.ID != dependant || pt.BirthDate == nil {
						continue
					}
					b := pt.BirthDate.UTC()
					end := time.Date(b.Year()+adulthood, b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
					if !end.After(from) {
						return invalid("dependant-adult", "The patient is an adult: give valid_until from the documents (a guardianship order, for example).")
					}
					r.ValidUntil = &end
				}
			}
			if done, err := retried(tx, id, &r); err != nil || done {
				return err
			}
			if err := lockPair(tx, "proxy", proxy, dependant); err != nil {
				return internal(err)
			}
			var n int64
			if err := tx.Table("proxy_relations px").Where("px.proxy_patient_id = ? AND px.patient_id = ? AND "+activeWindow("px"), proxy, dependant).
				Count(&n).Error; err != nil {
				return internal(err)
			}
			if n > 0 {
				return conflict("proxy-exists", "This patient already acts for that patient; end that relation first.")
			}
			if err := tx.Create(&r).Error; err != nil {
				return internal(err)
			}
			return s.audit(c, tx, "proxy-create", "proxy_relation", &r.ID, &dependant, r.Kind)
		})
		if err != nil {
			return err
		}
		c.Header("Location", "/v1/proxy-relations/"+r.ID.String())
		c.JSON(http.StatusCreated, s.viewProxy(r))
		return nil
	})
}

// listProxyRelations handles GET /v1/proxy-relations?patient_id=
// &state=active|all: relations the patient is either side of (patients
// their own; staff and admins any patient's, or all), newest first, at
// most 500; state defaults to active.
func (s *Server) listProxyRelations(c *gin.Context) error {
	p := principal(c)
	state := c.DefaultQuery("state", "active")
	if state != "active" && state != "all" {
		return badRequest("invalid-parameter", "state is active or all.")
	}
	var patient *uuid.UUID
	if v := c.Query("patient_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return badRequest("invalid-parameter", "patient_id must be a UUID.")
		}
		patient = &id
	}
	var rows []models.ProxyRelation
	err := s.inTenant(c, func(tx *gorm.DB) error {
		q := tx.Table("proxy_relations px").Scopes(proxyScope(p)).Order("px.created_at DESC, px.id").Limit(500)
		if state == "active" {
			q = q.Where(activeWindow("px"))
		}
		if patient != nil {
			q = q.Where("px.proxy_patient_id = ? OR px.patient_id = ?", *patient, *patient)
		}
		if err := q.Find(&rows).Error; err != nil {
			return internal(err)
		}
		whose := patient
		if p.Role == models.RolePatient && whose == nil {
			whose = &p.PatientID
		}
		return s.audit(c, tx, "list", "proxy_relation", nil, whose, "")
	})
	if err != nil {
		return err
	}
	out := make([]proxyView, len(rows))
	for i, r := range rows {
		out[i] = s.viewProxy(r)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

// endProxyRelation handles POST /v1/proxy-relations/{id}/end: the proxy
// loses access to the dependant's records at once (a custody change, a
// caregiver leaving). Ending twice is a conflict.
func (s *Server) endProxyRelation(c *gin.Context) error {
	id, err := uuidParam(c, "proxy relation")
	if err != nil {
		return err
	}
	p := principal(c)
	var r models.ProxyRelation
	err = s.inTenant(c, func(tx *gorm.DB) error {
		err := tx.Table("proxy_relations px").Scopes(proxyScope(p)).Clauses(clause.Locking{Strength: "UPDATE", Table: clause.Table{Name: "px"}}).
			Where("px.id = ?", id).Take(&r).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound("proxy relation")
		} else if err != nil {
			return internal(err)
		}
		if r.EndedAt != nil {
			return conflict("already-ended", "This proxy relation has ended already.")
		}
		now := s.Now().UTC()
		r.EndedAt, r.EndedBy = &now, &p.UserID
		if err := tx.Model(&models.ProxyRelation{}).Where("id = ?", id).
			Updates(map[string]any{"ended_at": now, "ended_by": p.UserID}).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "proxy-end", "proxy_relation", &r.ID, &r.PatientID, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, s.viewProxy(r))
	return nil
}

// staffReaches refuses, as if the patient did not exist, a patient the
// desk p does not reach.
func staffReaches(tx *gorm.DB, p Principal, patient uuid.UUID) error {
	ok, err := reachesPatient(tx, p, patient)
	if err != nil {
		return internal(err)
	}
	if !ok {
		return invalid("unknown-patient", "patient_id names no patient this desk sees.")
	}
	return nil
}

// lockPair serialises, until tx ends, the transactions that create a
// relation of kind between a and b, so that a check for an active one and
// the insert after it are one step.
func lockPair(tx *gorm.DB, kind string, a, b uuid.UUID) error {
	return tx.Exec("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", kind+":"+a.String()+":"+b.String()).Error
}

// retried reports whether a row with id exists already (an Idempotency-Key
// retried after a crash: the first attempt's row stands), and loads it.
func retried(tx *gorm.DB, id uuid.UUID, into any) (bool, error) {
	err := tx.Where("id = ?", id).Take(into).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, nil
	}
	if err != nil {
		return false, internal(err)
	}
	return true, nil
}
