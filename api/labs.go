package api

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"

	"github.com/carebook/carebook/labs"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workflows"
)

// pdfLinkTTL is how long a presigned PDF link works: long enough to start
// the download, short enough that a forwarded link is soon useless.
const pdfLinkTTL = 5 * time.Minute

// labVisible narrows a query on lab_reports (alias r) to what the caller
// may see: patients their own released results; doctors the results they
// ordered, results nobody is named for, and those of patients they have
// seen or will see (a booked, attended or missed visit; a cancelled or
// held one grants nothing, or a patient could open their record to any
// doctor by booking and cancelling), and those they opened by break-glass
// while the grant lasts, and those of patients assigned to their care;
// staff those of patients seen at their facility and those its doctors
// ordered; admins the tenant's (RLS has cut it to the tenant already).
// Patients also reach their dependants' released results (reach.go).
func labVisible(p Principal) func(*gorm.DB) *gorm.DB { return labReach(p, true) }

// labActable is labVisible for changing a result (review, release): a
// break-glass grant opens a record to read in an emergency, not to sign
// off another doctor's result.
func labActable(p Principal) func(*gorm.DB) *gorm.DB { return labReach(p, false) }

func labReach(p Principal, breakGlass bool) func(*gorm.DB) *gorm.DB {
	return func(q *gorm.DB) *gorm.DB {
		switch p.Role {
		case models.RolePatient:
			// A proxy reads a dependant's released results as the
			// dependant would (reach.go).
			return where(q, p, "r.released_at IS NOT NULL AND "+patientReachSQL("r.patient_id"))
		case models.RoleDoctor:
			glass := ""
			if breakGlass {
				glass = "OR EXISTS (SELECT 1 FROM break_glass_grants g WHERE g.patient_id = r.patient_id " +
					"AND g.practitioner_id = @doctor AND g.expires_at > now())"
			}
			return q.Where("(r.ordering_practitioner_id = @doctor OR r.ordering_practitioner_id IS NULL OR EXISTS "+
				"(SELECT 1 FROM appointments a WHERE a.patient_id = r.patient_id AND a.practitioner_id = @doctor "+
				"AND a.status IN ('booked', 'arrived', 'fulfilled', 'noshow')) OR "+assignedSQL("r.patient_id")+" "+glass+")",
				sql.Named("doctor", p.PractitionerID))
		case models.RoleStaff:
			// A facility's desk reaches the results of patients seen
			// there and those its own doctors ordered (reach.go).
			return where(q, p, "("+seenAtFacilitySQL("r.patient_id")+" OR "+worksAtFacilitySQL("r.ordering_practitioner_id")+")")
		case models.RoleAdmin:
			return q
		}
		return q.Where("false")
	}
}

type labReportRow struct {
	models.LabReport
	PatientGiven  string
	PatientFamily string
	Ordering      *string
	WorkflowID    string
}

func labQuery(tx *gorm.DB, p Principal) *gorm.DB { return labQueryWith(tx, labVisible(p)) }

func labQueryWith(tx *gorm.DB, reach func(*gorm.DB) *gorm.DB) *gorm.DB {
	return tx.Table("lab_reports r").
		Select("r.*, pt.given_name AS patient_given, pt.family_name AS patient_family, pr.display_name AS ordering, " +
			"m.workflow_id").
		Joins("JOIN patients pt ON pt.id = r.patient_id").
		Joins("JOIN lab_messages m ON m.id = r.message_id").
		Joins("LEFT JOIN practitioners pr ON pr.id = r.ordering_practitioner_id").
		Scopes(reach)
}

