package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/workers"
	"github.com/carebook/carebook/workflows"
)

// runRetention runs the nightly Retention workflow once over tenant demo,
// on a queue of its own whose worker has the stack's database, store and
// Redis (the stack's main worker has no retention dependencies), and
// returns what it did there.
func (st *stack) runRetention(t *testing.T) workflows.TenantRetention {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	queue := "retention-" + uuid.NewString()
	st.TS.NewWorker(queue, func(r worker.Registry) {
		workers.RegisterRetention(r, workers.Deps{Retention: &activities.Retention{DB: st.App, Store: st.Store, Redis: st.Redis,
			RedisPrefix: st.RedisPrefix, AuditKey: testAuditKey, Policy: activities.DefaultRetentionPolicy}})
	})
	run, err := st.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "retention-test-" + uuid.NewString(), TaskQueue: queue},
		workflows.RetentionWorkflowType, workflows.RetentionInput{Tenants: []string{st.Demo.Tenant.ID.String()}})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.RetentionResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("retention run: %v (%+v)", err, res)
	}
	if len(res.Tenants) != 1 || res.Tenants[0].Err != "" {
		t.Fatalf("retention result %+v", res)
	}
	return res.Tenants[0]
}

// erase runs an erasure of the patient to completion.
func (st *stack) erase(t *testing.T, admin string, patient uuid.UUID) {
	t.Helper()
	r := st.do("POST", "/v1/patients/"+patient.String()+"/erasure", admin, map[string]any{"identity_verified": true})
	if r.Status != http.StatusAccepted {
		t.Fatalf("erasure: %d %s", r.Status, r.Raw)
	}
	if d := st.dsrWait(t, admin, r.str("id")); d.str("status") != "completed" {
		t.Fatalf("erasure finished as %s", d.Raw)
	}
}

