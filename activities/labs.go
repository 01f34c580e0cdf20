package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/labs"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/nationalid"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/workflows"
)

// Labs runs the steps of lab ingestion. Every step reads the raw message
// from the object store and parses it again rather than passing results
// through workflow history, so no result value or patient detail is ever
// stored in Temporal. Each step can run again after a crash: states move
// forward only, filing happens once per message, and objects are keyed by
// their content.
type Labs struct {
	DB    *gorm.DB
	Store *objstore.Store
	// RenderPDF turns a filed report into its printable PDF.
	RenderPDF func(ReportDocument) ([]byte, error)
	// Now reads the clock; nil means time.Now.
	Now func() time.Time
	// Keys computes the blind index that national IDs are matched by.
	Keys *keyring.Keyring
}

func (l *Labs) now() time.Time {
	if l.Now != nil {
		return l.Now().UTC()
	}
	return time.Now().UTC()
}

// Default release rule of a tenant without lab settings: a doctor releases
// each result, and nothing reaches a patient unseen.
var defaultLabSettings = models.LabSettings{ReleaseRule: models.ReleaseAfterReview, ReleaseDays: 3}

// LabParse reads the stored message. A message that cannot be trusted is
// marked rejected with the reason; the workflow then ends.
func (l *Labs) LabParse(ctx context.Context, in workflows.LabInput) (workflows.LabParsed, error) {
	tenant, row, err := l.message(ctx, in.TenantID, in.MessageID)
	if err != nil {
		return workflows.LabParsed{}, err
	}
	if row.Status == models.LabRejected {
		return workflows.LabParsed{Rejected: true, Reason: row.Reason}, nil
	}
	msg, reason, err := l.decode(ctx, tenant, row)
	if err != nil {
		return workflows.LabParsed{}, err
	}
	if reason != "" {
		err = models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
			return tx.Model(&models.LabMessage{}).Where("id = ? AND status = ?", row.ID, models.LabReceived).
				Updates(map[string]any{"status": models.LabRejected, "reason": reason, "processed_at": l.now()}).Error
		})
		if err != nil {
			return workflows.LabParsed{}, fmt.Errorf("mark rejected: %w", err)
		}
		return workflows.LabParsed{Rejected: true, Reason: reason}, nil
	}
	return workflows.LabParsed{Reports: len(msg.Reports)}, nil
}

// LabMatch finds the patient by the identifiers the message carries,
// within the tenant only. One patient is a match; none, or more than one,
// is not, and the message goes to staff: a result is never filed on a
// guess. An identifier sent without an assigning authority counts only
// when the lab partner names the system it implies.
func (l *Labs) LabMatch(ctx context.Context, in workflows.LabInput) (workflows.LabMatch, error) {
	tenant, row, err := l.message(ctx, in.TenantID, in.MessageID)
	if err != nil {
		return workflows.LabMatch{}, err
	}
	msg, reason, err := l.decode(ctx, tenant, row)
	if err != nil {
		return workflows.LabMatch{}, err
	}
	if reason != "" {
		return workflows.LabMatch{}, temporal.NewNonRetryableApplicationError("message no longer parses", workflows.ErrTypeInvalidState, nil)
	}
	var out workflows.LabMatch
	err = models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
		var partner models.LabPartner
		if err := tx.Where("id = ?", row.PartnerID).Take(&partner).Error; err != nil {
			return fmt.Errorf("load partner: %w", err)
		}
		found := map[uuid.UUID]bool{}
		for _, id := range msg.Patient.Identifiers {
			system := id.System
			if system == "" {
				system = partner.DefaultIDSystem
			}
			if system == "" || id.Value == "" {
				continue
			}
			var ids []uuid.UUID
			if nationalid.IsNational(system) {
				// National IDs are kept sealed; their blind index finds them.
				if ids, err = nationalid.Find(ctx, tx, l.Keys, tenant, system, id.Value); err != nil {
					return fmt.Errorf("match national identifier: %w", err)
				}
			} else if err := tx.Model(&models.PatientIdentifier{}).Where("system = ? AND value = ?", system, id.Value).
				Pluck("patient_id", &ids).Error; err != nil {
				return fmt.Errorf("match identifier: %w", err)
			}
			for _, p := range ids {
				found[p] = true
			}
		}
		cols := map[string]any{}
		switch len(found) {
		case 0:
			out.Outcome = workflows.LabUnmatched
		case 1:
			out.Outcome = workflows.LabMatched
			for p := range found {
				out.PatientID = p.String()
				cols["patient_id"] = p
			}
		default:
			out.Outcome = workflows.LabAmbiguous
		}
		cols["match"] = out.Outcome
		return tx.Model(&models.LabMessage{}).Where("id = ? AND status = ?", row.ID, models.LabReceived).Updates(cols).Error
	})
	return out, err
}

