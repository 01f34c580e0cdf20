package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
)

// Clinical notes: what a doctor writes about a patient. A note is a draft
// that only its author sees and rewrites, until the author signs it; a
// signed note is part of the medical record and is never rewritten (the
// schema refuses it too): a correction is an addendum, a note of its own
// pointing at the original. Who sees what (minimum necessary):
//
//   - Doctors who reach the patient (a visit or a care assignment,
//     reach.go) read the signed notes and their own drafts, and write.
//     A break-glass grant opens the signed notes to read, not to write or
//     to amend, as it does for lab results.
//   - Patients read their own signed notes (HIPAA's right of access, "open
//     notes"), and a proxy their dependants'. Never a draft.
//   - Staff, billing and admins are refused every notes route: the desk
//     books and checks in without the clinical narrative, and the privacy
//     officer follows who read and wrote which note in the audit log,
//     which names notes by ID only.
//
// The text is sealed with the tenant's data key before it reaches
// Postgres, bound to the patient and the note (keyring.ClinicalNoteRow).

// maxNoteBody is the longest note, in characters: a long discharge
// summary fits many times over, and a body this size still seals and opens
// in well under a millisecond.
const maxNoteBody = 20000

type noteRequest struct {
	Kind          string  `json:"kind"`
	Body          string  `json:"body"`
	AppointmentID *string `json:"appointment_id,omitempty"`
	// Version is the version of the draft the author edited (PUT only).
	Version *int `json:"version,omitempty"`
}

type addendumRequest struct {
	Body string `json:"body"`
}

type signRequest struct {
	// Version, when given, is the version of the draft the author read
	// before signing; a newer one is refused, so nobody signs text they
	// have not seen.
	Version *int `json:"version,omitempty"`
}

