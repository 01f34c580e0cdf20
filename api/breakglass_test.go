package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBreakGlass: a doctor without reach into a patient's results states
// an emergency and gets it for a short window; the admins are alerted;
// the access expires; it waits for review, is reviewed once, and is in the
// audit log with its reason.
func TestBreakGlass(t *testing.T) {
	st := newStack(t)
	st.Server.BreakGlassTTL = 3 * time.Second
	key := "demolab01.carebook-demo-lab-2026"
	id := freshID("BG")
	if r := st.postLab("hl7", key, nistVariant(t, id, "F-BG")); r.Status != http.StatusAccepted {
		t.Fatalf("lab message: %d %s", r.Status, r.Raw)
	}
	rep := st.oneReport(t, st.settled(t, st.Demo.Tenant.ID, "hl7v2", id).ID)
	path := "/v1/lab-results/" + rep.ID.String()
	kaya := st.login("demo", "doctor2@demo.carebook.test") // no order, no visit with Philip
	if r := st.do("GET", path, kaya, nil); r.Status != http.StatusNotFound {
		t.Fatalf("before break-glass: %d", r.Status)
	}
	for _, bad := range []string{"short", strings.Repeat("\u200b", 11), "a" + strings.Repeat("\n", 10) + "b", "\u202eabcdefghijkl", strings.Repeat("\a", 11)} {
		if r := st.do("POST", "/v1/break-glass", kaya, map[string]string{"patient_id": st.philip().String(), "reason": bad}); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("reason %q: %d", bad, r.Status)
		}
	}
	g := st.do("POST", "/v1/break-glass", kaya, map[string]string{"patient_id": st.philip().String(), "reason": "collapsed at the desk, needs lead level now"})
	if g.Status != http.StatusCreated {
		t.Fatalf("break-glass: %d %s", g.Status, g.Raw)
	}
	if r := st.do("GET", path, kaya, nil); r.Status != http.StatusOK {
		t.Fatalf("under break-glass: %d %s", r.Status, r.Raw)
	}
	// Break-glass opens the record to read, not to sign off another
	// doctor's result.
	if r := st.do("POST", path+"/review", kaya, map[string]string{"comment": "seen"}); r.Status != http.StatusNotFound {
		t.Fatalf("review under break-glass: %d", r.Status)
	}
	if r := st.do("POST", path+"/release", kaya, nil); r.Status != http.StatusNotFound {
		t.Fatalf("release under break-glass: %d", r.Status)
	}
	if err := st.App.Exec("UPDATE break_glass_grants SET expires_at = now() + interval '1 day'").Error; err == nil {
		t.Fatal("the app role moved a grant's expiry")
	}
	if n := st.count("SELECT count(*) FROM notification_outbox WHERE template = 'break-glass.alert'"); n < 1 {
		t.Fatal("no admin was alerted")
	}
	if n := st.count("SELECT count(*) FROM notification_outbox WHERE template = 'break-glass.alert' AND payload::text LIKE '%collapsed%'"); n != 0 {
		t.Fatal("the alert carries the reason")
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'break-glass' AND reason LIKE 'collapsed%'"); n != 1 {
		t.Fatalf("break-glass audit events = %d", n)
	}
	eventually(t, "the access to expire", func() bool { return st.do("GET", path, kaya, nil).Status == http.StatusNotFound })

	admin := st.login("demo", "admin@demo.carebook.test")
	queue := st.do("GET", "/v1/break-glass", admin, nil)
	if queue.Status != http.StatusOK || len(queue.items()) != 1 || queue.items()[0]["id"] != g.str("id") {
		t.Fatalf("review queue: %d %s", queue.Status, queue.Raw)
	}
	if r := st.do("POST", "/v1/break-glass/"+g.str("id")+"/review", admin, map[string]string{"note": "confirmed with the ER"}); r.Status != http.StatusOK || r.str("reviewed_at") == "" {
		t.Fatalf("review: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/break-glass/"+g.str("id")+"/review", admin, map[string]string{"note": "again"}); r.Status != http.StatusConflict {
		t.Fatalf("second review: %d", r.Status)
	}
	if q := st.do("GET", "/v1/break-glass", admin, nil); len(q.items()) != 0 {
		t.Fatalf("queue after review: %s", q.Raw)
	}
	if r := st.do("GET", "/v1/break-glass", st.login("harbor", "admin@harbor.carebook.test"), nil); len(r.items()) != 0 {
		t.Fatalf("another tenant's admin sees the grant: %s", r.Raw)
	}
}
