package activities

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"gorm.io/gorm"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workflows"
)

// purgePage is how many erased patients one PurgeErased call looks at.
// Each due patient costs a few object deletions and one transaction, so a
// page stays well inside the step's five minutes.
const purgePage = 50

// expirePage is how many expired exports one ExpireExports call deletes.
const expirePage = 100

// Purge states as retention_purge_state (migration 00017) answers them.
const (
	purgeDue  = "due"
	purgeHeld = "held"
	purgeKept = "kept"
)

// PurgeErased looks at one page of the tenant's erased patients not yet
// purged, in ID order after req.After, and for each whose retention has
// run out (the financial or the medical part, or both) and who is under
// no legal hold deletes what the erasure kept of it:
// first the objects still filed under them (lab messages, report PDFs,
// exports: the erasure deleted them already, this makes sure), then, in
// one transaction, the rows, through retention_purge_patient, which checks
// the rule and the hold again under the patient's row lock and marks the
// row purged; with an audit event per patient that names no one. A
// patient a hold or retention keeps is counted and looked at again next
// night. Every part is idempotent, so a page retried after a crash does
// the same.
func (r *Retention) PurgeErased(ctx context.Context, req workflows.PurgeErasedRequest) (workflows.PurgeResult, error) {
	var out workflows.PurgeResult
	tenant, err := retentionTenant(req.TenantID)
	if err != nil {
		return out, err
	}
	after := uuid.Nil
	if req.After != "" {
		if after, err = uuid.Parse(req.After); err != nil {
			return out, fmt.Errorf("purge erased: bad cursor: %w", err)
		}
	}
	if r.Store == nil {
		return out, fmt.Errorf("purge erased: no object store")
	}
	var ids []uuid.UUID
	err = models.InTenant(ctx, r.DB, tenant, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id FROM patients WHERE erased_at IS NOT NULL AND purged_at IS NULL AND id > ? ORDER BY id LIMIT ?`,
			after, purgePage).Scan(&ids).Error
	})
	if err != nil {
		return out, fmt.Errorf("list erased patients: %w", err)
	}
	for _, p := range ids {
		activity.RecordHeartbeat(ctx, p.String())
		state, rows, err := r.purgePatient(ctx, tenant, p)
		if err != nil {
			return out, err
		}
		switch state {
		case purgeDue:
			out.Purged++
			out.Rows += rows
		case purgeHeld:
			out.Held++
		default:
			out.Kept++
		}
		out.After = p.String()
	}
	out.More = len(ids) == purgePage
	return out, nil
}

// purgePatient purges one erased patient when the rule says so, and
// answers the state it found (due when it purged) and the rows deleted.
func (r *Retention) purgePatient(ctx context.Context, tenant, patient uuid.UUID) (string, int64, error) {
	var state string
	var keys []string
	err := models.InTenant(ctx, r.DB, tenant, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT retention_purge_state(?)`, patient).Scan(&state).Error; err != nil {
			return err
		}
		if state != purgeDue {
			return nil
		}
		// The objects belong with the medical records; the erasure
		// deleted them already, so none should be left to wait.
		var medical bool
		if err := tx.Raw(`SELECT medical_due FROM retention_purge_parts(?)`, patient).Scan(&medical).Error; err != nil || !medical {
			return err
		}
		return tx.Raw(`SELECT raw_key FROM lab_messages WHERE patient_id = ? AND raw_key <> ''
			UNION SELECT pdf_key FROM lab_reports WHERE patient_id = ? AND pdf_key <> ''`, patient, patient).Scan(&keys).Error
	})
	if err != nil || state != purgeDue {
		return state, 0, err
	}
	for _, k := range keys {
		activity.RecordHeartbeat(ctx, patient.String())
		if err := r.Store.Delete(ctx, tenant, k); err != nil {
			return state, 0, err
		}
	}
	if _, err := r.Store.DeletePrefix(ctx, tenant, exportKind(patient)); err != nil {
		return state, 0, err
	}
	var rows int64
	err = models.InTenant(ctx, r.DB, tenant, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT retention_purge_patient(?)`, patient).Scan(&rows).Error; err != nil {
			return fmt.Errorf("purge patient: %w", err)
		}
		if rows < 0 {
			// A hold placed since the state was read: the function saw it
			// under the row lock and deleted nothing.
			return tx.Raw(`SELECT retention_purge_state(?)`, patient).Scan(&state).Error
		}
		ev := models.AuditEvent{TenantID: tenant, ActorRole: "system", Action: "retention-purge", ResourceType: "patient",
			ResourceID: &patient, PatientID: &patient, Reason: fmt.Sprintf("retention elapsed; %d rows deleted", rows), At: r.now()}
		return audit.Append(tx, r.AuditKey, &ev)
	})
	if err != nil {
		return state, 0, err
	}
	if rows < 0 {
		return state, 0, nil
	}
	return purgeDue, rows, nil
}

// ExpireExports deletes the archives of the tenant's exports that
// completed more than models.ExportArchiveLifetime ago, oldest first, up
// to expirePage of them, and marks each request expired with an audit
// event. The object goes first: a crash in between leaves a completed
// request whose archive is gone, which the api already refuses by age and
// the next call marks expired.
func (r *Retention) ExpireExports(ctx context.Context, req workflows.RetentionTenantRequest) (workflows.ExpireResult, error) {
	var out workflows.ExpireResult
	tenant, err := retentionTenant(req.TenantID)
	if err != nil {
		return out, err
	}
	if r.Store == nil {
		return out, fmt.Errorf("expire exports: no object store")
	}
	var rows []models.DSRRequest
	err = models.InTenant(ctx, r.DB, tenant, func(tx *gorm.DB) error {
		return tx.Where("kind = ? AND status = ? AND completed_at < ?", models.DSRExport, models.DSRCompleted,
			r.now().Add(-models.ExportArchiveLifetime)).Order("completed_at, id").Limit(expirePage).Find(&rows).Error
	})
	if err != nil {
		return out, fmt.Errorf("list expired exports: %w", err)
	}
	for _, row := range rows {
		activity.RecordHeartbeat(ctx, row.ID.String())
		if row.ArchiveKey != "" {
			if err := r.Store.Delete(ctx, tenant, row.ArchiveKey); err != nil {
				return out, err
			}
		}
		err := models.InTenant(ctx, r.DB, tenant, func(tx *gorm.DB) error {
			res := tx.Model(&models.DSRRequest{}).Where("id = ? AND status = ?", row.ID, models.DSRCompleted).
				Updates(map[string]any{"status": models.DSRExpired, "archive_key": ""})
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			ev := models.AuditEvent{TenantID: tenant, ActorRole: "system", Action: "dsr-export-expired", ResourceType: "dsr_request",
				ResourceID: &row.ID, PatientID: &row.PatientID, At: r.now()}
			return audit.Append(tx, r.AuditKey, &ev)
		})
		if err != nil {
			return out, fmt.Errorf("expire export: %w", err)
		}
		out.Expired++
	}
	out.More = len(rows) == expirePage
	return out, nil
}