type labReportView struct {
	ID           string   `json:"id"`
	PatientID    string   `json:"patient_id"`
	PatientName  string   `json:"patient_name"`
	Test         codeView `json:"test"`
	Status       string   `json:"status"`
	Version      int      `json:"version"`
	SupersededBy string   `json:"superseded_by,omitempty"`
	// Corrected says the lab has sent a newer version of this result;
	// patients see it once that version is released.
	Corrected      bool       `json:"corrected_later,omitempty"`
	Severity       string     `json:"severity"`
	EffectiveAt    *time.Time `json:"effective_at,omitempty"`
	IssuedAt       *time.Time `json:"issued_at,omitempty"`
	FiledAt        time.Time  `json:"filed_at"`
	OrderingDoctor string     `json:"ordering_doctor,omitempty"`
	ReviewedAt     *time.Time `json:"reviewed_at,omitempty"`
	ReviewComment  string     `json:"review_comment,omitempty"`
	ReleaseRule    string     `json:"release_rule"`
	ReleaseDueAt   *time.Time `json:"release_due_at,omitempty"`
	ReleasedAt     *time.Time `json:"released_at,omitempty"`
	Notes          string     `json:"notes,omitempty"`
	Conclusion     string     `json:"conclusion,omitempty"`
	HasPDF         bool       `json:"has_pdf"`
	// WorkflowID and WorkflowURL are for clinicians and operators.
	WorkflowID   string            `json:"workflow_id,omitempty"`
	WorkflowURL  string            `json:"workflow_url,omitempty"`
	Observations []observationView `json:"observations,omitempty"`
}

type codeView struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

type observationView struct {
	Key            string     `json:"key"`
	Test           codeView   `json:"test"`
	Status         string     `json:"status"`
	Kind           string     `json:"kind"`
	Value          string     `json:"value"`
	Number         *float64   `json:"number,omitempty"`
	Number2        *float64   `json:"number2,omitempty"`
	Comparator     string     `json:"comparator,omitempty"`
	Unit           string     `json:"unit,omitempty"`
	Coded          *codeView  `json:"coded,omitempty"`
	ReferenceRange string     `json:"reference_range,omitempty"`
	Low            *float64   `json:"low,omitempty"`
	High           *float64   `json:"high,omitempty"`
	Flags          []string   `json:"flags"`
	Severity       string     `json:"severity"`
	EffectiveAt    *time.Time `json:"effective_at,omitempty"`
	Notes          string     `json:"notes,omitempty"`
	Members        []string   `json:"members,omitempty"`
}

func (s *Server) labView(p Principal, r labReportRow) labReportView {
	v := labReportView{
		ID: r.ID.String(), PatientID: r.PatientID.String(), PatientName: r.PatientGiven + " " + r.PatientFamily,
		Test:   codeView{System: r.CodeSystem, Code: r.Code, Display: r.Display},
		Status: r.Status, Version: r.Version, Severity: r.Severity,
		EffectiveAt: utcPtr(r.EffectiveAt), IssuedAt: utcPtr(r.IssuedAt), FiledAt: r.FiledAt.UTC(),
		OrderingDoctor: deref(r.Ordering), ReviewedAt: utcPtr(r.ReviewedAt), ReviewComment: r.ReviewComment,
		ReleaseRule: r.ReleaseRule, ReleaseDueAt: utcPtr(r.ReleaseDueAt), ReleasedAt: utcPtr(r.ReleasedAt),
		Notes: r.Notes, Conclusion: r.Conclusion, HasPDF: r.PDFKey != "",
	}
	if r.SupersededBy != nil {
		v.SupersededBy = r.SupersededBy.String()
		v.Corrected = true
	}
	if p.Role != models.RolePatient {
		v.WorkflowID = r.WorkflowID
		v.WorkflowURL = s.temporalLink(r.WorkflowID)
	} else {
		// A patient sees the result, not the clinic's review notes, nor
		// the ID of a newer version they may not be able to open yet:
		// only that the lab has sent one.
		v.ReviewComment, v.SupersededBy = "", ""
	}
	return v
}

func observationOf(o models.LabObservation) observationView {
	v := observationView{
		Key: o.ObsKey, Test: codeView{System: o.CodeSystem, Code: o.Code, Display: o.Display},
		Status: o.Status, Kind: o.Kind, Value: o.ValueText, Number: o.ValueNumber, Number2: o.ValueNumber2,
		Comparator: o.Comparator, Unit: o.Unit, ReferenceRange: o.ReferenceRange, Low: o.RefLow, High: o.RefHigh,
		Flags: o.Flags, Severity: o.Severity, EffectiveAt: utcPtr(o.EffectiveAt), Notes: o.Notes, Members: o.Members,
	}
	if v.Flags == nil {
		v.Flags = []string{}
	}
	if o.Kind == string(labs.ValueCoded) {
		v.Coded = &codeView{System: o.CodedSystem, Code: o.CodedCode, Display: o.CodedDisplay}
		if v.Value == "" {
			v.Value = labs.Code{Code: o.CodedCode, Display: o.CodedDisplay}.Label()
		}
	}
	return v
}

