package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"gorm.io/gorm"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/api"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/nationalid"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/workflows"
)

// philipLogin is the NIST sample message's patient, Philip Johnson.
const philipLogin = "philip@demo.carebook.test"

// philipTraces are what must not survive Philip's erasure anywhere: his
// names, his MRN, his e-mail, and his phone as the demo holds it and as
// the lab message wrote it.
var philipTraces = []string{"Philip", "Johnson", "9817566735", philipLogin, "+1 303 555 8889", "5548889"}

// dsrWait polls a request until it leaves pending and running.
func (st *stack) dsrWait(t *testing.T, token, id string) response {
	t.Helper()
	var r response
	labWait(t, "request "+id+" to finish", func() bool {
		r = st.do("GET", "/v1/dsr/"+id, token, nil)
		return r.Status == http.StatusOK && r.str("status") != "pending" && r.str("status") != "running"
	})
	return r
}

// seedPhilip gives Philip one of each kind of record: a free visit, a paid
// visit with its payment, a released lab result with its PDF (the NIST
// message), a consent, and a staff read of his consents in the audit log.
func (st *stack) seedPhilip(t *testing.T) (labReport models.LabReport, paymentID string) {
	t.Helper()
	tenant := st.Demo.Tenant.ID
	philip := st.login("demo", philipLogin)

	doc, typ := st.familyDoctor()
	slot := st.freeSlots(philip, doc, typ)[0]["start"]
	if r := st.do("POST", "/v1/appointments", philip, map[string]any{"practitioner_id": doc, "appointment_type_id": typ, "start": slot}); r.Status != http.StatusCreated {
		t.Fatalf("book: %d %s", r.Status, r.Raw)
	}
	cardio, cardioType := st.Demo.Practitioners[0].ID, st.Demo.Types[1].ID
	slots := st.freeSlots(philip, cardio, cardioType)
	r := st.do("POST", "/v1/appointments", philip, map[string]any{"practitioner_id": cardio, "appointment_type_id": cardioType,
		"start": slots[len(slots)-1]["start"]})
	if r.Status != http.StatusCreated || r.Body["payment"] == nil {
		t.Fatalf("paid booking: %d %s", r.Status, r.Raw)
	}
	paymentID = r.Body["payment"].(map[string]any)["id"].(string)

	st.setReleaseRule(tenant, "immediate", 0)
	id := freshID("DSR")
	if r := st.postLab("hl7", demo.LabKeyFor("demo"), nistVariant(t, id, freshID("F"))); r.Status != http.StatusAccepted {
		t.Fatalf("lab message: %d %s", r.Status, r.Raw)
	}
	m := st.settled(t, tenant, "hl7v2", id)
	labWait(t, "the result to be released with its PDF", func() bool {
		rep := st.oneReport(t, m.ID)
		return rep.ReleasedAt != nil && rep.PDFKey != ""
	})
	labReport = st.oneReport(t, m.ID)
	if labReport.PatientID != st.philip() {
		t.Fatalf("the NIST message filed under %s, want Philip", labReport.PatientID)
	}

	var notice string
	for _, n := range st.do("GET", "/v1/notices?language=en", philip, nil).items() {
		if n["kind"] == "clarification" {
			notice, _ = n["id"].(string)
		}
	}
	if r := st.do("POST", "/v1/consents", philip, map[string]any{"purpose": "sms_reminders", "granted": true, "channel": "web", "notice_id": notice}); r.Status != http.StatusCreated {
		t.Fatalf("consent: %d %s", r.Status, r.Raw)
	}
	desk := st.login("demo", "staff.istanbul@demo.carebook.test")
	if r := st.do("GET", "/v1/consents?patient_id="+st.philip().String(), desk, nil); r.Status != http.StatusOK {
		t.Fatalf("staff reads consents: %d %s", r.Status, r.Raw)
	}
	return labReport, paymentID
}

// download fetches a presigned link and opens the zip it answers.
func download(t *testing.T, url string) map[string][]byte {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %s", res.StatusCode, body)
	}
	return unzip(t, body)
}

func unzip(t *testing.T, body []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return files
}

