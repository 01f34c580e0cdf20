package api_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/carebook/carebook/workflows"
)

func TestBookCancelAndReadBack(t *testing.T) {
	st := newStack(t)
	token := st.login("demo", "ayse@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(token, doctor, typ)
	if len(free) < 3 {
		t.Fatalf("want free slots, got %d", len(free))
	}
	start := free[0]["start"].(string)
	body := map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": start}

	booked := st.do("POST", "/v1/appointments", token, body, "Idempotency-Key", "book-1")
	if booked.Status != http.StatusCreated {
		t.Fatalf("book: %d %s", booked.Status, booked.Raw)
	}
	id := booked.str("id")
	if booked.str("status") != "booked" || booked.str("start") != start {
		t.Fatalf("booked answer: %s", booked.Raw)
	}
	if got, want := booked.str("workflow_id"), "appointment:"+id; got != want {
		t.Errorf("workflow_id = %q, want %q", got, want)
	}

	// The same key answers the same, and books nothing more.
	again := st.do("POST", "/v1/appointments", token, body, "Idempotency-Key", "book-1")
	if again.Status != http.StatusCreated || again.str("id") != id || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", again.Status, again.Raw)
	}
	if n := st.count("SELECT count(*) FROM appointments"); n != 1 {
		t.Fatalf("appointments after replay = %d, want 1", n)
	}
	// The same key with another body is refused.
	other := map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": free[1]["start"]}
	if r := st.do("POST", "/v1/appointments", token, other, "Idempotency-Key", "book-1"); r.Status != http.StatusUnprocessableEntity || r.problemType() != "idempotency-key-reused" {
		t.Fatalf("reused key: %d %s", r.Status, r.Raw)
	}

	// The booking runs as a workflow the operator can see.
	desc, err := st.Temporal.DescribeWorkflowExecution(context.Background(), workflows.AppointmentWorkflowID(id), "")
	if err != nil {
		t.Fatalf("describe workflow: %v", err)
	}
	if s := desc.WorkflowExecutionInfo.Status; s != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("workflow status = %v, want running", s)
	}

	// The taken slot is no longer offered, and booking it again is a 409
	// with alternatives.
	for _, s := range st.freeSlots(token, doctor, typ) {
		if s["start"] == start {
			t.Fatal("booked slot is still offered")
		}
	}
	john := st.login("demo", "john@demo.carebook.test")
	taken := st.do("POST", "/v1/appointments", john, body)
	if taken.Status != http.StatusConflict || taken.problemType() != "slot-taken" {
		t.Fatalf("double booking: %d %s", taken.Status, taken.Raw)
	}
	if next, _ := taken.Body["next_slots"].([]any); len(next) == 0 {
		t.Fatalf("409 without next_slots: %s", taken.Raw)
	}

	// Read back, in the list and by ID.
	got := st.do("GET", "/v1/appointments/"+id, token, nil)
	if got.Status != http.StatusOK || got.str("status") != "booked" || got.str("time_zone") != "Europe/Istanbul" {
		t.Fatalf("get: %d %s", got.Status, got.Raw)
	}
	if list := st.do("GET", "/v1/appointments", token, nil); len(list.items()) != 1 {
		t.Fatalf("list: %s", list.Raw)
	}
	// Another patient of the same tenant cannot see it.
	if r := st.do("GET", "/v1/appointments/"+id, john, nil); r.Status != http.StatusNotFound {
		t.Fatalf("other patient reads: %d", r.Status)
	}

	// Cancel needs a reason; with one, the workflow cancels and the slot is
	// free again.
	if r := st.do("POST", "/v1/appointments/"+id+"/cancel", token, map[string]any{}); r.Status != http.StatusBadRequest {
		t.Fatalf("cancel without reason: %d %s", r.Status, r.Raw)
	}
	cancelled := st.do("POST", "/v1/appointments/"+id+"/cancel", token, map[string]any{"reason": "feeling better"})
	if cancelled.Status != http.StatusOK || cancelled.str("status") != "cancelled" {
		t.Fatalf("cancel: %d %s", cancelled.Status, cancelled.Raw)
	}
	if r := st.do("GET", "/v1/appointments/"+id, token, nil); r.str("status") != "cancelled" || r.str("cancel_reason") != "feeling better" {
		t.Fatalf("after cancel: %s", r.Raw)
	}
	if r := st.do("POST", "/v1/appointments/"+id+"/cancel", token, map[string]any{"reason": "again"}); r.Status != http.StatusConflict {
		t.Fatalf("second cancel: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/appointments", john, body); r.Status != http.StatusCreated {
		t.Fatalf("rebook freed slot: %d %s", r.Status, r.Raw)
	}
	// The outbox got a confirmation and a cancellation, without patient data.
	if n := st.count("SELECT count(*) FROM notification_outbox WHERE appointment_id = ? AND template IN ('appointment.confirmed','appointment.cancelled')", id); n != 2 {
		t.Fatalf("outbox rows = %d, want 2", n)
	}
}