// listLabResults handles GET /v1/lab-results?state=&patient_id=: newest
// first, at most 200. state is awaiting-review (current versions nobody
// has reviewed), unreleased, released or all (the default; for patients
// always their released results).
func (s *Server) listLabResults(c *gin.Context) error {
	p := principal(c)
	state := c.DefaultQuery("state", "all")
	var patient *uuid.UUID
	if v := c.Query("patient_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return badRequest("invalid-parameter", "patient_id must be a UUID.")
		}
		patient = &id
	}
	var rows []labReportRow
	err := s.inTenant(c, func(tx *gorm.DB) error {
		q := labQuery(tx, p).Order("r.filed_at DESC, r.id").Limit(200)
		switch state {
		case "awaiting-review":
			q = q.Where("r.reviewed_at IS NULL AND r.superseded_by IS NULL")
		case "unreleased":
			q = q.Where("r.released_at IS NULL AND r.superseded_by IS NULL")
		case "released":
			q = q.Where("r.released_at IS NOT NULL")
		case "all":
		default:
			return badRequest("invalid-parameter", "state is awaiting-review, unreleased, released or all.")
		}
		if patient != nil {
			q = q.Where("r.patient_id = ?", *patient)
		}
		if err := q.Scan(&rows).Error; err != nil {
			return internal(err)
		}
		whose := patient
		if p.Role == models.RolePatient {
			whose = &p.PatientID
			// A proxy's list holds dependants' results too: each
			// dependant read gets its own event (and a patient_id out of
			// reach, which finds nothing, none).
			seen := map[uuid.UUID]bool{p.PatientID: true}
			for _, r := range rows {
				if !seen[r.PatientID] {
					seen[r.PatientID] = true
					if err := s.audit(c, tx, "list", "lab_report", nil, &r.PatientID, ""); err != nil {
						return err
					}
				}
			}
		}
		return s.audit(c, tx, "list", "lab_report", nil, whose, "")
	})
	if err != nil {
		return err
	}
	out := make([]labReportView, len(rows))
	for i, r := range rows {
		out[i] = s.labView(p, r)
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

// openLabReport loads the :id report the caller may see, in tx.
func openLabReport(c *gin.Context, tx *gorm.DB) (labReportRow, error) {
	return openLabReportIn(c, tx, labQuery(tx, principal(c)))
}

// openLabReportToAct loads the :id report the caller may change.
func openLabReportToAct(c *gin.Context, tx *gorm.DB) (labReportRow, error) {
	return openLabReportIn(c, tx, labQueryWith(tx, labActable(principal(c))))
}

func openLabReportIn(c *gin.Context, tx *gorm.DB, q *gorm.DB) (labReportRow, error) {
	id, err := uuidParam(c, "lab result")
	if err != nil {
		return labReportRow{}, err
	}
	var row labReportRow
	err = q.Where("r.id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return labReportRow{}, notFound("lab result")
	}
	if err != nil {
		return labReportRow{}, internal(err)
	}
	return row, nil
}

// getLabResult handles GET /v1/lab-results/{id}: the report with its
// observations, reference ranges and flags.
func (s *Server) getLabResult(c *gin.Context) error {
	p := principal(c)
	var v labReportView
	err := s.inTenant(c, func(tx *gorm.DB) error {
		r, err := openLabReport(c, tx)
		if err != nil {
			return err
		}
		var obs []models.LabObservation
		if err := tx.Where("report_id = ?", r.ID).Order("seq").Find(&obs).Error; err != nil {
			return internal(err)
		}
		v = s.labView(p, r)
		v.Observations = make([]observationView, len(obs))
		for i, o := range obs {
			v.Observations[i] = observationOf(o)
		}
		return s.audit(c, tx, "read", "lab_report", &r.ID, &r.PatientID, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

type trendPoint struct {
	ReportID    string     `json:"report_id"`
	EffectiveAt *time.Time `json:"effective_at,omitempty"`
	Value       string     `json:"value"`
	Number      *float64   `json:"number,omitempty"`
	Comparator  string     `json:"comparator,omitempty"`
	Unit        string     `json:"unit,omitempty"`
	Flags       []string   `json:"flags"`
}

type trendView struct {
	Test   codeView     `json:"test"`
	Points []trendPoint `json:"points"`
}

// labTrend handles GET /v1/lab-results/{id}/trend: for each test in the
// report, the patient's values of the same test (same code and system)
// from every current report the caller may see, oldest first, up to 50
// per test.
func (s *Server) labTrend(c *gin.Context) error {
	p := principal(c)
	var out []trendView
	err := s.inTenant(c, func(tx *gorm.DB) error {
		r, err := openLabReport(c, tx)
		if err != nil {
			return err
		}
		var tests []models.LabObservation
		if err := tx.Where("report_id = ? AND code <> ''", r.ID).Order("seq").Find(&tests).Error; err != nil {
			return internal(err)
		}
		seen := map[[2]string]bool{}
		for _, t := range tests {
			k := [2]string{t.CodeSystem, t.Code}
			if seen[k] {
				continue
			}
			seen[k] = true
			var points []struct {
				models.LabObservation
				RID uuid.UUID
			}
			q := tx.Table("lab_observations o").Select("o.*, r.id AS r_id").
				Joins("JOIN lab_reports r ON r.id = o.report_id").
				Where("o.patient_id = ? AND o.code_system = ? AND o.code = ? AND r.superseded_by IS NULL", r.PatientID, t.CodeSystem, t.Code).
				Scopes(labVisible(p)).
				Order("o.effective_at NULLS FIRST, r.filed_at").Limit(50)
			if err := q.Scan(&points).Error; err != nil {
				return internal(err)
			}
			tv := trendView{Test: codeView{System: t.CodeSystem, Code: t.Code, Display: t.Display}, Points: []trendPoint{}}
			for _, o := range points {
				ov := observationOf(o.LabObservation)
				tv.Points = append(tv.Points, trendPoint{ReportID: o.RID.String(), EffectiveAt: ov.EffectiveAt,
					Value: ov.Value, Number: ov.Number, Comparator: ov.Comparator, Unit: ov.Unit, Flags: ov.Flags})
			}
			out = append(out, tv)
		}
		return s.audit(c, tx, "read-trend", "lab_report", &r.ID, &r.PatientID, "")
	})
	if err != nil {
		return err
	}
	if out == nil {
		out = []trendView{}
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
	return nil
}

// labPDF handles GET /v1/lab-results/{id}/pdf: a presigned link to the
// report's PDF that works for five minutes.
func (s *Server) labPDF(c *gin.Context) error {
	var r labReportRow
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var err error
		if r, err = openLabReport(c, tx); err != nil {
			return err
		}
		if r.PDFKey == "" {
			return conflict("pdf-not-ready", "The report's PDF is not rendered yet; try again shortly.")
		}
		return s.audit(c, tx, "download-pdf", "lab_report", &r.ID, &r.PatientID, "")
	})
	if err != nil {
		return err
	}
	url, err := s.Store.PresignGet(c.Request.Context(), r.TenantID, r.PDFKey, pdfLinkTTL, "lab-report-"+r.ID.String()+".pdf")
	if err != nil {
		return unavailable(err)
	}
	c.JSON(http.StatusOK, gin.H{"url": url, "expires_at": s.Now().Add(pdfLinkTTL).UTC()})
	return nil
}

// labRaw handles GET /v1/lab-results/{id}/raw: the message the report was
// filed from, byte for byte, for staff.
func (s *Server) labRaw(c *gin.Context) error {
	var msg models.LabMessage
	err := s.inTenant(c, func(tx *gorm.DB) error {
		r, err := openLabReport(c, tx)
		if err != nil {
			return err
		}
		if err := tx.Where("id = ?", r.MessageID).Take(&msg).Error; err != nil {
			return internal(err)
		}
		return s.audit(c, tx, "read-raw", "lab_report", &r.ID, &r.PatientID, "")
	})
	if err != nil {
		return err
	}
	return s.sendRaw(c, msg)
}

func (s *Server) sendRaw(c *gin.Context, msg models.LabMessage) error {
	raw, err := s.Store.Get(c.Request.Context(), msg.TenantID, msg.RawKey)
	if err != nil {
		return unavailable(err)
	}
	ct := "application/hl7-v2"
	if msg.Format == string(labs.FormatFHIR) {
		ct = "application/fhir+json"
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, ct, raw)
	return nil
}

type reviewRequest struct {
	Comment string `json:"comment"`
}

// reviewLabResult handles POST /v1/lab-results/{id}/review: the doctor
// marks the current version reviewed, with an optional comment. Reviewing
// again replaces the comment.
func (s *Server) reviewLabResult(c *gin.Context) error {
	var req reviewRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	p := principal(c)
	var v labReportView
	err := s.inTenant(c, func(tx *gorm.DB) error {
		r, err := openLabReportToAct(c, tx)
		if err != nil {
			return err
		}
		if r.SupersededBy != nil {
			return conflict("lab-result-superseded", "A corrected version replaced this result; review that one.")
		}
		now := s.Now().UTC()
		if err := tx.Model(&models.LabReport{}).Where("id = ?", r.ID).
			Updates(map[string]any{"reviewed_at": now, "reviewed_by": p.UserID, "review_comment": req.Comment}).Error; err != nil {
			return internal(err)
		}
		r.ReviewedAt, r.ReviewedBy, r.ReviewComment = &now, &p.UserID, req.Comment
		v = s.labView(p, r)
		return s.audit(c, tx, "review", "lab_report", &r.ID, &r.PatientID, "")
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

// releaseLabResult handles POST /v1/lab-results/{id}/release: the report
// becomes visible to the patient, who is told it is ready. Under the
// after_review rule a doctor must have reviewed it first. Releasing twice
// answers the first release.
func (s *Server) releaseLabResult(c *gin.Context) error {
	p := principal(c)
	var r labReportRow
	err := s.inTenant(c, func(tx *gorm.DB) error {
		var err error
		r, err = openLabReportToAct(c, tx)
		return err
	})
	if err != nil {
		return err
	}
	if r.ReleasedAt == nil && r.SupersededBy != nil {
		return conflict("lab-result-superseded", "A corrected version replaced this result.")
	}
	if r.ReleasedAt == nil {
		if err := s.labUpdate(c, r.WorkflowID, workflows.UpdateLabRelease, workflows.LabRelease{ReportID: r.ID.String(), UserID: p.UserID.String()}); err != nil {
			return err
		}
		// Recorded once it happened; a refused release is the caller's
		// problem document, not a release.
		if err := s.inTenant(c, func(tx *gorm.DB) error {
			return s.audit(c, tx, "release", "lab_report", &r.ID, &r.PatientID, "")
		}); err != nil {
			return err
		}
	}
	return s.getLabResult(c)
}

// labUpdate sends an update to a lab workflow and waits for its outcome.
func (s *Server) labUpdate(c *gin.Context, workflowID, name string, arg any) error {
	ctx, cancel := context.WithTimeout(c.Request.Context(), workflowWait)
	defer cancel()
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case workflows.ErrTypeLabNotReviewed:
			return conflict("lab-result-not-reviewed", "The clinic releases results after a doctor's review; review it first.")
		case workflows.ErrTypeLabSuperseded:
			return conflict("lab-result-superseded", "A corrected version replaced this result.")
		case workflows.ErrTypeInvalidState:
			return conflict("invalid-state", "The result is not in a state that allows this yet.")
		case workflows.ErrTypeNotFound:
			return notFound("patient")
		}
	}
	var gone *serviceerror.NotFound
	if errors.As(err, &gone) {
		p := conflict("invalid-state", "The result's workflow has ended; nothing is waiting for this.")
		p.Err = err
		return p
	}
	return workflowProblem(err)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
