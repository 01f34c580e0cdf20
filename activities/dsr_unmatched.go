package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"gorm.io/gorm"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/labs"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/nationalid"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/workflows"
)

// ErasedLabReason starts the reason an erasure writes on the unmatched
// lab messages it dismissed because they named the erased patient; the
// request's ID follows, so that a retry of the request finds the rows it
// marked, and a reason typed by staff is never taken for one.
const ErasedLabReason = "erased"

func erasedLabReason(request uuid.UUID) string { return ErasedLabReason + ":" + request.String() }

// unmatchedPage is how many unfiled lab messages one query reads.
const unmatchedPage = 200

// minRawNeedle is the shortest identifier searched for in the bytes of a
// message that does not parse: shorter numbers (a practitioner's "1234")
// turn up in unrelated fields.
const minRawNeedle = 8

// patientIDs is what a lab message may name a patient by: the values of
// their identifiers kept in the clear (MRNs, a FHIR server's URL), the
// blind indexes of their national IDs, and, for messages that do not
// parse, the national ID numbers themselves.
type patientIDs struct {
	clear    map[string]bool
	indexes  map[string]bool
	national []string
}

func (p patientIDs) empty() bool { return len(p.clear) == 0 && len(p.indexes) == 0 }

// names reports whether a parsed message's patient carries one of the
// identifiers, compared as staff's candidate list compares them: by value
// under any system, and national IDs by blind index.
func (p patientIDs) names(ctx context.Context, keys *keyring.Keyring, tenant uuid.UUID, sent labs.Patient) (bool, error) {
	for _, id := range sent.Identifiers {
		if id.Value == "" {
			continue
		}
		if p.clear[id.Value] {
			return true, nil
		}
		if keys == nil || len(p.indexes) == 0 {
			continue
		}
		idx, err := keys.Index(ctx, tenant, keyring.PurposeNationalID, id.Value)
		if err != nil {
			return false, err
		}
		if p.indexes[string(idx)] {
			return true, nil
		}
	}
	return false, nil
}

// mentions reports whether the bytes of a message that does not parse hold
// one of the identifiers long enough to be told apart.
func (p patientIDs) mentions(raw []byte) bool {
	for v := range p.clear {
		if len(v) >= minRawNeedle && bytes.Contains(raw, []byte(v)) {
			return true
		}
	}
	for _, v := range p.national {
		if len(v) >= minRawNeedle && bytes.Contains(raw, []byte(v)) {
			return true
		}
	}
	return false
}

