package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
)

type noticeView struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Language    string    `json:"language"`
	Version     int       `json:"version"`
	Title       string    `json:"title"`
	Body        string    `json:"body"`
	PublishedAt time.Time `json:"published_at"`
}

// listNotices handles GET /v1/notices?language=tr|en: the current version
// of each notice (privacy, clarification) in the language, English when
// not given.
func (s *Server) listNotices(c *gin.Context) error {
	lang := c.DefaultQuery("language", "en")
	if lang != "tr" && lang != "en" {
		return badRequest("invalid-parameter", "language is tr or en.")
	}
	var rows []models.Notice
	err := s.inTenant(c, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT DISTINCT ON (kind) * FROM notices WHERE language = ? ORDER BY kind, version DESC`, lang).Scan(&rows).Error
	})
	if err != nil {
		return internal(err)
	}
	out := make([]noticeView, len(rows))
	for i, n := range rows {
		out[i] = noticeView{ID: n.ID.String(), Kind: n.Kind, Language: n.Language, Version: n.Version,
			Title: n.Title, Body: n.Body, PublishedAt: n.PublishedAt.UTC()}
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

type consentRequest struct {
	PatientID string `json:"patient_id"`
	Purpose   string `json:"purpose"`
	Granted   *bool  `json:"granted"`
	NoticeID  string `json:"notice_id"`
	Channel   string `json:"channel"`
}

type consentView struct {
	ID         string    `json:"id"`
	PatientID  string    `json:"patient_id"`
	Purpose    string    `json:"purpose"`
	Granted    bool      `json:"granted"`
	NoticeID   string    `json:"notice_id,omitempty"`
	Channel    string    `json:"channel"`
	RecordedAt time.Time `json:"recorded_at"`
	RecordedBy string    `json:"recorded_by,omitempty"`
}

func viewConsent(r models.Consent) consentView {
	return consentView{ID: r.ID.String(), PatientID: r.PatientID.String(), Purpose: r.Purpose, Granted: r.Granted,
		NoticeID: optionalString(r.NoticeID), Channel: r.Channel, RecordedAt: r.RecordedAt.UTC(), RecordedBy: optionalString(r.RecordedBy)}
}

// consentPatient is the patient a consent request is about: a patient's
// own or, named, a dependant's they act for; for staff one seen at their
// facility, for admins any of the tenant's (reach.go). Anyone else is
// "not found".
func consentPatient(c *gin.Context, tx *gorm.DB, requested string) (uuid.UUID, error) {
	p := principal(c)
	if p.Role == models.RolePatient && (requested == "" || requested == p.PatientID.String()) {
		return p.PatientID, nil
	}
	id, err := uuid.Parse(requested)
	if err != nil {
		if p.Role == models.RolePatient {
			return uuid.Nil, notFound("patient")
		}
		return uuid.Nil, invalid("patient-required", "Name the patient (patient_id).")
	}
	ok, err := reachesPatient(tx, p, id)
	if err != nil {
		return uuid.Nil, internal(err)
	}
	if !ok {
		return uuid.Nil, notFound("patient")
	}
	return id, nil
}

// recordConsent handles POST /v1/consents: a grant or a withdrawal of one
// purpose, with the notice version it answers. Patients record their own
// (web or mobile); staff record what a patient said at the desk. It takes
// effect at once: a withdrawn SMS consent stops the next reminder.
func (s *Server) recordConsent(c *gin.Context) error {
	var req consentRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.Granted == nil {
		return invalid("granted-required", "Say whether consent is granted (true) or withdrawn (false).")
	}
	p := principal(c)
	// Patients answer in the apps; what a patient says at the desk is
	// recorded by staff.
	if (p.Role == models.RolePatient) != (req.Channel != "desk") {
		return invalid("invalid-channel", "Patients record consent on the web or mobile app; staff record it at the desk.")
	}
	var row models.Consent
	err := s.inTenant(c, func(tx *gorm.DB) error {
		patient, err := consentPatient(c, tx, req.PatientID)
		if err != nil {
			return err
		}
		row = models.Consent{ID: uuid.New(), TenantID: p.TenantID, PatientID: patient, Purpose: req.Purpose,
			Granted: *req.Granted, Channel: req.Channel, RecordedAt: s.Now().UTC(), RecordedBy: &p.UserID}
		if req.NoticeID != "" {
			id, err := uuid.Parse(req.NoticeID)
			if err != nil {
				return invalid("unknown-notice", "notice_id names no notice of this clinic network.")
			}
			var n models.Notice
			if err := tx.Where("id = ?", id).Take(&n).Error; errors.Is(err, gorm.ErrRecordNotFound) {
				return invalid("unknown-notice", "notice_id names no notice of this clinic network.")
			} else if err != nil {
				return internal(err)
			}
			row.NoticeID = &id
		} else if *req.Granted {
			// A grant answers a notice; a withdrawal needs none.
			return invalid("notice-required", "A grant names the notice version the patient was shown (notice_id).")
		}
		if err := tx.Create(&row).Error; err != nil {
			return internal(err)
		}
		action := "consent-grant"
		if !*req.Granted {
			action = "consent-withdraw"
		}
		return s.audit(c, tx, action, "consent", &row.ID, &patient, req.Purpose)
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, viewConsent(row))
	return nil
}

// listConsents handles GET /v1/consents?patient_id=: a patient's current
// consent per purpose and the whole ledger, newest first.
func (s *Server) listConsents(c *gin.Context) error {
	var current map[string]bool
	var history []models.Consent
	var patient uuid.UUID
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var err error
		if patient, err = consentPatient(c, tx, c.Query("patient_id")); err != nil {
			return err
		}
		if err := tx.Where("patient_id = ?", patient).Order("recorded_at DESC, id DESC").Limit(500).Find(&history).Error; err != nil {
			return internal(err)
		}
		current = map[string]bool{}
		for _, purpose := range []string{models.PurposeHealthData, models.PurposeSMSReminders, models.PurposeMarketing} {
			ok, err := models.Consents(tx, patient, purpose)
			if err != nil {
				return internal(err)
			}
			current[purpose] = ok
		}
		return s.audit(c, tx, "read", "consent", nil, &patient, "")
	})
	if err != nil {
		return err
	}
	items := make([]consentView, len(history))
	for i, r := range history {
		items[i] = viewConsent(r)
	}
	c.JSON(http.StatusOK, gin.H{"patient_id": patient.String(), "current": current, "items": items})
	return nil
}