// LabMarkUnmatched puts the message in the staff queue and tells the
// facility's staff that a result is waiting for a patient.
func (l *Labs) LabMarkUnmatched(ctx context.Context, req workflows.LabUnmatchedRequest) error {
	tenant, row, err := l.message(ctx, req.TenantID, req.MessageID)
	if err != nil {
		return err
	}
	return models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
		if err := tx.Model(&models.LabMessage{}).Where("id = ? AND status = ?", row.ID, models.LabReceived).
			Updates(map[string]any{"status": models.LabUnmatched, "match": req.Outcome, "processed_at": l.now()}).Error; err != nil {
			return fmt.Errorf("mark unmatched: %w", err)
		}
		var staff []uuid.UUID
		if err := tx.Model(&models.User{}).Where("role IN ?", []string{string(models.RoleStaff), string(models.RoleAdmin)}).
			Pluck("id", &staff).Error; err != nil {
			return fmt.Errorf("load staff: %w", err)
		}
		for _, u := range staff {
			if err := enqueue(tx, tenant, u, "lab-unmatched:"+row.ID.String()+":"+u.String(), models.ChannelEmail,
				"lab.unmatched", map[string]string{"labMessageID": row.ID.String()}, l.now()); err != nil {
				return err
			}
		}
		return nil
	})
}

// LabDismiss closes an unmatched message without filing it.
func (l *Labs) LabDismiss(ctx context.Context, d workflows.LabDismissal) error {
	tenant, row, err := l.message(ctx, d.TenantID, d.MessageID)
	if err != nil {
		return err
	}
	// The reason is on the row already (the api writes it there, out of
	// the workflow's history).
	cols := map[string]any{"status": models.LabDismissed, "resolved_at": l.now()}
	if u, err := uuid.Parse(d.UserID); err == nil {
		cols["resolved_by"] = u
	}
	return models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
		return tx.Model(&models.LabMessage{}).Where("id = ? AND status = ?", row.ID, models.LabUnmatched).Updates(cols).Error
	})
}

// LabFile files every report of the message under the patient, in one
// transaction: a report whose key is already on file becomes its next
// version and the earlier version points at it. Filing a message twice
// answers what the first filing wrote.
func (l *Labs) LabFile(ctx context.Context, req workflows.LabFileRequest) (workflows.LabFiled, error) {
	tenant, row, err := l.message(ctx, req.TenantID, req.MessageID)
	if err != nil {
		return workflows.LabFiled{}, err
	}
	patient, err := uuid.Parse(req.PatientID)
	if err != nil {
		return workflows.LabFiled{}, temporal.NewNonRetryableApplicationError("bad patient id", workflows.ErrTypeNotFound, err)
	}
	var out workflows.LabFiled
	if row.Status == models.LabFiled {
		err = models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
			out, err = filedReports(tx, row.ID)
			return err
		})
		return out, err
	}
	msg, reason, err := l.decode(ctx, tenant, row)
	if err != nil {
		return out, err
	}
	if reason != "" {
		return out, temporal.NewNonRetryableApplicationError("message no longer parses", workflows.ErrTypeInvalidState, nil)
	}
	now := l.now()
	err = models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
		// Lock the message so two attempts cannot file it side by side.
		var locked models.LabMessage
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", row.ID).Take(&locked).Error; err != nil {
			return fmt.Errorf("lock message: %w", err)
		}
		if locked.Status == models.LabFiled {
			out, err = filedReports(tx, row.ID)
			return err
		}
		var p models.Patient
		if err := tx.Where("id = ?", patient).Take(&p).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return temporal.NewNonRetryableApplicationError("no such patient in the tenant", workflows.ErrTypeNotFound, nil)
			}
			return fmt.Errorf("load patient: %w", err)
		}
		settings := defaultLabSettings
		if err := tx.Where("tenant_id = ?", tenant).Take(&settings).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("load lab settings: %w", err)
		}
		for _, r := range msg.Reports {
			if err := fileReport(tx, tenant, locked, patient, r, msg.SentAt, settings, now); err != nil {
				return err
			}
		}
		cols := map[string]any{"status": models.LabFiled, "patient_id": patient, "match": req.Match, "processed_at": now}
		if req.Match == workflows.LabAssigned {
			cols["resolved_at"] = now
			if u, err := uuid.Parse(req.UserID); err == nil {
				cols["resolved_by"] = u
			}
		}
		if err := tx.Model(&models.LabMessage{}).Where("id = ?", row.ID).Updates(cols).Error; err != nil {
			return fmt.Errorf("mark filed: %w", err)
		}
		out, err = filedReports(tx, row.ID)
		return err
	})
	return out, err
}

