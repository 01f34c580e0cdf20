package activities

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/internal/sessionkeys"
	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/nationalid"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/workflows"
)

// DSR runs the steps of data subject requests: exports and erasures. Each
// step reads the request's row for the patient, so workflow history holds
// IDs only, and each can run again after a crash with the same result.
type DSR struct {
	DB    *gorm.DB
	Store *objstore.Store
	// Redis holds the sessions an erasure ends; RedisPrefix must be the
	// api's (CAREBOOK_REDIS_PREFIX), since the key names are shared.
	Redis       *redis.Client
	RedisPrefix string
	// AuditKey keys the audit chain (CAREBOOK_AUDIT_KEY): completions are
	// recorded by the worker, in the same chain as the api's events.
	AuditKey []byte
	// Keys opens the patient's sealed national IDs and clinical notes for
	// an export.
	Keys *keyring.Keyring
	// Now reads the clock; nil means time.Now.
	Now func() time.Time
	// Temporal closes the workflows of unmatched lab messages an erasure
	// dismisses; nil leaves them waiting (their rows say dismissed).
	Temporal client.Client
}

// nationalIDsFile holds the patient's national ID numbers, opened.
const nationalIDsFile = "national-ids.json"

// clinicalNotesFile holds the patient's signed clinical notes and
// addenda, opened when the patient (or their proxy) asked for the export.
// An export staff or an admin asked for lists the notes without their
// text: the desk and the privacy officer never read a note's body
// (minimum necessary), and the patient gets it by asking themselves.
// Drafts are the doctor's work in progress, not yet part of the record,
// and stay out.
const clinicalNotesFile = "clinical-notes.json"