func jsonList(t *testing.T, files map[string][]byte, name string) []map[string]any {
	t.Helper()
	raw, ok := files[name]
	if !ok {
		t.Fatalf("archive has no %s", name)
	}
	var out []map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func TestDataSubjectExport(t *testing.T) {
	st := newStack(t)
	report, paymentID := st.seedPhilip(t)
	philip := st.login("demo", philipLogin)

	// Philip's SSN, sealed as every national ID is: the archive opens it.
	ctx := context.Background()
	err := models.InTenant(ctx, st.App, st.Demo.Tenant.ID, func(tx *gorm.DB) error {
		return nationalid.Store(ctx, tx, st.Keys, st.Demo.Tenant.ID, st.philip(), nationalid.SystemUSSSN, "219099999", "SS")
	})
	if err != nil {
		t.Fatal(err)
	}
	// Dr. Miller's signed note about Philip, with a signed addendum, and a
	// draft of hers: the archive opens the signed ones, and leaves the
	// draft out.
	miller := st.login("demo", millerLogin)
	noteID := st.signedNote(t, miller, st.philip(), "Murmur grade 2/6; echocardiogram booked.")
	add := st.do("POST", "/v1/notes/"+noteID+"/addenda", miller, map[string]any{"body": "Echocardiogram normal."})
	if add.Status != http.StatusCreated || st.do("POST", "/v1/notes/"+add.str("id")+"/sign", miller, nil).Status != http.StatusOK {
		t.Fatalf("addendum: %d %s", add.Status, add.Raw)
	}
	if d := st.do("POST", "/v1/patients/"+st.philip().String()+"/notes", miller, map[string]any{"kind": "progress", "body": "unfinished draft"}); d.Status != http.StatusCreated {
		t.Fatalf("draft: %d %s", d.Status, d.Raw)
	}
	// A message thread with his doctor: the archive holds it opened.
	thread := st.writeMessages(t, philip)
	// A language he chose himself (rectification) is his data too.
	if r := st.do("PATCH", "/v1/patients/"+st.philip().String(), philip, map[string]any{"preferred_language": "tr"}, "If-Match", `"1"`); r.Status != http.StatusOK {
		t.Fatalf("set preferred language: %d %s", r.Status, r.Raw)
	}
	r := st.do("POST", "/v1/patients/"+st.philip().String()+"/exports", philip, nil)
	if r.Status != http.StatusAccepted || r.str("kind") != "export" {
		t.Fatalf("export: %d %s", r.Status, r.Raw)
	}
	id := r.str("id")
	done := st.dsrWait(t, philip, id)
	if done.str("status") != "completed" || done.str("download_url") == "" {
		t.Fatalf("export finished as %s", done.Raw)
	}
	exp, _ := time.Parse(time.RFC3339, done.str("download_expires_at"))
	if d := time.Until(exp); d <= 0 || d > 5*time.Minute+5*time.Second {
		t.Errorf("link expires in %v, want at most 5 minutes", d)
	}
	files := download(t, done.str("download_url"))

	var manifest struct {
		PatientID string `json:"patient_id"`
		Files     []struct {
			Name   string `json:"name"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	eqf(t, "manifest.patient_id", manifest.PatientID, st.philip().String())
	if len(manifest.Files) != len(files)-1 {
		t.Errorf("manifest lists %d files, archive holds %d besides it", len(manifest.Files), len(files)-1)
	}
	for _, f := range manifest.Files {
		sum := sha256.Sum256(files[f.Name])
		if hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s: sha256 differs from the manifest", f.Name)
		}
	}

	want := []struct {
		name  string
		field string
		value any
	}{
		{"patient.json", "family_name", "Johnson"},
		{"patient.json", "preferred_language", "tr"},
		{"identifiers.json", "value", "9817566735"},
		{"national-ids.json", "value", "219099999"},
		{"account.json", "email", philipLogin},
		{"appointments.json", "patient_id", st.philip().String()},
		{"payments.json", "id", paymentID},
		{"lab-reports.json", "id", report.ID.String()},
		{"lab-observations.json", "report_id", report.ID.String()},
		{"consents.json", "purpose", "sms_reminders"},
		{"notifications.json", "channel", "email"},
		{"audit-events.json", "actor_role", "staff"},
		{"clinical-notes.json", "body", "Murmur grade 2/6; echocardiogram booked."},
		{"clinical-notes.json", "amends", noteID},
		{"clinical-notes.json", "author", "Dr. Sarah Miller"},
	}
	for _, w := range want {
		found := false
		for _, row := range jsonList(t, files, w.name) {
			if row[w.field] == w.value {
				found = true
			}
		}
		if !found {
			t.Errorf("%s has no row with %s = %v", w.name, w.field, w.value)
		}
	}
	threads := jsonList(t, files, "messages.json")
	if len(threads) != 1 || threads[0]["id"] != thread || threads[0]["subject"] != messageSubject {
		t.Errorf("messages.json: %s", files["messages.json"])
	} else if msgs, _ := threads[0]["messages"].([]any); len(msgs) != 2 || msgs[0].(map[string]any)["body"] != messageBody ||
		msgs[1].(map[string]any)["body"] != replyBody || msgs[1].(map[string]any)["sender_role"] != "doctor" {
		t.Errorf("messages.json's messages: %s", files["messages.json"])
	}
	if n := len(jsonList(t, files, "appointments.json")); n != 2 {
		t.Errorf("appointments.json holds %d visits, want 2", n)
	}
	if n := len(jsonList(t, files, "clinical-notes.json")); n != 2 || bytes.Contains(files["clinical-notes.json"], []byte("unfinished draft")) {
		t.Errorf("clinical-notes.json holds %d notes, want the signed note and its addendum, no draft", n)
	}
	if bytes.Contains(files["clinical-notes.json"], []byte("body_sealed")) {
		t.Errorf("clinical-notes.json carries the sealed bodies")
	}
	if bytes.Contains(files["account.json"], []byte("argon2id")) || bytes.Contains(files["account.json"], []byte("password")) {
		t.Errorf("account.json carries the password hash")
	}
	if pdf := files["lab-reports/"+report.ID.String()+".pdf"]; !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Errorf("the report's PDF is missing from the archive")
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action IN ('dsr-export-request', 'dsr-export-complete', 'dsr-download') AND resource_id = ?", id); n != 3 {
		t.Errorf("audit events of the export = %d, want request, completion and download", n)
	}

	// Only the archive's own patient, and no role that may not.
	john := st.login("demo", "john@demo.carebook.test")
	if r := st.do("POST", "/v1/patients/"+st.philip().String()+"/exports", john, nil); r.Status != http.StatusNotFound {
		t.Errorf("John exports Philip: %d %s, want 404", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/dsr/"+id, john, nil); r.Status != http.StatusNotFound || r.str("download_url") != "" {
		t.Errorf("John reads Philip's export: %d %s, want 404", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/dsr/"+id, st.login("harbor", "admin@harbor.carebook.test"), nil); r.Status != http.StatusNotFound {
		t.Errorf("another tenant's admin reads the export: %d, want 404", r.Status)
	}
	doctor := st.login("demo", "doctor1@demo.carebook.test")
	if r := st.do("POST", "/v1/patients/"+st.philip().String()+"/exports", doctor, nil); r.Status != http.StatusForbidden {
		t.Errorf("a doctor exports: %d, want 403", r.Status)
	}
	if r := st.do("POST", "/v1/patients/"+st.philip().String()+"/erasure", philip, map[string]any{"identity_verified": true}); r.Status != http.StatusForbidden {
		t.Errorf("a patient erases: %d, want 403", r.Status)
	}
	// A desk reaches the patients seen at its facility: Philip's visits
	// are in Istanbul, so New York's desk neither exports nor reads his.
	newYork := st.login("demo", "staff.newyork@demo.carebook.test")
	if r := st.do("POST", "/v1/patients/"+st.philip().String()+"/exports", newYork, nil); r.Status != http.StatusNotFound {
		t.Errorf("another facility's desk exports Philip: %d %s, want 404", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/dsr/"+id, newYork, nil); r.Status != http.StatusNotFound || r.str("download_url") != "" {
		t.Errorf("another facility's desk reads Philip's export: %d %s, want 404", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/patients/"+st.philip().String()+"/dsr", newYork, nil); r.Status != http.StatusNotFound {
		t.Errorf("another facility's desk lists Philip's requests: %d, want 404", r.Status)
	}
	// Istanbul's desk, where Philip is seen, exports for him; John has no
	// visit there, so it does not reach him.
	desk := st.login("demo", "staff.istanbul@demo.carebook.test")
	if r := st.do("POST", "/v1/patients/"+st.philip().String()+"/exports", desk, nil); r.Status != http.StatusAccepted {
		t.Errorf("the desk exports Philip: %d %s", r.Status, r.Raw)
	} else if d := st.dsrWait(t, desk, r.str("id")); d.str("status") != "completed" {
		t.Errorf("the desk's export: %s", d.Raw)
	} else {
		// The desk hands the archive over without reading the notes: they
		// are listed, their text withheld.
		deskFiles := download(t, d.str("download_url"))
		notes := jsonList(t, deskFiles, "clinical-notes.json")
		if len(notes) != 2 || notes[0]["body_withheld"] != true || bytes.Contains(deskFiles["clinical-notes.json"], []byte("Murmur")) {
			t.Errorf("the desk's clinical-notes.json: %s", deskFiles["clinical-notes.json"])
		}
		// Nor the national ID numbers: their systems only.
		if ids := jsonList(t, deskFiles, "national-ids.json"); len(ids) == 0 || ids[0]["value_withheld"] != true ||
			bytes.Contains(deskFiles["national-ids.json"], []byte("219099999")) {
			t.Errorf("the desk's national-ids.json: %s", deskFiles["national-ids.json"])
		}
		// Nor the messages: the threads and messages are listed, with
		// no subject and no body.
		deskThreads := jsonList(t, deskFiles, "messages.json")
		if len(deskThreads) != 1 || deskThreads[0]["text_withheld"] != true || deskThreads[0]["subject"] != nil ||
			bytes.Contains(deskFiles["messages.json"], []byte(messageSubject)) || bytes.Contains(deskFiles["messages.json"], []byte(messageBody)) ||
			bytes.Contains(deskFiles["messages.json"], []byte(replyBody)) {
			t.Errorf("the desk's messages.json: %s", deskFiles["messages.json"])
		} else if msgs, _ := deskThreads[0]["messages"].([]any); len(msgs) != 2 || msgs[0].(map[string]any)["text_withheld"] != true {
			t.Errorf("the desk's messages.json lists %d messages: %s", len(msgs), deskFiles["messages.json"])
		}
	}
	if r := st.do("POST", "/v1/patients/"+st.john().String()+"/exports", desk, nil); r.Status != http.StatusNotFound {
		t.Errorf("the desk exports John, never seen there: %d %s, want 404", r.Status, r.Raw)
	}
}

// traces finds the needles in every text, JSON and byte column of every
// table (the tenant's rows where a table has a tenant_id: the other seeded
// tenant has a Philip Johnson of its own), through the owner connection.
func (st *stack) traces(t *testing.T, tenant uuid.UUID, needles []string) []string {
	t.Helper()
	var cols []struct {
		Table, Column, Type string
		Tenant              bool
	}
	err := st.Admin.Raw(`SELECT c.table_name AS "table", c.column_name AS "column", c.data_type AS "type",
			EXISTS (SELECT 1 FROM information_schema.columns t WHERE t.table_schema = 'public'
				AND t.table_name = c.table_name AND t.column_name = 'tenant_id') AS tenant
		FROM information_schema.columns c JOIN information_schema.tables tb
			ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name AND tb.table_type = 'BASE TABLE'
		WHERE c.table_schema = 'public' AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY')
		ORDER BY 1, 2`).Scan(&cols).Error
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) < 50 {
		t.Fatalf("the catalog lists %d text columns; the query is wrong", len(cols))
	}
	var found []string
	for _, c := range cols {
		for _, n := range needles {
			cond := fmt.Sprintf(`%q::text ILIKE '%%' || ? || '%%'`, c.Column)
			if c.Type == "bytea" {
				cond = fmt.Sprintf(`position(convert_to(?, 'UTF8') IN %q) > 0`, c.Column)
			}
			q := fmt.Sprintf(`SELECT count(*) FROM %q WHERE %s`, c.Table, cond)
			args := []any{n}
			if c.Tenant {
				q += ` AND tenant_id = ?`
				args = append(args, tenant)
			}
			if st.count(q, args...) > 0 {
				found = append(found, c.Table+"."+c.Column+" holds "+n)
			}
		}
	}
	return found
}

// redisTraces finds the needles in the names and values of every key this
// stack's api and worker wrote (its prefix, and the rate limiter's).
func (st *stack) redisTraces(t *testing.T, needles []string) []string {
	t.Helper()
	ctx := context.Background()
	var found []string
	for _, pattern := range []string{st.RedisPrefix + "*", "rate:" + st.RedisPrefix + "*"} {
		iter := st.Redis.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			text := key
			typ, _ := st.Redis.Type(ctx, key).Result()
			switch typ {
			case "string":
				v, _ := st.Redis.Get(ctx, key).Result()
				text += " " + v
			case "set":
				v, _ := st.Redis.SMembers(ctx, key).Result()
				text += " " + strings.Join(v, " ")
			case "hash":
				v, _ := st.Redis.HGetAll(ctx, key).Result()
				for k, x := range v {
					text += " " + k + " " + x
				}
			case "list":
				v, _ := st.Redis.LRange(ctx, key, 0, -1).Result()
				text += " " + strings.Join(v, " ")
			default:
				v, _ := st.Redis.Dump(ctx, key).Result()
				text += " " + v
			}
			for _, n := range needles {
				if strings.Contains(strings.ToLower(text), strings.ToLower(n)) {
					found = append(found, "redis "+key+" holds "+n)
				}
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return found
}

// objectTraces reads every object of the tenant (the files inside zips
// too, which are compressed) and finds the needles.
func (st *stack) objectTraces(t *testing.T, tenant uuid.UUID, needles []string) []string {
	t.Helper()
	ctx := context.Background()
	keys, err := st.Store.ListAll(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, k := range keys {
		body, err := st.Store.Get(ctx, tenant, k)
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		texts := map[string][]byte{k: body}
		if strings.HasSuffix(k, ".zip") {
			for name, b := range unzip(t, body) {
				texts[k+"!"+name] = b
			}
		}
		for name, b := range texts {
			for _, n := range needles {
				if bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(n))) {
					found = append(found, "object "+name+" holds "+n)
				}
			}
		}
	}
	return found
}

func TestDataSubjectErasure(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	tenant := st.Demo.Tenant.ID
	report, _ := st.seedPhilip(t)
	admin := st.login("demo", "admin@demo.carebook.test")
	philipPath := "/v1/patients/" + st.philip().String()

	// An export first, so that there is an archive to erase too, and a
	// session of Philip's with a refresh token.
	login := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": philipLogin, "password": demo.Password})
	philip, refresh := login.str("access_token"), login.str("refresh_token")
	thread := st.writeMessages(t, philip)
	if n := st.count("SELECT count(*) FROM messages WHERE thread_id = ?", thread); n != 2 {
		t.Fatalf("Philip's thread holds %d messages before erasure", n)
	}
	if r := st.do("POST", "/v1/message-threads/"+thread+"/read", philip, nil); r.Status != http.StatusOK {
		t.Fatalf("Philip marks his thread read: %d %s", r.Status, r.Raw)
	}
	if r := st.do("PATCH", philipPath, philip, map[string]any{"preferred_language": "en"}, "If-Match", `"1"`); r.Status != http.StatusOK {
		t.Fatalf("set preferred language: %d %s", r.Status, r.Raw)
	}
	exp := st.do("POST", philipPath+"/exports", philip, nil)
	if st.dsrWait(t, philip, exp.str("id")).str("status") != "completed" {
		t.Fatal("export did not complete")
	}

	// Dr. Miller's signed note names Philip in its text: sealed, it is
	// kept as a medical record and shows his name to no scan.
	miller := st.login("demo", millerLogin)
	st.signedNote(t, miller, st.philip(), "Philip Johnson, seen for follow-up; stable.")

	// The checks find what there is to find before the erasure, so that
	// finding nothing afterwards means something.
	for _, n := range philipTraces[:5] {
		if len(st.traces(t, tenant, []string{n})) == 0 {
			t.Fatalf("before erasure no column holds %q: the scan is blind", n)
		}
	}
	if len(st.objectTraces(t, tenant, []string{"Johnson", "9817566735"})) == 0 {
		t.Fatal("before erasure no object holds Philip's name: the scan is blind")
	}
	if len(st.objectTraces(t, tenant, messagePhrases)) == 0 {
		t.Fatal("before erasure the export holds none of Philip's messages")
	}
	userKey := st.RedisPrefix + "user-sessions:" + st.userID(philipLogin)
	if n, _ := st.Redis.Exists(ctx, userKey).Result(); n != 1 {
		t.Fatalf("Philip's session index %s is not in Redis; the key names drifted", userKey)
	}

	// A single sign-on link, whose subject some providers make the
	// person's e-mail.
	if err := st.Admin.Exec(`INSERT INTO user_identities (tenant_id, issuer, subject, user_id) VALUES (?, 'https://idp.example', ?, ?)`,
		tenant, philipLogin, st.userID(philipLogin)).Error; err != nil {
		t.Fatal(err)
	}

	// A password-reset link mailed before the erasure.
	mailed, err := mailbox.Search(ctx, `to:"`+philipLogin+`"`)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.do("POST", "/v1/auth/password-reset", "", map[string]string{"tenant": "demo", "email": philipLogin}); r.Status != http.StatusAccepted {
		t.Fatalf("reset request: %d %s", r.Status, r.Raw)
	}
	resetToken := tokenOf(t, mailsTo(t, philipLogin, len(mailed)+1)[0])
	philipUser := st.userID(philipLogin)
	if n := st.count("SELECT count(*) FROM account_tokens WHERE user_id = ? AND used_at IS NULL", philipUser); n != 1 {
		t.Fatalf("%d live reset tokens before the erasure", n)
	}

	// A legal hold refuses the erasure until it is released.
	if r := st.do("POST", philipPath+"/legal-holds", admin, map[string]any{"reason": "Case \u202e711-6202"}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "reason-required" {
		t.Errorf("a hold whose reason reads backwards: %d %s", r.Status, r.Raw)
	}
	hold := st.do("POST", philipPath+"/legal-holds", admin, map[string]any{"reason": "Case 2026-117, records requested by the court"})
	if hold.Status != http.StatusCreated || hold.Body["active"] != true {
		t.Fatalf("hold: %d %s", hold.Status, hold.Raw)
	}
	if r := st.do("POST", philipPath+"/erasure", admin, map[string]any{"identity_verified": true}); r.Status != http.StatusConflict || r.problemType() != "legal-hold-active" {
		t.Fatalf("erasure under hold: %d %s, want 409 legal-hold-active", r.Status, r.Raw)
	}
	if n := st.count("SELECT count(*) FROM dsr_requests WHERE kind = 'erasure'"); n != 0 {
		t.Errorf("a refused erasure left %d requests", n)
	}
	if r := st.do("POST", philipPath+"/erasure", admin, map[string]any{}); r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity {
		t.Errorf("erasure without identity_verified: %d, want refused", r.Status)
	}
	if r := st.do("POST", "/v1/legal-holds/"+hold.str("id")+"/release", admin, map[string]any{"reason": "Case closed"}); r.Status != http.StatusOK || r.Body["active"] != false {
		t.Fatalf("release: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/legal-holds/"+hold.str("id")+"/release", admin, nil); r.Status != http.StatusConflict || r.problemType() != "legal-hold-released" {
		t.Errorf("second release: %d %s", r.Status, r.Raw)
	}

	r := st.do("POST", philipPath+"/erasure", admin, map[string]any{"identity_verified": true})
	if r.Status != http.StatusAccepted || !strings.HasPrefix(r.str("workflow_id"), "dsr-erasure:"+tenant.String()+":") {
		t.Fatalf("erasure: %d %s", r.Status, r.Raw)
	}
	done := st.dsrWait(t, admin, r.str("id"))
	if done.str("status") != "completed" || done.str("medical_retained_until") == "" || done.str("financial_retained_until") == "" {
		t.Fatalf("erasure finished as %s", done.Raw)
	}

	if found := st.traces(t, tenant, philipTraces); len(found) > 0 {
		t.Errorf("Postgres still holds Philip:\n%s", strings.Join(found, "\n"))
	}
	if n := st.count(`SELECT count(*) FROM user_identities`); n != 0 {
		t.Errorf("erasure left %d single sign-on links", n)
	}
	// His export from before reads as expired: its archive is gone.
	if r := st.do("GET", "/v1/dsr/"+exp.str("id"), admin, nil); r.Status != http.StatusGone || r.problemType() != "export-expired" {
		t.Errorf("an export from before the erasure: %d %s, want 410 export-expired", r.Status, r.Raw)
	}
	// The link mailed before no longer gives the account a password.
	if r := st.do("POST", "/v1/auth/password-reset/confirm", "", map[string]string{"token": resetToken, "password": "a brand new passphrase 2027"}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "invalid-token" {
		t.Errorf("reset after the erasure: %d %s, want 422 invalid-token", r.Status, r.Raw)
	}
	// Nor does a password that reached the account some other way open
	// a session.
	hash, err := api.HashPassword(demo.Password)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Admin.Exec(`UPDATE users SET password_hash = ? WHERE id = ?`, hash, philipUser).Error; err != nil {
		t.Fatal(err)
	}
	if r := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": "erased-" + philipUser + "@erased.invalid", "password": demo.Password}); r.Status != http.StatusUnauthorized || r.str("access_token") != "" {
		t.Errorf("login to the erased account: %d %s, want 401", r.Status, r.Raw)
	}
	if found := st.redisTraces(t, philipTraces); len(found) > 0 {
		t.Errorf("Redis still holds Philip:\n%s", strings.Join(found, "\n"))
	}
	if found := st.objectTraces(t, tenant, philipTraces); len(found) > 0 {
		t.Errorf("the object store still holds Philip:\n%s", strings.Join(found, "\n"))
	}
	// His message threads are gone with their messages, from Postgres and
	// from the export archive that held them opened.
	if n := st.count("SELECT (SELECT count(*) FROM message_threads WHERE patient_id = ?) + (SELECT count(*) FROM messages WHERE thread_id = ?) + (SELECT count(*) FROM message_reads WHERE thread_id = ?)",
		st.philip(), thread, thread); n != 0 {
		t.Errorf("%d message rows of Philip's survive the erasure", n)
	}
	if found := st.objectTraces(t, tenant, messagePhrases); len(found) > 0 {
		t.Errorf("the object store still holds Philip's messages:\n%s", strings.Join(found, "\n"))
	}
	if _, err := st.Store.Get(ctx, tenant, report.PDFKey); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("the report PDF is still stored: %v", err)
	}
	if n, _ := st.Redis.Exists(ctx, userKey).Result(); n != 0 {
		t.Errorf("Philip's session index is still in Redis")
	}
	if r := st.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}); r.Status != http.StatusUnauthorized {
		t.Errorf("Philip's refresh token after erasure: %d", r.Status)
	}
	if r := st.do("GET", "/v1/me", philip, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("Philip's access token after erasure: %d", r.Status)
	}
	if r := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": philipLogin, "password": demo.Password}); r.Status != http.StatusUnauthorized {
		t.Errorf("Philip logs in after erasure: %d", r.Status)
	}
	if e := st.do("GET", "/v1/dsr/"+exp.str("id"), admin, nil); e.str("download_url") != "" {
		t.Errorf("the erased export still has a link")
	}

	// What retention keeps is still there, under the patient's ID.
	p := st.philip()
	for _, c := range []struct {
		name string
		sql  string
		want int64
	}{
		{"appointments", "SELECT count(*) FROM appointments WHERE patient_id = ?", 2},
		{"payments", "SELECT count(*) FROM payments WHERE patient_id = ?", 1},
		{"lab reports", "SELECT count(*) FROM lab_reports WHERE patient_id = ?", 1},
		{"lab observations", "SELECT count(*) FROM lab_observations WHERE patient_id = ? AND value_number = 25", 1},
		{"consents", "SELECT count(*) FROM consents WHERE patient_id = ?", 1},
		{"clinical notes", "SELECT count(*) FROM clinical_notes WHERE patient_id = ? AND signed_at IS NOT NULL", 1},
		{"identifiers", "SELECT count(*) FROM patient_identifiers WHERE patient_id = ?", 0},
		{"pseudonymised patient", "SELECT count(*) FROM patients WHERE id = ? AND given_name = 'Erased' AND family_name LIKE 'P-%' AND birth_date IS NULL AND preferred_language IS NULL AND erased_at IS NOT NULL", 1},
		// The demo refers Philip to Dr. Miller: the assignment ends, and stays as a record.
		{"ended care assignments", "SELECT count(*) FROM care_assignments WHERE patient_id = ? AND ended_at IS NOT NULL", 1},
		{"active care assignments", "SELECT count(*) FROM care_assignments WHERE patient_id = ? AND ended_at IS NULL", 0},
	} {
		if n := st.count(c.sql, p); n != c.want {
			t.Errorf("%s: %d rows, want %d", c.name, n, c.want)
		}
	}
	// Nobody may be made to act for an erased patient.
	desk := st.login("demo", "staff.istanbul@demo.carebook.test")
	if r := st.do("POST", "/v1/proxy-relations", desk, map[string]any{"proxy_patient_id": st.john(), "patient_id": p,
		"kind": "caregiver", "documents_checked": true}); r.Status != http.StatusConflict || r.problemType() != "patient-erased" {
		t.Errorf("proxy relation for an erased patient: %d %s, want 409 patient-erased", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/care-assignments", admin, map[string]any{"practitioner_id": st.Demo.Practitioners[0].ID, "patient_id": p,
		"reason": "referral"}); r.Status != http.StatusConflict || r.problemType() != "patient-erased" {
		t.Errorf("care assignment for an erased patient: %d %s, want 409 patient-erased", r.Status, r.Raw)
	}
	var pseudonym string
	st.Admin.Raw("SELECT family_name FROM patients WHERE id = ?", p).Scan(&pseudonym)

	// A second erasure finds nothing more to do and changes nothing.
	again := st.do("POST", philipPath+"/erasure", admin, map[string]any{"identity_verified": true})
	if again.Status != http.StatusAccepted {
		t.Fatalf("second erasure: %d %s", again.Status, again.Raw)
	}
	if d := st.dsrWait(t, admin, again.str("id")); d.str("status") != "completed" {
		t.Fatalf("second erasure finished as %s", d.Raw)
	}
	var after string
	st.Admin.Raw("SELECT family_name FROM patients WHERE id = ?", p).Scan(&after)
	eqf(t, "pseudonym after a second erasure", after, pseudonym)
	if n := st.count("SELECT count(*) FROM appointments WHERE patient_id = ?", p); n != 2 {
		t.Errorf("appointments after a second erasure: %d", n)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'dsr-erasure-complete' AND patient_id = ?", p); n != 2 {
		t.Errorf("erasure completions audited: %d, want 2", n)
	}
	if v := st.do("GET", "/v1/audit-events/verify", admin, nil); v.Body["ok"] != true {
		t.Errorf("audit chain after the worker's events: %s", v.Raw)
	}
	// Paul, untouched, keeps his name.
	if n := st.count("SELECT count(*) FROM patients WHERE id = ? AND family_name = 'Miller'", st.paul()); n != 1 {
		t.Errorf("another patient was erased too")
	}
}

// TestErasureWorkflowChecksTheHoldItself: a hold placed after the api
// accepted the request still stops the workflow, which records the
// refusal and erases nothing.
func TestErasureWorkflowChecksTheHoldItself(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	tenant, paul, admin := st.Demo.Tenant.ID, st.paul(), uuid.MustParse(st.userID("admin@demo.carebook.test"))
	id := uuid.New()
	wid := workflows.DSRErasureWorkflowID(tenant.String(), id.String())
	if err := st.Admin.Exec(`INSERT INTO dsr_requests (id, tenant_id, patient_id, kind, requested_by, requested_role, workflow_id)
		VALUES (?, ?, ?, 'erasure', ?, 'admin', ?)`, id, tenant, paul, admin, wid).Error; err != nil {
		t.Fatal(err)
	}
	if err := st.Admin.Exec(`INSERT INTO legal_holds (id, tenant_id, patient_id, reason, placed_by) VALUES (?, ?, ?, 'Inquiry 42', ?)`,
		uuid.New(), tenant, paul, admin).Error; err != nil {
		t.Fatal(err)
	}
	run, err := st.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: workflows.DSRTaskQueue},
		workflows.DSRErasureWorkflowType, workflows.DSRInput{TenantID: tenant.String(), RequestID: id.String()})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.DSRResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	eqf(t, "result", res.Status+"/"+res.Outcome, "refused/legal-hold")
	if n := st.count("SELECT count(*) FROM dsr_requests WHERE id = ? AND status = 'refused' AND outcome = 'legal-hold'", id); n != 1 {
		t.Errorf("the request is not marked refused")
	}
	if n := st.count("SELECT count(*) FROM patients WHERE id = ? AND family_name = 'Miller' AND erased_at IS NULL", paul); n != 1 {
		t.Errorf("a held patient was erased")
	}
	if n := st.count("SELECT count(*) FROM patient_identifiers WHERE patient_id = ?", paul); n == 0 {
		t.Errorf("a held patient's identifiers were deleted")
	}
}

func TestRetentionSettings(t *testing.T) {
	st := newStack(t)
	admin := st.login("demo", "admin@demo.carebook.test")
	r := st.do("GET", "/v1/retention-settings", admin, nil)
	if r.Status != http.StatusOK || r.Body["default"] != true || r.Body["medical_records_years"] != float64(models.DefaultRetention.MedicalRecordsYears) {
		t.Fatalf("defaults: %d %s", r.Status, r.Raw)
	}
	if r := st.do("PUT", "/v1/retention-settings", admin, map[string]any{"jurisdiction": "Turkey", "medical_records_years": 10, "financial_records_years": 5}); r.Status != http.StatusBadRequest {
		t.Errorf("a jurisdiction that is not a country code: %d", r.Status)
	}
	if r := st.do("PUT", "/v1/retention-settings", admin, map[string]any{"jurisdiction": "US-NY", "medical_records_years": 6, "financial_records_years": 7}); r.Status != http.StatusOK {
		t.Fatalf("put: %d %s", r.Status, r.Raw)
	}
	r = st.do("GET", "/v1/retention-settings", admin, nil)
	if r.Body["default"] != false || r.str("jurisdiction") != "US-NY" || r.Body["medical_records_years"] != float64(6) {
		t.Errorf("after put: %s", r.Raw)
	}
	// Another tenant keeps its defaults.
	other := st.do("GET", "/v1/retention-settings", st.login("harbor", "admin@harbor.carebook.test"), nil)
	if other.Body["default"] != true {
		t.Errorf("harbor's settings changed: %s", other.Raw)
	}
}

// TestExportRacingAnErasureLeavesNoArchive: an export whose archive is
// written after an erasure of the same patient was asked for (the
// erasure may already have deleted the patient's archives, from before
// this one existed) deletes its own archive and is refused; and once the
// patient is erased, no export is taken.
func TestExportRacingAnErasureLeavesNoArchive(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	tenant := st.Demo.Tenant.ID
	patient := st.philip()
	admin := st.login("demo", "admin@demo.carebook.test")
	export, erasure := uuid.New(), uuid.New()
	adminID := st.userID("admin@demo.carebook.test")
	for _, r := range []struct {
		id   uuid.UUID
		kind string
	}{{export, "export"}, {erasure, "erasure"}} {
		if err := st.Admin.Exec(`INSERT INTO dsr_requests (id, tenant_id, patient_id, kind, requested_by, requested_role, status, workflow_id, requested_at)
			VALUES (?, ?, ?, ?, ?, 'admin', 'running', ?, now())`, r.id, tenant, patient, r.kind, adminID, "test:"+r.id.String()).Error; err != nil {
			t.Fatal(err)
		}
	}
	var env testsuite.WorkflowTestSuite
	acts := env.NewTestActivityEnvironment()
	acts.RegisterActivity(st.Deps.DSR)
	_, err := acts.ExecuteActivity(st.Deps.DSR.DSRBuildExport, workflows.DSRInput{TenantID: tenant.String(), RequestID: export.String()})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDSRPatientErased {
		t.Fatalf("export during an erasure: %v, want %s", err, workflows.ErrTypeDSRPatientErased)
	}
	if _, err := st.Store.Get(ctx, tenant, activities.ExportArchiveKey(tenant, patient, export)); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("the racing export's archive is in the store: %v", err)
	}

	// Erased, the patient has nothing left to export.
	if err := st.Admin.Exec(`UPDATE dsr_requests SET status = 'completed' WHERE id IN (?, ?)`, export, erasure).Error; err != nil {
		t.Fatal(err)
	}
	if err := st.Admin.Exec(`UPDATE patients SET erased_at = now() WHERE id = ?`, patient).Error; err != nil {
		t.Fatal(err)
	}
	if r := st.do("POST", "/v1/patients/"+patient.String()+"/exports", admin, nil); r.Status != http.StatusConflict || r.problemType() != "patient-erased" {
		t.Fatalf("export of an erased patient: %d %s", r.Status, r.Raw)
	}
}

// TestNoVisitIsBookedForAnErasedPatient: the desk cannot book a visit for
// a patient whose data was erased (the purge would never see it).
func TestNoVisitIsBookedForAnErasedPatient(t *testing.T) {
	st := newStack(t)
	st.seedPhilip(t)
	desk := st.login("demo", "staff.istanbul@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(desk, doctor, typ)
	if err := st.Admin.Exec(`UPDATE patients SET erased_at = now() WHERE id = ?`, st.philip()).Error; err != nil {
		t.Fatal(err)
	}
	before := st.count("SELECT count(*) FROM appointments WHERE patient_id = ?", st.philip())
	r := st.do("POST", "/v1/appointments", desk, map[string]any{"practitioner_id": doctor, "appointment_type_id": typ,
		"start": free[0]["start"], "patient_id": st.philip()})
	if r.Status != http.StatusConflict || r.problemType() != "patient-erased" {
		t.Fatalf("booking for an erased patient: %d %s", r.Status, r.Raw)
	}
	if n := st.count("SELECT count(*) FROM appointments WHERE patient_id = ?", st.philip()); n != before {
		t.Fatalf("appointments %d, were %d", n, before)
	}
}