func fileReport(tx *gorm.DB, tenant uuid.UUID, msg models.LabMessage, patient uuid.UUID, r labs.Report, sentAt time.Time,
	settings models.LabSettings, now time.Time) error {
	// The same report is the same lab's key for the same patient: a key
	// reused for another patient or by another lab starts a report of its
	// own, so no message can move a result to another patient.
	var prev models.LabReport
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).
		Where("partner_id = ? AND patient_id = ? AND report_key = ? AND superseded_by IS NULL", msg.PartnerID, patient, r.Key).
		Take(&prev).Error
	hasPrev := err == nil
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("load earlier version: %w", err)
	}
	rep := models.LabReport{
		ID:           uuid.New(),
		TenantID:     tenant,
		MessageID:    msg.ID,
		PartnerID:    msg.PartnerID,
		PatientID:    patient,
		ReportKey:    r.Key,
		Version:      1,
		Status:       string(r.Status),
		CodeSystem:   r.Code.System,
		Code:         r.Code.Code,
		Display:      r.Code.Display,
		PlacerNumber: r.PlacerNumber,
		FillerNumber: r.FillerNumber,
		EffectiveAt:  timePtr(r.EffectiveAt),
		IssuedAt:     timePtr(r.IssuedAt),
		Severity:     string(r.Severity()),
		Notes:        strings.Join(r.Notes, "\n"),
		Conclusion:   r.Conclusion,
		ReleaseRule:  settings.ReleaseRule,
		FiledAt:      now,
	}
	// A message issued before the version on file (sent out of order, or
	// held in the staff queue meanwhile) is kept as history and does not
	// replace the newer result. Versions are ordered by the time they speak
	// for: the report's issue time, else the message's, else arrival.
	asOf := now
	switch {
	case !r.IssuedAt.IsZero():
		asOf = r.IssuedAt.UTC()
	case !sentAt.IsZero():
		asOf = sentAt.UTC()
	}
	rep.AsOf = asOf
	stale := hasPrev && asOf.Before(prev.AsOf)
	if hasPrev {
		var top int
		if err := tx.Model(&models.LabReport{}).Where("partner_id = ? AND patient_id = ? AND report_key = ?", msg.PartnerID, patient, r.Key).
			Select("coalesce(max(version), 0)").Scan(&top).Error; err != nil {
			return fmt.Errorf("number the version: %w", err)
		}
		rep.Version = top + 1
	}
	if stale {
		rep.SupersededBy = &prev.ID
	}
	if settings.ReleaseRule == models.ReleaseAfterDays {
		due := now.AddDate(0, 0, settings.ReleaseDays)
		rep.ReleaseDueAt = &due
	}
	if r.OrderingProvider.Value != "" {
		var ids []uuid.UUID
		if err := tx.Model(&models.PractitionerIdentifier{}).
			Where("system = ? AND value = ?", r.OrderingProvider.System, r.OrderingProvider.Value).
			Pluck("practitioner_id", &ids).Error; err != nil {
			return fmt.Errorf("match ordering provider: %w", err)
		}
		if len(ids) == 1 {
			rep.OrderingPractitionerID = &ids[0]
		}
	}
	if rep.OrderingPractitionerID == nil && hasPrev {
		rep.OrderingPractitionerID = prev.OrderingPractitionerID
	}
	// The earlier version lets go of "current" first, so the unique index
	// on current versions holds at every statement.
	if hasPrev && !stale {
		if err := tx.Model(&models.LabReport{}).Where("id = ?", prev.ID).Update("superseded_by", rep.ID).Error; err != nil {
			return fmt.Errorf("supersede: %w", err)
		}
	}
	if err := tx.Create(&rep).Error; err != nil {
		return fmt.Errorf("insert report: %w", err)
	}
	for i, o := range r.Observations {
		row := models.LabObservation{
			ID:             uuid.New(),
			TenantID:       tenant,
			ReportID:       rep.ID,
			PatientID:      patient,
			Seq:            i + 1,
			ObsKey:         o.Key,
			CodeSystem:     o.Code.System,
			Code:           o.Code.Code,
			Display:        o.Code.Display,
			Status:         string(o.Status),
			Kind:           string(o.Kind),
			ValueText:      o.Text,
			Comparator:     o.Comparator,
			Unit:           o.Unit,
			CodedSystem:    o.Coded.System,
			CodedCode:      o.Coded.Code,
			CodedDisplay:   o.Coded.Display,
			ReferenceRange: o.ReferenceRange,
			RefLow:         o.Low,
			RefHigh:        o.High,
			Flags:          nonNil(o.Flags),
			Severity:       string(o.Severity()),
			EffectiveAt:    timePtr(o.EffectiveAt),
			Notes:          strings.Join(o.Notes, "\n"),
			Members:        nonNil(o.Members),
		}
		if row.EffectiveAt == nil {
			row.EffectiveAt = rep.EffectiveAt
		}
		switch o.Kind {
		case labs.ValueQuantity:
			row.ValueNumber = &o.Number
		case labs.ValueRange, labs.ValueRatio:
			row.ValueNumber, row.ValueNumber2 = &o.Number, &o.Number2
		}
		if err := tx.Create(&row).Error; err != nil {
			return fmt.Errorf("insert observation: %w", err)
		}
	}
	return nil
}