// exportNote is one signed note as clinical-notes.json lists it.
type exportNote struct {
	ID            string     `json:"id"`
	Kind          string     `json:"kind"`
	Author        string     `json:"author"`
	AuthorID      string     `json:"author_id"`
	AppointmentID *string    `json:"appointment_id,omitempty"`
	Amends        *string    `json:"amends,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	SignedAt      *time.Time `json:"signed_at"`
	Body          string     `json:"body,omitempty"`
	// BodyWithheld says the text was left out (an export not asked for by
	// the patient).
	BodyWithheld bool `json:"body_withheld,omitempty"`
}

// clinicalNotes lists the patient's signed notes, oldest first, their
// bodies opened when open is true.
func (d *DSR) clinicalNotes(ctx context.Context, tx *gorm.DB, tenant, patient uuid.UUID, open bool) ([]exportNote, error) {
	var rows []struct {
		ID            uuid.UUID
		Kind          string
		Author        string
		AuthorID      uuid.UUID
		AppointmentID *string
		Amends        *string
		CreatedAt     time.Time
		SignedAt      *time.Time
		BodySealed    []byte
	}
	if err := tx.Raw(`SELECT n.id, n.kind, coalesce(pr.display_name, '') AS author, n.author_id, n.appointment_id::text AS appointment_id,
		n.amends::text AS amends, n.created_at, n.signed_at, n.body_sealed
		FROM clinical_notes n LEFT JOIN practitioners pr ON pr.id = n.author_id
		WHERE n.patient_id = ? AND n.signed_at IS NOT NULL ORDER BY n.created_at, n.id`, patient).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("export clinical notes: %w", err)
	}
	out := make([]exportNote, 0, len(rows))
	for _, r := range rows {
		signed := r.SignedAt.UTC()
		n := exportNote{ID: r.ID.String(), Kind: r.Kind, Author: r.Author, AuthorID: r.AuthorID.String(),
			AppointmentID: r.AppointmentID, Amends: r.Amends, CreatedAt: r.CreatedAt.UTC(), SignedAt: &signed, BodyWithheld: !open}
		if open {
			b := keyring.Binding{Purpose: keyring.PurposeClinicalNote, Row: keyring.ClinicalNoteRow(patient.String(), r.ID.String())}
			body, err := d.Keys.OpenFor(ctx, tenant, b, r.BodySealed)
			if err != nil {
				return nil, fmt.Errorf("export clinical note %s: %w", r.ID, err)
			}
			n.Body = body
		}
		out = append(out, n)
	}
	return out, nil
}

func (d *DSR) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

// request loads a request's row in its tenant.
func (d *DSR) request(ctx context.Context, in workflows.DSRInput) (uuid.UUID, models.DSRRequest, error) {
	var row models.DSRRequest
	tenant, id, err := reportRef(in.TenantID, in.RequestID)
	if err != nil {
		return tenant, row, err
	}
	err = models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
		return notFoundOr(tx.Where("id = ?", id).Take(&row).Error, "load data subject request")
	})
	return tenant, row, err
}

// DSRStart marks a request running. A request that already finished is
// reported done (a workflow run again); an erasure of a patient under a
// legal hold is reported held and is not started.
func (d *DSR) DSRStart(ctx context.Context, in workflows.DSRInput) (workflows.DSRStarted, error) {
	tenant, row, err := d.request(ctx, in)
	if err != nil {
		return workflows.DSRStarted{}, err
	}
	var out workflows.DSRStarted
	err = models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
		if row.Status == models.DSRCompleted || row.Status == models.DSRRefused {
			out.Done = true
			return nil
		}
		if row.Kind == models.DSRErasure {
			held, err := models.ActiveLegalHold(tx, row.PatientID)
			if err != nil {
				return fmt.Errorf("check legal hold: %w", err)
			}
			if held {
				out.Held = true
				return nil
			}
		}
		return tx.Model(&models.DSRRequest{}).Where("id = ? AND status = ?", row.ID, models.DSRPending).
			Updates(map[string]any{"status": models.DSRRunning, "started_at": d.now()}).Error
	})
	return out, err
}

// exportFile is one JSON file of an export and the query that fills it:
// a list of rows as JSON objects (tenant_id left out), newest last.
type exportFile struct {
	name  string
	query string
	args  func(p exportSubject) []any
}

// exportSubject is who an export is about.
type exportSubject struct {
	patient uuid.UUID
	users   []uuid.UUID
	// releasedOnly keeps unreleased lab results out of an export the
	// patient asked for themselves: the tenant's release rule (a doctor
	// explains a result first) holds for an archive as for the app.
	releasedOnly bool
}

func patientArg(p exportSubject) []any      { return []any{p.patient} }
func usersArg(p exportSubject) []any        { return []any{p.users} }
func patientUsersArg(p exportSubject) []any { return []any{p.patient, p.users, p.users} }
func reportsArg(p exportSubject) []any      { return []any{p.patient, p.releasedOnly} }

// exportFiles are the JSON files of an export. Queries select whole rows
// where every column is the patient's (a schema change then reaches the
// archive by itself), and name columns where a row also holds secrets or
// other people's data: no password hash, no client addresses of staff.
var exportFiles = []exportFile{
	{"patient.json", `SELECT id, given_name, family_name, birth_date, phone, preferred_language, created_at, erased_at FROM patients WHERE id = ?`, patientArg},
	// Identifiers kept in the clear (MRNs); national IDs are sealed and
	// go to national-ids.json opened.
	{"identifiers.json", `SELECT system, value, type FROM patient_identifiers WHERE patient_id = ? AND value IS NOT NULL`, patientArg},
	{"account.json", `SELECT id, email, role, created_at FROM users WHERE id IN ?`, usersArg},
	{"appointments.json", `SELECT * FROM appointments WHERE patient_id = ? ORDER BY starts_at`, patientArg},
	{"payments.json", `SELECT * FROM payments WHERE patient_id = ? ORDER BY created_at`, patientArg},
	{"refunds.json", `SELECT r.* FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE p.patient_id = ? ORDER BY r.created_at`, patientArg},
	{"lab-reports.json", `SELECT * FROM lab_reports WHERE patient_id = ? AND (released_at IS NOT NULL OR NOT ?) ORDER BY filed_at`, reportsArg},
	{"lab-observations.json", `SELECT o.* FROM lab_observations o JOIN lab_reports r ON r.id = o.report_id
		WHERE r.patient_id = ? AND (r.released_at IS NOT NULL OR NOT ?) ORDER BY r.filed_at, o.seq`, reportsArg},
	{"consents.json", `SELECT * FROM consents WHERE patient_id = ? ORDER BY recorded_at`, patientArg},
	{"notifications.json", `SELECT id, channel, template, appointment_id, scheduled_for, created_at, sent_at
		FROM notification_outbox WHERE recipient_user IN ? ORDER BY scheduled_for`, usersArg},
	{"break-glass.json", `SELECT id, practitioner_id, reason, granted_at, expires_at, reviewed_at FROM break_glass_grants
		WHERE patient_id = ? ORDER BY granted_at`, patientArg},
	// Who read or changed their data, and their own logins.
	{"audit-events.json", `SELECT seq, at, actor_user, actor_role, action, resource_type, resource_id, reason FROM audit_events
		WHERE patient_id = ? OR actor_user IN ? OR (resource_type = 'session' AND resource_id IN ?) ORDER BY seq`, patientUsersArg},
}

// manifestEntry describes one file of an export.
type manifestEntry struct {
	Name    string `json:"name"`
	Records int    `json:"records,omitempty"`
	Bytes   int    `json:"bytes"`
	SHA256  string `json:"sha256"`
}

// exportManifest is manifest.json: what the archive is and holds.
type exportManifest struct {
	Format      string          `json:"format"`
	Version     int             `json:"version"`
	TenantID    string          `json:"tenant_id"`
	PatientID   string          `json:"patient_id"`
	RequestID   string          `json:"request_id"`
	GeneratedAt time.Time       `json:"generated_at"`
	Files       []manifestEntry `json:"files"`
}

// ExportArchiveKey is where an export's archive is stored: under the
// patient's ID, so that an erasure removes every export of them with one
// prefix.
func ExportArchiveKey(tenant, patient, request uuid.UUID) string {
	return objstore.TenantPrefix(tenant) + exportKind(patient) + "/" + request.String() + ".zip"
}

func exportKind(patient uuid.UUID) string { return "dsr-export/" + patient.String() }

// DSRBuildExport writes the patient's archive: a zip of JSON files, one per
// kind of record, each report's PDF, and manifest.json listing them with
// their SHA-256.
func (d *DSR) DSRBuildExport(ctx context.Context, in workflows.DSRInput) (workflows.DSRExported, error) {
	tenant, row, err := d.request(ctx, in)
	if err != nil {
		return workflows.DSRExported{}, err
	}
	subject := exportSubject{patient: row.PatientID, releasedOnly: row.RequestedRole == string(models.RolePatient)}
	// Clinical notes and messages are opened only for the patient (or a
	// proxy for them): staff and admins, who read neither through the API,
	// get them listed with their text withheld.
	opensText := row.RequestedRole == string(models.RolePatient)
	files := map[string][]byte{}
	var manifest exportManifest
	var pdfs []struct {
		ID     uuid.UUID
		PdfKey string
	}
	err = models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT id FROM users WHERE patient_id = ?`, row.PatientID).Scan(&subject.users).Error; err != nil {
			return fmt.Errorf("load accounts: %w", err)
		}
		if len(subject.users) == 0 {
			// IN () is not SQL; no account matches the nil UUID.
			subject.users = []uuid.UUID{uuid.Nil}
		}
		for _, f := range exportFiles {
			var body string
			q := `SELECT coalesce(jsonb_agg(to_jsonb(x) - 'tenant_id'), '[]'::jsonb)::text FROM (` + f.query + `) x`
			if err := tx.Raw(q, f.args(subject)...).Scan(&body).Error; err != nil {
				return fmt.Errorf("export %s: %w", f.name, err)
			}
			var rows []json.RawMessage
			if err := json.Unmarshal([]byte(body), &rows); err != nil {
				return fmt.Errorf("export %s: %w", f.name, err)
			}
			pretty, err := json.MarshalIndent(rows, "", "  ")
			if err != nil {
				return fmt.Errorf("export %s: %w", f.name, err)
			}
			files[f.name] = pretty
			manifest.Files = append(manifest.Files, entry(f.name, pretty, len(rows)))
		}
		if d.Keys != nil {
			// The patient's own national ID numbers, opened for them: the
			// archive is theirs, and a sealed value would tell them nothing.
			ids, err := nationalid.Reveal(ctx, tx, d.Keys, tenant, row.PatientID)
			if err != nil {
				return fmt.Errorf("export national IDs: %w", err)
			}
			// An export the desk or an admin asked for names the systems
			// only: neither reads the numbers anywhere else.
			type nationalID struct {
				System        string `json:"system"`
				Value         string `json:"value,omitempty"`
				ValueWithheld bool   `json:"value_withheld,omitempty"`
			}
			list := make([]nationalID, 0, len(ids))
			for system, value := range ids {
				if opensText {
					list = append(list, nationalID{System: system, Value: value})
				} else {
					list = append(list, nationalID{System: system, ValueWithheld: true})
				}
			}
			sort.Slice(list, func(i, j int) bool { return list[i].System < list[j].System })
			body, err := json.MarshalIndent(list, "", "  ")
			if err != nil {
				return err
			}
			files[nationalIDsFile] = body
			manifest.Files = append(manifest.Files, entry(nationalIDsFile, body, len(list)))
			// The signed clinical notes: the patient's right of access
			// covers what their doctors wrote.
			notes, err := d.clinicalNotes(ctx, tx, tenant, row.PatientID, opensText)
			if err != nil {
				return err
			}
			if body, err = json.MarshalIndent(notes, "", "  "); err != nil {
				return err
			}
			files[clinicalNotesFile] = body
			manifest.Files = append(manifest.Files, entry(clinicalNotesFile, body, len(notes)))
		}
		// The patient's message threads (dsr_messages.go).
		msgs, threads, err := d.exportMessages(ctx, tx, tenant, row.PatientID, opensText)
		if err != nil {
			return fmt.Errorf("export messages: %w", err)
		}
		files[messagesFile] = msgs
		manifest.Files = append(manifest.Files, entry(messagesFile, msgs, threads))
		return tx.Raw(`SELECT id, pdf_key FROM lab_reports WHERE patient_id = ? AND pdf_key <> '' AND (released_at IS NOT NULL OR NOT ?)
			ORDER BY filed_at`, row.PatientID, subject.releasedOnly).Scan(&pdfs).Error
	})
	if err != nil {
		return workflows.DSRExported{}, err
	}
	order := make([]string, 0, len(files)+len(pdfs)+1)
	for _, f := range exportFiles {
		order = append(order, f.name)
	}
	if _, ok := files[nationalIDsFile]; ok {
		order = append(order, nationalIDsFile)
	}
	if _, ok := files[clinicalNotesFile]; ok {
		order = append(order, clinicalNotesFile)
	}
	order = append(order, messagesFile)
	for _, p := range pdfs {
		activity.RecordHeartbeat(ctx, p.ID.String())
		pdf, err := d.Store.Get(ctx, tenant, p.PdfKey)
		if errors.Is(err, objstore.ErrNotFound) {
			// An erased PDF, or one not rendered yet: the report's
			// values are in lab-reports.json either way.
			continue
		}
		if err != nil {
			return workflows.DSRExported{}, fmt.Errorf("read report pdf: %w", err)
		}
		name := "lab-reports/" + p.ID.String() + ".pdf"
		files[name] = pdf
		order = append(order, name)
		manifest.Files = append(manifest.Files, entry(name, pdf, 0))
	}
	manifest.Format, manifest.Version = "carebook-data-subject-export", 1
	manifest.TenantID, manifest.PatientID, manifest.RequestID = tenant.String(), row.PatientID.String(), row.ID.String()
	manifest.GeneratedAt = d.now()
	mbody, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return workflows.DSRExported{}, err
	}
	files["manifest.json"] = mbody
	order = append([]string{"manifest.json"}, order...)

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range order {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: manifest.GeneratedAt})
		if err != nil {
			return workflows.DSRExported{}, err
		}
		if _, err := w.Write(files[name]); err != nil {
			return workflows.DSRExported{}, err
		}
	}
	if err := zw.Close(); err != nil {
		return workflows.DSRExported{}, err
	}
	key := ExportArchiveKey(tenant, row.PatientID, row.ID)
	if _, err := d.Store.PutKey(ctx, tenant, key, buf.Bytes(), "application/zip"); err != nil {
		return workflows.DSRExported{}, fmt.Errorf("store export: %w", err)
	}
	// An erasure asked for meanwhile may have deleted the patient's
	// archives before this one was written, from data read before it
	// pseudonymised them. Its request row exists before it deletes
	// anything, so checking for it after the write leaves no gap: either
	// the erasure's deletion comes after this archive and removes it, or
	// this check sees the request and removes it here.
	if erased, err := d.erasureAsked(ctx, tenant, row.PatientID); err != nil || erased {
		if err == nil {
			if err = d.Store.Delete(ctx, tenant, key); err == nil || errors.Is(err, objstore.ErrNotFound) {
				return workflows.DSRExported{}, temporal.NewNonRetryableApplicationError("patient erased during the export", workflows.ErrTypeDSRPatientErased, nil)
			}
		}
		return workflows.DSRExported{}, fmt.Errorf("check for an erasure: %w", err)
	}
	return workflows.DSRExported{ArchiveKey: key, Files: len(order)}, nil
}

