package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.temporal.io/api/enums/v1"

	"github.com/carebook/carebook/workflows"
)

// TestRetryAfterCrashGetsFirstOutcome: the api booked, then died before it
// stored its answer. The client's retry with the same key, once the claim
// is stale, must get the booking, not "taken" by its own appointment.
func TestRetryAfterCrashGetsFirstOutcome(t *testing.T) {
	st := newStack(t)
	token := st.login("demo", "ayse@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(token, doctor, typ)
	body := map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": free[0]["start"]}
	first := st.do("POST", "/v1/appointments", token, body, "Idempotency-Key", "crash-1")
	if first.Status != http.StatusCreated {
		t.Fatal(string(first.Raw))
	}
	// What a crash between booking and storing the answer leaves behind.
	if err := st.Admin.Exec(`UPDATE idempotency_keys SET status_code = NULL, response_body = NULL,
		created_at = now() - interval '5 minutes' WHERE key = 'crash-1'`).Error; err != nil {
		t.Fatal(err)
	}
	retry := st.do("POST", "/v1/appointments", token, body, "Idempotency-Key", "crash-1")
	if retry.Status != http.StatusCreated || retry.str("id") != first.str("id") {
		t.Fatalf("retry after crash: %d %s, want 201 %s", retry.Status, retry.Raw, first.str("id"))
	}
	if n := st.count("SELECT count(*) FROM appointments"); n != 1 {
		t.Fatalf("appointments = %d, want 1", n)
	}
}

// TestForwardedForDoesNotResetThrottle: a client cannot dodge the login
// limit by inventing X-Forwarded-For addresses.
func TestForwardedForDoesNotResetThrottle(t *testing.T) {
	st := newStack(t)
	// Three logins a minute: the bucket refills one every 20 s, far more
	// than four failed logins take on a loaded machine, so only the
	// addresses can make the fourth pass.
	st.Server.LoginLimit = 3
	var last response
	for i := 0; i < 4; i++ {
		// A different e-mail each time, so that the account lockout does
		// not answer first.
		last = st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": fmt.Sprintf("guess%d@demo.carebook.test", i), "password": "wrong-password"},
			"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
	}
	if last.Status != http.StatusTooManyRequests || last.problemType() != "too-many-requests" {
		t.Fatalf("4th login with a fresh X-Forwarded-For: %d %s, want 429 too-many-requests", last.Status, last.Raw)
	}
}

func TestRescheduleOntoOwnOtherVisitIsPatientBusy(t *testing.T) {
	st := newStack(t)
	token := st.login("demo", "ayse@demo.carebook.test")
	family, familyType := st.familyDoctor()
	free := st.freeSlots(token, family, familyType)
	a := st.do("POST", "/v1/appointments", token, map[string]any{"practitioner_id": family, "appointment_type_id": familyType, "start": free[0]["start"]})
	// Another visit of Ayşe's, with the Istanbul dermatologist, at a time
	// both doctors offer.
	derm, dermType := st.Demo.Practitioners[1].ID, st.Demo.Types[2].ID
	var both any
	for _, d := range st.freeSlots(token, derm, dermType) {
		for _, f := range free[1:] {
			if both == nil && d["start"] == f["start"] {
				both = f["start"]
			}
		}
	}
	b := st.do("POST", "/v1/appointments", token, map[string]any{"practitioner_id": derm, "appointment_type_id": dermType, "start": both})
	if a.Status != http.StatusCreated || b.Status != http.StatusCreated {
		t.Fatalf("setup: %s / %s", a.Raw, b.Raw)
	}
	r := st.do("POST", "/v1/appointments/"+a.str("id")+"/reschedule", token, map[string]any{"start": both})
	if r.Status != http.StatusConflict || r.problemType() != "patient-busy" {
		t.Fatalf("reschedule onto own visit: %d %s", r.Status, r.Raw)
	}
	for _, s := range r.Body["next_slots"].([]any) {
		if s.(map[string]any)["start"] == both {
			t.Fatal("next_slots offers the time the patient is busy")
		}
	}
}

// TestCancelReasonStaysOutOfWorkflowHistory: the patient's words go to the
// row, not to the history operators read.
func TestCancelReasonStaysOutOfWorkflowHistory(t *testing.T) {
	st := newStack(t)
	token := st.login("demo", "ayse@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(token, doctor, typ)
	a := st.do("POST", "/v1/appointments", token, map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": free[0]["start"]})
	const words = "my migraine is back"
	r := st.do("POST", "/v1/appointments/"+a.str("id")+"/cancel", token, map[string]any{"reason": words})
	if r.Status != http.StatusOK || r.str("cancel_reason") != words {
		t.Fatalf("cancel: %d %s", r.Status, r.Raw)
	}
	iter := st.Temporal.GetWorkflowHistory(context.Background(), workflows.AppointmentWorkflowID(a.str("id")), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(ev.String(), "migraine") {
			t.Fatalf("history event %v holds the patient's words", ev.GetEventType())
		}
	}
}