// filedReports answers LabFile from the database: the reports the message
// filed and, for each, the version it replaced and that version's workflow.
func filedReports(tx *gorm.DB, messageID uuid.UUID) (workflows.LabFiled, error) {
	var reps []models.LabReport
	if err := tx.Where("message_id = ?", messageID).Order("report_key").Find(&reps).Error; err != nil {
		return workflows.LabFiled{}, fmt.Errorf("load filed reports: %w", err)
	}
	var out workflows.LabFiled
	for _, r := range reps {
		f := workflows.FiledReport{
			ReportID: r.ID.String(), Severity: r.Severity, ReleaseRule: r.ReleaseRule, Released: r.ReleasedAt != nil,
			Superseded: r.SupersededBy != nil,
		}
		if r.ReleaseDueAt != nil {
			f.ReleaseDueAt = r.ReleaseDueAt.UTC()
		}
		var prev struct {
			ID         uuid.UUID
			WorkflowID string
		}
		err := tx.Table("lab_reports r").Select("r.id, m.workflow_id").
			Joins("JOIN lab_messages m ON m.tenant_id = r.tenant_id AND m.id = r.message_id").
			Where("r.superseded_by = ?", r.ID).Take(&prev).Error
		if err == nil {
			f.SupersededReportID, f.SupersededWorkflowID = prev.ID.String(), prev.WorkflowID
		} else if !errors.Is(err, gorm.ErrRecordNotFound) {
			return out, fmt.Errorf("load earlier version: %w", err)
		}
		out.Reports = append(out.Reports, f)
	}
	return out, nil
}

