package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
)

// defaultBreakGlass is how long an emergency access lasts.
const defaultBreakGlass = 30 * time.Minute

type breakGlassRequest struct {
	PatientID string `json:"patient_id"`
	Reason    string `json:"reason"`
}

type breakGlassView struct {
	ID             string     `json:"id"`
	UserID         string     `json:"user_id"`
	PractitionerID string     `json:"practitioner_id"`
	PatientID      string     `json:"patient_id"`
	Reason         string     `json:"reason"`
	GrantedAt      time.Time  `json:"granted_at"`
	ExpiresAt      time.Time  `json:"expires_at"`
	ReviewedBy     string     `json:"reviewed_by,omitempty"`
	ReviewedAt     *time.Time `json:"reviewed_at,omitempty"`
	ReviewNote     string     `json:"review_note,omitempty"`
}

func viewBreakGlass(g models.BreakGlass) breakGlassView {
	return breakGlassView{ID: g.ID.String(), UserID: g.UserID.String(), PractitionerID: g.PractitionerID.String(),
		PatientID: g.PatientID.String(), Reason: g.Reason, GrantedAt: g.GrantedAt.UTC(), ExpiresAt: g.ExpiresAt.UTC(),
		ReviewedBy: optionalString(g.ReviewedBy), ReviewedAt: utcPtr(g.ReviewedAt), ReviewNote: g.ReviewNote}
}

// breakGlass handles POST /v1/break-glass: a doctor opens a patient's
// results outside their normal reach, saying why. The access lasts a short
// window; the tenant's admins are alerted at once, and the grant waits for
// their review. Everything read under it is audited as usual.
func (s *Server) breakGlass(c *gin.Context) error {
	var req breakGlassRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	reason := strings.TrimSpace(req.Reason)
	if !readableReason(reason) {
		return invalid("reason-required", "State the emergency in words: 10 to 1000 characters, at least 10 of them letters or digits, no control or invisible characters.")
	}
	patient, err := uuid.Parse(req.PatientID)
	if err != nil {
		return badRequest("invalid-body", "patient_id must be a UUID.")
	}
	p := principal(c)
	ttl := s.BreakGlassTTL
	if ttl <= 0 {
		ttl = defaultBreakGlass
	}
	now := s.Now().UTC()
	g := models.BreakGlass{ID: uuid.New(), TenantID: p.TenantID, UserID: p.UserID, PractitionerID: p.PractitionerID,
		PatientID: patient, Reason: reason, GrantedAt: now, ExpiresAt: now.Add(ttl)}
	err = s.inTenant(c, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&models.Patient{}).Where("id = ?", patient).Count(&n).Error; err != nil {
			return internal(err)
		}
		if n == 0 {
			return notFound("patient")
		}
		if err := tx.Create(&g).Error; err != nil {
			return internal(err)
		}
		var admins []uuid.UUID
		if err := tx.Model(&models.User{}).Where("role = ?", models.RoleAdmin).Pluck("id", &admins).Error; err != nil {
			return internal(err)
		}
		for _, a := range admins {
			// The alert names the grant; the reason is read in the queue.
			payload, _ := json.Marshal(map[string]string{"breakGlassID": g.ID.String()})
			if err := models.Enqueue(tx, models.Notification{TenantID: p.TenantID, DedupeKey: "break-glass:" + g.ID.String() + ":" + a.String(),
				RecipientUser: &a, Channel: models.ChannelEmail, Template: "break-glass.alert", Payload: payload, ScheduledFor: now}); err != nil {
				return internal(err)
			}
		}
		return s.audit(c, tx, "break-glass", "patient", &patient, &patient, reason)
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, viewBreakGlass(g))
	return nil
}

// listBreakGlass handles GET /v1/break-glass?state=unreviewed|all: the
// review queue of emergency accesses (admins), oldest unreviewed first.
func (s *Server) listBreakGlass(c *gin.Context) error {
	state := c.DefaultQuery("state", "unreviewed")
	if state != "unreviewed" && state != "all" {
		return badRequest("invalid-parameter", "state is unreviewed or all.")
	}
	var rows []models.BreakGlass
	err := s.inTenant(c, func(tx *gorm.DB) error {
		q := tx.Order("granted_at, id").Limit(500)
		if state == "unreviewed" {
			q = q.Where("reviewed_at IS NULL")
		}
		if err := q.Find(&rows).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "list", "break_glass", nil, nil, "")
	})
	if err != nil {
		return err
	}
	out := make([]breakGlassView, len(rows))
	for i, g := range rows {
		out[i] = viewBreakGlass(g)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

type breakGlassReview struct {
	Note string `json:"note"`
}

// reviewBreakGlass handles POST /v1/break-glass/{id}/review: an admin
// records that the access was looked at, with a note; once.
func (s *Server) reviewBreakGlass(c *gin.Context) error {
	var req breakGlassReview
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	id, err := uuidParam(c, "break-glass access")
	if err != nil {
		return err
	}
	p := principal(c)
	var g models.BreakGlass
	err = s.inTenant(c, func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&g).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound("break-glass access")
		} else if err != nil {
			return internal(err)
		}
		if g.ReviewedAt != nil {
			return conflict("already-reviewed", "This access has been reviewed already.")
		}
		now := s.Now().UTC()
		g.ReviewedBy, g.ReviewedAt, g.ReviewNote = &p.UserID, &now, strings.TrimSpace(req.Note)
		if err := tx.Model(&models.BreakGlass{}).Where("id = ?", id).
			Updates(map[string]any{"reviewed_by": p.UserID, "reviewed_at": now, "review_note": g.ReviewNote}).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "review", "break_glass", &g.ID, &g.PatientID, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, viewBreakGlass(g))
	return nil
}

// readableReason reports whether a reason is one a reviewer can read: at
// most 1000 characters, at least ten letters or digits, and nothing
// invisible or controlling (zero-width characters, direction overrides,
// control characters, line breaks).
func readableReason(s string) bool {
	if utf8.RuneCountInString(s) > 1000 {
		return false
	}
	if !visibleText(s) {
		return false
	}
	words := 0
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			words++
		}
	}
	return words >= 10
}
