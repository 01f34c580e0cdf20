package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSettlementOnDemand: billing staff settle yesterday; the report lands
// in the database with its CSV, and settling the day again replaces it.
func TestSettlementOnDemand(t *testing.T) {
	st := newStack(t)
	billing := st.login("demo", "billing@demo.carebook.test")
	day := time.Now().In(mustZone(t, "Europe/Istanbul")).AddDate(0, 0, -2).Format(time.DateOnly)
	r := st.do("POST", "/v1/billing/settlements", billing, map[string]string{"from": day, "to": day})
	if r.Status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.Status, r.Raw)
	}
	var first response
	deadline := time.Now().Add(20 * time.Second)
	for first = st.do("GET", "/v1/billing/settlements/"+day, billing, nil); first.Status != http.StatusOK; first = st.do("GET", "/v1/billing/settlements/"+day, billing, nil) {
		if time.Now().After(deadline) {
			id := r.Body["started"].([]any)[0].(map[string]any)["workflow_id"].(string)
			err := st.Temporal.GetWorkflow(t.Context(), id, "").Get(t.Context(), nil)
			t.Fatalf("no report; workflow %s: %v", id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if first.str("day") != day || first.Body["report"] == nil {
		t.Fatalf("report: %s", first.Raw)
	}
	csv := st.do("GET", "/v1/billing/settlements/"+day+"?format=csv", billing, nil)
	if csv.Status != http.StatusOK || !strings.Contains(csv.Header.Get("Content-Type"), "text/csv") || len(csv.Raw) == 0 {
		t.Fatalf("csv: %d %q", csv.Status, csv.Header.Get("Content-Type"))
	}
	// The report's files are in the object store under the tenant's
	// prefix, and the JSON there is the report the API serves.
	var key string
	if err := st.Admin.Raw("SELECT object_key FROM settlement_reports WHERE day = ?", day).Scan(&key).Error; err != nil {
		t.Fatal(err)
	}
	if want := "tenants/" + st.Demo.Tenant.ID.String() + "/settlement/" + day + ".json"; key != want {
		t.Fatalf("object_key = %q, want %q", key, want)
	}
	stored, err := st.Store.Get(t.Context(), st.Demo.Tenant.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stored), `"day":"`+day+`"`) {
		t.Fatalf("stored report does not name its day")
	}
	storedCSV, err := st.Store.Get(t.Context(), st.Demo.Tenant.ID, strings.TrimSuffix(key, ".json")+".csv")
	if err != nil || string(storedCSV) != string(csv.Raw) {
		t.Fatalf("stored CSV differs from the served one (err %v)", err)
	}
	discrepancies := st.count("SELECT count(*) FROM discrepancies")
	// Again: the same report, no new discrepancies.
	if r := st.do("POST", "/v1/billing/settlements", billing, map[string]string{"from": day, "to": day}); r.Status != http.StatusAccepted {
		t.Fatalf("again: %d %s", r.Status, r.Raw)
	}
	eventually(t, "the re-run", func() bool {
		again := st.do("GET", "/v1/billing/settlements/"+day, billing, nil)
		return again.str("generated_at") != first.str("generated_at")
	})
	if again := st.do("GET", "/v1/billing/settlements/"+day, billing, nil); again.str("id") != first.str("id") {
		t.Fatalf("re-run made a new report: %s vs %s", again.str("id"), first.str("id"))
	}
	if n := st.count("SELECT count(*) FROM settlement_reports"); n != 1 {
		t.Fatalf("reports = %d", n)
	}
	if n := st.count("SELECT count(*) FROM discrepancies"); n != discrepancies {
		t.Fatalf("re-run changed discrepancies from %d to %d", discrepancies, n)
	}
	if list := st.do("GET", "/v1/billing/settlements", billing, nil); len(list.items()) != 1 {
		t.Fatalf("list: %s", list.Raw)
	}
	// Not for patients; not for the future.
	if r := st.do("POST", "/v1/billing/settlements", st.login("demo", "ayse@demo.carebook.test"), map[string]string{"from": day, "to": day}); r.Status != http.StatusForbidden {
		t.Fatalf("patient: %d", r.Status)
	}
	today := time.Now().In(mustZone(t, "Europe/Istanbul")).Format(time.DateOnly)
	if r := st.do("POST", "/v1/billing/settlements", billing, map[string]string{"from": day, "to": today}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "day-not-over" {
		t.Fatalf("settling today: %d %s", r.Status, r.Raw)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
