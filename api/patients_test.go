package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/carebook/carebook/nationalid"
)

// TestPatientRectification: a patient corrects their own record and, as a
// proxy, their dependant's; the desk corrects patients it reaches,
// including birth date and national ID (re-sealed and re-indexed), which
// patients may not; admins correct anyone's. A change needs the record's
// ETag in If-Match; bad input is refused and changes nothing; an erased
// patient's record is not changed; every change is audited with the
// names of the fields changed and never their values.
func TestPatientRectification(t *testing.T) {
	st := newStack(t)
	ayse := st.login("demo", "ayse@demo.carebook.test")
	john := st.login("demo", "john@demo.carebook.test")
	desk := st.login("demo", "staff.istanbul@demo.carebook.test")
	nyDesk := st.login("demo", "staff.newyork@demo.carebook.test")
	admin := st.login("demo", "admin@demo.carebook.test")
	doctorLogin := st.login("demo", "doctor3@demo.carebook.test") // her family doctor
	ayseID, johnID, philipID, paulID, denizID := st.Demo.Patients[0].ID.String(), st.Demo.Patients[1].ID.String(),
		st.Demo.Patients[2].ID.String(), st.Demo.Patients[3].ID.String(), st.Demo.Patients[4].ID.String()

	// A visit puts Ayşe in the reach of her family doctor's facility's
	// desk (Istanbul), not of the New York desk.
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(ayse, doctor, typ)
	if r := st.do("POST", "/v1/appointments", ayse, map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": free[0]["start"]}); r.Status != http.StatusCreated {
		t.Fatalf("booking: %d %s", r.Status, r.Raw)
	}

	patch := func(token, id, etag string, body any) response {
		t.Helper()
		var h []string
		if etag != "" {
			h = []string{"If-Match", etag}
		}
		return st.do("PATCH", "/v1/patients/"+id, token, body, h...)
	}
	version := func(id string) int64 {
		t.Helper()
		return st.count("SELECT version FROM patients WHERE id = ?", id)
	}

	g := st.do("GET", "/v1/patients/"+ayseID, ayse, nil)
	if g.Status != http.StatusOK || g.Header.Get("ETag") != `"1"` || g.str("given_name") != "Ayşe" {
		t.Fatalf("read own record: %d %v %s", g.Status, g.Header.Get("ETag"), g.Raw)
	}
	if strings.Contains(string(g.Raw), "10000000146") || !strings.Contains(string(g.Raw), nationalid.SystemTCKimlik) {
		t.Errorf("the record shows the number or not its system: %s", g.Raw)
	}

	// Bad input: each refused with its problem, nothing changes.
	bad := []struct {
		name       string
		token, id  string
		etag       string
		body       any
		wantStatus int
		wantType   string
	}{
		{"empty patch", ayse, ayseID, `"1"`, map[string]any{}, 422, "empty-patch"},
		{"blank name", ayse, ayseID, `"1"`, map[string]any{"given_name": "   "}, 422, "invalid-name"},
		{"phone of letters", ayse, ayseID, `"1"`, map[string]any{"phone": "call me maybe"}, 422, "invalid-phone"},
		{"unknown language", ayse, ayseID, `"1"`, map[string]any{"preferred_language": "de"}, 422, "invalid-language"},
		{"unknown field", ayse, ayseID, `"1"`, map[string]any{"email": "a@example.test"}, 400, "invalid-body"},
		{"name too long", ayse, ayseID, `"1"`, map[string]any{"family_name": strings.Repeat("x", 101)}, 422, "invalid-name"},
		{"empty name", ayse, ayseID, `"1"`, map[string]any{"given_name": ""}, 422, "invalid-name"},
		{"name with a direction override", ayse, ayseID, `"1"`, map[string]any{"given_name": "\u202eevil"}, 422, "invalid-name"},
		{"name with a zero-width space", ayse, ayseID, `"1"`, map[string]any{"family_name": "Öztürk\u200b"}, 422, "invalid-name"},
		{"name of a Hangul filler", ayse, ayseID, `"1"`, map[string]any{"given_name": "\u3164"}, 422, "invalid-name"},
		{"name of a blank Braille pattern", ayse, ayseID, `"1"`, map[string]any{"given_name": "\u2800"}, 422, "invalid-name"},
		{"name of combining marks alone", ayse, ayseID, `"1"`, map[string]any{"given_name": "\u0301\u0308"}, 422, "invalid-name"},
		{"name with a variation selector", ayse, ayseID, `"1"`, map[string]any{"given_name": "Ay\ufe0fşe"}, 422, "invalid-name"},
		{"patient sets birth date", ayse, ayseID, `"1"`, map[string]any{"birth_date": "1990-01-01"}, 403, "field-not-allowed"},
		{"patient sets national ID", ayse, ayseID, `"1"`, map[string]any{"national_id": map[string]any{"system": nationalid.SystemTCKimlik, "value": "12345678950"}}, 403, "field-not-allowed"},
		{"no If-Match", ayse, ayseID, "", map[string]any{"phone": "+90 555 000 0009"}, 428, "if-match-required"},
		{"If-Match not an ETag", ayse, ayseID, "1", map[string]any{"phone": "+90 555 000 0009"}, 400, "invalid-if-match"},
		{"stale If-Match", ayse, ayseID, `"7"`, map[string]any{"phone": "+90 555 000 0009"}, 412, "version-mismatch"},
		{"another patient", ayse, johnID, `"1"`, map[string]any{"phone": "+90 555 000 0009"}, 404, "not-found"},
		{"a patient unrelated to her", john, ayseID, `"1"`, map[string]any{"phone": "+90 555 000 0009"}, 404, "not-found"},
		{"desk of another facility", nyDesk, ayseID, `"1"`, map[string]any{"phone": "+90 555 000 0009"}, 404, "not-found"},
		{"doctor", doctorLogin, ayseID, `"1"`, map[string]any{"phone": "+90 555 000 0009"}, 403, "forbidden"},
		{"bad check digits", desk, ayseID, `"1"`, map[string]any{"national_id": map[string]any{"system": nationalid.SystemTCKimlik, "value": "12345678951"}}, 422, "invalid-national-id"},
		{"someone else's number", desk, ayseID, `"1"`, map[string]any{"national_id": map[string]any{"system": nationalid.SystemUSSSN, "value": "765-89-4312"}}, 409, "national-id-in-use"},
		{"birth date in the future", desk, ayseID, `"1"`, map[string]any{"birth_date": "2999-01-01"}, 422, "invalid-birth-date"},
	}
	before := st.count("SELECT count(*) FROM audit_events WHERE action = 'rectify'")
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := patch(tt.token, tt.id, tt.etag, tt.body)
			if r.Status != tt.wantStatus || r.problemType() != tt.wantType {
				t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.problemType(), tt.wantStatus, tt.wantType, r.Raw)
			}
			for _, leak := range []string{"12345678951", "765-89-4312", "call me maybe", "Öztürk"} {
				if strings.Contains(string(r.Raw), leak) {
					t.Errorf("the problem echoes %q", leak)
				}
			}
		})
	}
	if v := version(ayseID); v != 1 {
		t.Fatalf("bad input changed the record: version %d", v)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'rectify'"); n != before {
		t.Fatalf("bad input was audited as a change")
	}

	// The patient corrects her own name and language.
	r := patch(ayse, ayseID, `"1"`, map[string]any{"given_name": " Ayşegül ", "preferred_language": "tr", "phone": "+90 555 000 0001"})
	if r.Status != http.StatusOK || r.Header.Get("ETag") != `"2"` || r.str("given_name") != "Ayşegül" || r.str("preferred_language") != "tr" {
		t.Fatalf("own correction: %d %s %s", r.Status, r.Header.Get("ETag"), r.Raw)
	}
	var reason string
	if err := st.Admin.Raw("SELECT reason FROM audit_events WHERE action = 'rectify' AND patient_id = ? ORDER BY seq DESC LIMIT 1", ayseID).Scan(&reason).Error; err != nil {
		t.Fatal(err)
	}
	// The phone was the same: only what changed is named.
	if reason != "fields: given_name, preferred_language" {
		t.Errorf("audit reason %q", reason)
	}
	// The same change again changes nothing and is a read.
	if r := patch(ayse, ayseID, `"2"`, map[string]any{"given_name": "Ayşegül"}); r.Status != http.StatusOK || r.Header.Get("ETag") != `"2"` {
		t.Errorf("a patch that changes nothing: %d %s %s", r.Status, r.Header.Get("ETag"), r.Raw)
	}
	if r := patch(ayse, ayseID, `"1"`, map[string]any{"family_name": "Yılmaz"}); r.Status != http.StatusPreconditionFailed {
		t.Errorf("a change from the old version: %d %s", r.Status, r.Raw)
	}

	// As a proxy, for her son.
	if r := patch(ayse, denizID, `"1"`, map[string]any{"phone": "+90 555 000 0002"}); r.Status != http.StatusOK || r.str("phone") != "+90 555 000 0002" {
		t.Fatalf("proxy correction: %d %s", r.Status, r.Raw)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'rectify' AND patient_id = ? AND reason = 'proxy: fields: phone'", denizID); n != 1 {
		t.Errorf("%d proxy rectifications audited", n)
	}

	// The desk corrects birth date and national ID: the number is sealed
	// and indexed anew, and the old one finds nobody.
	r = patch(desk, ayseID, `"2"`, map[string]any{"birth_date": "1988-03-14", "national_id": map[string]any{"system": nationalid.SystemTCKimlik, "value": "123 456 789 50"}})
	if r.Status != http.StatusOK || r.str("birth_date") != "1988-03-14" || r.Header.Get("ETag") != `"3"` {
		t.Fatalf("desk correction: %d %s", r.Status, r.Raw)
	}
	ctx := context.Background()
	ids, err := nationalid.Reveal(ctx, st.Admin, st.Keys, st.Demo.Tenant.ID, st.Demo.Patients[0].ID)
	if err != nil || len(ids) != 1 || ids[nationalid.SystemTCKimlik] != "12345678950" {
		t.Fatalf("national IDs after the correction: %v %v", ids, err)
	}
	if found, err := nationalid.Find(ctx, st.Admin, st.Keys, st.Demo.Tenant.ID, nationalid.SystemTCKimlik, "12345678950"); err != nil || len(found) != 1 || found[0] != st.Demo.Patients[0].ID {
		t.Errorf("the new number finds %v %v", found, err)
	}
	if found, err := nationalid.Find(ctx, st.Admin, st.Keys, st.Demo.Tenant.ID, "", "10000000146"); err != nil || len(found) != 0 {
		t.Errorf("the old number still finds %v %v", found, err)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'rectify' AND patient_id = ? AND reason = 'fields: birth_date, national_id'", ayseID); n != 1 {
		t.Errorf("%d desk rectifications audited with the field names", n)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE reason LIKE '%12345678950%' OR reason LIKE '%1988%' OR reason LIKE '%Ayşegül%'"); n != 0 {
		t.Errorf("%d audit events hold a value", n)
	}

	// Admins reach the whole tenant; doctors read whom they reach.
	if r := patch(admin, philipID, `"1"`, map[string]any{"family_name": "Johnston"}); r.Status != http.StatusOK || r.str("family_name") != "Johnston" {
		t.Errorf("admin correction: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/patients/"+ayseID, doctorLogin, nil); r.Status != http.StatusOK || r.str("given_name") != "Ayşegül" {
		t.Errorf("the doctor she booked with: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/patients/"+ayseID, st.login("demo", "doctor2@demo.carebook.test"), nil); r.Status != http.StatusNotFound {
		t.Errorf("a doctor who never saw her: %d %s", r.Status, r.Raw)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'read' AND resource_type = 'patient' AND patient_id = ?", ayseID); n < 2 {
		t.Errorf("%d reads of the record audited", n)
	}

	// An erased patient's record stays as erasure left it.
	if err := st.Admin.Exec("UPDATE patients SET erased_at = now() WHERE id = ?", paulID).Error; err != nil {
		t.Fatal(err)
	}
	if r := patch(admin, paulID, `"1"`, map[string]any{"given_name": "Paula"}); r.Status != http.StatusConflict || r.problemType() != "patient-erased" {
		t.Errorf("erased patient: %d %s", r.Status, r.Raw)
	}
	if n := st.count("SELECT count(*) FROM patients WHERE id = ? AND given_name = 'Paul' AND version = 1", paulID); n != 1 {
		t.Errorf("the erased patient's record changed")
	}
}
