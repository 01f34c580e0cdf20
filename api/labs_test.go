package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carebook/carebook/hl7"
	"github.com/carebook/carebook/internal/sharedcases"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/workflows"
)

// The shared public lab messages these tests send.
const (
	nistFile   = "nist_oru_r01_2.5.1_case3_corrected_lead.hl7"
	cernerFile = "cerner_oru_r01_2.5.1_culture_abnormal.hl7"
	nhapiFile  = "nhapi_oru_r01_2.5.1_ft_br_repetitions.hl7"
	enumFile   = "hl7enumerator_oru_r01_2.3_escapes_T_R.hl7"
	escapeFile = "hl7enumerator_escape_vector.json"
	microFile  = "fhir_r4_diagnosticreport_micro1_bundle.json"
)

// nhapiIDSystem is the system the tests tell the demo lab partner to
// assume for identifiers sent without an assigning authority (the nHapi
// message's PID-3 has none), so that message can match a patient.
const nhapiIDSystem = "urn:carebook-test:demo-lab-mrn"

// microPatient is how labs names the micro bundle's patient: its logical
// reference made absolute against the entries' base.
var microPatient = models.PatientIdentifier{System: "urn:ietf:rfc:3986", Value: "https://example.com/base/Patient/example"}

func sharedCase(t *testing.T, sub, name string) []byte { return sharedcases.Read(t, sub, name) }

// fieldEdit sets one field of the first segment of its name.
type fieldEdit struct {
	seg   string
	field int
	value string
}

// withFields rewrites fields of an HL7 message, raw segment text as given
// (escape sequences are written as they are). MSH fields are numbered as
// in the standard (MSH-1 is the separator).
func withFields(t *testing.T, raw []byte, edits ...fieldEdit) []byte {
	t.Helper()
	lines := strings.Split(string(raw), "\r")
	for _, e := range edits {
		found := false
		for i, l := range lines {
			if !strings.HasPrefix(l, e.seg+"|") {
				continue
			}
			parts := strings.Split(l, "|")
			idx := e.field
			if e.seg == "MSH" {
				idx = e.field - 1
			}
			for len(parts) <= idx {
				parts = append(parts, "")
			}
			parts[idx] = e.value
			lines[i] = strings.Join(parts, "|")
			found = true
			break
		}
		if !found {
			t.Fatalf("no %s segment to edit", e.seg)
		}
	}
	return []byte(strings.Join(lines, "\r"))
}

// hl7Field reads field n of the first seg segment, decoded.
func hl7Field(t *testing.T, raw []byte, seg string, n int) hl7.Field {
	t.Helper()
	m, err := hl7.Parse(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", seg, err)
	}
	s := m.Segment(seg)
	if s == nil {
		t.Fatalf("no %s segment", seg)
	}
	return s.Field(n)
}

// controlID is MSH-10 of raw.
func controlID(t *testing.T, raw []byte) string {
	t.Helper()
	m, err := hl7.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m.ControlID
}

// freshID is a message control ID no test has used.
func freshID(prefix string) string {
	return prefix + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
}

// nistVariant is the NIST lead message under a new MSH-10 and a new filler
// order number (so it files a report of its own), with more edits.
func nistVariant(t *testing.T, id, filler string, edits ...fieldEdit) []byte {
	t.Helper()
	raw := sharedCase(t, "hl7", nistFile)
	obr3 := hl7Field(t, raw, "OBR", 3)
	all := []fieldEdit{{"MSH", 10, id}}
	if filler != "" {
		all = append(all, fieldEdit{"OBR", 3, filler + "^" + obr3.Comp(2) + "^" + obr3.Comp(3) + "^" + obr3.Comp(4)})
	}
	return withFields(t, raw, append(all, edits...)...)
}

// labWait polls cond until it holds. Lab workflows run several activities
// on a fresh Temporal server, so the bound is generous; it only ends a
// test that would otherwise hang.
func labWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postLab posts a lab message with a partner key.
func (st *stack) postLab(kind, key string, body []byte) response {
	st.t.Helper()
	ct := "application/hl7-v2"
	if kind == "fhir" {
		ct = "application/fhir+json"
	}
	return st.do("POST", "/v1/labs/"+kind, key, body, "Content-Type", ct)
}

// labMessage loads the message row a tenant recorded under a sender's ID.
func (st *stack) labMessage(tenant uuid.UUID, format, messageID string) models.LabMessage {
	st.t.Helper()
	var m models.LabMessage
	if err := st.Admin.Where("tenant_id = ? AND format = ? AND message_id = ?", tenant, format, messageID).Take(&m).Error; err != nil {
		st.t.Fatalf("lab message %s: %v", messageID, err)
	}
	return m
}

// labState queries a lab workflow's state.
func (st *stack) labState(workflowID string) (workflows.LabState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var s workflows.LabState
	v, err := st.Temporal.QueryWorkflow(ctx, workflowID, "", workflows.QueryLabState)
	if err != nil {
		return s, err
	}
	return s, v.Get(&s)
}

// settled waits until the message's workflow has done all it does before
// waiting on people (filed, rendered and notified; or rejected; or in the
// staff queue), and returns the row as it is then.
func (st *stack) settled(t *testing.T, tenant uuid.UUID, format, messageID string) models.LabMessage {
	t.Helper()
	m := st.labMessage(tenant, format, messageID)
	labWait(t, "lab message "+messageID+" to settle", func() bool {
		s, err := st.labState(m.WorkflowID)
		return err == nil && (s.Stage == "waiting-for-release" || s.Stage == "waiting-for-staff" || s.Stage == "done")
	})
	return st.labMessage(tenant, format, messageID)
}

// labResult waits for a lab workflow to end and returns its state.
func (st *stack) labResult(t *testing.T, workflowID string) workflows.LabState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var s workflows.LabState
	if err := st.Temporal.GetWorkflow(ctx, workflowID, "").Get(ctx, &s); err != nil {
		t.Fatalf("lab workflow %s: %v", workflowID, err)
	}
	return s
}

// labReports lists the report versions a message filed.
func (st *stack) labReports(messageID uuid.UUID) []models.LabReport {
	st.t.Helper()
	var out []models.LabReport
	if err := st.Admin.Where("message_id = ?", messageID).Order("report_key").Find(&out).Error; err != nil {
		st.t.Fatal(err)
	}
	return out
}

// oneReport is the single report a message filed.
func (st *stack) oneReport(t *testing.T, messageID uuid.UUID) models.LabReport {
	t.Helper()
	reps := st.labReports(messageID)
	if len(reps) != 1 {
		t.Fatalf("reports filed = %d, want 1", len(reps))
	}
	return reps[0]
}

// observations lists a report's observations in the order sent.
func (st *stack) observations(reportID uuid.UUID) []models.LabObservation {
	st.t.Helper()
	var out []models.LabObservation
	if err := st.Admin.Where("report_id = ?", reportID).Order("seq").Find(&out).Error; err != nil {
		st.t.Fatal(err)
	}
	return out
}

// notifications lists a tenant's outbox rows of one template.
func (st *stack) notifications(tenant uuid.UUID, template string) []models.Notification {
	st.t.Helper()
	var out []models.Notification
	if err := st.Admin.Where("tenant_id = ? AND template = ?", tenant, template).Order("dedupe_key").Find(&out).Error; err != nil {
		st.t.Fatal(err)
	}
	return out
}

// labCounts counts every row receiving a message can create.
func (st *stack) labCounts() [4]int64 {
	return [4]int64{
		st.count("SELECT count(*) FROM lab_messages"),
		st.count("SELECT count(*) FROM lab_reports"),
		st.count("SELECT count(*) FROM lab_observations"),
		st.count("SELECT count(*) FROM notification_outbox"),
	}
}

// setReleaseRule changes a tenant's release rule through the owner
// connection, as an administrator's settings change would.
func (st *stack) setReleaseRule(tenant uuid.UUID, rule string, days int) {
	st.t.Helper()
	if err := st.Admin.Exec("UPDATE lab_settings SET release_rule = ?, release_days = ? WHERE tenant_id = ?", rule, days, tenant).Error; err != nil {
		st.t.Fatal(err)
	}
}

