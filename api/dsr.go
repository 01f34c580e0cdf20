package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workflows"
)

// Data subject requests: a patient's export of everything held about them
// and, on a request the privacy officer has verified, their erasure. Both
// run as workflows (dsr.go in workflows); these handlers record the
// request, start the workflow, and answer its state.

// exportLinkTTL is how long a download link to an export works: long
// enough to start the download, too short to be worth keeping.
const exportLinkTTL = 5 * time.Minute

type dsrView struct {
	ID                     string     `json:"id"`
	Kind                   string     `json:"kind"`
	PatientID              string     `json:"patient_id"`
	Status                 string     `json:"status"`
	Outcome                string     `json:"outcome,omitempty"`
	RequestedBy            string     `json:"requested_by"`
	RequestedAt            time.Time  `json:"requested_at"`
	StartedAt              *time.Time `json:"started_at,omitempty"`
	CompletedAt            *time.Time `json:"completed_at,omitempty"`
	DownloadURL            string     `json:"download_url,omitempty"`
	DownloadExpiresAt      *time.Time `json:"download_expires_at,omitempty"`
	MedicalRetainedUntil   string     `json:"medical_retained_until,omitempty"`
	FinancialRetainedUntil string     `json:"financial_retained_until,omitempty"`
	WorkflowID             string     `json:"workflow_id,omitempty"`
	WorkflowURL            string     `json:"workflow_url,omitempty"`

	// ArchiveExpiresAt is when a completed export's archive is deleted
	// (models.ExportArchiveLifetime after completion).
	ArchiveExpiresAt *time.Time `json:"archive_expires_at,omitempty"`
}

func (s *Server) viewDSR(c *gin.Context, r models.DSRRequest) dsrView {
	v := dsrView{ID: r.ID.String(), Kind: r.Kind, PatientID: r.PatientID.String(), Status: r.Status, Outcome: r.Outcome,
		RequestedBy: r.RequestedBy.String(), RequestedAt: r.RequestedAt.UTC(), StartedAt: utcPtr(r.StartedAt),
		CompletedAt: utcPtr(r.CompletedAt), MedicalRetainedUntil: datePtr(r.MedicalRetainedUntil),
		FinancialRetainedUntil: datePtr(r.FinancialRetainedUntil)}
	if r.Kind == models.DSRExport && r.Status == models.DSRCompleted && r.CompletedAt != nil {
		exp := r.CompletedAt.UTC().Add(models.ExportArchiveLifetime)
		v.ArchiveExpiresAt = &exp
	}
	// Operators follow the workflow; a patient has no use for the link.
	if principal(c).Role != models.RolePatient {
		v.WorkflowID, v.WorkflowURL = r.WorkflowID, s.temporalLink(r.WorkflowID)
	}
	return v
}

func datePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.DateOnly)
}

// dsrPatient is the patient a request is about: the path's, when the
// caller reaches them (anyone else's is 404, as if they did not exist).
func dsrPatient(c *gin.Context, tx *gorm.DB) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return uuid.Nil, notFound("patient")
	}
	// The same reach as every other patient record: a patient their own
	// and their dependants', staff patients seen at their facility,
	// admins (the privacy officer) the whole tenant.
	ok, err := reachesPatient(tx, principal(c), id)
	if err != nil {
		return uuid.Nil, internal(err)
	}
	if !ok {
		return uuid.Nil, notFound("patient")
	}
	return id, nil
}

// createExport handles POST /v1/patients/{id}/exports: a patient asks for
// their own data or a dependant's; staff for a patient seen at their
// facility, admins for any patient's, on a request made at the desk or in
// writing. Answers 202 with the request; GET /v1/dsr/{id}
// follows it and, once completed, gives a download link.
func (s *Server) createExport(c *gin.Context) error {
	return s.idempotent(c, func(id uuid.UUID) error {
		return s.createRequest(c, id, models.DSRExport)
	})
}

type erasureRequest struct {
	IdentityVerified bool `json:"identity_verified"`
}

// requestErasure handles POST /v1/patients/{id}/erasure (admins: the
// privacy officer acts on a request whose identity they have verified,
// and says so with identity_verified). A legal hold refuses it with 409
// legal-hold-active; an erasure of the patient already pending or running
// is answered instead of starting another. A patient erased before may be
// erased again: the workflow finds nothing more to remove.
func (s *Server) requestErasure(c *gin.Context) error {
	var req erasureRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if !req.IdentityVerified {
		return invalid("verification-required", "Erase only on a request whose identity you have verified, and say so with identity_verified: true.")
	}
	return s.idempotent(c, func(id uuid.UUID) error {
		return s.createRequest(c, id, models.DSRErasure)
	})
}

