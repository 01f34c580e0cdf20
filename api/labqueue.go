package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/labs"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workflows"
)

// The unmatched queue: messages whose patient could not be found by
// identifier (or was found more than once). Staff see who the lab says the
// patient is, choose the patient, or dismiss the message.

type labMessageView struct {
	ID          string     `json:"id"`
	MessageID   string     `json:"message_id"`
	Format      string     `json:"format"`
	Transport   string     `json:"transport"`
	Status      string     `json:"status"`
	Match       string     `json:"match,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	PatientID   string     `json:"patient_id,omitempty"`
	ReceivedAt  time.Time  `json:"received_at"`
	ProcessedAt *time.Time `json:"processed_at,omitempty"`
	ResolvedAt  *time.Time `json:"resolved_at,omitempty"`
	WorkflowID  string     `json:"workflow_id"`
	WorkflowURL string     `json:"workflow_url,omitempty"`
	// Sent is who the lab says the patient is, read from the stored
	// message; only on the single-message read.
	Sent *sentPatientView `json:"sent_patient,omitempty"`
}

type sentPatientView struct {
	Family      string           `json:"family_name"`
	Given       string           `json:"given_name"`
	BirthDate   string           `json:"birth_date,omitempty"`
	Sex         string           `json:"sex,omitempty"`
	Identifiers []identifierView `json:"identifiers"`
	Tests       []string         `json:"tests"`
	Candidates  []candidateView  `json:"candidates"`
}

type identifierView struct {
	System string `json:"system"`
	Value  string `json:"value"`
	Type   string `json:"type,omitempty"`
}

type candidateView struct {
	PatientID string `json:"patient_id"`
	Name      string `json:"name"`
	BirthDate string `json:"birth_date,omitempty"`
	// Why says what the candidate shares with the message: "identifier"
	// or "name and birth date". Staff decide; Carebook never files on it.
	Why string `json:"why"`
}

// labMessageReach narrows a query on lab_messages (alias m) for staff: a
// message no patient is filed under yet (the unmatched queue, rejected
// and dismissed messages) is the whole tenant's lab desk work, since no
// lab partner is tied to a facility; a filed message is a patient's
// record, reached as their results are (a patient seen at the facility,
// or a result ordered by one of its doctors). Admins see every message.
func labMessageReach(p Principal) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB {
		if p.Role != models.RoleStaff {
			return q
		}
		return where(q, p, "(m.patient_id IS NULL OR "+seenAtFacilitySQL("m.patient_id")+
			" OR EXISTS (SELECT 1 FROM lab_reports mr WHERE mr.message_id = m.id AND "+worksAtFacilitySQL("mr.ordering_practitioner_id")+"))")
	}
}

func (s *Server) labMessageOf(m models.LabMessage) labMessageView {
	v := labMessageView{
		ID: m.ID.String(), MessageID: m.MessageID, Format: m.Format, Transport: m.Transport, Status: m.Status,
		Match: m.Match, Reason: m.Reason, ReceivedAt: m.ReceivedAt.UTC(), ProcessedAt: utcPtr(m.ProcessedAt),
		ResolvedAt: utcPtr(m.ResolvedAt), WorkflowID: m.WorkflowID, WorkflowURL: s.temporalLink(m.WorkflowID),
	}
	if m.PatientID != nil {
		v.PatientID = m.PatientID.String()
	}
	return v
}

// listLabMessages handles GET /v1/lab-messages?status=: the tenant's
// received messages, newest first, at most 200; status defaults to
// unmatched (the staff queue).
func (s *Server) listLabMessages(c *gin.Context) error {
	status := c.DefaultQuery("status", models.LabUnmatched)
	switch status {
	case models.LabReceived, models.LabFiled, models.LabUnmatched, models.LabRejected, models.LabDismissed, "all":
	default:
		return badRequest("invalid-parameter", "status is received, filed, unmatched, rejected, dismissed or all.")
	}
	var rows []models.LabMessage
	err := s.inTenant(c, func(tx *gorm.DB) error {
		q := tx.Table("lab_messages m").Scopes(labMessageReach(principal(c))).Order("received_at DESC, id").Limit(200)
		if status != "all" {
			q = q.Where("status = ?", status)
		}
		if err := q.Find(&rows).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "list", "lab_message", nil, nil, "")
	})
	if err != nil {
		return err
	}
	out := make([]labMessageView, len(rows))
	for i, m := range rows {
		out[i] = s.labMessageOf(m)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

func (s *Server) openLabMessage(c *gin.Context, tx *gorm.DB) (models.LabMessage, error) {
	id, err := uuidParam(c, "lab message")
	if err != nil {
		return models.LabMessage{}, err
	}
	var m models.LabMessage
	err = tx.Table("lab_messages m").Scopes(labMessageReach(principal(c))).Where("m.id = ?", id).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return m, notFound("lab message")
	}
	if err != nil {
		return m, internal(err)
	}
	return m, nil
}

// getLabMessage handles GET /v1/lab-messages/{id}: the message's state
// and, read from the stored message, who the lab says the patient is, with
// patients on file who share an identifier or the name and birth date.
func (s *Server) getLabMessage(c *gin.Context) error {
	var m models.LabMessage
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var err error
		if m, err = s.openLabMessage(c, tx); err != nil {
			return err
		}
		return s.audit(c, tx, "read", "lab_message", &m.ID, m.PatientID, "")
	})
	if err != nil {
		return err
	}
	v := s.labMessageOf(m)
	// A rejected message is not read; an erased one is gone.
	if m.Status == models.LabRejected || m.RawKey == "" {
		c.JSON(http.StatusOK, v)
		return nil
	}
	raw, err := s.Store.Get(c.Request.Context(), m.TenantID, m.RawKey)
	if err != nil {
		return unavailable(err)
	}
	msg, err := labs.Decode(labs.Format(m.Format), raw)
	if err != nil {
		// The workflow has or will mark it rejected; show the state.
		c.JSON(http.StatusOK, v)
		return nil
	}
	sent := &sentPatientView{Family: msg.Patient.Family, Given: msg.Patient.Given, BirthDate: msg.Patient.BirthDate,
		Sex: msg.Patient.Sex, Identifiers: []identifierView{}, Tests: []string{}, Candidates: []candidateView{}}
	for _, id := range msg.Patient.Identifiers {
		sent.Identifiers = append(sent.Identifiers, identifierView{System: id.System, Value: id.Value, Type: id.Type})
	}
	for _, r := range msg.Reports {
		sent.Tests = append(sent.Tests, r.Code.Label())
	}
	err = s.inTenant(c, func(tx *gorm.DB) error {
		sent.Candidates, err = candidates(c.Request.Context(), tx, s.Keys, m.TenantID, msg.Patient)
		return err
	})
	if err != nil {
		return err
	}
	v.Sent = sent
	c.JSON(http.StatusOK, v)
	return nil
}

// candidates lists patients staff may mean: those holding any of the
// message's identifiers (under any system), and those with the same family
// name and birth date. At most 20.
func candidates(ctx context.Context, tx *gorm.DB, keys *keyring.Keyring, tenant uuid.UUID, p labs.Patient) ([]candidateView, error) {
	out := []candidateView{}
	seen := map[uuid.UUID]bool{}
	add := func(rows []models.Patient, why string) {
		for _, r := range rows {
			if seen[r.ID] || len(out) >= 20 {
				continue
			}
			seen[r.ID] = true
			cv := candidateView{PatientID: r.ID.String(), Name: r.GivenName + " " + r.FamilyName, Why: why}
			if r.BirthDate != nil {
				cv.BirthDate = r.BirthDate.Format(time.DateOnly)
			}
			out = append(out, cv)
		}
	}
	var values []string
	for _, id := range p.Identifiers {
		if id.Value != "" {
			values = append(values, id.Value)
		}
	}
	if len(values) > 0 {
		// National IDs are found by their blind index, whatever system
		// the message filed them under.
		indexes := [][]byte{}
		for _, v := range values {
			idx, err := keys.Index(ctx, tenant, keyring.PurposeNationalID, v)
			if err != nil {
				return nil, internal(err)
			}
			indexes = append(indexes, idx)
		}
		var rows []models.Patient
		if err := tx.Where("id IN (SELECT patient_id FROM patient_identifiers WHERE value IN ? OR value_index IN ?)", values, indexes).
			Order("family_name, given_name").Limit(20).Find(&rows).Error; err != nil {
			return nil, internal(err)
		}
		add(rows, "identifier")
	}
	if p.Family != "" && p.BirthDate != "" {
		var rows []models.Patient
		if err := tx.Where("lower(family_name) = lower(?) AND birth_date = ?", strings.TrimSpace(p.Family), p.BirthDate).
			Order("given_name").Limit(20).Find(&rows).Error; err != nil {
			return nil, internal(err)
		}
		add(rows, "name and birth date")
	}
	return out, nil
}

type assignRequest struct {
	PatientID string `json:"patient_id"`
}

// assignLabMessage handles POST /v1/lab-messages/{id}/assign: staff file
// an unmatched message under the patient they chose.
func (s *Server) assignLabMessage(c *gin.Context) error {
	var req assignRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	patient, err := uuid.Parse(req.PatientID)
	if err != nil {
		return badRequest("invalid-body", "patient_id must be a UUID.")
	}
	var m models.LabMessage
	err = s.inTenant(c, func(tx *gorm.DB) error {
		if m, err = s.openLabMessage(c, tx); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&models.Patient{}).Where("id = ?", patient).Count(&n).Error; err != nil {
			return internal(err)
		}
		if n == 0 {
			return invalid("unknown-patient", "No such patient in this clinic network.")
		}
		if m.Status != models.LabUnmatched {
			return conflict("invalid-state", "Only an unmatched message can be assigned.")
		}
		return s.audit(c, tx, "assign", "lab_message", &m.ID, &patient, "")
	})
	if err != nil {
		return err
	}
	if err := s.labUpdate(c, m.WorkflowID, workflows.UpdateLabAssign,
		workflows.LabAssignment{PatientID: patient.String(), UserID: principal(c).UserID.String()}); err != nil {
		return err
	}
	return s.labMessageAnswer(c, m.ID)
}

type dismissRequest struct {
	Reason string `json:"reason"`
}

// dismissLabMessage handles POST /v1/lab-messages/{id}/dismiss: staff
// close an unmatched message without filing it (a test message, a patient
// of another clinic), saying why.
func (s *Server) dismissLabMessage(c *gin.Context) error {
	var req dismissRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return invalid("reason-required", "Say why the message is dismissed.")
	}
	var m models.LabMessage
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var err error
		if m, err = s.openLabMessage(c, tx); err != nil {
			return err
		}
		if m.Status != models.LabUnmatched {
			return conflict("invalid-state", "Only an unmatched message can be dismissed.")
		}
		// Staff write the reason in their own words, which may name the
		// patient: it goes to the message's row, never into the
		// workflow's history.
		if err := tx.Model(&models.LabMessage{}).Where("id = ?", m.ID).Update("reason", strings.TrimSpace(req.Reason)).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "dismiss", "lab_message", &m.ID, nil, "")
	})
	if err != nil {
		return err
	}
	if err := s.labUpdate(c, m.WorkflowID, workflows.UpdateLabDismiss,
		workflows.LabDismissal{UserID: principal(c).UserID.String()}); err != nil {
		return err
	}
	return s.labMessageAnswer(c, m.ID)
}

// labMessageAnswer answers 202 with the message as it is now; filing runs
// on in its workflow.
func (s *Server) labMessageAnswer(c *gin.Context, id uuid.UUID) error {
	var m models.LabMessage
	err := s.inTenant(c, func(tx *gorm.DB) error { return tx.Where("id = ?", id).Take(&m).Error })
	if err != nil {
		return internal(err)
	}
	c.JSON(http.StatusAccepted, s.labMessageOf(m))
	return nil
}

// labMessageRaw handles GET /v1/lab-messages/{id}/raw: the message byte
// for byte, for staff.
func (s *Server) labMessageRaw(c *gin.Context) error {
	var m models.LabMessage
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var err error
		if m, err = s.openLabMessage(c, tx); err != nil {
			return err
		}
		if m.RawKey == "" {
			// An erasure deleted the message it named the patient in.
			return notFound("lab message")
		}
		return s.audit(c, tx, "read-raw", "lab_message", &m.ID, m.PatientID, "")
	})
	if err != nil {
		return err
	}
	return s.sendRaw(c, m)
}