// erasureAsked reports whether the patient is erased or an erasure of
// them has been asked for and not refused or failed.
func (d *DSR) erasureAsked(ctx context.Context, tenant, patient uuid.UUID) (bool, error) {
	var n int64
	err := models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT count(*) FROM patients p WHERE p.id = ? AND (p.erased_at IS NOT NULL OR EXISTS (
			SELECT 1 FROM dsr_requests r WHERE r.patient_id = p.id AND r.kind = 'erasure' AND r.status NOT IN ('refused', 'failed')))`, patient).Scan(&n).Error
	})
	return n > 0, err
}

func entry(name string, body []byte, records int) manifestEntry {
	sum := sha256.Sum256(body)
	return manifestEntry{Name: name, Records: records, Bytes: len(body), SHA256: hex.EncodeToString(sum[:])}
}

// DSREraseObjects deletes the patient's files from the object store: the
// raw lab messages filed under them and the PDFs rendered from them (both
// carry the name and identifiers as the lab sent them), and every export
// archive of them; and the unmatched lab messages that name them (see
// eraseUnmatchedLabMessages). It answers how many objects it deleted.
func (d *DSR) DSREraseObjects(ctx context.Context, in workflows.DSRInput) (int, error) {
	tenant, row, err := d.request(ctx, in)
	if err != nil {
		return 0, err
	}
	var keys []string
	err = models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT raw_key FROM lab_messages WHERE patient_id = ? AND raw_key <> ''
			UNION SELECT pdf_key FROM lab_reports WHERE patient_id = ? AND pdf_key <> ''`, row.PatientID, row.PatientID).Scan(&keys).Error
	})
	if err != nil {
		return 0, fmt.Errorf("list patient objects: %w", err)
	}
	for _, k := range keys {
		activity.RecordHeartbeat(ctx)
		if err := d.Store.Delete(ctx, tenant, k); err != nil {
			return 0, err
		}
	}
	n, err := d.Store.DeletePrefix(ctx, tenant, exportKind(row.PatientID))
	if err != nil {
		return 0, err
	}
	// Messages never filed under anyone that name the patient.
	u, err := d.eraseUnmatchedLabMessages(ctx, tenant, row)
	if err != nil {
		return 0, err
	}
	return len(keys) + n + u, nil
}