func TestRescheduleFreesOldSlotOnlyOnceNewIsHeld(t *testing.T) {
	st := newStack(t)
	ayse := st.login("demo", "ayse@demo.carebook.test")
	john := st.login("demo", "john@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(ayse, doctor, typ)
	book := func(token string, start any) response {
		return st.do("POST", "/v1/appointments", token, map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": start})
	}
	a := book(ayse, free[0]["start"])
	b := book(john, free[1]["start"])
	if a.Status != http.StatusCreated || b.Status != http.StatusCreated {
		t.Fatalf("setup: %s %s", a.Raw, b.Raw)
	}
	// Moving onto John's time fails and keeps Ayşe's old time.
	r := st.do("POST", "/v1/appointments/"+a.str("id")+"/reschedule", ayse, map[string]any{"start": free[1]["start"]})
	if r.Status != http.StatusConflict || r.problemType() != "slot-taken" {
		t.Fatalf("reschedule onto taken: %d %s", r.Status, r.Raw)
	}
	if got := st.do("GET", "/v1/appointments/"+a.str("id"), ayse, nil); got.str("start") != free[0]["start"] || got.str("status") != "booked" {
		t.Fatalf("after refused reschedule: %s", got.Raw)
	}
	// A free time works; the version counts it and the old time is free.
	r = st.do("POST", "/v1/appointments/"+a.str("id")+"/reschedule", ayse, map[string]any{"start": free[2]["start"]})
	if r.Status != http.StatusOK || r.str("start") != free[2]["start"] || r.Body["version"] != float64(2) {
		t.Fatalf("reschedule: %d %s", r.Status, r.Raw)
	}
	if c := book(john, free[0]["start"]); c.Status != http.StatusCreated {
		t.Fatalf("old slot not freed: %d %s", c.Status, c.Raw)
	}
	// Not a slot at all is 422.
	off := time.Now().AddDate(0, 0, 2).Truncate(time.Hour).Add(3 * time.Minute).UTC().Format(time.RFC3339)
	if r := st.do("POST", "/v1/appointments/"+a.str("id")+"/reschedule", ayse, map[string]any{"start": off}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("reschedule off grid: %d %s", r.Status, r.Raw)
	}
}

func TestCheckInIsForStaff(t *testing.T) {
	st := newStack(t)
	ayse := st.login("demo", "ayse@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(ayse, doctor, typ)
	a := st.do("POST", "/v1/appointments", ayse, map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": free[0]["start"]})
	if a.Status != http.StatusCreated {
		t.Fatal(string(a.Raw))
	}
	id := a.str("id")
	if r := st.do("POST", "/v1/appointments/"+id+"/check-in", ayse, nil); r.Status != http.StatusForbidden {
		t.Fatalf("patient check-in: %d", r.Status)
	}
	// New York's desk does not see Istanbul's visits.
	ny := st.login("demo", "staff.newyork@demo.carebook.test")
	if r := st.do("POST", "/v1/appointments/"+id+"/check-in", ny, nil); r.Status != http.StatusNotFound {
		t.Fatalf("other facility check-in: %d", r.Status)
	}
	// Istanbul's desk sees it, but the visit is days away: check-in is closed.
	ist := st.login("demo", "staff.istanbul@demo.carebook.test")
	if r := st.do("POST", "/v1/appointments/"+id+"/check-in", ist, nil); r.Status != http.StatusConflict || r.problemType() != "check-in-closed" {
		t.Fatalf("early check-in: %d %s", r.Status, r.Raw)
	}
	// Staff see it in the facility's week; the doctor in theirs.
	date := free[0]["start_local"].(string)[:10]
	if r := st.do("GET", "/v1/schedule?view=week&date="+date, ist, nil); len(r.items()) != 1 || r.items()[0]["workflow_url"] == "" {
		t.Fatalf("staff week: %s", r.Raw)
	}
	doc := st.login("demo", "doctor3@demo.carebook.test")
	if r := st.do("GET", "/v1/schedule?view=day&date="+date, doc, nil); len(r.items()) != 1 {
		t.Fatalf("doctor day: %s", r.Raw)
	}
	other := st.login("demo", "doctor1@demo.carebook.test")
	if r := st.do("GET", "/v1/schedule?view=day&date="+date, other, nil); r.Status != http.StatusOK || len(r.items()) != 0 {
		t.Fatalf("another doctor's day: %s", r.Raw)
	}
	if r := st.do("GET", "/v1/schedule", ayse, nil); r.Status != http.StatusForbidden {
		t.Fatalf("patient schedule: %d", r.Status)
	}
}

// TestConcurrentBookingsNeverDoubleBook fires 200 bookings at 10 slots at
// once. The constraint, not the pre-check, is what holds: many requests
// pass the availability check together and race to the insert.
func TestConcurrentBookingsNeverDoubleBook(t *testing.T) {
	st := newStack(t)
	staff := st.login("demo", "staff.istanbul@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(staff, doctor, typ)[:10]
	patients := st.Demo.Patients

	const n = 200
	var wg sync.WaitGroup
	statuses := make([]int, n)
	types := make([]string, n)
	gate := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-gate
			r := st.do("POST", "/v1/appointments", staff, map[string]any{
				"practitioner_id": doctor, "appointment_type_id": typ,
				"start": free[i%10]["start"], "patient_id": patients[i%len(patients)].ID,
			})
			statuses[i], types[i] = r.Status, r.problemType()
		}(i)
	}
	close(gate)
	wg.Wait()

	counts := map[string]int{}
	for i := range statuses {
		counts[fmt.Sprintf("%d %s", statuses[i], types[i])]++
	}
	if counts["201 "] != 10 || counts["409 slot-taken"] != 190 {
		t.Fatalf("outcomes = %v, want 10 booked and 190 slot-taken", counts)
	}
	if got := st.count("SELECT count(*) FROM appointments WHERE status = 'booked'"); got != 10 {
		t.Fatalf("booked rows = %d, want 10", got)
	}
	overlaps := st.count(`SELECT count(*) FROM appointments a JOIN appointments b
		ON a.id < b.id AND a.practitioner_id = b.practitioner_id
		AND tstzrange(a.blocked_from, a.blocked_until) && tstzrange(b.blocked_from, b.blocked_until)
		WHERE a.status IN ('held','pending','booked','arrived') AND b.status IN ('held','pending','booked','arrived')`)
	if overlaps != 0 {
		t.Fatalf("%d overlapping pairs", overlaps)
	}
}

func TestTenantIsolationOverHTTP(t *testing.T) {
	st := newStack(t)
	// Book in tenant B (harbor).
	hb := st.login("harbor", "ayse@harbor.carebook.test")
	doc, typ := st.Other.Practitioners[2].ID, st.Other.Types[0].ID
	free := st.freeSlots(hb, doc, typ)
	var ids []string
	for i := 0; i < 2; i++ {
		r := st.do("POST", "/v1/appointments", hb, map[string]any{"practitioner_id": doc, "appointment_type_id": typ, "start": free[i]["start"]})
		if r.Status != http.StatusCreated {
			t.Fatalf("harbor booking: %s", r.Raw)
		}
		ids = append(ids, r.str("id"))
	}
	// Every role of tenant A gets 404 for every tenant B appointment, for
	// every route that takes an ID, and nothing changes.
	for _, email := range []string{"ayse@demo.carebook.test", "doctor3@demo.carebook.test", "staff.istanbul@demo.carebook.test", "admin@demo.carebook.test", "billing@demo.carebook.test"} {
		token := st.login("demo", email)
		for _, id := range ids {
			for _, req := range []struct {
				method, path string
				body         any
			}{
				{"GET", "/v1/appointments/" + id, nil},
				{"POST", "/v1/appointments/" + id + "/cancel", map[string]any{"reason": "x"}},
				{"POST", "/v1/appointments/" + id + "/reschedule", map[string]any{"start": free[5]["start"]}},
				{"POST", "/v1/appointments/" + id + "/check-in", nil},
			} {
				r := st.do(req.method, req.path, token, req.body)
				if r.Status != http.StatusNotFound && !(r.Status == http.StatusForbidden && req.method == "POST") {
					t.Errorf("%s %s %s as %s: %d %s", req.method, req.path, id, email, r.Status, r.Raw)
				}
			}
		}
		if r := st.do("GET", "/v1/appointments", token, nil); len(r.items()) != 0 {
			t.Errorf("%s lists %d appointments of another tenant", email, len(r.items()))
		}
	}
	// Tenant A cannot book tenant B's practitioner either.
	a := st.login("demo", "ayse@demo.carebook.test")
	r := st.do("POST", "/v1/appointments", a, map[string]any{"practitioner_id": doc, "appointment_type_id": typ, "start": free[3]["start"]})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("cross-tenant practitioner: %d %s", r.Status, r.Raw)
	}
	if n := st.count("SELECT count(*) FROM appointments WHERE status = 'booked'"); n != 2 {
		t.Fatalf("booked = %d, want the 2 harbor ones", n)
	}
}