// createRequest records a request of kind about the path's patient and
// starts its workflow.
func (s *Server) createRequest(c *gin.Context, id uuid.UUID, kind string) error {
	p := principal(c)
	var row models.DSRRequest
	existing := false
	err := s.inTenant(c, func(tx *gorm.DB) error {
		patient, err := dsrPatient(c, tx)
		if err != nil {
			return err
		}
		// A retry with the same Idempotency-Key after a crash finds its
		// request.
		if err := tx.Where("id = ?", id).Take(&row).Error; err == nil {
			existing = true
			return nil
		} else if !errors.Is(err, gorm.ErrRecordNotFound) {
			return internal(err)
		}
		if kind == models.DSRExport {
			if erased, err := patientErased(tx, patient); err != nil {
				return internal(err)
			} else if erased {
				return conflict("patient-erased", "This patient's data was erased; there is nothing of theirs to export.")
			}
		}
		if kind == models.DSRErasure {
			// Locks the patient's row: a hold placed meanwhile waits, and
			// the workflow checks for holds again before it erases.
			if err := tx.Exec(`SELECT 1 FROM patients WHERE id = ? FOR UPDATE`, patient).Error; err != nil {
				return internal(err)
			}
			held, err := models.ActiveLegalHold(tx, patient)
			if err != nil {
				return internal(err)
			}
			if held {
				return conflict("legal-hold-active", "A legal hold on this patient blocks erasure until an admin releases it.")
			}
			err = tx.Where("patient_id = ? AND kind = ? AND status IN ?", patient, models.DSRErasure,
				[]string{models.DSRPending, models.DSRRunning}).Order("requested_at").Take(&row).Error
			if err == nil {
				existing = true
				return nil
			} else if !errors.Is(err, gorm.ErrRecordNotFound) {
				return internal(err)
			}
		}
		wid := workflows.DSRExportWorkflowID(p.TenantID.String(), id.String())
		if kind == models.DSRErasure {
			wid = workflows.DSRErasureWorkflowID(p.TenantID.String(), id.String())
		}
		row = models.DSRRequest{ID: id, TenantID: p.TenantID, PatientID: patient, Kind: kind, RequestedBy: p.UserID,
			RequestedRole: string(p.Role), Status: models.DSRPending, WorkflowID: wid, RequestedAt: s.Now().UTC()}
		if err := tx.Create(&row).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "dsr-"+kind+"-request", "dsr_request", &row.ID, &patient, "")
	})
	if err != nil {
		return err
	}
	if row.Status == models.DSRPending || row.Status == models.DSRRunning {
		if err := s.startDSR(c.Request.Context(), row); err != nil {
			return unavailable(err)
		}
	}
	status := http.StatusAccepted
	if existing {
		status = http.StatusOK
	}
	c.Header("Location", "/v1/dsr/"+row.ID.String())
	c.JSON(status, s.viewDSR(c, row))
	return nil
}

// startDSR starts the request's workflow. Starting it again (a retried
// request) finds the one already running or finished, by its ID.
func (s *Server) startDSR(ctx context.Context, r models.DSRRequest) error {
	wf := workflows.DSRExportWorkflowType
	if r.Kind == models.DSRErasure {
		wf = workflows.DSRErasureWorkflowType
	}
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        r.WorkflowID,
		TaskQueue: workflows.DSRTaskQueue,
	}, wf, workflows.DSRInput{TenantID: r.TenantID.String(), RequestID: r.ID.String()})
	return err
}

