package api

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/models"
)

// audit records a read or change of patient data in the same transaction
// as the read, so there is no read without its record.
func (s *Server) audit(c *gin.Context, tx *gorm.DB, action, resourceType string, resourceID, patientID *uuid.UUID, reason string) error {
	p := principal(c)
	if actsFor(p, patientID) {
		// A parent or caregiver acting for a dependant: the event's user
		// is who acted, its patient whom they acted for, and its reason
		// says so before any reason of its own.
		reason = strings.TrimSuffix("proxy: "+reason, ": ")
	}
	return s.record(c, tx, models.AuditEvent{
		TenantID: p.TenantID, ActorUser: &p.UserID, ActorRole: string(p.Role),
		Action: action, ResourceType: resourceType, ResourceID: resourceID, PatientID: patientID, Reason: reason,
	})
}

// record appends ev, with the request's time, client address and ID, to
// its tenant's audit chain in tx.
func (s *Server) record(c *gin.Context, tx *gorm.DB, ev models.AuditEvent) error {
	ev.At, ev.ClientAddr, ev.RequestID = s.Now().UTC(), c.ClientIP(), requestID(c)
	if err := audit.Append(tx, s.AuditKey, &ev); err != nil {
		return internal(err)
	}
	return nil
}

// auditDenial records that an authenticated caller was refused a route:
// the route's pattern and method (never its IDs or query) and, when the
// path names one, the resource's ID. A failure to record is logged, not
// answered: the caller is refused either way.
func (s *Server) auditDenial(c *gin.Context) {
	v, ok := c.Get(principalKey)
	if !ok {
		return
	}
	p := v.(Principal)
	ev := models.AuditEvent{TenantID: p.TenantID, ActorUser: &p.UserID, ActorRole: string(p.Role),
		Action: "denied", ResourceType: "route", Reason: c.Request.Method + " " + c.FullPath()}
	if id, err := uuid.Parse(c.Param("id")); err == nil {
		ev.ResourceID = &id
	}
	err := models.InTenant(c.Request.Context(), s.DB, p.TenantID, func(tx *gorm.DB) error { return s.record(c, tx, ev) })
	if err != nil {
		s.Logger.ErrorContext(c.Request.Context(), "denial not audited", "error", err)
	}
}

type auditEventView struct {
	Seq          int64     `json:"seq"`
	ID           string    `json:"id"`
	At           time.Time `json:"at"`
	ActorUser    string    `json:"actor_user,omitempty"`
	ActorRole    string    `json:"actor_role"`
	Action       string    `json:"action"`
	ResourceType string    `json:"resource_type"`
	ResourceID   string    `json:"resource_id,omitempty"`
	PatientID    string    `json:"patient_id,omitempty"`
	ClientAddr   string    `json:"client_addr,omitempty"`
	RequestID    string    `json:"request_id,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Hash         string    `json:"hash"`
}

// listAuditEvents handles GET /v1/audit-events?patient_id=&resource_id=
// &actor_user=&action=&from=&to=&after_seq=: the tenant's audit log in
// chain order, 500 at a time (page with after_seq). Reading the log is
// itself recorded.
func (s *Server) listAuditEvents(c *gin.Context) error {
	q := struct {
		patient, resource, actor *uuid.UUID
	}{}
	for name, dst := range map[string]**uuid.UUID{"patient_id": &q.patient, "resource_id": &q.resource, "actor_user": &q.actor} {
		if v := c.Query(name); v != "" {
			id, err := uuid.Parse(v)
			if err != nil {
				return badRequest("invalid-parameter", name+" must be a UUID.")
			}
			*dst = &id
		}
	}
	from, to, err := instantRange(c)
	if err != nil {
		return err
	}
	var after int64
	if v := c.Query("after_seq"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return badRequest("invalid-parameter", "after_seq must be a whole number.")
		}
	}
	var rows []models.AuditEvent
	err = s.inTenant(c, func(tx *gorm.DB) error {
		db := tx.Where("seq > ?", after).Order("seq").Limit(500)
		if q.patient != nil {
			db = db.Where("patient_id = ?", *q.patient)
		}
		if q.resource != nil {
			db = db.Where("resource_id = ?", *q.resource)
		}
		if q.actor != nil {
			db = db.Where("actor_user = ?", *q.actor)
		}
		if a := c.Query("action"); a != "" {
			db = db.Where("action = ?", a)
		}
		if !from.IsZero() {
			db = db.Where("at >= ?", from)
		}
		if !to.IsZero() {
			db = db.Where("at < ?", to)
		}
		if err := db.Find(&rows).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "list", "audit_event", nil, q.patient, "")
	})
	if err != nil {
		return err
	}
	out := make([]auditEventView, len(rows))
	for i, e := range rows {
		out[i] = auditEventView{Seq: e.Seq, ID: e.ID.String(), At: e.At.UTC(), ActorUser: optionalString(e.ActorUser),
			ActorRole: e.ActorRole, Action: e.Action, ResourceType: e.ResourceType, ResourceID: optionalString(e.ResourceID),
			PatientID: optionalString(e.PatientID), ClientAddr: e.ClientAddr, RequestID: e.RequestID, Reason: e.Reason,
			Hash: hex.EncodeToString(e.Hash)}
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

// verifyAudit handles GET /v1/audit-events/verify: the tenant's chain
// checked from its first event, through its archived segments, to its
// head, and the head against the newest anchor, as `carebook audit
// verify` does. A chain that holds has its head anchored.
func (s *Server) verifyAudit(c *gin.Context) error {
	var opts []audit.Option
	if s.Store != nil {
		opts = append(opts, audit.WithArchive(s.Store), audit.WithAnchor(s.Now))
	}
	rep, err := audit.Verify(c.Request.Context(), s.DB, s.AuditKey, principal(c).TenantID, opts...)
	if err != nil {
		return internal(err)
	}
	breaks := make([]gin.H, len(rep.Breaks))
	for i, b := range rep.Breaks {
		breaks[i] = gin.H{"seq": b.Seq, "why": b.Why}
	}
	c.JSON(http.StatusOK, gin.H{"ok": rep.OK(), "events": rep.Events, "head": rep.Head, "breaks": breaks,
		"archived": rep.Archived, "segments": rep.Segments, "anchored": rep.Anchored,
		"reanchored": rep.Reanchored})
	return nil
}