// LabRenderPDF renders the report version as a PDF into the object store
// and records its key. The rendering depends only on what is filed, so a
// retry writes the same object.
func (l *Labs) LabRenderPDF(ctx context.Context, ref workflows.LabReportRef) error {
	tenant, id, err := reportRef(ref.TenantID, ref.ReportID)
	if err != nil {
		return err
	}
	var doc ReportDocument
	err = models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
		doc, err = LoadReportDocument(tx, id)
		return err
	})
	if err != nil {
		return err
	}
	if l.RenderPDF == nil {
		return errors.New("no PDF renderer configured")
	}
	pdf, err := l.RenderPDF(doc)
	if err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	obj, err := l.Store.Put(ctx, tenant, "lab-pdf", pdf, "application/pdf")
	if err != nil {
		return fmt.Errorf("store report PDF: %w", err)
	}
	return models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
		return tx.Model(&models.LabReport{}).Where("id = ?", id).Update("pdf_key", obj.Key).Error
	})
}

// LabNotifyDoctor tells the ordering doctor that a result is in: by e-mail,
// and for a critical result by SMS and push as well. The notice names the
// report and its urgency, never a value. A report without a known ordering
// doctor goes to the tenant's staff, who route it.
func (l *Labs) LabNotifyDoctor(ctx context.Context, ref workflows.LabReportRef) error {
	tenant, id, err := reportRef(ref.TenantID, ref.ReportID)
	if err != nil {
		return err
	}
	return models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
		var rep models.LabReport
		if err := tx.Where("id = ?", id).Take(&rep).Error; err != nil {
			return notFoundOr(err, "load report")
		}
		var users []uuid.UUID
		q := tx.Model(&models.User{})
		if rep.OrderingPractitionerID != nil {
			q = q.Where("role = ? AND practitioner_id = ?", models.RoleDoctor, *rep.OrderingPractitionerID)
		} else {
			q = q.Where("role IN ?", []string{string(models.RoleStaff), string(models.RoleAdmin)})
		}
		if err := q.Pluck("id", &users).Error; err != nil {
			return fmt.Errorf("load recipients: %w", err)
		}
		template, channels := "lab.result.new", []string{models.ChannelEmail}
		switch rep.Severity {
		case string(labs.SeverityCritical):
			template, channels = "lab.result.critical", []string{models.ChannelEmail, models.ChannelSMS, models.ChannelPush}
		case string(labs.SeverityAbnormal):
			template, channels = "lab.result.abnormal", []string{models.ChannelEmail, models.ChannelPush}
		}
		if rep.OrderingPractitionerID == nil {
			template = "lab.result.unassigned"
		}
		payload := map[string]string{"labReportID": rep.ID.String(), "severity": rep.Severity}
		for _, u := range users {
			for _, ch := range channels {
				key := "lab-doctor:" + rep.ID.String() + ":" + u.String() + ":" + ch
				if err := enqueue(tx, tenant, u, key, ch, template, payload, l.now()); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// LabRelease makes a report visible to its patient and tells them it is
// ready (never what it says). It refuses a report a correction replaced,
// and, under the after_review rule, one no doctor has reviewed; a release
// by the rule itself (no user) is refused before the report falls due.
func (l *Labs) LabRelease(ctx context.Context, req workflows.LabReleaseRequest) (workflows.LabReleased, error) {
	tenant, id, err := reportRef(req.TenantID, req.ReportID)
	if err != nil {
		return workflows.LabReleased{}, err
	}
	now := l.now()
	out := workflows.LabReleased{ReportID: id.String()}
	err = models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
		var rep models.LabReport
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&rep).Error; err != nil {
			return notFoundOr(err, "load report")
		}
		if rep.ReleasedAt != nil {
			out.ReleasedAt, out.Already = rep.ReleasedAt.UTC(), true
			return nil
		}
		if rep.SupersededBy != nil {
			return temporal.NewNonRetryableApplicationError("a correction replaced this report", workflows.ErrTypeLabSuperseded, nil)
		}
		cols := map[string]any{"released_at": now}
		if req.UserID == "" {
			switch rep.ReleaseRule {
			case models.ReleaseImmediate:
			case models.ReleaseAfterDays:
				if rep.ReleaseDueAt == nil || now.Before(*rep.ReleaseDueAt) {
					return temporal.NewNonRetryableApplicationError("the report is not due for release", workflows.ErrTypeInvalidState, nil)
				}
			default:
				return temporal.NewNonRetryableApplicationError("the rule releases only after review", workflows.ErrTypeLabNotReviewed, nil)
			}
		} else {
			u, err := uuid.Parse(req.UserID)
			if err != nil {
				return temporal.NewNonRetryableApplicationError("bad user id", workflows.ErrTypeNotFound, err)
			}
			if rep.ReleaseRule == models.ReleaseAfterReview && rep.ReviewedAt == nil {
				return temporal.NewNonRetryableApplicationError("a doctor must review the report first", workflows.ErrTypeLabNotReviewed, nil)
			}
			cols["released_by"] = u
		}
		if err := tx.Model(&models.LabReport{}).Where("id = ?", id).Updates(cols).Error; err != nil {
			return fmt.Errorf("release: %w", err)
		}
		out.ReleasedAt = now
		var users []uuid.UUID
		if err := tx.Model(&models.User{}).Where("role = ? AND patient_id = ?", models.RolePatient, rep.PatientID).
			Pluck("id", &users).Error; err != nil {
			return fmt.Errorf("load patient users: %w", err)
		}
		for _, u := range users {
			if err := enqueue(tx, tenant, u, "lab-released:"+rep.ID.String()+":"+u.String(), models.ChannelEmail,
				"lab.result.released", map[string]string{"labReportID": rep.ID.String()}, now); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// message loads a lab message row.
func (l *Labs) message(ctx context.Context, tenantID, messageID string) (uuid.UUID, models.LabMessage, error) {
	var row models.LabMessage
	tenant, id, err := reportRef(tenantID, messageID)
	if err != nil {
		return tenant, row, err
	}
	err = models.InTenant(ctx, l.DB, tenant, func(tx *gorm.DB) error {
		return notFoundOr(tx.Where("id = ?", id).Take(&row).Error, "load lab message")
	})
	return tenant, row, err
}

// decode reads the message's raw bytes and parses them. A message that
// cannot be trusted gives its reason and no error.
func (l *Labs) decode(ctx context.Context, tenant uuid.UUID, row models.LabMessage) (labs.Message, string, error) {
	raw, err := l.Store.Get(ctx, tenant, row.RawKey)
	if err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return labs.Message{}, "", temporal.NewNonRetryableApplicationError("raw message missing from the object store", workflows.ErrTypeNotFound, err)
		}
		return labs.Message{}, "", fmt.Errorf("read raw message: %w", err)
	}
	msg, err := labs.Decode(labs.Format(row.Format), raw)
	if err != nil {
		if reason, ok := labs.Rejection(err); ok {
			return msg, reason, nil
		}
		return msg, "", temporal.NewNonRetryableApplicationError("decode lab message", workflows.ErrTypeInvalidState, err)
	}
	return msg, "", nil
}

func reportRef(tenantID, id string) (uuid.UUID, uuid.UUID, error) {
	tenant, err := uuid.Parse(tenantID)
	if err != nil {
		return uuid.Nil, uuid.Nil, temporal.NewNonRetryableApplicationError("bad tenant id", workflows.ErrTypeNotFound, err)
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil, uuid.Nil, temporal.NewNonRetryableApplicationError("bad id", workflows.ErrTypeNotFound, err)
	}
	return tenant, u, nil
}

func notFoundOr(err error, what string) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return temporal.NewNonRetryableApplicationError(what+": not found", workflows.ErrTypeNotFound, nil)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// enqueue writes one outbox row, once per dedupe key.
func enqueue(tx *gorm.DB, tenant, user uuid.UUID, dedupe, channel, template string, payload map[string]string, at time.Time) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode payload: %w", err)
	}
	err = models.Enqueue(tx, models.Notification{TenantID: tenant, DedupeKey: dedupe, RecipientUser: &user,
		Channel: channel, Template: template, Payload: body, ScheduledFor: at})
	if err != nil {
		return fmt.Errorf("enqueue notification: %w", err)
	}
	return nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