// Redis key names of sessions: the api's (internal/sessionkeys).
func (d *DSR) sessionKey(family string) string { return sessionkeys.Session(d.RedisPrefix, family) }
func (d *DSR) userSessionsKey(user uuid.UUID) string {
	return sessionkeys.UserSessions(d.RedisPrefix, user)
}
func (d *DSR) revokedBeforeKey(user uuid.UUID) string {
	return sessionkeys.RevokedBefore(d.RedisPrefix, user)
}

// sessionTTL is api.RefreshTTL: the longest a session can live, so a
// "revoked before" mark kept that long outlives every token it ends.
const sessionTTL = 30 * 24 * time.Hour

// DSREraseSessions ends every session of the patient's accounts and every
// access token issued to them. It runs after the account's e-mail and password are gone, so nobody can
// sign in again in between. It answers how many sessions it ended.
func (d *DSR) DSREraseSessions(ctx context.Context, in workflows.DSRInput) (int, error) {
	tenant, row, err := d.request(ctx, in)
	if err != nil {
		return 0, err
	}
	var users []uuid.UUID
	err = models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id FROM users WHERE patient_id = ?`, row.PatientID).Scan(&users).Error
	})
	if err != nil {
		return 0, fmt.Errorf("load accounts: %w", err)
	}
	ended := 0
	for _, u := range users {
		families, err := d.Redis.SMembers(ctx, d.userSessionsKey(u)).Result()
		if err != nil {
			return ended, fmt.Errorf("list sessions: %w", err)
		}
		_, err = d.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, f := range families {
				p.Del(ctx, d.sessionKey(f))
			}
			p.Del(ctx, d.userSessionsKey(u))
			p.Set(ctx, d.revokedBeforeKey(u), strconv.FormatInt(d.now().UnixMilli(), 10), sessionTTL)
			return nil
		})
		if err != nil {
			return ended, fmt.Errorf("end sessions: %w", err)
		}
		ended += len(families)
	}
	return ended, nil
}

// erasedGivenName is what an erased patient's given name becomes; the
// family name becomes a random pseudonym, so records kept for retention
// still tell patients apart without naming anyone.
const erasedGivenName = "Erased"

// DSREraseRecords erases the patient in Postgres, in one transaction:
// identifiers deleted; phone and birth date cleared; the name replaced by
// a random pseudonym (drawn once: a second erasure keeps it); each account's
// e-mail replaced and its password made unusable, which disables it; the
// account's saved request answers deleted; free-text cancel reasons
// cleared; the links to deleted PDFs and export archives dropped.
// Appointments, payments, the ledger, lab results, clinical notes (sealed:
// their text names nobody in the clear) and the consent ledger stay, under the patient's ID, for as long as the tenant's retention
// settings say; the request records until when. A legal hold placed since
// the workflow started refuses the whole step.
func (d *DSR) DSREraseRecords(ctx context.Context, in workflows.DSRInput) (int, error) {
	tenant, row, err := d.request(ctx, in)
	if err != nil {
		return 0, err
	}
	p := row.PatientID
	var b [8]byte
	_, _ = rand.Read(b[:])
	pseudonym := "P-" + hex.EncodeToString(b[:])
	rows := int64(0)
	err = models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
		// Locks the patient's row, so a hold placed at the same moment
		// (which checks the same row) either sees this erasure or stops it.
		if err := tx.Exec(`SELECT 1 FROM patients WHERE id = ? FOR UPDATE`, p).Error; err != nil {
			return err
		}
		held, err := models.ActiveLegalHold(tx, p)
		if err != nil {
			return err
		}
		if held {
			return temporal.NewNonRetryableApplicationError("patient under legal hold", workflows.ErrTypeDSRLegalHold, nil)
		}
		var users []uuid.UUID
		if err := tx.Raw(`SELECT id FROM users WHERE patient_id = ?`, p).Scan(&users).Error; err != nil {
			return err
		}
		steps := []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM patient_identifiers WHERE patient_id = ?`, []any{p}},
			{`UPDATE patients SET given_name = ?, family_name = ?, erased_at = ? WHERE id = ? AND erased_at IS NULL`,
				[]any{erasedGivenName, pseudonym, d.now(), p}},
			{`UPDATE patients SET birth_date = NULL, phone = '' WHERE id = ? AND (birth_date IS NOT NULL OR phone <> '')`, []any{p}},
			{`UPDATE patients SET preferred_language = NULL WHERE id = ? AND preferred_language IS NOT NULL`, []any{p}},
			{`UPDATE appointments SET cancel_reason = '' WHERE patient_id = ? AND cancel_reason <> ''`, []any{p}},
			{`UPDATE lab_reports SET pdf_key = '' WHERE patient_id = ? AND pdf_key <> ''`, []any{p}},
			// Their archives are gone: a finished export now reads as
			// expired (410), not as finished with nothing to download.
			{`UPDATE dsr_requests SET archive_key = '', status = CASE WHEN kind = 'export' AND status = 'completed' THEN 'expired' ELSE status END
				WHERE patient_id = ? AND (archive_key <> '' OR (kind = 'export' AND status = 'completed'))`, []any{p}},
			// Nobody acts for, or through, an erased person any more, and
			// no doctor stays assigned to them; the ended rows stay as the
			// record of who could see what, when.
			{`UPDATE proxy_relations SET ended_at = ?, ended_by = ? WHERE (patient_id = ? OR proxy_patient_id = ?) AND ended_at IS NULL`,
				[]any{d.now(), row.RequestedBy, p, p}},
			{`UPDATE care_assignments SET ended_at = ?, ended_by = ? WHERE patient_id = ? AND ended_at IS NULL`,
				[]any{d.now(), row.RequestedBy, p}},
			// Message threads are the patient's correspondence, not the
			// medical record: deleted with their messages and read marks.
			{`DELETE FROM message_threads WHERE patient_id = ?`, []any{p}},
		}
		for _, u := range users {
			steps = append(steps,
				struct {
					sql  string
					args []any
				}{`UPDATE users SET email = ?, password_hash = ? WHERE id = ? AND email <> ?`,
					[]any{erasedEmail(u), unusablePasswordHash(), u, erasedEmail(u)}},
				struct {
					sql  string
					args []any
				}{`DELETE FROM idempotency_keys WHERE user_id = ?`, []any{u}},
				// Single sign-on links: the provider's subject no longer
				// reaches the account.
				struct {
					sql  string
					args []any
				}{`DELETE FROM user_identities WHERE user_id = ?`, []any{u}},
				// Reset and verification links already mailed: a reset
				// would give the account a password again.
				struct {
					sql  string
					args []any
				}{`UPDATE account_tokens SET used_at = ? WHERE user_id = ? AND used_at IS NULL`, []any{d.now(), u}},
			)
		}
		for _, s := range steps {
			res := tx.Exec(s.sql, s.args...)
			if res.Error != nil {
				return fmt.Errorf("erase: %w", res.Error)
			}
			rows += res.RowsAffected
		}
		return d.recordRetention(tx, row)
	})
	return int(rows), err
}

