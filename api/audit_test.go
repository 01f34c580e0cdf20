package api_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestAuditLogForAdmins: reads of patient data land in the tenant's audit
// chain; admins page through it and check the chain; nobody else reads it,
// and another tenant's admin sees none of it.
func TestAuditLogForAdmins(t *testing.T) {
	st := newStack(t)
	staff := st.login("demo", "staff.newyork@demo.carebook.test")
	for i := 0; i < 3; i++ {
		if r := st.do("GET", "/v1/lab-messages", staff, nil); r.Status != http.StatusOK {
			t.Fatalf("queue: %d %s", r.Status, r.Raw)
		}
	}
	admin := st.login("demo", "admin@demo.carebook.test")
	list := st.do("GET", "/v1/audit-events?action=list", admin, nil)
	if list.Status != http.StatusOK || len(list.items()) != 3 {
		t.Fatalf("audit events: %d %s", list.Status, list.Raw)
	}
	var last float64
	for i, e := range list.items() {
		if e["actor_role"] != "staff" || e["resource_type"] != "lab_message" || e["seq"].(float64) <= last || e["hash"] == "" {
			t.Fatalf("event %d: %v", i, e)
		}
		last = e["seq"].(float64)
	}
	// Paging: after the last of those, the admin's login and own read of
	// the log.
	page := st.do("GET", "/v1/audit-events?after_seq="+strconv.Itoa(int(last)), admin, nil)
	if len(page.items()) != 2 || page.items()[0]["action"] != "login" || page.items()[1]["resource_type"] != "audit_event" {
		t.Fatalf("page: %s", page.Raw)
	}
	// Logins, a failed one without the e-mail typed, and a refused route.
	if r := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": "nobody@example.com", "password": "wrong-password-123"}); r.Status != http.StatusUnauthorized {
		t.Fatalf("bad login: %d", r.Status)
	}
	if r := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": "staff.newyork@demo.carebook.test", "password": "wrong-password-123"}); r.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", r.Status)
	}
	if r := st.do("GET", "/v1/payments", staff, nil); r.Status != http.StatusForbidden {
		t.Fatalf("staff on payments: %d", r.Status)
	}
	staffID := st.userID("staff.newyork@demo.carebook.test")
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"action = 'login' AND actor_user = ?", []any{staffID}},
		{"action = 'login-failed' AND actor_user IS NULL AND reason = 'unknown account'", nil},
		{"action = 'login-failed' AND actor_user = ? AND reason = 'wrong password'", []any{staffID}},
		{"action = 'denied' AND actor_user = ? AND reason = 'GET /v1/payments'", []any{staffID}},
	} {
		if n := st.count("SELECT count(*) FROM audit_events WHERE "+q.sql, q.args...); n < 1 {
			t.Fatalf("no audit event where %s", q.sql)
		}
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE reason LIKE '%nobody%' OR client_addr LIKE '%@%'"); n != 0 {
		t.Fatal("an audit event holds the e-mail typed")
	}
	v := st.do("GET", "/v1/audit-events/verify", admin, nil)
	if v.Status != http.StatusOK || v.Body["ok"] != true || v.Body["events"].(float64) < 5 {
		t.Fatalf("verify: %d %s", v.Status, v.Raw)
	}
	// The verified head was anchored in the object store, and the next
	// verification checks the head against that anchor.
	if again := st.do("GET", "/v1/audit-events/verify", admin, nil); again.Body["ok"] != true || again.Body["anchored"] != v.Body["head"] {
		t.Fatalf("verify against the anchor: %s (first: %s)", again.Raw, v.Raw)
	}
	// Tampering with the owner's connection shows in the verification.
	if err := st.Admin.Exec("UPDATE audit_events SET actor_role = 'billing' WHERE seq = 2 AND tenant_id = ?", st.Demo.Tenant.ID).Error; err != nil {
		t.Fatal(err)
	}
	if v := st.do("GET", "/v1/audit-events/verify", admin, nil); v.Body["ok"] != false {
		t.Fatalf("verify after tampering: %s", v.Raw)
	}
	for _, who := range []string{"staff.newyork", "doctor6", "billing", "john"} {
		if r := st.do("GET", "/v1/audit-events", st.login("demo", who+"@demo.carebook.test"), nil); r.Status != http.StatusForbidden {
			t.Fatalf("%s: %d", who, r.Status)
		}
	}
	other := st.do("GET", "/v1/audit-events?action=list", st.login("harbor", "admin@harbor.carebook.test"), nil)
	if other.Status != http.StatusOK || len(other.items()) != 0 {
		t.Fatalf("harbor admin: %d %s", other.Status, other.Raw)
	}
	if r := st.do("GET", "/v1/audit-events?after_seq=-1", admin, nil); r.Status != http.StatusBadRequest {
		t.Fatalf("bad after_seq: %d", r.Status)
	}
}

