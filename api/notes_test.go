package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// millerLogin is Dr. Sarah Miller's account: the demo refers Philip to her
// care, so she reaches his record without a visit.
const millerLogin = "doctor4@demo.carebook.test"

// miller is Dr. Miller's practitioner ID in demo.
func (st *stack) miller(t *testing.T) uuid.UUID {
	t.Helper()
	var id string
	if err := st.Admin.Raw("SELECT id::text FROM practitioners WHERE tenant_id = ? AND display_name = 'Dr. Sarah Miller'", st.Demo.Tenant.ID).Scan(&id).Error; err != nil || id == "" {
		t.Fatalf("Dr. Miller: %v", err)
	}
	return uuid.MustParse(id)
}

// signedNote writes and signs a progress note about patient as the doctor
// of token, and returns its ID.
func (st *stack) signedNote(t *testing.T, token string, patient uuid.UUID, body string) string {
	t.Helper()
	n := st.do("POST", "/v1/patients/"+patient.String()+"/notes", token, map[string]any{"kind": "progress", "body": body})
	if n.Status != http.StatusCreated {
		t.Fatalf("note: %d %s", n.Status, n.Raw)
	}
	if s := st.do("POST", "/v1/notes/"+n.str("id")+"/sign", token, map[string]any{}); s.Status != http.StatusOK || s.str("status") != "signed" {
		t.Fatalf("sign: %d %s", s.Status, s.Raw)
	}
	return n.str("id")
}