// ageRecords moves an erased patient's erasure and records years into
// the past, through the owner connection, as if that time had gone by.
func (st *stack) ageRecords(t *testing.T, patient uuid.UUID, years int) {
	t.Helper()
	for _, q := range []string{
		`UPDATE patients SET erased_at = erased_at - make_interval(years => ?) WHERE id = ?`,
		`UPDATE appointments SET starts_at = starts_at - make_interval(years => ?), ends_at = ends_at - make_interval(years => ?),
			blocked_from = blocked_from - make_interval(years => ?), blocked_until = blocked_until - make_interval(years => ?) WHERE patient_id = ?`,
		`UPDATE lab_reports SET filed_at = filed_at - make_interval(years => ?) WHERE patient_id = ?`,
		`UPDATE payments SET created_at = created_at - make_interval(years => ?) WHERE patient_id = ?`,
	} {
		args := []any{}
		for range strings.Count(q, "?") - 1 {
			args = append(args, years)
		}
		args = append(args, patient)
		if err := st.Admin.Exec(q, args...).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// TestRetentionPurgesErasedPatientsPastRetention: the nightly run deletes
// what an erasure kept once the tenant's retention has run out: the
// payment when the financial years since it have passed (the visits
// stay), everything else when the medical years since the last visit and
// result have too, and then marks the patient purged, recording each step
// without a name; a patient erased today is kept; a legal hold placed
// after the erasure keeps the records until it is released; a further
// run changes nothing more.
func TestRetentionPurgesErasedPatientsPastRetention(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	tenant := st.Demo.Tenant.ID
	st.seedPhilip(t)
	admin := st.login("demo", "admin@demo.carebook.test")
	philip, john, paul := st.philip(), st.john(), st.paul()

	exp := st.do("POST", "/v1/patients/"+philip.String()+"/exports", admin, nil)
	if st.dsrWait(t, admin, exp.str("id")).str("status") != "completed" {
		t.Fatal("export did not complete")
	}
	// A signed note on one of Philip's visits, with an addendum, written
	// long before everything else (so that it does not move his last
	// medical date): kept with his visits, then deleted with them.
	note, addendum := uuid.New(), uuid.New()
	for _, q := range []struct {
		id     uuid.UUID
		amends any
	}{{note, nil}, {addendum, note}} {
		if err := st.Admin.Exec(`INSERT INTO clinical_notes (id, tenant_id, patient_id, author_id, appointment_id, kind, amends, body_sealed,
				created_at, updated_at, signed_at, signed_by)
			SELECT ?, a.tenant_id, a.patient_id, a.practitioner_id, a.id, 'progress', ?, '\x00', now() - interval '60 years', now() - interval '60 years',
				now() - interval '60 years', a.practitioner_id
			FROM appointments a WHERE a.patient_id = ? ORDER BY a.starts_at LIMIT 1`, q.id, q.amends, philip).Error; err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []uuid.UUID{philip, john, paul} {
		st.erase(t, admin, p)
	}
	// John has no visit, result or note: his medical years run from the
	// erasure, on the request as in the purge.
	if n := st.count("SELECT count(*) FROM dsr_requests WHERE patient_id = ? AND kind = 'erasure' AND medical_retained_until > now() + interval '19 years'", john); n != 1 {
		t.Errorf("John's erasure records no medical retention date")
	}
	// Paul's records are held for a court after his erasure.
	if r := st.do("POST", "/v1/patients/"+paul.String()+"/legal-holds", admin, map[string]any{"reason": "Case 2026-211 discovery"}); r.Status != http.StatusCreated {
		t.Fatalf("hold: %d %s", r.Status, r.Raw)
	}
	// Financial records 5 years, medical 30; eight years on for Philip
	// and Paul.
	if r := st.do("PUT", "/v1/retention-settings", admin, map[string]any{"jurisdiction": "TR", "medical_records_years": 30,
		"financial_records_years": 5}); r.Status != http.StatusOK {
		t.Fatalf("retention settings: %d %s", r.Status, r.Raw)
	}
	st.ageRecords(t, philip, 8)
	st.ageRecords(t, paul, 8)

	kept := map[string]string{
		"appointments":     "SELECT count(*) FROM appointments WHERE patient_id = ?",
		"payments":         "SELECT count(*) FROM payments WHERE patient_id = ?",
		"lab reports":      "SELECT count(*) FROM lab_reports WHERE patient_id = ?",
		"lab observations": "SELECT count(*) FROM lab_observations WHERE patient_id = ?",
		"consents":         "SELECT count(*) FROM consents WHERE patient_id = ?",
		"care assignments": "SELECT count(*) FROM care_assignments WHERE patient_id = ?",
		"clinical notes":   "SELECT count(*) FROM clinical_notes WHERE patient_id = ?",
	}
	before := map[uuid.UUID]map[string]int64{}
	for _, p := range []uuid.UUID{philip, john, paul} {
		before[p] = map[string]int64{}
		for name, q := range kept {
			before[p][name] = st.count(q, p)
		}
	}
	for _, name := range []string{"appointments", "payments", "lab reports", "lab observations", "consents", "clinical notes"} {
		if before[philip][name] == 0 {
			t.Fatalf("Philip has no %s before the run: the test shows nothing", name)
		}
	}

	res := st.runRetention(t)
	if res.Purge.Purged != 1 || res.Purge.Held != 1 || res.Purge.Kept != 1 || res.Purge.Rows == 0 {
		t.Fatalf("purge %+v, want Philip's payment purged, Paul held, John kept", res.Purge)
	}
	for name, q := range kept {
		want := before[philip][name]
		if name == "payments" {
			want = 0
		}
		if n := st.count(q, philip); n != want {
			t.Errorf("Philip's %s after the financial years: %d, want %d", name, n, want)
		}
	}
	if n := st.count("SELECT count(*) FROM patients WHERE id = ? AND purged_at IS NULL AND medical_purged_at IS NULL", philip); n != 1 {
		t.Error("Philip is marked purged while his medical records are kept")
	}

	// Forty more years: past the medical years too.
	st.ageRecords(t, philip, 40)
	st.ageRecords(t, paul, 40)
	res = st.runRetention(t)
	if res.Purge.Purged != 1 || res.Purge.Held != 1 || res.Purge.Kept != 1 || res.Purge.Rows == 0 {
		t.Fatalf("purge %+v, want Philip purged, Paul held, John kept", res.Purge)
	}
	for name, q := range kept {
		if n := st.count(q, philip); n != 0 {
			t.Errorf("Philip's %s after the purge: %d", name, n)
		}
		for _, p := range []uuid.UUID{john, paul} {
			if n := st.count(q, p); n != before[p][name] {
				t.Errorf("%s of a kept patient: %d, was %d", name, n, before[p][name])
			}
		}
	}
	if n := st.count("SELECT count(*) FROM patients WHERE id = ? AND purged_at IS NOT NULL AND given_name = 'Erased'", philip); n != 1 {
		t.Error("Philip's pseudonymised row is not marked purged")
	}
	if n := st.count("SELECT count(*) FROM patients WHERE id IN (?, ?) AND purged_at IS NULL", john, paul); n != 2 {
		t.Error("a kept patient was marked purged")
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'retention-purge' AND patient_id = ? AND actor_role = 'system'", philip); n != 2 {
		t.Errorf("purge audit events for Philip: %d, want 2 (financial, then the rest)", n)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'retention-purge' AND (reason ILIKE '%Philip%' OR reason ILIKE '%Johnson%')"); n != 0 {
		t.Error("the purge event names the patient")
	}
	if keys, err := st.Store.List(ctx, tenant, "dsr-export/"+philip.String(), 10); err != nil || len(keys) != 0 {
		t.Errorf("Philip's exports in the store: %v %v", keys, err)
	}
	if found := st.traces(t, tenant, philipTraces); len(found) > 0 {
		t.Errorf("Postgres still holds Philip:\n%s", strings.Join(found, "\n"))
	}

	// The hold released, the next run purges Paul; Philip is not purged
	// twice.
	var hold string
	st.Admin.Raw("SELECT id::text FROM legal_holds WHERE patient_id = ? AND released_at IS NULL", paul).Scan(&hold)
	if r := st.do("POST", "/v1/legal-holds/"+hold+"/release", admin, map[string]any{"reason": "Case closed"}); r.Status != http.StatusOK {
		t.Fatalf("release: %d %s", r.Status, r.Raw)
	}
	res = st.runRetention(t)
	if res.Purge.Purged != 1 || res.Purge.Held != 0 || res.Purge.Kept != 1 {
		t.Fatalf("third run %+v, want Paul purged and John kept", res.Purge)
	}
	if n := st.count("SELECT count(*) FROM patients WHERE id = ? AND purged_at IS NOT NULL", paul); n != 1 {
		t.Error("Paul was not purged after the hold was released")
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'retention-purge' AND patient_id = ?", philip); n != 2 {
		t.Errorf("Philip's purge recorded %d times after a further run", n)
	}
	if v := st.do("GET", "/v1/audit-events/verify", admin, nil); v.Body["ok"] != true {
		t.Errorf("audit chain after the purge: %s", v.Raw)
	}
}

// TestExportArchiveExpires: an export's archive lives
// models.ExportArchiveLifetime; past it the api answers 410 export-expired
// even before the nightly run, and the run deletes the archive and marks
// the request expired; a younger export is untouched.
func TestExportArchiveExpires(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	john := st.login("demo", "john@demo.carebook.test")
	path := "/v1/patients/" + st.john().String() + "/exports"
	old := st.do("POST", path, john, nil)
	young := st.do("POST", path, john, nil)
	for _, r := range []response{old, young} {
		if r.Status != http.StatusAccepted {
			t.Fatalf("export: %d %s", r.Status, r.Raw)
		}
		d := st.dsrWait(t, john, r.str("id"))
		if d.str("status") != "completed" || d.str("download_url") == "" || d.str("archive_expires_at") == "" {
			t.Fatalf("export finished as %s", d.Raw)
		}
	}
	var key string
	st.Admin.Raw("SELECT archive_key FROM dsr_requests WHERE id = ?", old.str("id")).Scan(&key)
	if _, err := st.Store.Get(ctx, st.Demo.Tenant.ID, key); err != nil {
		t.Fatalf("the archive is not stored: %v", err)
	}

	// Eight days on for the first.
	if err := st.Admin.Exec("UPDATE dsr_requests SET completed_at = completed_at - interval '8 days' WHERE id = ?", old.str("id")).Error; err != nil {
		t.Fatal(err)
	}
	if r := st.do("GET", "/v1/dsr/"+old.str("id"), john, nil); r.Status != http.StatusGone || r.problemType() != "export-expired" {
		t.Fatalf("an export past its lifetime, before the run: %d %s, want 410 export-expired", r.Status, r.Raw)
	}

	res := st.runRetention(t)
	eqf(t, "expired exports", res.ExpiredExports, 1)
	if n := st.count("SELECT count(*) FROM dsr_requests WHERE id = ? AND status = 'expired' AND archive_key = ''", old.str("id")); n != 1 {
		t.Error("the request is not marked expired")
	}
	if _, err := st.Store.Get(ctx, st.Demo.Tenant.ID, key); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("the expired archive is still stored: %v", err)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'dsr-export-expired' AND resource_id = ?", old.str("id")); n != 1 {
		t.Errorf("expiry audit events: %d", n)
	}
	if r := st.do("GET", "/v1/dsr/"+old.str("id"), john, nil); r.Status != http.StatusGone || r.problemType() != "export-expired" {
		t.Errorf("an expired export: %d %s, want 410 export-expired", r.Status, r.Raw)
	}
	statuses := map[string]string{}
	for _, it := range st.do("GET", "/v1/patients/"+st.john().String()+"/dsr", john, nil).items() {
		statuses[it["id"].(string)], _ = it["status"].(string)
	}
	eqf(t, "listed status of the expired export", statuses[old.str("id")], models.DSRExpired)
	eqf(t, "listed status of the young export", statuses[young.str("id")], models.DSRCompleted)
	if d := st.do("GET", "/v1/dsr/"+young.str("id"), john, nil); d.Status != http.StatusOK || d.str("download_url") == "" {
		t.Errorf("the young export after the run: %d %s", d.Status, d.Raw)
	} else {
		download(t, d.str("download_url"))
	}
	// A second run finds nothing more.
	eqf(t, "expired on a second run", st.runRetention(t).ExpiredExports, 0)
}

// TestErasureFindsUnmatchedLabMessages: lab messages never filed under
// anyone (here in the staff queue: their identifiers came without an
// assigning authority) that name the erased patient by an MRN or, through
// the blind index, a national ID are dismissed as erased, their workflows
// closed and their raw messages deleted, so that nothing in Postgres or
// the store names the patient; a message naming someone else stays.
func TestErasureFindsUnmatchedLabMessages(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	tenant := st.Demo.Tenant.ID
	st.Deps.DSR.Temporal = st.Temporal
	key := demo.LabKeyFor("demo")
	admin := st.login("demo", "admin@demo.carebook.test")
	staff := st.login("demo", "staff.newyork@demo.carebook.test")
	var paulSSN string
	for _, id := range demo.NationalIDs(st.Demo) {
		if id.PatientID == st.paul() {
			paulSSN = id.Value
		}
	}
	if paulSSN == "" {
		t.Fatal("the demo gives Paul no national ID")
	}

	send := func(name string, raw []byte) models.LabMessage {
		t.Helper()
		if r := st.postLab("hl7", key, raw); r.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", name, r.Status, r.Raw)
		}
		m := st.settled(t, tenant, "hl7v2", controlID(t, raw))
		if m.Status != models.LabUnmatched {
			t.Fatalf("%s: %s, want unmatched", name, m.Status)
		}
		return m
	}
	philipMsg := send("Philip by MRN", nistVariant(t, freshID("ERASE-MRN"), "9700301", fieldEdit{"PID", 3, "9817566735^^^^MR"}))
	paulMsg := send("Paul by SSN", nistVariant(t, freshID("ERASE-SSN"), "9700302",
		fieldEdit{"PID", 3, paulSSN + "^^^^SS"}, fieldEdit{"PID", 5, "Miller^Paul"}, fieldEdit{"PID", 13, ""}))
	otherMsg := send("someone else", nistVariant(t, freshID("ERASE-OTHER"), "9700303",
		fieldEdit{"PID", 3, "5550000009^^^^MR"}, fieldEdit{"PID", 5, "Roe^Jane"}, fieldEdit{"PID", 13, ""}))

	if len(st.objectTraces(t, tenant, []string{"Johnson", "9817566735", paulSSN})) < 2 {
		t.Fatal("before erasure the store does not hold the messages' names: the scan is blind")
	}

	st.erase(t, admin, st.philip())
	st.erase(t, admin, st.paul())

	for _, m := range []models.LabMessage{philipMsg, paulMsg} {
		after := st.labMessage(tenant, "hl7v2", m.MessageID)
		if after.Status != models.LabDismissed || !strings.HasPrefix(after.Reason, activities.ErasedLabReason+":") || after.RawKey != "" {
			t.Errorf("message %s after erasure: status %s reason %q raw %q", m.MessageID, after.Status, after.Reason, after.RawKey)
		}
		if _, err := st.Store.Get(ctx, tenant, m.RawKey); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("message %s is still stored: %v", m.MessageID, err)
		}
		if s := st.labResult(t, m.WorkflowID); s.Outcome != "dismissed" {
			t.Errorf("message %s workflow ended %q, want dismissed", m.MessageID, s.Outcome)
		}
		if r := st.do("GET", "/v1/lab-messages/"+after.ID.String(), staff, nil); r.Status != http.StatusOK || r.str("status") != models.LabDismissed {
			t.Errorf("staff read an erased message: %d %s", r.Status, r.Raw)
		}
		if r := st.do("GET", "/v1/lab-messages/"+after.ID.String()+"/raw", staff, nil); r.Status != http.StatusNotFound {
			t.Errorf("raw of an erased message: %d, want 404", r.Status)
		}
	}
	for _, c := range []struct {
		name    string
		message models.LabMessage
		patient uuid.UUID
	}{{"Philip's", philipMsg, st.philip()}, {"Paul's", paulMsg, st.paul()}} {
		if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'dsr-erasure-lab-message' AND resource_id = ? AND patient_id = ?",
			c.message.ID, c.patient); n != 1 {
			t.Errorf("%s erased lab message audited %d times, want 1", c.name, n)
		}
	}
	other := st.labMessage(tenant, "hl7v2", otherMsg.MessageID)
	if other.Status != models.LabUnmatched || other.RawKey == "" {
		t.Errorf("a message naming someone else: %s %q", other.Status, other.RawKey)
	}
	if _, err := st.Store.Get(ctx, tenant, other.RawKey); err != nil {
		t.Errorf("a message naming someone else was deleted: %v", err)
	}

	if found := st.traces(t, tenant, append([]string{paulSSN}, philipTraces...)); len(found) > 0 {
		t.Errorf("Postgres still holds the erased patients:\n%s", strings.Join(found, "\n"))
	}
	if found := st.objectTraces(t, tenant, append([]string{paulSSN}, philipTraces...)); len(found) > 0 {
		t.Errorf("the object store still holds the erased patients:\n%s", strings.Join(found, "\n"))
	}
}