// eraseUnmatchedLabMessages finds the lab messages never filed under
// anyone (in the staff queue, rejected or dismissed) that name the
// patient, and erases them: each row is dismissed with the reason
// "erased:<request ID>" (the row holds IDs, the sender's message ID and the content's
// hash, none of which names anyone), its workflow waiting for staff is
// told, and its raw message is deleted from the object store. A message is
// the patient's when it carries one of their identifiers as matching uses
// them (see patientIDs.names) or, when it does not parse, holds one of
// their longer identifiers in its bytes. It runs before the identifiers
// are deleted, and a rerun finds the rows it marked by their reason and
// finishes deleting their objects. It answers how many objects it deleted.
func (d *DSR) eraseUnmatchedLabMessages(ctx context.Context, tenant uuid.UUID, row models.DSRRequest) (int, error) {
	ids := patientIDs{clear: map[string]bool{}, indexes: map[string]bool{}}
	var leftover []models.LabMessage
	err := models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
		var rows []struct {
			Value      *string
			ValueIndex []byte
		}
		if err := tx.Raw(`SELECT value, value_index FROM patient_identifiers WHERE patient_id = ?`, row.PatientID).Scan(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			if r.Value != nil && *r.Value != "" {
				ids.clear[*r.Value] = true
			}
			if len(r.ValueIndex) > 0 {
				ids.indexes[string(r.ValueIndex)] = true
			}
		}
		if len(ids.indexes) > 0 && d.Keys != nil {
			national, err := nationalid.Reveal(ctx, tx, d.Keys, tenant, row.PatientID)
			if err != nil {
				return err
			}
			for _, v := range national {
				ids.national = append(ids.national, v)
			}
		}
		return tx.Where("status = ? AND reason = ? AND patient_id IS NULL AND raw_key <> ''", models.LabDismissed, erasedLabReason(row.ID)).
			Find(&leftover).Error
	})
	if err != nil {
		return 0, fmt.Errorf("load identifiers: %w", err)
	}

	var found []models.LabMessage
	if !ids.empty() {
		after := uuid.Nil
		for {
			var page []models.LabMessage
			err := models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
				// Those an earlier attempt dismissed are in leftover.
				return tx.Where("patient_id IS NULL AND status IN ? AND raw_key <> '' AND reason <> ? AND id > ?",
					[]string{models.LabUnmatched, models.LabRejected, models.LabDismissed}, erasedLabReason(row.ID), after).
					Order("id").Limit(unmatchedPage).Find(&page).Error
			})
			if err != nil {
				return 0, fmt.Errorf("list unfiled lab messages: %w", err)
			}
			for _, m := range page {
				activity.RecordHeartbeat(ctx)
				after = m.ID
				hit, err := d.namesPatient(ctx, tenant, m, ids)
				if err != nil {
					return 0, err
				}
				if hit {
					found = append(found, m)
				}
			}
			if len(page) < unmatchedPage {
				break
			}
		}
	}
	if len(found) > 0 {
		msgIDs := make([]uuid.UUID, len(found))
		for i, m := range found {
			msgIDs[i] = m.ID
		}
		err := models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
			// The reason staff may have written names the patient too.
			if err := tx.Model(&models.LabMessage{}).Where("id IN ?", msgIDs).Updates(map[string]any{
				"status": models.LabDismissed, "reason": erasedLabReason(row.ID),
				"resolved_at": gorm.Expr("coalesce(resolved_at, ?)", d.now()), "resolved_by": gorm.Expr("coalesce(resolved_by, ?)", row.RequestedBy)}).Error; err != nil {
				return err
			}
			// Each is recorded under the patient it named, by the request.
			for _, id := range msgIDs {
				ev := models.AuditEvent{TenantID: tenant, ActorRole: "system", Action: "dsr-erasure-lab-message", ResourceType: "lab_message",
					ResourceID: &id, PatientID: &row.PatientID, Reason: "data subject request " + row.ID.String(), At: d.now()}
				if err := audit.Append(tx, d.AuditKey, &ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("dismiss lab messages: %w", err)
		}
		for _, m := range found {
			if m.Status == models.LabUnmatched {
				d.closeLabWorkflow(ctx, tenant, m, row.RequestedBy)
			}
		}
	}

	deleted := 0
	for _, m := range append(leftover, found...) {
		activity.RecordHeartbeat(ctx)
		if err := d.Store.Delete(ctx, tenant, m.RawKey); err != nil {
			return deleted, err
		}
		err := models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
			return tx.Model(&models.LabMessage{}).Where("id = ?", m.ID).Update("raw_key", "").Error
		})
		if err != nil {
			return deleted, fmt.Errorf("drop raw key: %w", err)
		}
		deleted++
	}
	return deleted, nil
}

// namesPatient reads one stored message and says whether it names the
// patient.
func (d *DSR) namesPatient(ctx context.Context, tenant uuid.UUID, m models.LabMessage, ids patientIDs) (bool, error) {
	raw, err := d.Store.Get(ctx, tenant, m.RawKey)
	if errors.Is(err, objstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read lab message: %w", err)
	}
	msg, err := labs.Decode(labs.Format(m.Format), raw)
	if err != nil || len(msg.Patient.Identifiers) == 0 {
		return ids.mentions(raw), nil
	}
	return ids.names(ctx, d.Keys, tenant, msg.Patient)
}

// closeLabWorkflow ends the workflow of a message that waited for staff,
// as a dismissal by the requester would: its row is dismissed already, so
// the workflow's own step changes nothing. Without a Temporal client, or
// when the workflow is gone, the row alone says the message is closed.
func (d *DSR) closeLabWorkflow(ctx context.Context, tenant uuid.UUID, m models.LabMessage, by uuid.UUID) {
	if d.Temporal == nil || m.WorkflowID == "" {
		return
	}
	// The update is answered as soon as the workflow records it.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := d.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: m.WorkflowID, UpdateName: workflows.UpdateLabDismiss, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{workflows.LabDismissal{TenantID: tenant.String(), MessageID: m.ID.String(), UserID: by.String()}},
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err != nil {
		activity.GetLogger(ctx).Warn("lab workflow not closed after erasure", "labMessageID", m.ID.String(), "error", err)
	}
}