// TestClinicalNoteDraftSignAddendum walks a note's life: the author writes
// and rewrites a draft (a stale version is refused), signs it, and can no
// longer change it; a correction is an addendum. Bad input changes
// nothing; a doctor without reach, staff, billing and admins see nothing;
// the patient reads the signed note and its signed addenda, never a
// draft; every step is audited.
func TestClinicalNoteDraftSignAddendum(t *testing.T) {
	st := newStack(t)
	philip := st.philip()
	miller := st.login("demo", millerLogin)
	garcia := st.login("demo", garciaLogin)
	patient := st.login("demo", philipLogin)
	notes := "/v1/patients/" + philip.String() + "/notes"

	for _, tt := range []struct {
		name     string
		body     map[string]any
		want     int
		wantType string
	}{
		{"unknown kind", map[string]any{"kind": "gossip", "body": "text"}, http.StatusUnprocessableEntity, "unknown-note-kind"},
		{"blank body", map[string]any{"kind": "progress", "body": "  \n "}, http.StatusUnprocessableEntity, "invalid-note-body"},
		{"visit of someone else", map[string]any{"kind": "progress", "body": "text", "appointment_id": uuid.NewString()}, http.StatusUnprocessableEntity, "unknown-appointment"},
		{"unknown field", map[string]any{"kind": "progress", "body": "text", "signed": true}, http.StatusBadRequest, "invalid-body"},
		{"version on a new note", map[string]any{"kind": "progress", "body": "text", "version": 3}, http.StatusBadRequest, "invalid-body"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := st.do("POST", notes, miller, tt.body)
			if r.Status != tt.want || r.problemType() != tt.wantType {
				t.Errorf("%d %s, want %d %s", r.Status, r.Raw, tt.want, tt.wantType)
			}
		})
	}
	if n := st.count("SELECT count(*) FROM clinical_notes"); n != 0 {
		t.Fatalf("bad input left %d notes", n)
	}

	n := st.do("POST", notes, miller, map[string]any{"kind": "consultation", "body": "Chest pain on exertion; ECG ordered."})
	if n.Status != http.StatusCreated || n.str("status") != "draft" || n.Body["version"] != float64(1) {
		t.Fatalf("create: %d %s", n.Status, n.Raw)
	}
	id := n.str("id")
	path := "/v1/notes/" + id

	// The draft is the author's alone.
	if r := st.do("GET", notes, patient, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
		t.Errorf("the patient's list with a draft: %d %s, want no notes", r.Status, r.Raw)
	}
	if r := st.do("GET", path, patient, nil); r.Status != http.StatusNotFound {
		t.Errorf("the patient reads the draft: %d, want 404", r.Status)
	}

	edit := func(version int, body string) response {
		return st.do("PUT", path, miller, map[string]any{"kind": "consultation", "body": body, "version": version})
	}
	if r := edit(1, "Chest pain on exertion; ECG and troponin ordered."); r.Status != http.StatusOK || r.Body["version"] != float64(2) {
		t.Fatalf("edit: %d %s", r.Status, r.Raw)
	}
	if r := edit(1, "A stale edit"); r.Status != http.StatusConflict || r.problemType() != "note-version-conflict" || r.Body["current_version"] != float64(2) {
		t.Errorf("stale edit: %d %s, want 409 note-version-conflict", r.Status, r.Raw)
	}
	// Bad edits are refused and leave the draft at version 2.
	for _, tt := range []struct {
		name     string
		body     map[string]any
		want     int
		wantType string
	}{
		{"unknown kind", map[string]any{"kind": "gossip", "body": "text", "version": 2}, http.StatusUnprocessableEntity, "unknown-note-kind"},
		{"too long", map[string]any{"kind": "progress", "body": strings.Repeat("a", 20001), "version": 2}, http.StatusUnprocessableEntity, "invalid-note-body"},
		{"no version", map[string]any{"kind": "progress", "body": "text"}, http.StatusBadRequest, "invalid-body"},
		{"version not a number", map[string]any{"kind": "progress", "body": "text", "version": "2"}, http.StatusBadRequest, "invalid-body"},
	} {
		if r := st.do("PUT", path, miller, tt.body); r.Status != tt.want || r.problemType() != tt.wantType {
			t.Errorf("edit with %s: %d %s, want %d %s", tt.name, r.Status, r.Raw, tt.want, tt.wantType)
		}
	}
	if n := st.count("SELECT count(*) FROM clinical_notes WHERE id = ? AND version = 2 AND kind = 'consultation'", id); n != 1 {
		t.Errorf("bad edits changed the draft")
	}
	if r := st.do("POST", path+"/sign", miller, map[string]any{"version": 1}); r.Status != http.StatusConflict || r.problemType() != "note-version-conflict" {
		t.Errorf("signing a version not read: %d %s, want 409", r.Status, r.Raw)
	}
	if r := st.do("POST", path+"/addenda", miller, map[string]any{"body": "too early"}); r.Status != http.StatusConflict || r.problemType() != "note-not-signed" {
		t.Errorf("addendum of a draft: %d %s, want 409 note-not-signed", r.Status, r.Raw)
	}

	// A doctor who does not reach Philip finds nothing and changes nothing.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", path, nil},
		{"GET", notes, nil},
		{"POST", notes, map[string]any{"kind": "progress", "body": "not my patient"}},
		{"PUT", path, map[string]any{"kind": "progress", "body": "not my note", "version": 2}},
		{"POST", path + "/sign", map[string]any{}},
	} {
		if r := st.do(c.method, c.path, garcia, c.body); r.Status != http.StatusNotFound || r.problemType() != "not-found" {
			t.Errorf("Dr. Garcia %s %s: %d %s, want 404", c.method, c.path, r.Status, r.Raw)
		}
	}
	// Staff, billing and admins are refused every note route.
	for _, who := range []string{"staff.istanbul@demo.carebook.test", "billing@demo.carebook.test", "admin@demo.carebook.test"} {
		tok := st.login("demo", who)
		if r := st.do("GET", path, tok, nil); r.Status != http.StatusForbidden {
			t.Errorf("%s reads a note: %d, want 403", who, r.Status)
		}
		if r := st.do("GET", notes, tok, nil); r.Status != http.StatusForbidden {
			t.Errorf("%s lists notes: %d, want 403", who, r.Status)
		}
	}

	if r := st.do("POST", path+"/sign", miller, map[string]any{"version": 2}); r.Status != http.StatusOK || r.str("status") != "signed" || r.str("signed_at") == "" ||
		r.str("signed_by") != st.miller(t).String() {
		t.Fatalf("sign: %d %s", r.Status, r.Raw)
	}
	if r := edit(2, "Rewriting history"); r.Status != http.StatusConflict || r.problemType() != "note-signed" {
		t.Errorf("edit after signing: %d %s, want 409 note-signed", r.Status, r.Raw)
	}
	if r := st.do("POST", path+"/sign", miller, map[string]any{}); r.Status != http.StatusConflict || r.problemType() != "note-signed" {
		t.Errorf("second signature: %d %s, want 409 note-signed", r.Status, r.Raw)
	}
	// The schema keeps a signed note as signed, whoever runs the UPDATE.
	if err := st.Admin.Exec("UPDATE clinical_notes SET kind = 'discharge' WHERE id = ?", id).Error; err == nil {
		t.Errorf("the application role rewrote a signed note")
	}

	// The patient reads the signed note.
	r := st.do("GET", path, patient, nil)
	if r.Status != http.StatusOK || r.str("body") != "Chest pain on exertion; ECG and troponin ordered." || r.str("author_name") != "Dr. Sarah Miller" {
		t.Errorf("the patient reads the signed note: %d %s", r.Status, r.Raw)
	}

	// A correction is an addendum: a draft until signed, then shown under
	// the original.
	a := st.do("POST", path+"/addenda", miller, map[string]any{"body": "Troponin negative; ECG normal."})
	if a.Status != http.StatusCreated || a.str("amends") != id || a.str("status") != "draft" || a.str("kind") != "consultation" {
		t.Fatalf("addendum: %d %s", a.Status, a.Raw)
	}
	if l := st.do("GET", notes, patient, nil); len(l.items()) != 1 || l.items()[0]["addenda"] != nil {
		t.Errorf("the patient sees a draft addendum: %s", l.Raw)
	}
	// Its text may be edited, its kind may not drift from the original's.
	if r := st.do("PUT", "/v1/notes/"+a.str("id"), miller, map[string]any{"kind": "discharge", "body": "Troponin negative; ECG normal.", "version": 1}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "addendum-kind" {
		t.Errorf("addendum of another kind: %d %s, want 422 addendum-kind", r.Status, r.Raw)
	}
	if s := st.do("POST", "/v1/notes/"+a.str("id")+"/sign", miller, nil); s.Status != http.StatusOK {
		t.Fatalf("sign the addendum: %d %s", s.Status, s.Raw)
	}
	// An addendum of the addendum attaches to the original.
	a2 := st.do("POST", "/v1/notes/"+a.str("id")+"/addenda", miller, map[string]any{"body": "Follow-up in two weeks."})
	if a2.Status != http.StatusCreated || a2.str("amends") != id {
		t.Errorf("addendum of an addendum: %d %s, want it to amend the original", a2.Status, a2.Raw)
	}
	l := st.do("GET", notes, patient, nil)
	if items := l.items(); l.Status != http.StatusOK || len(items) != 1 {
		t.Fatalf("the patient's list: %d %s", l.Status, l.Raw)
	}
	addenda, _ := l.items()[0]["addenda"].([]any)
	if len(addenda) != 1 || addenda[0].(map[string]any)["body"] != "Troponin negative; ECG normal." {
		t.Errorf("the patient's list shows addenda %v, want the signed one", addenda)
	}
	if l := st.do("GET", notes, miller, nil); len(l.items()) != 1 {
		t.Errorf("the author's list: %s", l.Raw)
	} else if ad, _ := l.items()[0]["addenda"].([]any); len(ad) != 2 {
		t.Errorf("the author sees %d addenda, want the signed one and their draft", len(ad))
	}

	// Break-glass opens the signed notes to read, not to write.
	if g := st.do("POST", "/v1/break-glass", garcia, map[string]any{"patient_id": philip, "reason": "collapsed in the waiting room, history needed"}); g.Status != http.StatusCreated {
		t.Fatalf("break-glass: %d %s", g.Status, g.Raw)
	}
	if r := st.do("GET", path, garcia, nil); r.Status != http.StatusOK || r.str("body") == "" {
		t.Errorf("break-glass read: %d %s", r.Status, r.Raw)
	}
	if l := st.do("GET", notes, garcia, nil); l.Status != http.StatusOK || len(l.items()) != 1 {
		t.Errorf("break-glass list: %d %s", l.Status, l.Raw)
	}
	if r := st.do("POST", path+"/addenda", garcia, map[string]any{"body": "written under break-glass"}); r.Status != http.StatusNotFound {
		t.Errorf("an addendum under break-glass: %d %s, want 404", r.Status, r.Raw)
	}
	if r := st.do("POST", notes, garcia, map[string]any{"kind": "progress", "body": "written under break-glass"}); r.Status != http.StatusNotFound {
		t.Errorf("a note under break-glass: %d %s, want 404", r.Status, r.Raw)
	}

	for _, c := range []struct {
		action string
		want   int64
	}{
		{"note-create", 1}, {"note-update", 1}, {"note-sign", 2}, {"note-addendum", 2},
	} {
		if n := st.count("SELECT count(*) FROM audit_events WHERE resource_type = 'clinical_note' AND action = ? AND patient_id = ?", c.action, philip); n != c.want {
			t.Errorf("%s events: %d, want %d", c.action, n, c.want)
		}
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE resource_type = 'clinical_note' AND action IN ('read', 'list') AND patient_id = ? AND actor_role = 'patient'", philip); n != 4 {
		t.Errorf("the patient's reads audited: %d, want 4 (three lists and a read)", n)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE resource_type = 'clinical_note' AND action = 'read' AND patient_id = ? AND actor_role = 'doctor'", philip); n != 1 {
		t.Errorf("Dr. Garcia's break-glass read audited %d times, want 1", n)
	}
}

