package api_test

import (
	"bytes"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carebook/carebook/api"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
)

// reachFixtures makes one of each resource a route's path can name, in
// tenant n, and returns their IDs by the path's first segment after /v1.
func (st *stack) reachFixtures(t *testing.T, n demo.Network) map[string]string {
	t.Helper()
	slug := n.Tenant.Slug
	login := func(who string) string { return st.login(slug, who+"@"+slug+".carebook.test") }
	ids := map[string]string{"practitioners": n.Practitioners[2].ID.String()}

	ayse := login("ayse")
	doctor, typ := n.Practitioners[2].ID, n.Types[0].ID
	free := st.freeSlots(ayse, doctor, typ)
	a := st.do("POST", "/v1/appointments", ayse, map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": free[0]["start"]})
	if a.Status != http.StatusCreated {
		t.Fatalf("%s booking: %d %s", slug, a.Status, a.Raw)
	}
	ids["appointments"] = a.str("id")
	ids["payments"] = st.seedPayment(t, n, seededPayment{patient: 1, practitioner: 3, status: "captured", amount: 12000, currency: "USD", created: time.Now().Add(-72 * time.Hour)})
	ids["discrepancies"] = st.seedDiscrepancy(t, n.Tenant.ID, "open", time.Now().AddDate(0, 0, -2))
	bg := st.do("POST", "/v1/break-glass", login("doctor1"), map[string]any{"patient_id": n.Patients[1].ID, "reason": "unconscious in the emergency room, history needed"})
	if bg.Status != http.StatusCreated {
		t.Fatalf("%s break-glass: %d %s", slug, bg.Status, bg.Raw)
	}
	ids["break-glass"] = bg.str("id")

	key := demo.LabKeyFor(slug)
	filed, lost := freshID("REACH"), freshID("LOST")
	if r := st.postLab("hl7", key, nistVariant(t, filed, "F-"+filed)); r.Status != http.StatusAccepted {
		t.Fatalf("%s lab: %d %s", slug, r.Status, r.Raw)
	}
	if r := st.postLab("hl7", key, nistVariant(t, lost, "F-"+lost, fieldEdit{"PID", 3, "0000^^^NOWHERE^MR"})); r.Status != http.StatusAccepted {
		t.Fatalf("%s lost lab: %d %s", slug, r.Status, r.Raw)
	}
	ids["lab-results"] = st.oneReport(t, st.settled(t, n.Tenant.ID, "hl7v2", filed).ID).ID.String()
	ids["lab-messages"] = st.settled(t, n.Tenant.ID, "hl7v2", lost).ID.String()

	admin := login("admin")
	ca := st.do("POST", "/v1/care-assignments", admin, map[string]any{"practitioner_id": n.Practitioners[0].ID, "patient_id": n.Patients[1].ID, "reason": "referral"})
	if ca.Status != http.StatusCreated {
		t.Fatalf("%s care assignment: %d %s", slug, ca.Status, ca.Raw)
	}
	ids["care-assignments"] = ca.str("id")
	px := st.do("POST", "/v1/proxy-relations", admin, map[string]any{"proxy_patient_id": n.Patients[1].ID, "patient_id": n.Patients[3].ID,
		"kind": "caregiver", "documents_checked": true})
	if px.Status != http.StatusCreated {
		t.Fatalf("%s proxy relation: %d %s", slug, px.Status, px.Raw)
	}
	ids["proxy-relations"] = px.str("id")
	// A message thread between Dr. Garcia (the walk's doctor) and Ayşe
	// (its patient), who is put in her care for it.
	mca := st.do("POST", "/v1/care-assignments", admin, map[string]any{"practitioner_id": n.Practitioners[5].ID, "patient_id": n.Patients[0].ID, "reason": "primary-care"})
	if mca.Status != http.StatusCreated {
		t.Fatalf("%s care assignment for messages: %d %s", slug, mca.Status, mca.Raw)
	}
	mt := st.do("POST", "/v1/message-threads", login("doctor6"), map[string]any{"patient_id": n.Patients[0].ID, "subject": "reach fixture", "body": "reach fixture"})
	if mt.Status != http.StatusCreated {
		t.Fatalf("%s message thread: %d %s", slug, mt.Status, mt.Raw)
	}
	ids["message-threads"] = mt.str("id")

	// Data subject requests about Philip: two legal holds (a release in the
	// walk below lifts one; the other keeps a real erasure from running)
	// and an export.
	philip := n.Patients[2].ID.String()
	ids["patients"] = philip
	for i := 0; i < 2; i++ {
		h := st.do("POST", "/v1/patients/"+philip+"/legal-holds", admin, map[string]any{"reason": "reach fixture hold"})
		if h.Status != http.StatusCreated {
			t.Fatalf("%s legal hold: %d %s", slug, h.Status, h.Raw)
		}
		ids["legal-holds"] = h.str("id")
	}
	ex := st.do("POST", "/v1/patients/"+philip+"/exports", admin, nil)
	if ex.Status != http.StatusAccepted {
		t.Fatalf("%s export: %d %s", slug, ex.Status, ex.Raw)
	}
	ids["dsr"] = ex.str("id")

	// A signed clinical note about Philip, by Dr. Garcia (the walk's
	// doctor), whom the admin puts in his care for it.
	if r := st.do("POST", "/v1/care-assignments", admin, map[string]any{"practitioner_id": n.Practitioners[5].ID, "patient_id": philip,
		"reason": "care-team"}); r.Status != http.StatusCreated {
		t.Fatalf("%s care assignment for notes: %d %s", slug, r.Status, r.Raw)
	}
	garcia := login("doctor6")
	note := st.do("POST", "/v1/patients/"+philip+"/notes", garcia, map[string]any{"kind": "progress", "body": "reach fixture note"})
	if note.Status != http.StatusCreated {
		t.Fatalf("%s note: %d %s", slug, note.Status, note.Raw)
	}
	if r := st.do("POST", "/v1/notes/"+note.str("id")+"/sign", garcia, map[string]any{}); r.Status != http.StatusOK {
		t.Fatalf("%s sign note: %d %s", slug, r.Status, r.Raw)
	}
	ids["notes"] = note.str("id")
	return ids
}

// TestEveryPathIDStaysInItsTenant walks the permission matrix: every route
// whose path names a resource, from every role of tenant demo, with an ID
// of tenant harbor's (a real one: the same call with demo's own ID finds
// its row) answers 404, or 403 where the role is refused first, and never
// echoes the ID. Bodies are valid, so each request reaches the row lookup
// instead of stopping at validation.
func TestEveryPathIDStaysInItsTenant(t *testing.T) {
	st := newStack(t)
	own := st.reachFixtures(t, st.Demo)
	other := st.reachFixtures(t, st.Other)
	tokens := map[models.Role]string{
		models.RolePatient: st.login("demo", "ayse@demo.carebook.test"),
		models.RoleDoctor:  st.login("demo", garciaLogin),
		models.RoleStaff:   st.login("demo", "staff.istanbul@demo.carebook.test"),
		models.RoleBilling: st.login("demo", "billing@demo.carebook.test"),
		models.RoleAdmin:   st.login("demo", "admin@demo.carebook.test"),
	}
	bodies := map[string]any{
		"POST /v1/appointments/:id/cancel":     map[string]any{"reason": "reach test"},
		"POST /v1/appointments/:id/reschedule": map[string]any{"start": time.Now().Add(240 * time.Hour).UTC().Truncate(time.Hour).Format(time.RFC3339)},
		"POST /v1/payments/:id/refund":         map[string]any{"amount_minor": 100, "reason": "reach test"},
		"POST /v1/discrepancies/:id/resolve":   map[string]any{"note": "reach test"},
		"POST /v1/break-glass/:id/review":      map[string]any{"note": "reach test"},
		"POST /v1/lab-results/:id/review":      map[string]any{"comment": "reach test"},
		"POST /v1/lab-messages/:id/assign":     map[string]any{"patient_id": st.Demo.Patients[1].ID},
		"POST /v1/lab-messages/:id/dismiss":    map[string]any{"reason": "reach test"},
		"POST /v1/patients/:id/erasure":        map[string]any{"identity_verified": true},
		"POST /v1/patients/:id/legal-holds":    map[string]any{"reason": "reach test hold"},
		"POST /v1/legal-holds/:id/release":     map[string]any{"reason": "reach test"},
		"POST /v1/patients/:id/notes":          map[string]any{"kind": "progress", "body": "reach test"},
		"PUT /v1/notes/:id":                    map[string]any{"kind": "progress", "body": "reach test", "version": 1},
		"POST /v1/notes/:id/addenda":           map[string]any{"body": "reach test"},

		"POST /v1/message-threads/:id/messages": map[string]any{"body": "reach test"},
		"PATCH /v1/patients/:id":                map[string]any{"phone": "+90 555 000 0000"},
	}
	query := map[string]string{"GET /v1/practitioners/:id/slots": "?appointment_type_id=" + st.Demo.Types[0].ID.String()}

	var routes []string
	for key := range api.Permissions() {
		if strings.Contains(key, "/:") {
			routes = append(routes, key)
		}
	}
	sort.Strings(routes)
	type call struct{ method, path, key string }
	calls := func(ids map[string]string) []call {
		var out []call
		for _, key := range routes {
			method, pattern, _ := strings.Cut(key, " ")
			if strings.Contains(pattern, "/:day") {
				// A settlement day is a date, the same in every tenant,
				// not a resource ID; the day's rows are the caller's
				// tenant's by row security.
				continue
			}
			resource := strings.Split(pattern, "/")[2]
			id, ok := ids[resource]
			if !ok || strings.Count(pattern, "/:") != 1 {
				t.Errorf("%s: no %s fixture in reachFixtures; add one", key, resource)
				continue
			}
			out = append(out, call{method, strings.Replace(pattern, ":id", id, 1) + query[key], key})
		}
		return out
	}
	body := func(c call) any {
		if b, ok := bodies[c.key]; ok {
			return b
		}
		if c.method == http.MethodPost {
			return map[string]any{}
		}
		return nil
	}
	matrix := api.Permissions()

	// Harbor's IDs first: nothing here may change them, or demo's rows.
	for _, c := range calls(other) {
		id := strings.Split(c.path, "/")[3]
		for _, role := range matrixRoles {
			r := st.do(c.method, c.path, tokens[role], body(c))
			want, wantType := http.StatusNotFound, "not-found"
			if !slices.Contains(matrix[c.key], role) {
				want, wantType = http.StatusForbidden, "forbidden"
			}
			if r.Status != want || r.problemType() != wantType {
				t.Errorf("%s with harbor's ID as %s: %d %s, want %d %s", c.key, role, r.Status, r.Raw, want, wantType)
			}
			if bytes.Contains(r.Raw, []byte(id)) {
				t.Errorf("%s with harbor's ID as %s: the answer holds the ID", c.key, role)
			}
		}
	}
	// Demo's own IDs: some role the matrix lets in finds each row, so the
	// 404s above were the tenant boundary, not a bad fixture.
	for _, c := range calls(own) {
		found := false
		for _, role := range matrixRoles {
			if !slices.Contains(matrix[c.key], role) {
				continue
			}
			r := st.do(c.method, c.path, tokens[role], body(c))
			if r.Status >= 500 {
				t.Errorf("%s with demo's ID as %s: %d %s", c.key, role, r.Status, r.Raw)
			}
			if r.Status != http.StatusNotFound {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no role of demo finds demo's own row", c.key)
		}
	}
	// Harbor's rows are as they were.
	for _, q := range []struct {
		sql, id string
	}{
		{"SELECT count(*) FROM appointments WHERE id = ? AND status = 'booked'", other["appointments"]},
		{"SELECT count(*) FROM care_assignments WHERE id = ? AND ended_at IS NULL", other["care-assignments"]},
		{"SELECT count(*) FROM proxy_relations WHERE id = ? AND ended_at IS NULL", other["proxy-relations"]},
		{"SELECT count(*) FROM lab_messages WHERE id = ? AND status = 'unmatched'", other["lab-messages"]},
		{"SELECT count(*) FROM lab_reports WHERE id = ? AND reviewed_at IS NULL", other["lab-results"]},
		{"SELECT count(*) FROM break_glass_grants WHERE id = ? AND reviewed_at IS NULL", other["break-glass"]},
		{"SELECT count(*) FROM discrepancies WHERE id = ? AND status = 'open'", other["discrepancies"]},
		{"SELECT count(*) FROM legal_holds WHERE id = ? AND released_at IS NULL", other["legal-holds"]},
		{"SELECT count(*) FROM patients WHERE id = ? AND erased_at IS NULL", other["patients"]},
		{"SELECT count(*) FROM dsr_requests WHERE patient_id = ?", other["patients"]},
		{"SELECT count(*) FROM clinical_notes n WHERE id = ? AND signed_at IS NOT NULL AND version = 1 " +
			"AND NOT EXISTS (SELECT 1 FROM clinical_notes a WHERE a.amends = n.id)", other["notes"]},
		{"SELECT count(*) FROM clinical_notes WHERE patient_id = ?", other["patients"]},
		{"SELECT count(*) FROM message_threads mt WHERE mt.id = ? AND mt.closed_at IS NULL AND (SELECT count(*) FROM messages m WHERE m.thread_id = mt.id) = 1",
			other["message-threads"]},
	} {
		if n := st.count(q.sql, q.id); n != 1 {
			t.Errorf("harbor's row changed: %s", q.sql)
		}
	}
}

// philipResult files a NIST lead result under Philip in demo (ordered by
// Dr. Garcia) and returns its report ID.
func (st *stack) philipResult(t *testing.T) string {
	t.Helper()
	id := freshID("PHIL")
	if r := st.postLab("hl7", demo.LabKeyFor("demo"), nistVariant(t, id, "F-"+id)); r.Status != http.StatusAccepted {
		t.Fatalf("lab: %d %s", r.Status, r.Raw)
	}
	return st.oneReport(t, st.settled(t, st.Demo.Tenant.ID, "hl7v2", id).ID).ID.String()
}

// TestCareAssignmentOpensAndClosesResults: a doctor with no visit sees a
// patient's results only while assigned to their care; the desk of
// another facility cannot assign them; an unrelated doctor gets 404.
func TestCareAssignmentOpensAndClosesResults(t *testing.T) {
	st := newStack(t)
	report := st.philipResult(t)
	path := "/v1/lab-results/" + report
	kaya := st.login("demo", "doctor2@demo.carebook.test")  // Istanbul dermatologist
	demir := st.login("demo", "doctor3@demo.carebook.test") // never assigned
	ist := st.login("demo", "staff.istanbul@demo.carebook.test")
	ny := st.login("demo", "staff.newyork@demo.carebook.test")
	kayaID := st.Demo.Practitioners[1].ID

	if r := st.do("GET", path, kaya, nil); r.Status != http.StatusNotFound {
		t.Fatalf("before assignment: %d %s", r.Status, r.Raw)
	}
	assign := map[string]any{"practitioner_id": kayaID, "patient_id": st.philip(), "reason": "referral"}
	if r := st.do("POST", "/v1/care-assignments", ny, assign); r.Status != http.StatusForbidden {
		t.Errorf("New York's desk assigning an Istanbul doctor: %d %s, want 403", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/care-assignments", ist, map[string]any{"practitioner_id": kayaID, "patient_id": st.philip(), "reason": "because"}); r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity {
		t.Errorf("unknown reason: %d %s", r.Status, r.Raw)
	}
	// A desk assigns only a patient it reaches itself: Philip has never
	// been seen in Istanbul.
	if r := st.do("POST", "/v1/care-assignments", ist, assign); r.Status != http.StatusUnprocessableEntity || r.problemType() != "unknown-patient" {
		t.Fatalf("Istanbul's desk assigning a patient it never saw: %d %s, want 422 unknown-patient", r.Status, r.Raw)
	}
	st.seedVisit(t, st.philip(), st.Demo.Practitioners[0].ID, st.Demo.Facilities[0].ID)
	// Concurrent requests for the same pair make one assignment.
	codes := make(chan int, 4)
	for i := 0; i < 4; i++ {
		go func() { codes <- st.do("POST", "/v1/care-assignments", ist, assign).Status }()
	}
	created := 0
	for i := 0; i < 4; i++ {
		if <-codes == http.StatusCreated {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("4 concurrent assignments of one pair: %d created, want 1", created)
	}
	var a response
	if r := st.do("GET", "/v1/care-assignments?patient_id="+st.philip().String()+"&practitioner_id="+kayaID.String(), ist, nil); len(r.items()) != 1 {
		t.Fatalf("assignments of the pair: %s", r.Raw)
	} else {
		a = response{Status: http.StatusCreated, Body: r.items()[0]}
	}
	if r := st.do("POST", "/v1/care-assignments", ist, assign); r.Status != http.StatusConflict || r.problemType() != "assignment-exists" {
		t.Errorf("a second assignment of the pair: %d %s, want 409 assignment-exists", r.Status, r.Raw)
	}
	if r := st.do("GET", path, kaya, nil); r.Status != http.StatusOK || r.str("patient_id") != st.philip().String() {
		t.Fatalf("assigned doctor: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/lab-results?patient_id="+st.philip().String(), kaya, nil); len(r.items()) != 1 {
		t.Errorf("assigned doctor's list: %s", r.Raw)
	}
	if r := st.do("GET", path, demir, nil); r.Status != http.StatusNotFound {
		t.Errorf("unrelated doctor: %d, want 404", r.Status)
	}
	if r := st.do("GET", "/v1/care-assignments", kaya, nil); len(r.items()) != 1 || r.items()[0]["id"] != a.str("id") {
		t.Errorf("doctor's own assignments: %s", r.Raw)
	}
	if r := st.do("GET", "/v1/care-assignments", demir, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
		t.Errorf("another doctor's assignments: %s", r.Raw)
	}
	// New York's desk does not see (or end) an Istanbul doctor's assignment.
	end := "/v1/care-assignments/" + a.str("id") + "/end"
	if r := st.do("POST", end, ny, map[string]any{}); r.Status != http.StatusNotFound {
		t.Errorf("other facility ends: %d, want 404", r.Status)
	}
	if r := st.do("POST", end, ist, map[string]any{}); r.Status != http.StatusOK || r.Body["active"] != false {
		t.Fatalf("end: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", end, ist, map[string]any{}); r.Status != http.StatusConflict || r.problemType() != "already-ended" {
		t.Errorf("end again: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", path, kaya, nil); r.Status != http.StatusNotFound {
		t.Errorf("after the assignment ended: %d, want 404", r.Status)
	}
	if r := st.do("POST", path+"/review", kaya, map[string]any{}); r.Status != http.StatusNotFound {
		t.Errorf("review after the end: %d, want 404", r.Status)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action IN ('care-assign', 'care-end') AND patient_id = ?", st.philip()); n != 2 {
		t.Errorf("care audit events = %d, want 2", n)
	}
}

// TestProxyActsForDependant: a parent, made proxy at the desk, books for
// the child, reads the child's appointments and released results,
// records their consent, and loses all of it when the relation ends;
// audit events name the parent as actor and the child as patient.
func TestProxyActsForDependant(t *testing.T) {
	st := newStack(t)
	parent := st.login("demo", "john@demo.carebook.test")
	johnID := st.john()
	child := st.paul() // stands in for a child: the seeded relations do not involve him
	// Paul has never been seen in Istanbul: that desk may not make anyone
	// his proxy; an admin (the privacy officer) may.
	if r := st.do("POST", "/v1/proxy-relations", st.login("demo", "staff.istanbul@demo.carebook.test"), map[string]any{"proxy_patient_id": johnID,
		"patient_id": child, "kind": "caregiver", "documents_checked": true}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "unknown-patient" {
		t.Errorf("a desk making a proxy for a patient it never saw: %d %s, want 422 unknown-patient", r.Status, r.Raw)
	}
	desk := st.login("demo", "admin@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(parent, doctor, typ)
	book := func(start any) response {
		return st.do("POST", "/v1/appointments", parent, map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": start, "patient_id": child})
	}
	// Out of reach is "not found", as for every other row (reach.go).
	if r := book(free[0]["start"]); r.Status != http.StatusNotFound || r.problemType() != "not-found" {
		t.Fatalf("booking for a stranger: %d %s, want 404 not-found", r.Status, r.Raw)
	}

	if r := st.do("POST", "/v1/proxy-relations", desk, map[string]any{"proxy_patient_id": johnID, "patient_id": child, "kind": "parent"}); r.Status != http.StatusBadRequest && r.problemType() != "documents-unchecked" {
		t.Errorf("without documents: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/proxy-relations", desk, map[string]any{"proxy_patient_id": johnID, "patient_id": child, "kind": "parent", "documents_checked": true}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "dependant-adult" {
		t.Errorf("a parent of an adult without valid_until: %d %s", r.Status, r.Raw)
	}
	until := time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second)
	rel := st.do("POST", "/v1/proxy-relations", desk, map[string]any{"proxy_patient_id": johnID, "patient_id": child, "kind": "guardian",
		"documents_checked": true, "valid_until": until.Format(time.RFC3339)})
	if rel.Status != http.StatusCreated || rel.Body["active"] != true {
		t.Fatalf("relation: %d %s", rel.Status, rel.Raw)
	}
	if r := st.do("POST", "/v1/proxy-relations", desk, map[string]any{"proxy_patient_id": johnID, "patient_id": child, "kind": "guardian",
		"documents_checked": true, "valid_until": until.Format(time.RFC3339)}); r.Status != http.StatusConflict || r.problemType() != "proxy-exists" {
		t.Errorf("second relation: %d %s", r.Status, r.Raw)
	}

	a := book(free[0]["start"])
	if a.Status != http.StatusCreated || a.str("patient_id") != child.String() {
		t.Fatalf("proxy booking: %d %s", a.Status, a.Raw)
	}
	apptPath := "/v1/appointments/" + a.str("id")
	if r := st.do("GET", apptPath, parent, nil); r.Status != http.StatusOK {
		t.Errorf("proxy reads the booking: %d", r.Status)
	}
	list := st.do("GET", "/v1/appointments", parent, nil)
	if len(list.items()) != 1 || list.items()[0]["patient_id"] != child.String() {
		t.Errorf("proxy's list: %s", list.Raw)
	}
	// The dependant's own account is unaffected, and sees nothing of John's.
	paulToken := st.login("demo", "paul@demo.carebook.test")
	if r := st.do("GET", apptPath, paulToken, nil); r.Status != http.StatusOK {
		t.Errorf("the dependant's own read: %d", r.Status)
	}
	if r := st.do("GET", "/v1/proxy-relations", paulToken, nil); len(r.items()) != 1 {
		t.Errorf("the dependant sees who acts for him: %s", r.Raw)
	}
	if r := st.do("POST", apptPath+"/reschedule", parent, map[string]any{"start": free[1]["start"]}); r.Status != http.StatusOK {
		t.Errorf("proxy reschedule: %d %s", r.Status, r.Raw)
	}

	// A released result of the child's.
	st.setReleaseRule(st.Demo.Tenant.ID, models.ReleaseImmediate, 0)
	report := st.paulReport(t)
	if r := st.do("GET", "/v1/lab-results/"+report, parent, nil); r.Status != http.StatusOK {
		t.Errorf("proxy reads the released result: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/lab-results", parent, nil); len(r.items()) != 1 {
		t.Errorf("proxy's results: %s", r.Raw)
	}
	var notice string
	for _, n := range st.do("GET", "/v1/notices", parent, nil).items() {
		notice = n["id"].(string)
	}
	if r := st.do("POST", "/v1/consents", parent, map[string]any{"patient_id": child, "purpose": "sms_reminders", "granted": true, "channel": "web", "notice_id": notice}); r.Status != http.StatusCreated || r.str("patient_id") != child.String() {
		t.Errorf("proxy consent: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", apptPath+"/cancel", parent, map[string]any{"reason": "school trip"}); r.Status != http.StatusOK || r.str("status") != "cancelled" {
		t.Errorf("proxy cancel: %d %s", r.Status, r.Raw)
	}
	var proxyEvents []string
	if err := st.Admin.Raw("SELECT action || '/' || resource_type FROM audit_events WHERE actor_user = ? AND patient_id = ? AND (reason = 'proxy' OR reason LIKE 'proxy: %') ORDER BY seq",
		st.userID("john@demo.carebook.test"), child).Scan(&proxyEvents).Error; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"book/appointment", "read/appointment", "list/appointment", "reschedule/appointment", "read/lab_report", "list/lab_report", "consent-grant/consent", "cancel/appointment"} {
		if !slices.Contains(proxyEvents, want) {
			t.Errorf("no proxy audit event %s in %v", want, proxyEvents)
		}
	}

	// Ended: the proxy is a stranger again.
	if r := st.do("POST", "/v1/proxy-relations/"+rel.str("id")+"/end", desk, map[string]any{}); r.Status != http.StatusOK || r.Body["active"] != false {
		t.Fatalf("end: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", apptPath, parent, nil); r.Status != http.StatusNotFound {
		t.Errorf("after the end, the booking: %d, want 404", r.Status)
	}
	if r := st.do("GET", "/v1/lab-results/"+report, parent, nil); r.Status != http.StatusNotFound {
		t.Errorf("after the end, the result: %d, want 404", r.Status)
	}
	if r := st.do("GET", "/v1/consents?patient_id="+child.String(), parent, nil); r.Status != http.StatusNotFound {
		t.Errorf("after the end, consents: %d, want 404", r.Status)
	}
	if r := book(free[2]["start"]); r.Status != http.StatusNotFound || r.problemType() != "not-found" {
		t.Errorf("after the end, booking: %d %s, want 404 not-found", r.Status, r.Raw)
	}
}

// paulReport files the Cerner culture under Paul and returns its report ID.
func (st *stack) paulReport(t *testing.T) string {
	t.Helper()
	raw := sharedCase(t, "hl7", cernerFile)
	if r := st.postLab("hl7", demo.LabKeyFor("demo"), raw); r.Status != http.StatusAccepted {
		t.Fatalf("lab: %d %s", r.Status, r.Raw)
	}
	m := st.settled(t, st.Demo.Tenant.ID, "hl7v2", controlID(t, raw))
	rep := st.oneReport(t, m.ID)
	labWait(t, "the release", func() bool {
		return st.count("SELECT count(*) FROM lab_reports WHERE id = ? AND released_at IS NOT NULL", rep.ID) == 1
	})
	return rep.ID.String()
}

// TestStaffReachTheirFacility: New York's desk neither sees nor checks in
// an Istanbul visit, nor reads the results or consents of a patient seen
// only in Istanbul; Istanbul's desk does, and admins see the tenant.
func TestStaffReachTheirFacility(t *testing.T) {
	st := newStack(t)
	ayse := st.login("demo", "ayse@demo.carebook.test")
	ist := st.login("demo", "staff.istanbul@demo.carebook.test")
	ny := st.login("demo", "staff.newyork@demo.carebook.test")
	admin := st.login("demo", "admin@demo.carebook.test")
	// A result for Ayşe that no New York doctor ordered (ORC-12 and OBR-16
	// cleared: no ordering doctor known).
	if err := st.Admin.Create(&models.PatientIdentifier{TenantID: st.Demo.Tenant.ID, PatientID: st.ayse(), System: "AYSESYS", Value: "A1"}).Error; err != nil {
		t.Fatal(err)
	}
	id := freshID("AYSE")
	raw := nistVariant(t, id, "F-"+id, fieldEdit{"PID", 3, "A1^^^AYSESYS^MR"}, fieldEdit{"OBR", 16, ""}, fieldEdit{"ORC", 12, ""})
	if r := st.postLab("hl7", demo.LabKeyFor("demo"), raw); r.Status != http.StatusAccepted {
		t.Fatalf("lab: %d %s", r.Status, r.Raw)
	}
	msg := st.settled(t, st.Demo.Tenant.ID, "hl7v2", id)
	report := "/v1/lab-results/" + st.oneReport(t, msg.ID).ID.String()
	for _, who := range []string{ist, ny} {
		if r := st.do("GET", report, who, nil); r.Status != http.StatusNotFound {
			t.Errorf("a desk before any visit: %d, want 404", r.Status)
		}
	}

	doctor, typ := st.familyDoctor() // Istanbul
	free := st.freeSlots(ayse, doctor, typ)
	a := st.do("POST", "/v1/appointments", ist, map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": free[0]["start"], "patient_id": st.ayse()})
	if a.Status != http.StatusCreated {
		t.Fatalf("desk booking: %d %s", a.Status, a.Raw)
	}
	appt := "/v1/appointments/" + a.str("id")
	// New York's desk cannot book into Istanbul's calendars either.
	if r := st.do("POST", "/v1/appointments", ny, map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": free[1]["start"], "patient_id": st.ayse()}); r.Status != http.StatusForbidden {
		t.Errorf("New York books in Istanbul: %d %s", r.Status, r.Raw)
	}
	for _, c := range []struct {
		name, method, path string
		body               any
	}{
		{"read", "GET", appt, nil},
		{"check in", "POST", appt + "/check-in", map[string]any{}},
		{"cancel", "POST", appt + "/cancel", map[string]any{"reason": "not ours"}},
		{"result", "GET", report, nil},
		{"raw result", "GET", report + "/raw", nil},
		{"filed message", "GET", "/v1/lab-messages/" + msg.ID.String(), nil},
		{"consents", "GET", "/v1/consents?patient_id=" + st.ayse().String(), nil},
	} {
		if r := st.do(c.method, c.path, ny, c.body); r.Status != http.StatusNotFound {
			t.Errorf("New York's desk, %s: %d %s, want 404", c.name, r.Status, r.Raw)
		}
		if c.method == "GET" {
			if r := st.do(c.method, c.path, ist, nil); r.Status != http.StatusOK {
				t.Errorf("Istanbul's desk, %s: %d %s", c.name, r.Status, r.Raw)
			}
			if r := st.do(c.method, c.path, admin, nil); r.Status != http.StatusOK {
				t.Errorf("admin, %s: %d %s", c.name, r.Status, r.Raw)
			}
		}
	}
	if r := st.do("GET", "/v1/lab-results?patient_id="+st.ayse().String(), ny, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
		t.Errorf("New York's list of Ayşe's results: %s", r.Raw)
	}
	if r := st.do("GET", "/v1/appointments", ny, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
		t.Errorf("New York's appointments: %s", r.Raw)
	}
	if r := st.do("POST", "/v1/appointments/"+a.str("id")+"/check-in", ist, map[string]any{}); r.Status != http.StatusConflict || r.problemType() != "check-in-closed" {
		t.Errorf("Istanbul's desk check-in (days early): %d %s", r.Status, r.Raw)
	}
}

// seedVisit writes an attended visit of patient with doctor at facility,
// a week ago, through the owner connection.
func (st *stack) seedVisit(t *testing.T, patient, doctor, facility uuid.UUID) {
	t.Helper()
	start := time.Now().Add(-7 * 24 * time.Hour).Truncate(time.Hour)
	a := models.Appointment{ID: uuid.New(), TenantID: st.Demo.Tenant.ID, PractitionerID: doctor, PatientID: patient,
		FacilityID: facility, AppointmentTypeID: st.Demo.Types[0].ID, StartsAt: start, EndsAt: start.Add(20 * time.Minute),
		BlockedFrom: start, BlockedUntil: start.Add(20 * time.Minute), Status: models.StatusFulfilled, Mode: models.ModeInPerson, Currency: "USD", Version: 1}
	if err := st.Admin.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
}
