package api_test

import (
	"net/http"
	"testing"
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
	for i, e := range list.items() {
		if e["actor_role"] != "staff" || e["resource_type"] != "lab_message" || e["seq"].(float64) != float64(i+1) || e["hash"] == "" {
			t.Fatalf("event %d: %v", i, e)
		}
	}
	// Paging: after the second event, the third and the admin's own read.
	if page := st.do("GET", "/v1/audit-events?after_seq=2", admin, nil); len(page.items()) != 2 || page.items()[1]["resource_type"] != "audit_event" {
		t.Fatalf("page: %s", page.Raw)
	}
	v := st.do("GET", "/v1/audit-events/verify", admin, nil)
	if v.Status != http.StatusOK || v.Body["ok"] != true || v.Body["events"].(float64) < 5 {
		t.Fatalf("verify: %d %s", v.Status, v.Raw)
	}
	// Tampering with the owner's connection shows in the verification.
	if err := st.Admin.Exec("UPDATE audit_events SET actor_role = 'admin' WHERE seq = 2 AND tenant_id = ?", st.Demo.Tenant.ID).Error; err != nil {
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