type noteView struct {
	ID            string     `json:"id"`
	PatientID     string     `json:"patient_id"`
	AuthorID      string     `json:"author_id"`
	AuthorName    string     `json:"author_name,omitempty"`
	AppointmentID string     `json:"appointment_id,omitempty"`
	Kind          string     `json:"kind"`
	Amends        string     `json:"amends,omitempty"`
	Status        string     `json:"status"`
	Body          string     `json:"body"`
	Version       int        `json:"version"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	SignedAt      *time.Time `json:"signed_at,omitempty"`
	SignedBy      string     `json:"signed_by,omitempty"`
	Addenda       []noteView `json:"addenda,omitempty"`
}

// noteRow is a note with its author's name.
type noteRow struct {
	models.ClinicalNote
	AuthorName string
}

// noteByDoctorSQL is the condition that @doctor reaches the patient in
// col to write: by a visit or a care assignment.
func noteByDoctorSQL(col string) string {
	return "(" + seenByDoctorSQL(col) + " OR " + assignedSQL(col) + ")"
}

// glassSQL is the condition that @doctor holds a break-glass grant on the
// patient in col now (compared with the database's clock, as the grant's
// other reads are).
func glassSQL(col string) string {
	return "EXISTS (SELECT 1 FROM break_glass_grants g WHERE g.patient_id = " + col +
		" AND g.practitioner_id = @doctor AND g.expires_at > now())"
}

// notePatientReach narrows patients (alias col) to those whose notes p
// may read (glass true) or write (glass false).
func notePatientReach(p Principal, col string, glass bool) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB {
		switch p.Role {
		case models.RolePatient:
			if glass {
				return where(q, p, patientReachSQL(col))
			}
		case models.RoleDoctor:
			cond := noteByDoctorSQL(col)
			if glass {
				cond = "(" + cond + " OR " + glassSQL(col) + ")"
			}
			return where(q, p, cond)
		}
		return q.Where("false")
	}
}

// noteScope narrows clinical_notes (alias n) to the notes p may read
// (glass true) or act on (glass false): a patient the signed notes of
// themselves and their dependants; a doctor the signed notes and their
// own drafts of the patients they reach. Staff, billing and admins none
// (the matrix refuses them first).
func noteScope(p Principal, glass bool) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB {
		switch p.Role {
		case models.RolePatient:
			q = q.Where("n.signed_at IS NOT NULL")
		case models.RoleDoctor:
			q = q.Where("(n.signed_at IS NOT NULL OR n.author_id = ?)", p.PractitionerID)
		default:
			return q.Where("false")
		}
		return notePatientReach(p, "n.patient_id", glass)(q)
	}
}

func noteQuery(tx *gorm.DB, p Principal, glass bool) *gorm.DB {
	return tx.Table("clinical_notes n").Select("n.*, pr.display_name AS author_name").
		Joins("LEFT JOIN practitioners pr ON pr.id = n.author_id").Scopes(noteScope(p, glass))
}

// noteBinding binds a note's sealed body to its patient and itself.
func noteBinding(patient, note uuid.UUID) keyring.Binding {
	return keyring.Binding{Purpose: keyring.PurposeClinicalNote, Row: keyring.ClinicalNoteRow(patient.String(), note.String())}
}

func (s *Server) sealNote(ctx context.Context, tenant, patient, note uuid.UUID, body string) ([]byte, error) {
	if s.Keys == nil {
		return nil, unavailable(errors.New("no keyring: clinical notes cannot be sealed"))
	}
	sealed, err := s.Keys.SealFor(ctx, tenant, noteBinding(patient, note), body)
	if err != nil {
		return nil, unavailable(err)
	}
	return sealed, nil
}

// viewNote opens a note's body for the view.
func (s *Server) viewNote(ctx context.Context, r noteRow) (noteView, error) {
	if s.Keys == nil {
		return noteView{}, unavailable(errors.New("no keyring: clinical notes cannot be opened"))
	}
	body, err := s.Keys.OpenFor(ctx, r.TenantID, noteBinding(r.PatientID, r.ID), r.BodySealed)
	if err != nil {
		return noteView{}, internal(err)
	}
	v := noteView{ID: r.ID.String(), PatientID: r.PatientID.String(), AuthorID: r.AuthorID.String(), AuthorName: r.AuthorName,
		AppointmentID: optionalString(r.AppointmentID), Kind: r.Kind, Amends: optionalString(r.Amends), Status: "draft", Body: body,
		Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), SignedAt: utcPtr(r.SignedAt),
		SignedBy: optionalString(r.SignedBy)}
	if r.Signed() {
		v.Status = "signed"
	}
	return v, nil
}

// checkNoteBody refuses a body that is blank or too long.
func checkNoteBody(body string) error {
	if strings.TrimSpace(body) == "" || utf8.RuneCountInString(body) > maxNoteBody {
		return invalid("invalid-note-body", "body is the note's text: not blank, at most 20000 characters.")
	}
	return nil
}

// checkNoteKind refuses a kind outside models.NoteKinds.
func checkNoteKind(kind string) error {
	if !slices.Contains(models.NoteKinds, kind) {
		return invalid("unknown-note-kind", "kind is one of "+inList(models.NoteKinds)+".")
	}
	return nil
}

// noteAppointment checks that the visit a note names is the patient's and
// the writing doctor's own.
func noteAppointment(tx *gorm.DB, p Principal, patient uuid.UUID, raw *string) (*uuid.UUID, error) {
	if raw == nil {
		return nil, nil
	}
	const detail = "appointment_id names no visit of this patient with you."
	id, err := uuid.Parse(*raw)
	if err != nil {
		return nil, invalid("unknown-appointment", detail)
	}
	var n int64
	if err := tx.Model(&models.Appointment{}).Where("id = ? AND patient_id = ? AND practitioner_id = ?", id, patient, p.PractitionerID).
		Count(&n).Error; err != nil {
		return nil, internal(err)
	}
	if n == 0 {
		return nil, invalid("unknown-appointment", detail)
	}
	return &id, nil
}

// createNote handles POST /v1/patients/{id}/notes: a doctor who reaches
// the patient starts a note (a draft), optionally about one of their
// visits with the patient. An Idempotency-Key makes a retry return the
// first answer.
func (s *Server) createNote(c *gin.Context) error {
	var req noteRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	patient, err := uuidParam(c, "patient")
	if err != nil {
		return err
	}
	if req.Version != nil {
		return badRequest("invalid-body", "A new note has no version.")
	}
	if err := checkNoteKind(req.Kind); err != nil {
		return err
	}
	if err := checkNoteBody(req.Body); err != nil {
		return err
	}
	p := principal(c)
	return s.idempotent(c, func(id uuid.UUID) error {
		var row noteRow
		err := s.inTenant(c, func(tx *gorm.DB) error {
			if done, err := retried(tx, id, &row.ClinicalNote); err != nil || done {
				return err
			}
			var pt models.Patient
			// FOR SHARE: an erasure of the patient waits for this note,
			// or this note for the erasure (which it then sees).
			err := tx.Table("patients pt").Clauses(clause.Locking{Strength: "SHARE", Table: clause.Table{Name: "pt"}}).
				Scopes(notePatientReach(p, "pt.id", false)).Where("pt.id = ?", patient).Take(&pt).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return notFound("patient")
			} else if err != nil {
				return internal(err)
			}
			if pt.ErasedAt != nil {
				return conflict("patient-erased", "The patient was erased; no new note can be written about them.")
			}
			appt, err := noteAppointment(tx, p, patient, req.AppointmentID)
			if err != nil {
				return err
			}
			sealed, err := s.sealNote(c.Request.Context(), p.TenantID, patient, id, req.Body)
			if err != nil {
				return err
			}
			now := s.Now().UTC()
			row.ClinicalNote = models.ClinicalNote{ID: id, TenantID: p.TenantID, PatientID: patient, AuthorID: p.PractitionerID,
				AppointmentID: appt, Kind: req.Kind, BodySealed: sealed, Version: 1, CreatedAt: now, UpdatedAt: now}
			if err := tx.Create(&row.ClinicalNote).Error; err != nil {
				return internal(err)
			}
			return s.audit(c, tx, "note-create", "clinical_note", &id, &patient, req.Kind)
		})
		if err != nil {
			return err
		}
		return s.answerNote(c, http.StatusCreated, row)
	})
}

// answerNote writes one note, as the caller just wrote it.
func (s *Server) answerNote(c *gin.Context, status int, row noteRow) error {
	v, err := s.viewNote(c.Request.Context(), row)
	if err != nil {
		return err
	}
	if status == http.StatusCreated {
		c.Header("Location", "/v1/notes/"+v.ID)
	}
	c.JSON(status, v)
	return nil
}

// listNotes handles GET /v1/patients/{id}/notes: the patient's notes the
// caller may read, oldest first, each original with its addenda (oldest
// first) under it; at most 500 originals.
func (s *Server) listNotes(c *gin.Context) error {
	patient, err := uuidParam(c, "patient")
	if err != nil {
		return err
	}
	p := principal(c)
	var rows []noteRow
	err = s.inTenant(c, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Table("patients pt").Scopes(notePatientReach(p, "pt.id", true)).Where("pt.id = ?", patient).Count(&n).Error; err != nil {
			return internal(err)
		}
		if n == 0 {
			return notFound("patient")
		}
		if err := noteQuery(tx, p, true).Where("n.patient_id = ? AND n.amends IS NULL", patient).
			Order("n.created_at, n.id").Limit(500).Scan(&rows).Error; err != nil {
			return internal(err)
		}
		if len(rows) > 0 {
			ids := make([]uuid.UUID, len(rows))
			for i, r := range rows {
				ids[i] = r.ID
			}
			var addenda []noteRow
			if err := noteQuery(tx, p, true).Where("n.amends IN ?", ids).Order("n.created_at, n.id").Scan(&addenda).Error; err != nil {
				return internal(err)
			}
			rows = append(rows, addenda...)
		}
		return s.audit(c, tx, "list", "clinical_note", nil, &patient, "")
	})
	if err != nil {
		return err
	}
	items, err := s.nestNotes(c.Request.Context(), rows)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
	return nil
}

// nestNotes opens rows and puts each addendum under its original, keeping
// the rows' order.
func (s *Server) nestNotes(ctx context.Context, rows []noteRow) ([]noteView, error) {
	items := []noteView{}
	at := map[string]int{}
	for _, r := range rows {
		v, err := s.viewNote(ctx, r)
		if err != nil {
			return nil, err
		}
		if v.Amends == "" {
			at[v.ID] = len(items)
			items = append(items, v)
		} else if i, ok := at[v.Amends]; ok {
			items[i].Addenda = append(items[i].Addenda, v)
		}
	}
	return items, nil
}

// getNote handles GET /v1/notes/{id}: one note the caller may read; an
// original comes with the addenda the caller may read.
func (s *Server) getNote(c *gin.Context) error {
	id, err := uuidParam(c, "note")
	if err != nil {
		return err
	}
	p := principal(c)
	var rows []noteRow
	err = s.inTenant(c, func(tx *gorm.DB) error {
		var r noteRow
		if err := noteQuery(tx, p, true).Where("n.id = ?", id).Take(&r).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound("note")
		} else if err != nil {
			return internal(err)
		}
		rows = append(rows, r)
		if r.Amends == nil {
			var addenda []noteRow
			if err := noteQuery(tx, p, true).Where("n.amends = ?", id).Order("n.created_at, n.id").Scan(&addenda).Error; err != nil {
				return internal(err)
			}
			rows = append(rows, addenda...)
		}
		return s.audit(c, tx, "read", "clinical_note", &r.ID, &r.PatientID, "")
	})
	if err != nil {
		return err
	}
	items, err := s.nestNotes(c.Request.Context(), rows)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		// An addendum: it is its own item.
		v, err := s.viewNote(c.Request.Context(), rows[0])
		if err != nil {
			return err
		}
		items = append(items, v)
	}
	c.JSON(http.StatusOK, items[0])
	return nil
}

// lockNote loads, for update, a note p may act on: a signed note or p's
// own draft, of a patient p reaches to write (no break-glass).
func lockNote(tx *gorm.DB, p Principal, id uuid.UUID) (noteRow, error) {
	var r noteRow
	err := noteQuery(tx, p, false).Clauses(clause.Locking{Strength: "UPDATE", Table: clause.Table{Name: "n"}}).
		Where("n.id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return r, notFound("note")
	} else if err != nil {
		return r, internal(err)
	}
	return r, nil
}

// staleNote answers an edit or signature of a version that is not the
// draft's current one.
func staleNote(current int) error {
	return conflict("note-version-conflict", "The draft has changed since you read it; read it again and redo your change.").
		with("current_version", current)
}

// signedNote answers a change to a signed note.
func signedNote() error {
	return conflict("note-signed", "The note is signed and cannot change; write an addendum instead.")
}

// updateNote handles PUT /v1/notes/{id}: the author rewrites their draft
// (kind, text, visit), naming the version they edited; a stale version is
// refused, and so is any change to a signed note.
func (s *Server) updateNote(c *gin.Context) error {
	var req noteRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	id, err := uuidParam(c, "note")
	if err != nil {
		return err
	}
	if req.Version == nil {
		return badRequest("invalid-body", "version is required: the version of the draft you edited.")
	}
	if err := checkNoteKind(req.Kind); err != nil {
		return err
	}
	if err := checkNoteBody(req.Body); err != nil {
		return err
	}
	p := principal(c)
	var r noteRow
	err = s.inTenant(c, func(tx *gorm.DB) error {
		if r, err = lockNote(tx, p, id); err != nil {
			return err
		}
		if r.Signed() {
			return signedNote()
		}
		if r.Version != *req.Version {
			return staleNote(r.Version)
		}
		appt, err := noteAppointment(tx, p, r.PatientID, req.AppointmentID)
		if err != nil {
			return err
		}
		if r.Amends != nil && appt != nil {
			return invalid("unknown-appointment", "An addendum follows its original's visit; it names none of its own.")
		}
		if r.Amends != nil && req.Kind != r.Kind {
			return invalid("addendum-kind", "An addendum keeps its original's kind.")
		}
		sealed, err := s.sealNote(c.Request.Context(), p.TenantID, r.PatientID, r.ID, req.Body)
		if err != nil {
			return err
		}
		now := s.Now().UTC()
		res := tx.Model(&models.ClinicalNote{}).Where("id = ? AND version = ? AND signed_at IS NULL", r.ID, r.Version).
			Updates(map[string]any{"kind": req.Kind, "body_sealed": sealed, "appointment_id": appt, "version": r.Version + 1, "updated_at": now})
		if res.Error != nil {
			return internal(res.Error)
		}
		if res.RowsAffected != 1 {
			return staleNote(r.Version)
		}
		r.Kind, r.BodySealed, r.AppointmentID, r.Version, r.UpdatedAt = req.Kind, sealed, appt, r.Version+1, now
		return s.audit(c, tx, "note-update", "clinical_note", &r.ID, &r.PatientID, "")
	})
	if err != nil {
		return err
	}
	return s.answerNote(c, http.StatusOK, r)
}

// signNote handles POST /v1/notes/{id}/sign: the author signs their
// draft, which from then on is part of the record and never changes.
func (s *Server) signNote(c *gin.Context) error {
	var req signRequest
	if c.Request.ContentLength != 0 {
		if err := bindJSON(c, &req); err != nil {
			return err
		}
	}
	id, err := uuidParam(c, "note")
	if err != nil {
		return err
	}
	p := principal(c)
	var r noteRow
	err = s.inTenant(c, func(tx *gorm.DB) error {
		if r, err = lockNote(tx, p, id); err != nil {
			return err
		}
		if r.Signed() {
			return signedNote()
		}
		if req.Version != nil && *req.Version != r.Version {
			return staleNote(r.Version)
		}
		now := s.Now().UTC()
		if err := tx.Model(&models.ClinicalNote{}).Where("id = ? AND signed_at IS NULL", r.ID).
			Updates(map[string]any{"signed_at": now, "signed_by": p.PractitionerID, "updated_at": now}).Error; err != nil {
			return internal(err)
		}
		r.SignedAt, r.SignedBy, r.UpdatedAt = &now, &p.PractitionerID, now
		return s.audit(c, tx, "note-sign", "clinical_note", &r.ID, &r.PatientID, "")
	})
	if err != nil {
		return err
	}
	return s.answerNote(c, http.StatusOK, r)
}

// addNoteAddendum handles POST /v1/notes/{id}/addenda: a doctor who
// reaches the patient corrects or completes a signed note. The addendum is
// a new draft of the caller's, of the original's kind, pointing at the
// original (an addendum's addendum points at the same original); it is
// signed like any note. An Idempotency-Key makes a retry return the first
// answer.
func (s *Server) addNoteAddendum(c *gin.Context) error {
	var req addendumRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	target, err := uuidParam(c, "note")
	if err != nil {
		return err
	}
	if err := checkNoteBody(req.Body); err != nil {
		return err
	}
	p := principal(c)
	return s.idempotent(c, func(id uuid.UUID) error {
		var row noteRow
		err := s.inTenant(c, func(tx *gorm.DB) error {
			if done, err := retried(tx, id, &row.ClinicalNote); err != nil || done {
				return err
			}
			orig, err := lockNote(tx, p, target)
			if err != nil {
				return err
			}
			if !orig.Signed() {
				return conflict("note-not-signed", "A draft is corrected by editing it; only a signed note takes an addendum.")
			}
			root := orig.ID
			if orig.Amends != nil {
				root = *orig.Amends
			}
			var pt models.Patient
			if err := tx.Clauses(clause.Locking{Strength: "SHARE"}).Where("id = ?", orig.PatientID).Take(&pt).Error; err != nil {
				return internal(err)
			}
			if pt.ErasedAt != nil {
				return conflict("patient-erased", "The patient was erased; no new note can be written about them.")
			}
			sealed, err := s.sealNote(c.Request.Context(), p.TenantID, orig.PatientID, id, req.Body)
			if err != nil {
				return err
			}
			now := s.Now().UTC()
			row.ClinicalNote = models.ClinicalNote{ID: id, TenantID: p.TenantID, PatientID: orig.PatientID, AuthorID: p.PractitionerID,
				Kind: orig.Kind, Amends: &root, BodySealed: sealed, Version: 1, CreatedAt: now, UpdatedAt: now}
			if err := tx.Create(&row.ClinicalNote).Error; err != nil {
				return internal(err)
			}
			return s.audit(c, tx, "note-addendum", "clinical_note", &id, &orig.PatientID, "amends "+root.String())
		})
		if err != nil {
			return err
		}
		return s.answerNote(c, http.StatusCreated, row)
	})
}
