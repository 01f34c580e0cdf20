package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBadInputIsRefusedAndChangesNothing sends malformed and wrong requests;
// each gets a clear 4xx problem document, and no table changes.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	st := newStack(t)
	token := st.login("demo", "ayse@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(token, doctor, typ)
	slot := free[0]["start"].(string)
	foreignDoctor := st.Other.Practitioners[2].ID
	past := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Hour).Format(time.RFC3339)
	far := time.Now().AddDate(0, 3, 0).UTC().Format(time.RFC3339)
	slotTime, _ := time.Parse(time.RFC3339, slot)
	offGrid := slotTime.Add(7 * time.Minute).Format(time.RFC3339)
	// 02:00 at the clinic on the night after the first free slot: always past
	// the minimum notice and inside the horizon, whatever time the test runs.
	ist, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		t.Fatal(err)
	}
	local := slotTime.In(ist)
	night := time.Date(local.Year(), local.Month(), local.Day()+1, 2, 0, 0, 0, ist).Format(time.RFC3339)

	book := func(fields string) string {
		return `{"practitioner_id":"` + doctor.String() + `","appointment_type_id":"` + typ.String() + `"` + fields + `}`
	}
	tests := []struct {
		name       string
		method     string
		path       string
		body       any
		token      string
		wantStatus int
		wantType   string
	}{
		{"malformed json", "POST", "/v1/appointments", `{"practitioner_id": `, token, 400, "invalid-body"},
		{"not an object", "POST", "/v1/appointments", `[1,2]`, token, 400, "invalid-body"},
		{"unknown field", "POST", "/v1/appointments", book(`,"start":"` + slot + `","discount":100`), token, 400, "invalid-body"},
		{"wrong type", "POST", "/v1/appointments", book(`,"start":12345`), token, 400, "invalid-body"},
		{"start not a time", "POST", "/v1/appointments", book(`,"start":"tomorrow at nine"`), token, 400, "invalid-body"},
		{"missing start", "POST", "/v1/appointments", book(``), token, 400, "invalid-body"},
		{"practitioner not a uuid", "POST", "/v1/appointments", `{"practitioner_id":"42","appointment_type_id":"` + typ.String() + `","start":"` + slot + `"}`, token, 400, "invalid-body"},
		{"practitioner of another tenant", "POST", "/v1/appointments", `{"practitioner_id":"` + foreignDoctor.String() + `","appointment_type_id":"` + typ.String() + `","start":"` + slot + `"}`, token, 422, "unknown-practitioner"},
		{"type of another specialty", "POST", "/v1/appointments", `{"practitioner_id":"` + doctor.String() + `","appointment_type_id":"` + st.Demo.Types[1].ID.String() + `","start":"` + slot + `"}`, token, 422, "not-offered"},
		{"slot in the past", "POST", "/v1/appointments", book(`,"start":"` + past + `"`), token, 422, "slot-too-soon"},
		{"beyond the horizon", "POST", "/v1/appointments", book(`,"start":"` + far + `"`), token, 422, "slot-too-far"},
		{"off the grid", "POST", "/v1/appointments", book(`,"start":"` + offGrid + `"`), token, 422, "slot-off-grid"},
		{"off hours", "POST", "/v1/appointments", book(`,"start":"` + night + `"`), token, 422, "slot-off-hours"},
		{"booking for another patient", "POST", "/v1/appointments", book(`,"start":"` + slot + `","patient_id":"` + st.Demo.Patients[1].ID.String() + `"`), token, 404, "not-found"},
		{"booking for a patient that does not exist", "POST", "/v1/appointments", book(`,"start":"` + slot + `","patient_id":"00000000-0000-4000-8000-000000000000"`), token, 404, "not-found"},
		{"no token", "POST", "/v1/appointments", book(`,"start":"` + slot + `"`), "", 401, "unauthorized"},
		{"forged token", "POST", "/v1/appointments", book(`,"start":"` + slot + `"`), token[:len(token)-4] + "AAAA", 401, "unauthorized"},
		{"bad idempotency key", "POST", "/v1/appointments", book(`,"start":"` + slot + `"`), token, 400, "invalid-idempotency-key"},
		{"signup weak password", "POST", "/v1/auth/signup", `{"tenant":"demo","email":"new@example.com","password":"short","given_name":"A","family_name":"B"}`, "", 400, "invalid-body"},
		{"signup bad email", "POST", "/v1/auth/signup", `{"tenant":"demo","email":"not-an-email","password":"long-enough-password","given_name":"A","family_name":"B"}`, "", 422, "invalid-email"},
		{"signup invisible name", "POST", "/v1/auth/signup", `{"tenant":"demo","email":"new@example.com","password":"long-enough-password","given_name":"\u200bAda","family_name":"B"}`, "", 422, "invalid-name"},
		{"signup unknown tenant", "POST", "/v1/auth/signup", `{"tenant":"nowhere","email":"new@example.com","password":"long-enough-password","given_name":"A","family_name":"B"}`, "", 404, "not-found"},
		{"login wrong password", "POST", "/v1/auth/login", `{"tenant":"demo","email":"ayse@demo.carebook.test","password":"wrong-password"}`, "", 401, "login-failed"},
		{"slots with bad date", "GET", "/v1/practitioners/" + doctor.String() + "/slots?appointment_type_id=" + typ.String() + "&from=12/07/2026", nil, token, 400, "invalid-parameter"},
		{"slots range too long", "GET", "/v1/practitioners/" + doctor.String() + "/slots?appointment_type_id=" + typ.String() + "&from=2026-01-01&to=2026-06-01", nil, token, 422, "invalid-range"},
		{"appointment id not a uuid", "GET", "/v1/appointments/../../etc", nil, token, 404, "not-found"},
		{"unknown route", "GET", "/v1/nothing-here", nil, token, 404, "not-found"},
		{"NUL in a query", "GET", "/v1/practitioners?specialty=%00", nil, token, 400, "invalid-parameter"},
		{"invalid UTF-8 in a query", "GET", "/v1/practitioners?specialty=%FF%FE", nil, token, 400, "invalid-parameter"},
		{"NUL in a body", "POST", "/v1/auth/signup", `{"tenant":"demo","email":"n@example.com","password":"long-enough-password","given_name":"A\u0000B","family_name":"B"}`, "", 400, "invalid-body"},
		{"invalid UTF-8 in a body", "POST", "/v1/auth/signup", "{\"tenant\":\"demo\",\"email\":\"n@example.com\",\"password\":\"long-enough-password\",\"given_name\":\"\xff\",\"family_name\":\"B\"}", "", 400, "invalid-body"},
		{"schedule date out of range", "GET", "/v1/schedule?date=0000-01-01", nil, st.login("demo", "admin@demo.carebook.test"), 400, "invalid-parameter"},
		{"impossible date", "GET", "/v1/practitioners/" + doctor.String() + "/slots?appointment_type_id=" + typ.String() + "&from=2026-02-30", nil, token, 400, "invalid-parameter"},
	}
	before := st.snapshot()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.name == "bad idempotency key" {
				headers = []string{"Idempotency-Key", "with space"}
			}
			r := st.do(tt.method, tt.path, tt.token, tt.body, headers...)
			if r.Status != tt.wantStatus || r.problemType() != tt.wantType {
				t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.problemType(), tt.wantStatus, tt.wantType, r.Raw)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			for _, leak := range []string{"SQLSTATE", "gorm", "pgx", "panic", "goroutine", "Öztürk", "ayse@", "[0-9]", "parsing time", "2026-02-30"} {
				if strings.Contains(string(r.Raw), leak) {
					t.Errorf("body leaks %q: %s", leak, r.Raw)
				}
			}
		})
	}
	if after := st.snapshot(); after != before {
		t.Fatalf("bad input changed the database: before %v, after %v", before, after)
	}
	if r := st.do("GET", "/v1/appointments", token, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
		t.Fatalf("appointments after bad input: %s", r.Raw)
	}
}

// snapshot counts the rows that requests could write.
func (st *stack) snapshot() [5]int64 {
	return [5]int64{
		st.count("SELECT count(*) FROM appointments"),
		st.count("SELECT count(*) FROM notification_outbox"),
		st.count("SELECT count(*) FROM idempotency_keys"),
		st.count("SELECT count(*) FROM patients"),
		st.count("SELECT count(*) FROM users"),
	}
}
