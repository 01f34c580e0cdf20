package api_test

import (
	"net/http"
	"testing"
)

func TestDirectoryAndSlotSearch(t *testing.T) {
	st := newStack(t)
	token := st.login("demo", "john@demo.carebook.test")
	if r := st.do("GET", "/v1/me", token, nil); r.Status != http.StatusOK || r.str("role") != "patient" {
		t.Fatalf("me: %s", r.Raw)
	}
	facilities := st.do("GET", "/v1/facilities", token, nil).items()
	if len(facilities) != 2 {
		t.Fatalf("facilities: %v", facilities)
	}
	zones := map[string]bool{}
	for _, f := range facilities {
		zones[f["time_zone"].(string)] = true
	}
	if !zones["Europe/Istanbul"] || !zones["America/New_York"] {
		t.Fatalf("zones = %v", zones)
	}
	if n := len(st.do("GET", "/v1/specialties", token, nil).items()); n != 3 {
		t.Fatalf("specialties = %d, want 3", n)
	}
	ny := st.Demo.Facilities[1].ID.String()
	pr := st.do("GET", "/v1/practitioners?specialty=cardiology&facility_id="+ny, token, nil).items()
	if len(pr) != 1 || pr[0]["display_name"] != "Dr. Sarah Miller" {
		t.Fatalf("cardiologists in New York: %v", pr)
	}
	if n := len(st.do("GET", "/v1/practitioners", token, nil).items()); n != 6 {
		t.Fatalf("practitioners = %d, want 6", n)
	}
	// Slot search over a specialty at a facility answers in both zones'
	// terms: UTC instants and the facility's wall clock.
	r := st.do("GET", "/v1/slots?specialty=family&facility_id="+ny+"&appointment_type_id="+st.Demo.Types[0].ID.String(), token, nil)
	items := r.items()
	if r.Status != http.StatusOK || len(items) == 0 {
		t.Fatalf("slot search: %d %s", r.Status, r.Raw)
	}
	for _, s := range items {
		if s["time_zone"] != "America/New_York" || s["practitioner_id"] != st.Demo.Practitioners[5].ID.String() {
			t.Fatalf("slot from the wrong place: %v", s)
		}
	}
	if r := st.do("GET", "/v1/slots?facility_id="+ny, token, nil); r.Status != http.StatusBadRequest {
		t.Fatalf("slot search without type: %d", r.Status)
	}
	if r := st.do("GET", "/v1/openapi.yaml", "", nil); r.Status != http.StatusOK || len(r.Raw) < 1000 {
		t.Fatalf("openapi.yaml: %d", r.Status)
	}
}