// recordRetention writes on the request until when the kept records must
// stay: the tenant's years after the patient's last visit or result, and
// after their last payment.
func (d *DSR) recordRetention(tx *gorm.DB, row models.DSRRequest) error {
	ret, _, err := models.Retention(tx)
	if err != nil {
		return err
	}
	var last struct {
		Medical   *time.Time
		Financial *time.Time
	}
	err = tx.Raw(`SELECT
		greatest((SELECT max(ends_at) FROM appointments WHERE patient_id = ?),
		         (SELECT max(filed_at) FROM lab_reports WHERE patient_id = ?),
		         (SELECT max(coalesce(signed_at, created_at)) FROM clinical_notes WHERE patient_id = ?)) AS medical,
		(SELECT max(created_at) FROM payments WHERE patient_id = ?) AS financial`,
		row.PatientID, row.PatientID, row.PatientID, row.PatientID).Scan(&last).Error
	if err != nil {
		return err
	}
	upd := map[string]any{}
	// As the nightly purge counts (retention_purge_parts): with no visit,
	// result or note, the medical years run from the erasure itself.
	medical := d.now()
	if last.Medical != nil {
		medical = *last.Medical
	}
	upd["medical_retained_until"] = medical.AddDate(ret.MedicalRecordsYears, 0, 0)
	if last.Financial != nil {
		upd["financial_retained_until"] = last.Financial.AddDate(ret.FinancialRecordsYears, 0, 0)
	}
	return tx.Model(&models.DSRRequest{}).Where("id = ?", row.ID).Updates(upd).Error
}