// TestClinicalNoteVisitAndProxy: a note names one of the writer's own
// visits with the patient; a parent reads their child's signed notes as
// their proxy (audited as such), and another patient does not.
func TestClinicalNoteVisitAndProxy(t *testing.T) {
	st := newStack(t)
	deniz := st.Demo.Patients[4].ID
	doctor := st.miller(t)
	st.seedVisit(t, deniz, doctor, st.Demo.Facilities[0].ID)
	var visitID string
	if err := st.Admin.Raw("SELECT id::text FROM appointments WHERE patient_id = ? AND practitioner_id = ?", deniz, doctor).Scan(&visitID).Error; err != nil {
		t.Fatal(err)
	}
	visit := uuid.MustParse(visitID)
	miller := st.login("demo", millerLogin)
	notes := "/v1/patients/" + deniz.String() + "/notes"
	// Dr. Miller's visit with Deniz, not Philip's.
	if r := st.do("POST", "/v1/patients/"+st.philip().String()+"/notes", miller, map[string]any{"kind": "progress", "body": "x", "appointment_id": visit}); r.Status != http.StatusUnprocessableEntity ||
		r.problemType() != "unknown-appointment" {
		t.Errorf("a visit of another patient: %d %s", r.Status, r.Raw)
	}
	n := st.do("POST", notes, miller, map[string]any{"kind": "progress", "body": "Otitis media; amoxicillin for seven days.", "appointment_id": visit})
	if n.Status != http.StatusCreated || n.str("appointment_id") != visit.String() {
		t.Fatalf("note on the visit: %d %s", n.Status, n.Raw)
	}
	if s := st.do("POST", "/v1/notes/"+n.str("id")+"/sign", miller, nil); s.Status != http.StatusOK {
		t.Fatalf("sign: %d %s", s.Status, s.Raw)
	}
	ayse := st.login("demo", "ayse@demo.carebook.test")
	if r := st.do("GET", notes, ayse, nil); r.Status != http.StatusOK || len(r.items()) != 1 || r.items()[0]["body"] != "Otitis media; amoxicillin for seven days." {
		t.Errorf("Ayşe reads Deniz's notes: %d %s", r.Status, r.Raw)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE resource_type = 'clinical_note' AND action = 'list' AND patient_id = ? AND reason LIKE 'proxy%'", deniz); n != 1 {
		t.Errorf("proxy reads audited as such: %d, want 1", n)
	}
	john := st.login("demo", "john@demo.carebook.test")
	if r := st.do("GET", notes, john, nil); r.Status != http.StatusNotFound {
		t.Errorf("John reads Deniz's notes: %d, want 404", r.Status)
	}
	if r := st.do("GET", "/v1/notes/"+n.str("id"), john, nil); r.Status != http.StatusNotFound {
		t.Errorf("John reads Deniz's note: %d, want 404", r.Status)
	}
}