// prepareLabPatients gives the demo tenant what the nHapi message and the
// FHIR micro bundle need to match a patient: the demo lab assumes a
// system for identifiers sent without one, and Ayşe holds the nHapi
// patient's number under it; John holds the micro bundle's patient
// reference (the demo seeds it so; the upsert keeps the test's premise
// whatever the seed says).
func (st *stack) prepareLabPatients(t *testing.T) {
	t.Helper()
	tenant := st.Demo.Tenant.ID
	if err := st.Admin.Exec("UPDATE lab_partners SET default_id_system = ? WHERE id = ?", nhapiIDSystem, st.Demo.LabPartners[0].ID).Error; err != nil {
		t.Fatal(err)
	}
	nhapiPID := hl7Field(t, sharedCase(t, "hl7", nhapiFile), "PID", 3)
	if nhapiPID.Comp(4) != "" {
		t.Fatalf("the nHapi message's PID-3 now names an assigning authority; this setup assumes none")
	}
	for _, id := range []models.PatientIdentifier{
		{PatientID: st.ayse(), System: nhapiIDSystem, Value: nhapiPID.Value(), Type: "MR"},
		{PatientID: st.john(), System: microPatient.System, Value: microPatient.Value},
	} {
		err := st.Admin.Exec(`INSERT INTO patient_identifiers (tenant_id, patient_id, system, value, type) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, system, value) DO UPDATE SET patient_id = EXCLUDED.patient_id`,
			tenant, id.PatientID, id.System, id.Value, id.Type).Error
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Demo fixtures for labs: patients by index in demo's list, and the
// practitioner every sample message's ordering provider maps to.
func (st *stack) ayse() uuid.UUID   { return st.Demo.Patients[0].ID }
func (st *stack) john() uuid.UUID   { return st.Demo.Patients[1].ID }
func (st *stack) philip() uuid.UUID { return st.Demo.Patients[2].ID }
func (st *stack) paul() uuid.UUID   { return st.Demo.Patients[3].ID }
func (st *stack) garcia() uuid.UUID { return st.Demo.Practitioners[5].ID }

// garciaLogin is Dr. Maria Garcia's account (the sixth seeded doctor).
const garciaLogin = "doctor6@demo.carebook.test"

func eqf[T comparable](t *testing.T, name string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}

func deqf(t *testing.T, name string, got, want any) {
	t.Helper()
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if !bytes.Equal(gj, wj) {
		t.Errorf("%s = %s, want %s", name, gj, wj)
	}
}

func numIs(t *testing.T, name string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %v", name, want)
		return
	}
	if *got != want {
		t.Errorf("%s = %v, want %v", name, *got, want)
	}
}

func isNil[T any](t *testing.T, name string, got *T) {
	t.Helper()
	if got != nil {
		t.Errorf("%s = %v, want nil", name, *got)
	}
}

func utcAt(s string) time.Time {
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return at
}

func timeIs(t *testing.T, name string, got *time.Time, want time.Time) {
	t.Helper()
	if got == nil || !got.Equal(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// checkReceived asserts what intake recorded for a message, whatever
// became of it: who sent it, how, and the raw bytes kept as sent.
func (st *stack) checkReceived(t *testing.T, m models.LabMessage, partner uuid.UUID, format, transport string, raw []byte) {
	t.Helper()
	sum := sha256.Sum256(bytes.TrimRight(raw, " \t\r\n"))
	eqf(t, "partner", m.PartnerID, partner)
	eqf(t, "format", m.Format, format)
	eqf(t, "transport", m.Transport, transport)
	eqf(t, "size", m.Size, len(raw))
	eqf(t, "content_sha256", m.ContentSHA256, hex.EncodeToString(sum[:]))
	eqf(t, "workflow_id", m.WorkflowID, workflows.LabWorkflowID(m.TenantID.String(), m.PartnerID.String(), format, m.MessageID))
	stored, err := st.Store.Get(context.Background(), m.TenantID, m.RawKey)
	if err != nil {
		t.Fatalf("raw message in the store: %v", err)
	}
	if !bytes.Equal(stored, raw) {
		t.Errorf("stored raw message differs from what was sent (%d bytes, sent %d)", len(stored), len(raw))
	}
}

// sharedHL7Case is one shared HL7 message and what must become of it.
type sharedHL7Case struct {
	file   string
	accept bool // AA and 202; else AE and 422 lab-message-rejected
	check  func(t *testing.T, st *stack, raw []byte, m models.LabMessage)
}

var sharedHL7Cases = []sharedHL7Case{
	{file: nistFile, accept: true, check: checkNISTFiled},
	{file: cernerFile, accept: true, check: checkCernerFiled},
	{file: nhapiFile, accept: true, check: checkNHapiFiled},
	{file: enumFile, accept: false, check: checkEnumeratorRejected},
}

// checkNISTFiled: the corrected blood lead result, filed for Philip with
// Dr. Garcia as the ordering doctor.
func checkNISTFiled(t *testing.T, st *stack, raw []byte, m models.LabMessage) {
	eqf(t, "status", m.Status, models.LabFiled)
	eqf(t, "match", m.Match, workflows.LabMatched)
	if m.PatientID == nil || *m.PatientID != st.philip() {
		t.Errorf("message patient = %v, want philip", m.PatientID)
	}
	r := st.oneReport(t, m.ID)
	eqf(t, "report.patient", r.PatientID, st.philip())
	eqf(t, "report.key", r.ReportKey, "Lab|9700123")
	eqf(t, "report.filler", r.FillerNumber, "9700123")
	eqf(t, "report.version", r.Version, 1)
	isNil(t, "report.superseded_by", r.SupersededBy)
	eqf(t, "report.status", r.Status, "corrected")
	eqf(t, "report.code_system", r.CodeSystem, "http://loinc.org")
	eqf(t, "report.code", r.Code, "10368-9")
	eqf(t, "report.display", r.Display, "Lead BldC-mCnc")
	eqf(t, "report.severity", r.Severity, "abnormal")
	timeIs(t, "report.effective_at", r.EffectiveAt, utcAt("2008-08-15T17:30:00Z"))
	timeIs(t, "report.issued_at", r.IssuedAt, utcAt("2008-08-19T01:00:00Z"))
	if r.OrderingPractitionerID == nil || *r.OrderingPractitionerID != st.garcia() {
		t.Errorf("ordering practitioner = %v, want Dr. Maria Garcia", r.OrderingPractitionerID)
	}
	eqf(t, "report.release_rule", r.ReleaseRule, models.ReleaseAfterReview)
	isNil(t, "report.released_at", r.ReleasedAt)
	if r.PDFKey == "" {
		t.Error("report has no PDF")
	}
	obs := st.observations(r.ID)
	if len(obs) != 1 {
		t.Fatalf("observations = %d, want 1", len(obs))
	}
	o := obs[0]
	eqf(t, "obs.key", o.ObsKey, "1.1")
	eqf(t, "obs.patient", o.PatientID, st.philip())
	eqf(t, "obs.code", o.Code, "10368-9")
	eqf(t, "obs.code_system", o.CodeSystem, "http://loinc.org")
	eqf(t, "obs.kind", o.Kind, "quantity")
	numIs(t, "obs.value_number", o.ValueNumber, 25)
	eqf(t, "obs.value_text", o.ValueText, "25")
	eqf(t, "obs.comparator", o.Comparator, "")
	eqf(t, "obs.unit", o.Unit, "ug/dl")
	deqf(t, "obs.flags", o.Flags, []string{"H"})
	eqf(t, "obs.status", o.Status, "corrected")
	eqf(t, "obs.reference_range", o.ReferenceRange, "<10 ug/dl")
	numIs(t, "obs.ref_high", o.RefHigh, 10)
	isNil(t, "obs.ref_low", o.RefLow)
	eqf(t, "obs.severity", o.Severity, "abnormal")
	timeIs(t, "obs.effective_at", o.EffectiveAt, utcAt("2008-08-15T17:30:00Z"))
}

// checkCernerFiled: the sputum culture, a coded abnormal result for Paul.
func checkCernerFiled(t *testing.T, st *stack, raw []byte, m models.LabMessage) {
	eqf(t, "status", m.Status, models.LabFiled)
	eqf(t, "match", m.Match, workflows.LabMatched)
	r := st.oneReport(t, m.ID)
	eqf(t, "report.patient", r.PatientID, st.paul())
	eqf(t, "report.key", r.ReportKey, "EHR|2010273000016")
	eqf(t, "report.status", r.Status, "final")
	eqf(t, "report.code", r.Code, "548-8")
	eqf(t, "report.display", r.Display, "Culture Sputum")
	eqf(t, "report.severity", r.Severity, "abnormal")
	if r.OrderingPractitionerID == nil || *r.OrderingPractitionerID != st.garcia() {
		t.Errorf("ordering practitioner = %v, want Dr. Maria Garcia", r.OrderingPractitionerID)
	}
	obs := st.observations(r.ID)
	if len(obs) != 1 {
		t.Fatalf("observations = %d, want 1", len(obs))
	}
	o := obs[0]
	eqf(t, "obs.key", o.ObsKey, "1.1")
	eqf(t, "obs.patient", o.PatientID, st.paul())
	eqf(t, "obs.kind", o.Kind, "coded")
	eqf(t, "obs.coded_system", o.CodedSystem, "SNM")
	eqf(t, "obs.coded_code", o.CodedCode, "")
	eqf(t, "obs.coded_display", o.CodedDisplay, "Bordetella pertussis")
	eqf(t, "obs.value_text", o.ValueText, "Bordetella pertussis")
	isNil(t, "obs.value_number", o.ValueNumber)
	deqf(t, "obs.flags", o.Flags, []string{"A"})
	eqf(t, "obs.status", o.Status, "final")
	eqf(t, "obs.severity", o.Severity, "abnormal")
	timeIs(t, "obs.effective_at", o.EffectiveAt, utcAt("2010-11-04T16:40:00Z"))
}

// checkNHapiFiled: a report with no order number is keyed by its message
// and filed; its FT values keep \.br\ and ~ as line breaks.
func checkNHapiFiled(t *testing.T, st *stack, raw []byte, m models.LabMessage) {
	eqf(t, "status", m.Status, models.LabFiled)
	eqf(t, "reason", m.Reason, "")
	r := st.oneReport(t, m.ID)
	eqf(t, "report.patient", r.PatientID, st.ayse())
	eqf(t, "report.key", r.ReportKey, "message:"+controlID(t, raw)+"#1")
	eqf(t, "report.filler", r.FillerNumber, "")
	eqf(t, "report.placer", r.PlacerNumber, "")
	eqf(t, "report.status", r.Status, "final")
	eqf(t, "report.code", r.Code, "ehipack")
	eqf(t, "report.display", r.Display, "eHippa Acknowlegment")
	eqf(t, "report.severity", r.Severity, "normal")
	if r.OrderingPractitionerID == nil || *r.OrderingPractitionerID != st.garcia() {
		t.Errorf("ordering practitioner = %v, want Dr. Maria Garcia", r.OrderingPractitionerID)
	}
	obs := st.observations(r.ID)
	if len(obs) != 3 {
		t.Fatalf("observations = %d, want 3", len(obs))
	}
	for i, o := range obs {
		eqf(t, "obs.key", o.ObsKey, string(rune('1'+i)))
		eqf(t, "obs.kind", o.Kind, "text")
		eqf(t, "obs.value_text", o.ValueText, "This\nis\nA Test\nMoreText\nSomeMoreText")
		eqf(t, "obs.status", o.Status, "final")
		eqf(t, "obs.severity", o.Severity, "normal")
	}
}

// checkEnumeratorRejected: OBX-4 is left out, so every value sits one
// place right; the message is kept, marked rejected, and files nothing.
func checkEnumeratorRejected(t *testing.T, st *stack, raw []byte, m models.LabMessage) {
	eqf(t, "status", m.Status, models.LabRejected)
	for _, s := range []string{"OBX-5", "OBX-4"} {
		if !strings.Contains(m.Reason, s) {
			t.Errorf("reason %q does not name %s", m.Reason, s)
		}
	}
	if strings.Contains(m.Reason, "mg/dL") {
		t.Errorf("reason quotes a value of the message: %q", m.Reason)
	}
	if n := len(st.labReports(m.ID)); n != 0 {
		t.Errorf("reports filed = %d, want 0", n)
	}
	isNil(t, "patient", m.PatientID)
}

// TestLabSharedMessagesOverHTTP sends every shared HL7 message and the
// FHIR micro bundle as a lab partner over HTTPS and follows each to what
// is stored; then resends, and sends a correction.
func TestLabSharedMessagesOverHTTP(t *testing.T) {
	st := newStack(t)
	st.prepareLabPatients(t)
	key := demo.LabKeyFor("demo")
	demoLab := st.Demo.LabPartners[0].ID
	tenant := st.Demo.Tenant.ID

	for _, c := range sharedHL7Cases {
		t.Run(c.file, func(t *testing.T) {
			raw := sharedCase(t, "hl7", c.file)
			id := controlID(t, raw)
			r := st.postLab("hl7", key, raw)
			if c.accept {
				if r.Status != http.StatusAccepted {
					t.Fatalf("POST /v1/labs/hl7: %d %s", r.Status, r.Raw)
				}
				eqf(t, "receipt.status", r.str("status"), "accepted")
				eqf(t, "receipt.message_id", r.str("message_id"), id)
				eqf(t, "receipt.duplicate", r.Body["duplicate"], any(false))
			} else {
				if r.Status != http.StatusUnprocessableEntity || r.problemType() != "lab-message-rejected" {
					t.Fatalf("POST /v1/labs/hl7: %d %s, want 422 lab-message-rejected", r.Status, r.Raw)
				}
			}
			m := st.settled(t, tenant, "hl7v2", id)
			if c.accept {
				eqf(t, "receipt.lab_message_id", r.str("lab_message_id"), m.ID.String())
			} else {
				eqf(t, "problem.lab_message_id", r.str("lab_message_id"), m.ID.String())
				eqf(t, "problem.reason", r.str("reason"), m.Reason)
			}
			st.checkReceived(t, m, demoLab, "hl7v2", "http", raw)
			c.check(t, st, raw, m)
		})
	}

	t.Run("FHIR micro bundle", func(t *testing.T) {
		raw := sharedCase(t, "fhir", microFile)
		r := st.postLab("fhir", key, raw)
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST /v1/labs/fhir: %d %s", r.Status, r.Raw)
		}
		eqf(t, "receipt.message_id", r.str("message_id"), "micro")
		m := st.settled(t, tenant, "fhir", "micro")
		eqf(t, "receipt.lab_message_id", r.str("lab_message_id"), m.ID.String())
		st.checkReceived(t, m, demoLab, "fhir", "http", raw)
		checkMicroFiled(t, st, raw, m)
	})

	t.Run("FHIR without a report status", func(t *testing.T) {
		var g map[string]any
		dec := json.NewDecoder(bytes.NewReader(sharedCase(t, "fhir", microFile)))
		dec.UseNumber()
		if err := dec.Decode(&g); err != nil {
			t.Fatal(err)
		}
		g["id"] = "micro-without-status"
		delete(g["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any), "status")
		raw, _ := json.Marshal(g)
		before := st.count("SELECT count(*) FROM lab_reports")
		r := st.postLab("fhir", key, raw)
		if r.Status != http.StatusUnprocessableEntity || r.problemType() != "lab-message-rejected" {
			t.Fatalf("POST /v1/labs/fhir: %d %s, want 422 lab-message-rejected", r.Status, r.Raw)
		}
		if !strings.HasPrefix(r.str("reason"), "Bundle.entry[0].resource.status") {
			t.Errorf("reason %q does not start with the element path", r.str("reason"))
		}
		m := st.settled(t, tenant, "fhir", "micro-without-status")
		eqf(t, "status", m.Status, models.LabRejected)
		eqf(t, "stored reason", m.Reason, r.str("reason"))
		eqf(t, "problem.lab_message_id", r.str("lab_message_id"), m.ID.String())
		if after := st.count("SELECT count(*) FROM lab_reports"); after != before {
			t.Errorf("reports %d -> %d, want none filed", before, after)
		}
	})

	t.Run("resend is idempotent", func(t *testing.T) {
		before := st.labCounts()
		for _, c := range []struct{ kind, sub, file string }{{"hl7", "hl7", nistFile}, {"hl7", "hl7", enumFile}, {"fhir", "fhir", microFile}} {
			raw := sharedCase(t, c.sub, c.file)
			format, id := "hl7v2", "micro"
			if c.kind == "hl7" {
				id = controlID(t, raw)
			} else {
				format = "fhir"
			}
			first := st.labMessage(tenant, format, id)
			r := st.postLab(c.kind, key, raw)
			if first.Status == models.LabRejected {
				// A resend of a rejected message gets the same answer.
				if r.Status != http.StatusUnprocessableEntity || r.problemType() != "lab-message-rejected" {
					t.Errorf("%s again: %d %s, want 422 lab-message-rejected", c.file, r.Status, r.Raw)
				}
				eqf(t, c.file+" reason", r.str("reason"), first.Reason)
				eqf(t, c.file+" lab_message_id", r.str("lab_message_id"), first.ID.String())
				continue
			}
			if r.Status != http.StatusAccepted {
				t.Fatalf("%s again: %d %s", c.file, r.Status, r.Raw)
			}
			eqf(t, c.file+" duplicate", r.Body["duplicate"], any(true))
			eqf(t, c.file+" lab_message_id", r.str("lab_message_id"), first.ID.String())
			eqf(t, c.file+" message_id", r.str("message_id"), id)
		}
		if after := st.labCounts(); after != before {
			t.Errorf("rows (messages, reports, observations, outbox) %v -> %v after resends", before, after)
		}

		// The same MSH-10 with other bytes is refused, and nothing is
		// recorded.
		changed := withFields(t, sharedCase(t, "hl7", nistFile), fieldEdit{"OBX", 5, "26"})
		r := st.postLab("hl7", key, changed)
		if r.Status != http.StatusBadRequest || r.problemType() != "lab-message-refused" {
			t.Fatalf("same MSH-10, other bytes: %d %s, want 400 lab-message-refused", r.Status, r.Raw)
		}
		if !strings.Contains(r.str("reason"), "already used") {
			t.Errorf("reason %q does not say the ID is used", r.str("reason"))
		}
		if after := st.labCounts(); after != before {
			t.Errorf("rows %v -> %v after a refused message", before, after)
		}
	})

	t.Run("unknown partner key", func(t *testing.T) {
		before := st.labCounts()
		for _, k := range []string{"", demo.LabKeyID + ".not-the-secret", "nobody00.secret"} {
			r := st.postLab("hl7", k, sharedCase(t, "hl7", nistFile))
			if r.Status != http.StatusUnauthorized {
				t.Errorf("key %q: %d %s, want 401", k, r.Status, r.Raw)
			}
		}
		if after := st.labCounts(); after != before {
			t.Errorf("rows %v -> %v after unauthenticated posts", before, after)
		}
	})

	t.Run("correction supersedes", func(t *testing.T) {
		first := st.labMessage(tenant, "hl7v2", controlID(t, sharedCase(t, "hl7", nistFile)))
		v1 := st.oneReport(t, first.ID)
		id := freshID("NIST-CORR")
		raw := withFields(t, sharedCase(t, "hl7", nistFile), fieldEdit{"MSH", 10, id}, fieldEdit{"OBX", 5, "26"})
		if r := st.postLab("hl7", key, raw); r.Status != http.StatusAccepted {
			t.Fatalf("correction: %d %s", r.Status, r.Raw)
		}
		m := st.settled(t, tenant, "hl7v2", id)
		eqf(t, "status", m.Status, models.LabFiled)
		v2 := st.oneReport(t, m.ID)
		eqf(t, "v2.key", v2.ReportKey, v1.ReportKey)
		eqf(t, "v2.version", v2.Version, 2)
		isNil(t, "v2.superseded_by", v2.SupersededBy)
		var old models.LabReport
		if err := st.Admin.Where("id = ?", v1.ID).Take(&old).Error; err != nil {
			t.Fatal(err)
		}
		eqf(t, "v1.version", old.Version, 1)
		if old.SupersededBy == nil || *old.SupersededBy != v2.ID {
			t.Errorf("v1.superseded_by = %v, want %s", old.SupersededBy, v2.ID)
		}
		eqf(t, "v2.ordering", *v2.OrderingPractitionerID, st.garcia())
		// Both versions keep their values: history.
		numIs(t, "v1 value", st.observations(v1.ID)[0].ValueNumber, 25)
		numIs(t, "v2 value", st.observations(v2.ID)[0].ValueNumber, 26)
		eqf(t, "versions on file", st.count("SELECT count(*) FROM lab_reports WHERE tenant_id = ? AND report_key = ?", tenant, v1.ReportKey), int64(2))

		// The first workflow was waiting for a doctor to release version
		// 1; the correction tells it, and it ends.
		s := st.labResult(t, first.WorkflowID)
		eqf(t, "first workflow stage", s.Stage, "done")
		eqf(t, "first workflow outcome", s.Outcome, "filed")
		eqf(t, "first workflow released", len(s.Released), 0)
		st2, err := st.labState(m.WorkflowID)
		if err != nil {
			t.Fatal(err)
		}
		eqf(t, "second workflow stage", st2.Stage, "waiting-for-release")
		if len(st2.Reports) != 1 || st2.Reports[0].SupersededReportID != v1.ID.String() || st2.Reports[0].SupersededWorkflowID != first.WorkflowID {
			t.Errorf("second workflow reports = %+v, want one superseding %s of %s", st2.Reports, v1.ID, first.WorkflowID)
		}

		// The replaced version can be neither reviewed nor released, and
		// the doctor is told why with the same problem type either way.
		doctor := st.login("demo", garciaLogin)
		v1Path := "/v1/lab-results/" + v1.ID.String()
		if r := st.do("POST", v1Path+"/review", doctor, map[string]string{"comment": "ok"}); r.Status != http.StatusConflict || r.problemType() != "lab-result-superseded" {
			t.Errorf("review of version 1: %d %s, want 409 lab-result-superseded", r.Status, r.Raw)
		}
		if r := st.do("POST", v1Path+"/release", doctor, map[string]any{}); r.Status != http.StatusConflict || r.problemType() != "lab-result-superseded" {
			t.Errorf("release of version 1: %d %s, want 409 lab-result-superseded", r.Status, r.Raw)
		}
		if r := st.do("GET", v1Path, doctor, nil); r.Status != http.StatusOK || r.str("superseded_by") != v2.ID.String() {
			t.Errorf("version 1 read: %d %s, want superseded_by %s", r.Status, r.Raw, v2.ID)
		}
		var released int64
		st.Admin.Raw("SELECT count(*) FROM lab_reports WHERE id = ? AND released_at IS NOT NULL", v1.ID).Scan(&released)
		eqf(t, "version 1 released", released, int64(0))
	})
}

// checkMicroFiled compares the filed micro bundle with the file itself:
// every Observation, its value with comparator and unit, its
// interpretation flags, coded values and members.
func checkMicroFiled(t *testing.T, st *stack, raw []byte, m models.LabMessage) {
	eqf(t, "status", m.Status, models.LabFiled)
	r := st.oneReport(t, m.ID)
	eqf(t, "report.patient", r.PatientID, st.john())
	eqf(t, "report.key", r.ReportKey, "http://hnam.org/identifiers/orders|290741144")
	eqf(t, "report.filler", r.FillerNumber, "290741144")
	eqf(t, "report.placer", r.PlacerNumber, "255337816")
	eqf(t, "report.status", r.Status, "final")
	eqf(t, "report.code", r.Code, "632-0")
	eqf(t, "report.code_system", r.CodeSystem, "http://loinc.org")
	eqf(t, "report.severity", r.Severity, "abnormal")
	timeIs(t, "report.issued_at", r.IssuedAt, utcAt("2009-08-09T22:25:44Z"))

	type quantity struct {
		Value      json.Number `json:"value"`
		Comparator string      `json:"comparator"`
		Unit       string      `json:"unit"`
		Code       string      `json:"code"`
	}
	type coding struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display"`
	}
	type concept struct {
		Coding []coding `json:"coding"`
		Text   string   `json:"text"`
	}
	type ref struct {
		Reference string `json:"reference"`
	}
	var bundle struct {
		Entry []struct {
			Resource struct {
				ResourceType   string    `json:"resourceType"`
				ID             string    `json:"id"`
				ValueQuantity  *quantity `json:"valueQuantity"`
				ValueString    *string   `json:"valueString"`
				ValueConcept   *concept  `json:"valueCodeableConcept"`
				Interpretation []concept `json:"interpretation"`
				HasMember      []ref     `json:"hasMember"`
			} `json:"resource"`
		} `json:"entry"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&bundle); err != nil {
		t.Fatal(err)
	}
	obs := st.observations(r.ID)
	byKey := map[string]models.LabObservation{}
	for _, o := range obs {
		byKey[o.ObsKey] = o
		eqf(t, o.ObsKey+".patient", o.PatientID, st.john())
		eqf(t, o.ObsKey+".status", o.Status, "final")
	}
	inFile := 0
	comparators := map[string]int{}
	for _, e := range bundle.Entry {
		res := e.Resource
		if res.ResourceType != "Observation" {
			continue
		}
		inFile++
		o, ok := byKey[res.ID]
		if !ok {
			t.Errorf("observation %s of the file is not stored", res.ID)
			continue
		}
		switch {
		case res.ValueQuantity != nil:
			q := res.ValueQuantity
			want, _ := q.Value.Float64()
			eqf(t, res.ID+".kind", o.Kind, "quantity")
			numIs(t, res.ID+".value_number", o.ValueNumber, want)
			eqf(t, res.ID+".comparator", o.Comparator, q.Comparator)
			unit := q.Code
			if unit == "" {
				unit = q.Unit
			}
			eqf(t, res.ID+".unit", o.Unit, unit)
			eqf(t, res.ID+".value_text", o.ValueText, q.Comparator+q.Value.String())
			comparators[q.Comparator]++
		case res.ValueString != nil:
			eqf(t, res.ID+".kind", o.Kind, "text")
			eqf(t, res.ID+".value_text", o.ValueText, *res.ValueString)
		case res.ValueConcept != nil:
			c := res.ValueConcept.Coding[0]
			eqf(t, res.ID+".kind", o.Kind, "coded")
			eqf(t, res.ID+".coded_system", o.CodedSystem, c.System)
			eqf(t, res.ID+".coded_code", o.CodedCode, c.Code)
		default:
			eqf(t, res.ID+".kind", o.Kind, "none")
		}
		var flags []string
		for _, in := range res.Interpretation {
			for _, c := range in.Coding {
				flags = append(flags, c.Code)
			}
		}
		if flags == nil {
			flags = []string{}
		}
		deqf(t, res.ID+".flags", o.Flags, flags)
		members := []string{}
		for _, h := range res.HasMember {
			members = append(members, h.Reference[strings.LastIndex(h.Reference, "/")+1:])
		}
		deqf(t, res.ID+".members", o.Members, members)
	}
	// The issue says 24; the file holds 25, and every one is stored.
	eqf(t, "observations in the file", inFile, 25)
	eqf(t, "observations stored", len(obs), inFile)
	if comparators["<="] == 0 || comparators[">="] == 0 {
		t.Errorf("comparators in the file %v: the checks above need both <= and >=", comparators)
	}

	// Spot checks on named observations, as a reader would look.
	cefazolin := byKey["obx2-2"]
	eqf(t, "obx2-2.display", cefazolin.Display, "Cefazolin")
	eqf(t, "obx2-2.comparator", cefazolin.Comparator, "<=")
	numIs(t, "obx2-2.value_number", cefazolin.ValueNumber, 2)
	deqf(t, "obx2-2.flags", cefazolin.Flags, []string{"S"})
	clinda := byKey["obx2-6"]
	eqf(t, "obx2-6.comparator", clinda.Comparator, ">=")
	numIs(t, "obx2-6.value_number", clinda.ValueNumber, 0.5)
	tmpsmx := byKey["obx2-32"]
	eqf(t, "obx2-32.comparator", tmpsmx.Comparator, "<=")
	numIs(t, "obx2-32.value_number", tmpsmx.ValueNumber, 0.0526)
	ery := byKey["obx2-12"]
	deqf(t, "obx2-12.flags", ery.Flags, []string{"R"})
	eqf(t, "obx2-12.severity", ery.Severity, "abnormal")
	org := byKey["obx1-4"]
	eqf(t, "organism.kind", org.Kind, "coded")
	eqf(t, "organism.coded_system", org.CodedSystem, "http://acme.org/lab/codes/organisms")
	eqf(t, "organism.coded_code", org.CodedCode, "Staaur")
	eqf(t, "organism.coded_display", org.CodedDisplay, "Staphylococcus aureus")
	eqf(t, "organism.value_text", org.ValueText, "Staphylococcus aureus")
	deqf(t, "org1.members", byKey["org1"].Members, []string{"obx1-4", "obx1-5", "obr-2", "obr-3"})
	eqf(t, "org1.severity", byKey["org1"].Severity, "normal")
	deqf(t, "obr-3.members", byKey["obr-3"].Members, []string{"obx3-1"})
}

// TestLabReviewReleaseAndPermissions follows a result from filing to the
// patient under each release rule, with who may read what, the audit of
// every read, and the notices doctor and patient get.
func TestLabReviewReleaseAndPermissions(t *testing.T) {
	st := newStack(t)
	key := demo.LabKeyFor("demo")
	tenant := st.Demo.Tenant.ID
	patient := st.login("demo", "philip@demo.carebook.test")
	otherPatient := st.login("demo", "paul@demo.carebook.test")
	doctor := st.login("demo", garciaLogin)
	otherDoctor := st.login("demo", "doctor1@demo.carebook.test")
	staff := st.login("demo", "staff.newyork@demo.carebook.test")
	billing := st.login("demo", "billing@demo.carebook.test")

	raw := sharedCase(t, "hl7", nistFile)
	if r := st.postLab("hl7", key, raw); r.Status != http.StatusAccepted {
		t.Fatalf("POST /v1/labs/hl7: %d %s", r.Status, r.Raw)
	}
	msg := st.settled(t, tenant, "hl7v2", controlID(t, raw))
	rep := st.oneReport(t, msg.ID)
	path := "/v1/lab-results/" + rep.ID.String()

	t.Run("abnormal result tells the ordering doctor", func(t *testing.T) {
		garciaUser := uuid.MustParse(st.userID(garciaLogin))
		rows := st.notifications(tenant, "lab.result.abnormal")
		var channels []string
		for _, n := range rows {
			if n.RecipientUser == nil || *n.RecipientUser != garciaUser {
				t.Errorf("lab.result.abnormal to %v, want only Dr. Garcia's user", n.RecipientUser)
			}
			channels = append(channels, n.Channel)
			var payload map[string]string
			if err := json.Unmarshal(n.Payload, &payload); err != nil {
				t.Fatalf("payload: %v", err)
			}
			deqf(t, "payload", payload, map[string]string{"labReportID": rep.ID.String(), "severity": "abnormal"})
		}
		slices.Sort(channels)
		deqf(t, "channels", channels, []string{models.ChannelEmail, models.ChannelPush})
		eqf(t, "other lab notices", st.count("SELECT count(*) FROM notification_outbox WHERE tenant_id = ? AND template LIKE 'lab.%' AND template <> 'lab.result.abnormal'", tenant), int64(0))
	})

	t.Run("release needs a review first", func(t *testing.T) {
		if r := st.do("GET", "/v1/lab-results", patient, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
			t.Errorf("patient list before release: %d %s", r.Status, r.Raw)
		}
		if r := st.do("GET", path, patient, nil); r.Status != http.StatusNotFound {
			t.Errorf("patient read before release: %d %s, want 404", r.Status, r.Raw)
		}
		r := st.do("POST", path+"/release", doctor, map[string]any{})
		if r.Status != http.StatusConflict || r.problemType() != "lab-result-not-reviewed" {
			t.Fatalf("release before review: %d %s, want 409 lab-result-not-reviewed", r.Status, r.Raw)
		}
		eqf(t, "released notices", len(st.notifications(tenant, "lab.result.released")), 0)

		const comment = "Repeat the lead level in four weeks."
		r = st.do("POST", path+"/review", doctor, map[string]string{"comment": comment})
		if r.Status != http.StatusOK {
			t.Fatalf("review: %d %s", r.Status, r.Raw)
		}
		eqf(t, "review_comment", r.str("review_comment"), comment)
		if r.str("reviewed_at") == "" {
			t.Error("reviewed_at is empty after review")
		}
		r = st.do("POST", path+"/release", doctor, map[string]any{})
		if r.Status != http.StatusOK {
			t.Fatalf("release: %d %s", r.Status, r.Raw)
		}
		if r.str("released_at") == "" {
			t.Errorf("released_at empty after release: %s", r.Raw)
		}
		var after models.LabReport
		if err := st.Admin.Where("id = ?", rep.ID).Take(&after).Error; err != nil {
			t.Fatal(err)
		}
		if after.ReleasedBy == nil || after.ReleasedBy.String() != st.userID(garciaLogin) {
			t.Errorf("released_by = %v, want Dr. Garcia's user", after.ReleasedBy)
		}
		s := st.labResult(t, msg.WorkflowID)
		eqf(t, "workflow stage", s.Stage, "done")
		deqf(t, "workflow released", s.Released, []string{rep.ID.String()})

		list := st.do("GET", "/v1/lab-results", patient, nil)
		if list.Status != http.StatusOK || len(list.items()) != 1 || list.items()[0]["id"] != rep.ID.String() {
			t.Fatalf("patient list after release: %d %s", list.Status, list.Raw)
		}
		got := st.do("GET", path, patient, nil)
		if got.Status != http.StatusOK {
			t.Fatalf("patient read: %d %s", got.Status, got.Raw)
		}
		if _, ok := got.Body["review_comment"]; ok || bytes.Contains(got.Raw, []byte(comment)) {
			t.Errorf("the patient sees the review comment: %s", got.Raw)
		}
		if _, ok := got.Body["workflow_id"]; ok {
			t.Errorf("the patient sees the workflow ID: %s", got.Raw)
		}
		eqf(t, "ordering_doctor", got.str("ordering_doctor"), "Dr. Maria Garcia")
		eqf(t, "severity", got.str("severity"), "abnormal")
		obs, _ := got.Body["observations"].([]any)
		if len(obs) != 1 {
			t.Fatalf("observations = %d, want 1: %s", len(obs), got.Raw)
		}
		o := obs[0].(map[string]any)
		eqf(t, "reference_range", o["reference_range"], any("<10 ug/dl"))
		eqf(t, "high", o["high"], any(10.0))
		deqf(t, "flags", o["flags"], []string{"H"})
		eqf(t, "number", o["number"], any(25.0))
		eqf(t, "unit", o["unit"], any("ug/dl"))

		notes := st.notifications(tenant, "lab.result.released")
		if len(notes) != 1 {
			t.Fatalf("lab.result.released notices = %d, want 1", len(notes))
		}
		eqf(t, "recipient", notes[0].RecipientUser.String(), st.userID("philip@demo.carebook.test"))
		var payload map[string]string
		if err := json.Unmarshal(notes[0].Payload, &payload); err != nil {
			t.Fatal(err)
		}
		deqf(t, "released payload", payload, map[string]string{"labReportID": rep.ID.String()})

		// Releasing again answers the first release and tells nobody twice.
		if r := st.do("POST", path+"/release", doctor, map[string]any{}); r.Status != http.StatusOK {
			t.Errorf("second release: %d %s", r.Status, r.Raw)
		}
		eqf(t, "released notices after a second release", len(st.notifications(tenant, "lab.result.released")), 1)
	})

	t.Run("pdf", func(t *testing.T) {
		r := st.do("GET", path+"/pdf", patient, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("pdf: %d %s", r.Status, r.Raw)
		}
		res, err := http.Get(r.str("url"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("presigned download: %d", res.StatusCode)
		}
		eqf(t, "Content-Type", res.Header.Get("Content-Type"), "application/pdf")
		if !bytes.HasPrefix(body, []byte("%PDF")) {
			t.Errorf("download does not start with %%PDF")
		}
	})

	// A second lead result for Philip, a month later: the trend shows both
	// values to the doctor, oldest first, and to the patient only what
	// was released.
	later := nistVariant(t, freshID("NIST-TREND"), "9700124",
		fieldEdit{"OBR", 7, "200809151030-0700"}, fieldEdit{"OBX", 14, "200809151030-0700"}, fieldEdit{"OBX", 5, "31"})
	if r := st.postLab("hl7", key, later); r.Status != http.StatusAccepted {
		t.Fatalf("second result: %d %s", r.Status, r.Raw)
	}
	laterMsg := st.settled(t, tenant, "hl7v2", controlID(t, later))
	laterRep := st.oneReport(t, laterMsg.ID)

	t.Run("trend", func(t *testing.T) {
		r := st.do("GET", "/v1/lab-results/"+laterRep.ID.String()+"/trend", doctor, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("trend: %d %s", r.Status, r.Raw)
		}
		items := r.items()
		if len(items) != 1 {
			t.Fatalf("tests in trend = %d, want 1: %s", len(items), r.Raw)
		}
		eqf(t, "test code", items[0]["test"].(map[string]any)["code"], any("10368-9"))
		points, _ := items[0]["points"].([]any)
		var got []any
		var reports []any
		for _, p := range points {
			got = append(got, p.(map[string]any)["number"])
			reports = append(reports, p.(map[string]any)["report_id"])
		}
		deqf(t, "trend values", got, []float64{25, 31})
		deqf(t, "trend reports", reports, []string{rep.ID.String(), laterRep.ID.String()})

		r = st.do("GET", path+"/trend", patient, nil)
		if r.Status != http.StatusOK || len(r.items()) != 1 {
			t.Fatalf("patient trend: %d %s", r.Status, r.Raw)
		}
		points, _ = r.items()[0]["points"].([]any)
		if len(points) != 1 || points[0].(map[string]any)["report_id"] != rep.ID.String() {
			t.Errorf("patient trend points = %v, want only the released result", points)
		}
	})

	t.Run("permissions", func(t *testing.T) {
		for _, p := range []string{"/v1/lab-results", path, path + "/trend", path + "/pdf"} {
			if r := st.do("GET", p, billing, nil); r.Status != http.StatusForbidden {
				t.Errorf("billing GET %s: %d, want 403", p, r.Status)
			}
		}
		if r := st.do("GET", path+"/raw", patient, nil); r.Status != http.StatusForbidden {
			t.Errorf("patient raw: %d, want 403", r.Status)
		}
		// A doctor who did not order it and has no appointment with the
		// patient does not see it at all.
		eqf(t, "appointments of the other doctor with philip",
			st.count("SELECT count(*) FROM appointments WHERE patient_id = ? AND practitioner_id = ?", st.philip(), st.Demo.Practitioners[0].ID), int64(0))
		if *rep.OrderingPractitionerID == st.Demo.Practitioners[0].ID {
			t.Fatal("the other doctor ordered the result; the check below means nothing")
		}
		for _, p := range []string{path, path + "/trend", path + "/pdf"} {
			if r := st.do("GET", p, otherDoctor, nil); r.Status != http.StatusNotFound {
				t.Errorf("another doctor GET %s: %d, want 404", p, r.Status)
			}
		}
		if r := st.do("POST", path+"/review", otherDoctor, map[string]string{"comment": "x"}); r.Status != http.StatusNotFound {
			t.Errorf("another doctor review: %d, want 404", r.Status)
		}
		if r := st.do("GET", "/v1/lab-results", otherDoctor, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
			t.Errorf("another doctor list: %d %s, want none", r.Status, r.Raw)
		}
		// Another patient does not see a released result of Philip's.
		if r := st.do("GET", path, otherPatient, nil); r.Status != http.StatusNotFound {
			t.Errorf("another patient read: %d, want 404", r.Status)
		}
		// Staff read the raw message byte for byte.
		r := st.do("GET", path+"/raw", staff, nil)
		if r.Status != http.StatusOK || !bytes.Equal(r.Raw, raw) {
			t.Errorf("staff raw: %d, %d bytes, want the %d sent", r.Status, len(r.Raw), len(raw))
		}
		eqf(t, "raw Cache-Control", r.Header.Get("Cache-Control"), "no-store")
	})

	t.Run("every read is audited", func(t *testing.T) {
		staffUser := st.userID("staff.newyork@demo.carebook.test")
		patientUser := st.userID("philip@demo.carebook.test")
		philip := st.philip()
		reads := []struct {
			name, token, path, user, role, action string
			resource, patient                     *uuid.UUID
		}{
			{"list", staff, "/v1/lab-results", staffUser, "staff", "list", nil, nil},
			{"list for a patient", staff, "/v1/lab-results?patient_id=" + philip.String(), staffUser, "staff", "list", nil, &philip},
			{"get", staff, path, staffUser, "staff", "read", &rep.ID, &philip},
			{"pdf", staff, path + "/pdf", staffUser, "staff", "download-pdf", &rep.ID, &philip},
			{"raw", staff, path + "/raw", staffUser, "staff", "read-raw", &rep.ID, &philip},
			{"trend", staff, path + "/trend", staffUser, "staff", "read-trend", &rep.ID, &philip},
			{"patient get", patient, path, patientUser, "patient", "read", &rep.ID, &philip},
			{"patient list", patient, "/v1/lab-results", patientUser, "patient", "list", nil, &philip},
		}
		for _, rd := range reads {
			var seen []uuid.UUID
			if err := st.Admin.Raw("SELECT id FROM audit_events WHERE tenant_id = ?", tenant).Scan(&seen).Error; err != nil {
				t.Fatal(err)
			}
			if r := st.do("GET", rd.path, rd.token, nil); r.Status != http.StatusOK {
				t.Fatalf("%s: %d %s", rd.name, r.Status, r.Raw)
			}
			var fresh []models.AuditEvent
			q := st.Admin.Where("tenant_id = ?", tenant)
			if len(seen) > 0 {
				q = q.Where("id NOT IN ?", seen)
			}
			if err := q.Find(&fresh).Error; err != nil {
				t.Fatal(err)
			}
			if len(fresh) != 1 {
				t.Errorf("%s: %d audit events, want 1", rd.name, len(fresh))
				continue
			}
			ev := fresh[0]
			eqf(t, rd.name+" actor", ev.ActorUser.String(), rd.user)
			eqf(t, rd.name+" role", ev.ActorRole, rd.role)
			eqf(t, rd.name+" action", ev.Action, rd.action)
			eqf(t, rd.name+" resource type", ev.ResourceType, "lab_report")
			deqf(t, rd.name+" resource", ev.ResourceID, rd.resource)
			deqf(t, rd.name+" patient", ev.PatientID, rd.patient)
			if ev.RequestID == "" {
				t.Errorf("%s: audit event has no request ID", rd.name)
			}
		}
	})

	t.Run("immediate release", func(t *testing.T) {
		st.setReleaseRule(tenant, models.ReleaseImmediate, 3)
		raw := nistVariant(t, freshID("NIST-NOW"), "9700125")
		if r := st.postLab("hl7", key, raw); r.Status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.Status, r.Raw)
		}
		m := st.labMessage(tenant, "hl7v2", controlID(t, raw))
		s := st.labResult(t, m.WorkflowID)
		r := st.oneReport(t, m.ID)
		eqf(t, "workflow stage", s.Stage, "done")
		deqf(t, "workflow released", s.Released, []string{r.ID.String()})
		eqf(t, "release_rule", r.ReleaseRule, models.ReleaseImmediate)
		if r.ReleasedAt == nil {
			t.Fatal("not released")
		}
		isNil(t, "released_by", r.ReleasedBy)
		isNil(t, "reviewed_at", r.ReviewedAt)
		if g := st.do("GET", "/v1/lab-results/"+r.ID.String(), patient, nil); g.Status != http.StatusOK {
			t.Errorf("patient read: %d %s", g.Status, g.Raw)
		}
		eqf(t, "released notices", st.count("SELECT count(*) FROM notification_outbox WHERE template = 'lab.result.released' AND payload->>'labReportID' = ?", r.ID.String()), int64(1))
	})

	t.Run("release after days", func(t *testing.T) {
		st.setReleaseRule(tenant, models.ReleaseAfterDays, 0)
		raw := nistVariant(t, freshID("NIST-DAYS"), "9700126")
		if r := st.postLab("hl7", key, raw); r.Status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.Status, r.Raw)
		}
		m := st.labMessage(tenant, "hl7v2", controlID(t, raw))
		s := st.labResult(t, m.WorkflowID)
		r := st.oneReport(t, m.ID)
		eqf(t, "workflow stage", s.Stage, "done")
		deqf(t, "workflow released", s.Released, []string{r.ID.String()})
		eqf(t, "release_rule", r.ReleaseRule, models.ReleaseAfterDays)
		if r.ReleaseDueAt == nil || !r.ReleaseDueAt.Equal(r.FiledAt) {
			t.Errorf("release_due_at = %v, want the filing time %v (0 days)", r.ReleaseDueAt, r.FiledAt)
		}
		if r.ReleasedAt == nil || r.ReleasedAt.Before(*r.ReleaseDueAt) {
			t.Fatalf("released_at = %v, want at or after %v", r.ReleasedAt, r.ReleaseDueAt)
		}
		isNil(t, "released_by", r.ReleasedBy)
		if g := st.do("GET", "/v1/lab-results/"+r.ID.String(), patient, nil); g.Status != http.StatusOK {
			t.Errorf("patient read: %d %s", g.Status, g.Raw)
		}
	})
}

// TestLabTenantIsolationAndTheUnmatchedQueue: a message for one tenant
// never reaches another's patient or users; a message whose patient cannot
// be found waits for staff, who file it under a patient or dismiss it.
func TestLabTenantIsolationAndTheUnmatchedQueue(t *testing.T) {
	st := newStack(t)
	demoTenant, harborTenant := st.Demo.Tenant.ID, st.Other.Tenant.ID
	demoKey, harborKey := demo.LabKeyFor("demo"), demo.LabKeyFor("harbor")
	raw := sharedCase(t, "hl7", nistFile)
	id := controlID(t, raw)

	harborAdmin := st.login("harbor", "admin@harbor.carebook.test")
	harborStaff := st.login("harbor", "staff.newyork@harbor.carebook.test")
	staff := st.login("demo", "staff.newyork@demo.carebook.test")
	doctor := st.login("demo", garciaLogin)
	philip := st.login("demo", "philip@demo.carebook.test")
	paul := st.login("demo", "paul@demo.carebook.test")

	t.Run("another tenant's lab", func(t *testing.T) {
		if err := st.Admin.Exec("DELETE FROM patient_identifiers WHERE tenant_id = ?", harborTenant).Error; err != nil {
			t.Fatal(err)
		}
		r := st.postLab("hl7", harborKey, raw)
		if r.Status != http.StatusAccepted {
			t.Fatalf("harbor POST: %d %s", r.Status, r.Raw)
		}
		m := st.settled(t, harborTenant, "hl7v2", id)
		eqf(t, "harbor message tenant", m.TenantID, harborTenant)
		eqf(t, "harbor message partner", m.PartnerID, st.Other.LabPartners[0].ID)
		eqf(t, "harbor status", m.Status, models.LabUnmatched)
		eqf(t, "harbor match", m.Match, workflows.LabUnmatched)
		isNil(t, "harbor patient", m.PatientID)
		eqf(t, "reports anywhere", st.count("SELECT count(*) FROM lab_reports"), int64(0))
		eqf(t, "demo messages", st.count("SELECT count(*) FROM lab_messages WHERE tenant_id = ?", demoTenant), int64(0))
		eqf(t, "demo notices", st.count("SELECT count(*) FROM notification_outbox WHERE tenant_id = ?", demoTenant), int64(0))
		// Harbor's staff hear of it; nobody of demo does.
		for _, n := range st.notifications(harborTenant, "lab.unmatched") {
			var tenantOfUser string
			if err := st.Admin.Raw("SELECT tenant_id::text FROM users WHERE id = ?", n.RecipientUser).Scan(&tenantOfUser).Error; err != nil {
				t.Fatal(err)
			}
			eqf(t, "unmatched notice tenant", tenantOfUser, harborTenant.String())
		}
		if len(st.notifications(harborTenant, "lab.unmatched")) == 0 {
			t.Error("harbor staff were not told of the unmatched message")
		}
		// Demo's staff do not see harbor's queue.
		if r := st.do("GET", "/v1/lab-messages", staff, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
			t.Errorf("demo staff queue: %d %s, want empty", r.Status, r.Raw)
		}
		if r := st.do("GET", "/v1/lab-messages/"+m.ID.String(), staff, nil); r.Status != http.StatusNotFound {
			t.Errorf("demo staff read of harbor's message: %d, want 404", r.Status)
		}
	})

	// The same message from demo's lab files for demo's Philip, released
	// at once under the immediate rule.
	st.setReleaseRule(demoTenant, models.ReleaseImmediate, 3)
	if r := st.postLab("hl7", demoKey, raw); r.Status != http.StatusAccepted {
		t.Fatalf("demo POST: %d %s", r.Status, r.Raw)
	}
	demoMsg := st.labMessage(demoTenant, "hl7v2", id)
	st.labResult(t, demoMsg.WorkflowID)
	demoRep := st.oneReport(t, demoMsg.ID)
	eqf(t, "demo report patient", demoRep.PatientID, st.philip())
	path := "/v1/lab-results/" + demoRep.ID.String()

	t.Run("reads stay in the tenant and with the patient", func(t *testing.T) {
		if r := st.do("GET", path, philip, nil); r.Status != http.StatusOK {
			t.Fatalf("philip reads his result: %d %s", r.Status, r.Raw)
		}
		for _, tok := range []string{harborAdmin, harborStaff} {
			for _, p := range []string{path, path + "/pdf", path + "/trend", path + "/raw", "/v1/lab-messages/" + demoMsg.ID.String()} {
				if r := st.do("GET", p, tok, nil); r.Status != http.StatusNotFound {
					t.Errorf("harbor GET %s: %d %s, want 404", p, r.Status, r.Raw)
				}
			}
			if r := st.do("GET", "/v1/lab-results", tok, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
				t.Errorf("harbor list: %d %s, want none", r.Status, r.Raw)
			}
		}
		for _, p := range []string{path, path + "/pdf", path + "/trend"} {
			if r := st.do("GET", p, paul, nil); r.Status != http.StatusNotFound {
				t.Errorf("paul GET %s: %d, want 404", p, r.Status)
			}
		}
		if r := st.do("GET", "/v1/lab-results", paul, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
			t.Errorf("paul list: %d %s, want none", r.Status, r.Raw)
		}
	})

	// A message whose patient identifier nobody in demo holds.
	unknown := func(prefix, filler string) []byte {
		pid3 := hl7Field(t, raw, "PID", 3).Raw
		return nistVariant(t, freshID(prefix), filler,
			fieldEdit{"PID", 3, strings.Replace(pid3, "9817566735", "5550000001", 1)})
	}

	t.Run("unmatched queue: assign", func(t *testing.T) {
		before := len(st.notifications(demoTenant, "lab.unmatched"))
		msgRaw := unknown("NIST-UNK", "9700201")
		if r := st.postLab("hl7", demoKey, msgRaw); r.Status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.Status, r.Raw)
		}
		m := st.settled(t, demoTenant, "hl7v2", controlID(t, msgRaw))
		eqf(t, "status", m.Status, models.LabUnmatched)
		eqf(t, "match", m.Match, workflows.LabUnmatched)
		eqf(t, "reports", len(st.labReports(m.ID)), 0)

		// Every staff member and admin of demo is told, with the
		// message's ID only.
		var queue []string
		if err := st.Admin.Raw("SELECT id::text FROM users WHERE tenant_id = ? AND role IN ('staff', 'admin') ORDER BY id", demoTenant).Scan(&queue).Error; err != nil {
			t.Fatal(err)
		}
		var told []string
		for _, n := range st.notifications(demoTenant, "lab.unmatched") {
			var payload map[string]string
			if err := json.Unmarshal(n.Payload, &payload); err != nil {
				t.Fatal(err)
			}
			if payload["labMessageID"] != m.ID.String() {
				continue
			}
			deqf(t, "unmatched payload", payload, map[string]string{"labMessageID": m.ID.String()})
			told = append(told, n.RecipientUser.String())
		}
		slices.Sort(told)
		deqf(t, "told", told, queue)
		eqf(t, "unmatched notices added", len(st.notifications(demoTenant, "lab.unmatched"))-before, len(queue))

		list := st.do("GET", "/v1/lab-messages", staff, nil)
		if list.Status != http.StatusOK {
			t.Fatalf("queue: %d %s", list.Status, list.Raw)
		}
		var inQueue bool
		for _, it := range list.items() {
			if it["id"] == m.ID.String() {
				inQueue = true
				eqf(t, "queue status", it["status"], any("unmatched"))
				eqf(t, "queue message_id", it["message_id"], any(m.MessageID))
			}
		}
		if !inQueue {
			t.Fatalf("queue does not list the message: %s", list.Raw)
		}

		one := st.do("GET", "/v1/lab-messages/"+m.ID.String(), staff, nil)
		if one.Status != http.StatusOK {
			t.Fatalf("read: %d %s", one.Status, one.Raw)
		}
		sent, _ := one.Body["sent_patient"].(map[string]any)
		if sent == nil {
			t.Fatalf("no sent_patient: %s", one.Raw)
		}
		eqf(t, "sent family", sent["family_name"], any("Johnson"))
		eqf(t, "sent given", sent["given_name"], any("Philip"))
		eqf(t, "sent birth date", sent["birth_date"], any("2007-05-26"))
		eqf(t, "sent sex", sent["sex"], any("M"))
		deqf(t, "sent identifiers", sent["identifiers"], []map[string]string{
			{"system": "urn:oid:2.16.840.1.113883.19.3.2.1", "value": "5550000001", "type": "MR"}})
		deqf(t, "sent tests", sent["tests"], []string{"Lead BldC-mCnc"})
		deqf(t, "candidates", sent["candidates"], []map[string]string{
			{"patient_id": st.philip().String(), "name": "Philip Johnson", "birth_date": "2007-05-26", "why": "name and birth date"}})

		if r := st.do("POST", "/v1/lab-messages/"+m.ID.String()+"/assign", doctor, map[string]string{"patient_id": st.philip().String()}); r.Status != http.StatusForbidden {
			t.Errorf("doctor assign: %d %s, want 403", r.Status, r.Raw)
		}
		if r := st.do("POST", "/v1/lab-messages/"+m.ID.String()+"/assign", harborStaff, map[string]string{"patient_id": st.philip().String()}); r.Status != http.StatusNotFound {
			t.Errorf("harbor staff assign: %d %s, want 404", r.Status, r.Raw)
		}
		// A patient of another tenant is no patient here.
		if r := st.do("POST", "/v1/lab-messages/"+m.ID.String()+"/assign", staff, map[string]string{"patient_id": st.Other.Patients[2].ID.String()}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "unknown-patient" {
			t.Errorf("assign to harbor's patient: %d %s, want 422 unknown-patient", r.Status, r.Raw)
		}
		r := st.do("POST", "/v1/lab-messages/"+m.ID.String()+"/assign", staff, map[string]string{"patient_id": st.philip().String()})
		if r.Status != http.StatusAccepted {
			t.Fatalf("assign: %d %s", r.Status, r.Raw)
		}
		s := st.labResult(t, m.WorkflowID)
		eqf(t, "workflow match", s.Match, workflows.LabAssigned)
		eqf(t, "workflow outcome", s.Outcome, "filed")
		m = st.labMessage(demoTenant, "hl7v2", m.MessageID)
		eqf(t, "status after assign", m.Status, models.LabFiled)
		eqf(t, "match after assign", m.Match, workflows.LabAssigned)
		if m.PatientID == nil || *m.PatientID != st.philip() {
			t.Errorf("message patient = %v, want philip", m.PatientID)
		}
		if m.ResolvedBy == nil || m.ResolvedBy.String() != st.userID("staff.newyork@demo.carebook.test") {
			t.Errorf("resolved_by = %v, want the staff user", m.ResolvedBy)
		}
		rep := st.oneReport(t, m.ID)
		eqf(t, "report patient", rep.PatientID, st.philip())
		for _, o := range st.observations(rep.ID) {
			eqf(t, "observation patient", o.PatientID, st.philip())
		}
		// Assigning twice is refused.
		if r := st.do("POST", "/v1/lab-messages/"+m.ID.String()+"/assign", staff, map[string]string{"patient_id": st.paul().String()}); r.Status != http.StatusConflict {
			t.Errorf("second assign: %d %s, want 409", r.Status, r.Raw)
		}
	})

	t.Run("unmatched queue: two patients match", func(t *testing.T) {
		// PID-3 names Philip's number and, repeated, Paul's: a result is
		// never filed on a guess.
		pid3 := hl7Field(t, raw, "PID", 3).Raw + "~" + hl7Field(t, sharedCase(t, "hl7", cernerFile), "PID", 3).Raw
		msgRaw := nistVariant(t, freshID("NIST-TWO"), "9700203", fieldEdit{"PID", 3, pid3})
		if r := st.postLab("hl7", demoKey, msgRaw); r.Status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.Status, r.Raw)
		}
		m := st.settled(t, demoTenant, "hl7v2", controlID(t, msgRaw))
		eqf(t, "status", m.Status, models.LabUnmatched)
		eqf(t, "match", m.Match, workflows.LabAmbiguous)
		isNil(t, "patient", m.PatientID)
		eqf(t, "reports", len(st.labReports(m.ID)), 0)
		one := st.do("GET", "/v1/lab-messages/"+m.ID.String(), staff, nil)
		sent, _ := one.Body["sent_patient"].(map[string]any)
		if sent == nil {
			t.Fatalf("no sent_patient: %d %s", one.Status, one.Raw)
		}
		var got []string
		for _, c := range sent["candidates"].([]any) {
			c := c.(map[string]any)
			if c["why"] == "identifier" {
				got = append(got, c["patient_id"].(string))
			}
		}
		want := []string{st.philip().String(), st.paul().String()}
		slices.Sort(got)
		slices.Sort(want)
		deqf(t, "candidates by identifier", got, want)
	})

	t.Run("unmatched queue: dismiss", func(t *testing.T) {
		msgRaw := unknown("NIST-DISMISS", "9700202")
		if r := st.postLab("hl7", demoKey, msgRaw); r.Status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", r.Status, r.Raw)
		}
		m := st.settled(t, demoTenant, "hl7v2", controlID(t, msgRaw))
		eqf(t, "status", m.Status, models.LabUnmatched)
		p := "/v1/lab-messages/" + m.ID.String() + "/dismiss"
		if r := st.do("POST", p, staff, map[string]string{"reason": "  "}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "reason-required" {
			t.Errorf("dismiss without a reason: %d %s, want 422 reason-required", r.Status, r.Raw)
		}
		if r := st.do("POST", p, doctor, map[string]string{"reason": "not ours"}); r.Status != http.StatusForbidden {
			t.Errorf("doctor dismiss: %d, want 403", r.Status)
		}
		const reason = "A patient of another clinic."
		if r := st.do("POST", p, staff, map[string]string{"reason": reason}); r.Status != http.StatusAccepted {
			t.Fatalf("dismiss: %d %s", r.Status, r.Raw)
		}
		s := st.labResult(t, m.WorkflowID)
		eqf(t, "workflow outcome", s.Outcome, "dismissed")
		m = st.labMessage(demoTenant, "hl7v2", m.MessageID)
		eqf(t, "status", m.Status, models.LabDismissed)
		eqf(t, "reason", m.Reason, reason)
		if m.ResolvedBy == nil || m.ResolvedBy.String() != st.userID("staff.newyork@demo.carebook.test") {
			t.Errorf("resolved_by = %v, want the staff user", m.ResolvedBy)
		}
		if m.ResolvedAt == nil {
			t.Error("resolved_at is empty")
		}
		eqf(t, "reports", len(st.labReports(m.ID)), 0)
		if r := st.do("GET", "/v1/lab-messages?status=dismissed", staff, nil); r.Status != http.StatusOK || len(r.items()) != 1 || r.items()[0]["id"] != m.ID.String() {
			t.Errorf("dismissed list: %d %s", r.Status, r.Raw)
		}
	})
}