// erasedEmail is an erased account's address: unique per account (the
// tenant's e-mails are unique) and in the .invalid domain, which never
// receives mail (RFC 2606).
func erasedEmail(user uuid.UUID) string { return "erased-" + user.String() + "@erased.invalid" }

// unusablePasswordHash is a well-formed argon2id hash of no password: its
// key is random, so no password ever matches it and the account is
// disabled without a column for it.
func unusablePasswordHash() string {
	var salt, key [16]byte
	_, _ = rand.Read(salt[:])
	_, _ = rand.Read(key[:])
	b64 := base64.RawStdEncoding
	return "$argon2id$v=19$m=19456,t=2,p=1$" + b64.EncodeToString(salt[:]) + "$" + b64.EncodeToString(key[:])
}

// DSRFinish closes a request and records it in the audit log, once: a
// rerun finds it closed and records nothing more.
func (d *DSR) DSRFinish(ctx context.Context, in workflows.DSRFinishRequest) error {
	tenant, row, err := d.request(ctx, workflows.DSRInput{TenantID: in.TenantID, RequestID: in.RequestID})
	if err != nil {
		return err
	}
	return models.InTenant(ctx, d.DB, tenant, func(tx *gorm.DB) error {
		upd := map[string]any{"status": in.Status, "outcome": in.Outcome, "completed_at": d.now()}
		if in.ArchiveKey != "" {
			upd["archive_key"] = in.ArchiveKey
		}
		res := tx.Model(&models.DSRRequest{}).Where("id = ? AND status IN ?", row.ID, []string{models.DSRPending, models.DSRRunning}).Updates(upd)
		if res.Error != nil {
			return fmt.Errorf("finish request: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		action := map[string]string{
			models.DSRCompleted: "dsr-" + row.Kind + "-complete",
			models.DSRRefused:   "dsr-" + row.Kind + "-refused",
			models.DSRFailed:    "dsr-" + row.Kind + "-failed",
		}[in.Status]
		ev := models.AuditEvent{TenantID: tenant, ActorRole: "system", Action: action, ResourceType: "dsr_request",
			ResourceID: &row.ID, PatientID: &row.PatientID, Reason: in.Outcome, At: d.now()}
		return audit.Append(tx, d.AuditKey, &ev)
	})
}