// getDSR handles GET /v1/dsr/{id}: a request's state and, for a completed
// export, a download link valid for five minutes. Patients see their own
// requests only. Handing out a link is recorded as a download. An export
// past its lifetime answers 410 export-expired.
func (s *Server) getDSR(c *gin.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return notFound("request")
	}
	p := principal(c)
	var v dsrView
	err = s.inTenant(c, func(tx *gorm.DB) error {
		var row models.DSRRequest
		if err := tx.Where("id = ?", id).Take(&row).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound("request")
		} else if err != nil {
			return internal(err)
		}
		if ok, err := reachesPatient(tx, p, row.PatientID); err != nil {
			return internal(err)
		} else if !ok {
			return notFound("request")
		}
		if exportExpired(row, s.Now()) {
			return exportGone()
		}
		v = s.viewDSR(c, row)
		action := "read"
		if row.Kind == models.DSRExport && row.Status == models.DSRCompleted && row.ArchiveKey != "" {
			name := "carebook-export-" + row.RequestedAt.UTC().Format(time.DateOnly) + ".zip"
			url, err := s.Store.PresignGet(c.Request.Context(), p.TenantID, row.ArchiveKey, exportLinkTTL, name)
			if err != nil {
				return internal(err)
			}
			exp := s.Now().UTC().Add(exportLinkTTL)
			v.DownloadURL, v.DownloadExpiresAt, action = url, &exp, "dsr-download"
		}
		return s.audit(c, tx, action, "dsr_request", &row.ID, &row.PatientID, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

// exportExpired reports whether an export's archive has passed its
// lifetime: marked expired by the retention run, or completed longer ago
// than models.ExportArchiveLifetime and waiting for the next run.
func exportExpired(r models.DSRRequest, now time.Time) bool {
	if r.Kind != models.DSRExport {
		return false
	}
	if r.Status == models.DSRExpired {
		return true
	}
	return r.Status == models.DSRCompleted && r.CompletedAt != nil && !now.Before(r.CompletedAt.Add(models.ExportArchiveLifetime))
}

// exportGone is the answer for an expired export: 410, so a client tells
// it from a request that never existed; asking again makes a fresh one.
func exportGone() *Problem {
	p := newProblem(KindNotFound, "export-expired", "Gone",
		"This export's archive was deleted after its lifetime; ask for a new export.")
	p.Status = http.StatusGone
	return p
}

// listPatientDSR handles GET /v1/patients/{id}/dsr: a patient's requests,
// newest first (patients their own; staff and admins any).
func (s *Server) listPatientDSR(c *gin.Context) error {
	var items []dsrView
	err := s.inTenant(c, func(tx *gorm.DB) error {
		patient, err := dsrPatient(c, tx)
		if err != nil {
			return err
		}
		var rows []models.DSRRequest
		if err := tx.Where("patient_id = ?", patient).Order("requested_at DESC, id").Limit(200).Find(&rows).Error; err != nil {
			return internal(err)
		}
		items = make([]dsrView, len(rows))
		for i, r := range rows {
			items[i] = s.viewDSR(c, r)
		}
		return s.audit(c, tx, "read", "dsr_request", nil, &patient, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
	return nil
}

type legalHoldRequest struct {
	Reason string `json:"reason"`
}

type legalHoldView struct {
	ID         string     `json:"id"`
	PatientID  string     `json:"patient_id"`
	Reason     string     `json:"reason"`
	PlacedBy   string     `json:"placed_by"`
	PlacedAt   time.Time  `json:"placed_at"`
	Active     bool       `json:"active"`
	ReleasedBy string     `json:"released_by,omitempty"`
	ReleasedAt *time.Time `json:"released_at,omitempty"`
	// ReleaseReason says why the hold ended, when the admin said.
	ReleaseReason string `json:"release_reason,omitempty"`
}

func viewHold(h models.LegalHold) legalHoldView {
	return legalHoldView{ID: h.ID.String(), PatientID: h.PatientID.String(), Reason: h.Reason, PlacedBy: h.PlacedBy.String(),
		PlacedAt: h.PlacedAt.UTC(), Active: h.ReleasedAt == nil, ReleasedBy: optionalString(h.ReleasedBy), ReleasedAt: utcPtr(h.ReleasedAt),
		ReleaseReason: h.ReleaseReason}
}

// placeLegalHold handles POST /v1/patients/{id}/legal-holds (admins): the
// patient's records may not be erased until the hold is released. The
// reason says which matter needs them (a case number, not the story).
func (s *Server) placeLegalHold(c *gin.Context) error {
	var req legalHoldRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	reason := strings.TrimSpace(req.Reason)
	if utf8.RuneCountInString(reason) < 5 || !visibleText(reason) {
		return invalid("reason-required", "Say why the records are held (at least 5 visible characters, no line breaks or invisible ones), e.g. the case or inquiry.")
	}
	p := principal(c)
	var hold models.LegalHold
	err := s.inTenant(c, func(tx *gorm.DB) error {
		patient, err := dsrPatient(c, tx)
		if err != nil {
			return err
		}
		// Serialised with an erasure's last step, which locks the same row.
		if err := tx.Exec(`SELECT 1 FROM patients WHERE id = ? FOR UPDATE`, patient).Error; err != nil {
			return internal(err)
		}
		hold = models.LegalHold{ID: uuid.New(), TenantID: p.TenantID, PatientID: patient, Reason: reason, PlacedBy: p.UserID, PlacedAt: s.Now().UTC()}
		if err := tx.Create(&hold).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "legal-hold-place", "legal_hold", &hold.ID, &patient, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, viewHold(hold))
	return nil
}

// listLegalHolds handles GET /v1/patients/{id}/legal-holds (admins): the
// patient's holds, active and released, newest first.
func (s *Server) listLegalHolds(c *gin.Context) error {
	var items []legalHoldView
	err := s.inTenant(c, func(tx *gorm.DB) error {
		patient, err := dsrPatient(c, tx)
		if err != nil {
			return err
		}
		var rows []models.LegalHold
		if err := tx.Where("patient_id = ?", patient).Order("placed_at DESC, id").Find(&rows).Error; err != nil {
			return internal(err)
		}
		items = make([]legalHoldView, len(rows))
		for i, h := range rows {
			items[i] = viewHold(h)
		}
		return s.audit(c, tx, "read", "legal_hold", nil, &patient, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
	return nil
}

// releaseLegalHold handles POST /v1/legal-holds/{id}/release (admins),
// with an optional reason: the hold ends; the row stays, as the record
// that it was placed and released.
func (s *Server) releaseLegalHold(c *gin.Context) error {
	var req legalHoldRequest
	if c.Request.ContentLength != 0 {
		if err := bindJSON(c, &req); err != nil {
			return err
		}
	}
	if !visibleText(req.Reason) {
		return invalid("invalid-reason", "The reason may not hold line breaks or invisible characters.")
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return notFound("legal hold")
	}
	p := principal(c)
	var hold models.LegalHold
	err = s.inTenant(c, func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&hold).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			return notFound("legal hold")
		} else if err != nil {
			return internal(err)
		}
		if hold.ReleasedAt != nil {
			return conflict("legal-hold-released", "This legal hold was already released.")
		}
		now := s.Now().UTC()
		hold.ReleasedAt, hold.ReleasedBy, hold.ReleaseReason = &now, &p.UserID, strings.TrimSpace(req.Reason)
		if err := tx.Model(&models.LegalHold{}).Where("id = ?", id).
			Updates(map[string]any{"released_at": now, "released_by": p.UserID, "release_reason": hold.ReleaseReason}).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "legal-hold-release", "legal_hold", &hold.ID, &hold.PatientID, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, viewHold(hold))
	return nil
}

type retentionView struct {
	Jurisdiction          string     `json:"jurisdiction"`
	MedicalRecordsYears   int        `json:"medical_records_years"`
	FinancialRecordsYears int        `json:"financial_records_years"`
	Default               bool       `json:"default"`
	UpdatedAt             *time.Time `json:"updated_at,omitempty"`
	UpdatedBy             string     `json:"updated_by,omitempty"`
}

func viewRetention(r models.RetentionSettings, def bool) retentionView {
	v := retentionView{Jurisdiction: r.Jurisdiction, MedicalRecordsYears: r.MedicalRecordsYears,
		FinancialRecordsYears: r.FinancialRecordsYears, Default: def, UpdatedBy: optionalString(r.UpdatedBy)}
	if !def {
		t := r.UpdatedAt.UTC()
		v.UpdatedAt = &t
	}
	return v
}

// getRetention handles GET /v1/retention-settings (admins): how long the
// tenant keeps medical and financial records of an erased patient.
func (s *Server) getRetention(c *gin.Context) error {
	var v retentionView
	err := s.inTenant(c, func(tx *gorm.DB) error {
		r, def, err := models.Retention(tx)
		if err != nil {
			return internal(err)
		}
		v = viewRetention(r, def)
		return nil
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

type retentionRequest struct {
	Jurisdiction          string `json:"jurisdiction"`
	MedicalRecordsYears   int    `json:"medical_records_years"`
	FinancialRecordsYears int    `json:"financial_records_years"`
}

// putRetention handles PUT /v1/retention-settings (admins): the tenant's
// jurisdiction (ISO 3166 country, optionally a subdivision such as US-NY)
// and the years each kind of record is kept.
func (s *Server) putRetention(c *gin.Context) error {
	var req retentionRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	p := principal(c)
	row := models.RetentionSettings{TenantID: p.TenantID, Jurisdiction: req.Jurisdiction, MedicalRecordsYears: req.MedicalRecordsYears,
		FinancialRecordsYears: req.FinancialRecordsYears, UpdatedBy: &p.UserID, UpdatedAt: s.Now().UTC()}
	err := s.inTenant(c, func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "retention-update", "retention_settings", nil, nil,
			req.Jurisdiction+" medical "+strconv.Itoa(req.MedicalRecordsYears)+"y financial "+strconv.Itoa(req.FinancialRecordsYears)+"y")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, viewRetention(row, false))
	return nil
}