// Appointments are patient data: reading one, listing them, a facility's
// schedule and each change are in the audit log under the patient.
func TestAppointmentReadsAndChangesAreAudited(t *testing.T) {
	st := newStack(t)
	john := st.Demo.Patients[1].ID
	johnToken := st.login("demo", "john@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(johnToken, doctor, typ)
	if len(free) == 0 {
		t.Fatal("no free slots")
	}
	booked := st.do("POST", "/v1/appointments", johnToken, map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": free[0]["start"]})
	if booked.Status != http.StatusCreated {
		t.Fatalf("book: %d %s", booked.Status, booked.Raw)
	}
	appt := booked.str("id")
	events := func(role, action string) int64 {
		return st.count(`SELECT count(*) FROM audit_events WHERE resource_type = 'appointment' AND patient_id = ?
			AND actor_role = ? AND action = ?`, john, role, action)
	}
	if n := events("patient", "book"); n != 1 {
		t.Errorf("patient book events = %d, want 1", n)
	}

	admin := st.login("demo", "admin@demo.carebook.test")
	if r := st.do("GET", "/v1/appointments/"+appt, admin, nil); r.Status != http.StatusOK {
		t.Fatalf("read: %d %s", r.Status, r.Raw)
	}
	if n := events("admin", "read"); n != 1 {
		t.Errorf("admin read events = %d, want 1", n)
	}
	if r := st.do("GET", "/v1/appointments", admin, nil); r.Status != http.StatusOK {
		t.Fatalf("list: %d %s", r.Status, r.Raw)
	}
	if n := events("admin", "list"); n != 1 {
		t.Errorf("admin list events = %d, want 1 (one per patient listed)", n)
	}

	// The family doctor works in Istanbul; the desk there reads the week.
	staff := st.login("demo", "staff.istanbul@demo.carebook.test")
	start, _ := time.Parse(time.RFC3339, booked.str("start"))
	ist, _ := time.LoadLocation("Europe/Istanbul")
	if r := st.do("GET", "/v1/schedule?view=week&date="+start.In(ist).Format(time.DateOnly), staff, nil); r.Status != http.StatusOK {
		t.Fatalf("schedule: %d %s", r.Status, r.Raw)
	}
	if n := events("staff", "list"); n != 1 {
		t.Errorf("staff schedule events = %d, want 1", n)
	}

	if r := st.do("POST", "/v1/appointments/"+appt+"/cancel", johnToken, map[string]string{"reason": "travelling"}); r.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.Status, r.Raw)
	}
	if n := events("patient", "cancel"); n != 1 {
		t.Errorf("patient cancel events = %d, want 1", n)
	}
	// The free-text reason goes to the row, not into the log.
	if n := st.count("SELECT count(*) FROM audit_events WHERE reason LIKE '%travelling%'"); n != 0 {
		t.Errorf("the cancel reason is in the audit log")
	}
	if r := st.do("GET", "/v1/audit-events/verify", admin, nil); r.Status != http.StatusOK || r.Body["ok"] != true {
		t.Fatalf("verify: %d %s", r.Status, r.Raw)
	}
}

// Billing's reads of payments are reads of the patient's data: each is in
// the audit log under the patient.
func TestPaymentReadsAreAudited(t *testing.T) {
	st := newStack(t)
	id := st.seedPayment(t, st.Demo, seededPayment{patient: 1, practitioner: 3, status: "captured", amount: 12000, currency: "USD", created: time.Now().Add(-48 * time.Hour)})
	john := st.Demo.Patients[1].ID
	billing := st.login("demo", "billing@demo.carebook.test")
	if r := st.do("GET", "/v1/payments/"+id, billing, nil); r.Status != http.StatusOK {
		t.Fatalf("read: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/payments", billing, nil); r.Status != http.StatusOK || len(r.items()) == 0 {
		t.Fatalf("list: %d %s", r.Status, r.Raw)
	}
	for _, action := range []string{"read", "list"} {
		if n := st.count(`SELECT count(*) FROM audit_events WHERE resource_type = 'payment' AND action = ? AND patient_id = ? AND actor_role = 'billing'`,
			action, john); n != 1 {
			t.Errorf("%s events for John's payment = %d, want 1", action, n)
		}
	}
}
