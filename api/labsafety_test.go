package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carebook/carebook/hl7"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
)

// TestLabFilingNeverMovesResults covers what a fresh user broke: an order
// number reused for another patient must not replace the first patient's
// result; a message issued before the version on file must not replace it;
// two labs may use the same message ID; text Carebook cannot store is
// rejected at intake, not acknowledged and left stuck.
func TestLabFilingNeverMovesResults(t *testing.T) {
	st := newStack(t)
	key := demo.LabKeyFor("demo")
	tenant := st.Demo.Tenant.ID

	// Philip's lead result, issued 2008-08-18.
	philipID := freshID("PHILIP")
	if r := st.postLab("hl7", key, nistVariant(t, philipID, "")); r.Status != http.StatusAccepted {
		t.Fatalf("philip: %d %s", r.Status, r.Raw)
	}
	philip := st.oneReport(t, st.settled(t, tenant, "hl7v2", philipID).ID)

	t.Run("an order number reused for another patient files a report of its own", func(t *testing.T) {
		id := freshID("PAUL")
		raw := nistVariant(t, id, "", fieldEdit{"PID", 3, "9339683996^^^Baseline West MC&33D1234567&L^MR"})
		if r := st.postLab("hl7", key, raw); r.Status != http.StatusAccepted {
			t.Fatalf("paul: %d %s", r.Status, r.Raw)
		}
		paul := st.oneReport(t, st.settled(t, tenant, "hl7v2", id).ID)
		eqf(t, "paul's report patient", paul.PatientID, st.paul())
		eqf(t, "paul's report version", paul.Version, 1)
		isNil(t, "paul's superseded_by", paul.SupersededBy)
		var now models.LabReport
		if err := st.Admin.Where("id = ?", philip.ID).Take(&now).Error; err != nil {
			t.Fatal(err)
		}
		isNil(t, "philip's superseded_by", now.SupersededBy)
	})

	t.Run("a message issued before the version on file is kept as history", func(t *testing.T) {
		// A correction issued a day later, then the original again under
		// a new ID (as if held in a queue): the correction stays current.
		newer := freshID("NEWER")
		raw := nistVariant(t, newer, "", fieldEdit{"OBR", 22, "200808191800-0700"}, fieldEdit{"OBX", 5, "26"})
		if r := st.postLab("hl7", key, raw); r.Status != http.StatusAccepted {
			t.Fatalf("newer: %d %s", r.Status, r.Raw)
		}
		current := st.oneReport(t, st.settled(t, tenant, "hl7v2", newer).ID)
		older := freshID("OLDER")
		if r := st.postLab("hl7", key, nistVariant(t, older, "", fieldEdit{"OBX", 5, "5"})); r.Status != http.StatusAccepted {
			t.Fatalf("older: %d %s", r.Status, r.Raw)
		}
		m := st.settled(t, tenant, "hl7v2", older)
		stale := st.oneReport(t, m.ID)
		if stale.SupersededBy == nil || *stale.SupersededBy != current.ID {
			t.Fatalf("the older message's version is not kept behind the current one: %+v", stale.SupersededBy)
		}
		var cur models.LabReport
		if err := st.Admin.Where("id = ?", current.ID).Take(&cur).Error; err != nil {
			t.Fatal(err)
		}
		isNil(t, "the current version's superseded_by", cur.SupersededBy)
		if stale.Version <= current.Version {
			t.Fatalf("versions count arrivals: stale %d, current %d", stale.Version, current.Version)
		}
		// Nothing waits to release the stale version: its workflow ends.
		st.labResult(t, m.WorkflowID)
	})

	t.Run("without OBR-22 the message's time orders the versions", func(t *testing.T) {
		// A correction with no issue time but a message time after the
		// current version's: it becomes current.
		undated := freshID("UNDATED")
		raw := nistVariant(t, undated, "", fieldEdit{"OBR", 22, ""}, fieldEdit{"MSH", 7, "20080825000000-0700"}, fieldEdit{"OBX", 5, "27"})
		if r := st.postLab("hl7", key, raw); r.Status != http.StatusAccepted {
			t.Fatalf("undated: %d %s", r.Status, r.Raw)
		}
		current := st.oneReport(t, st.settled(t, tenant, "hl7v2", undated).ID)
		isNil(t, "the undated correction's superseded_by", current.SupersededBy)
		// An old message, issued in January, does not replace it.
		january := freshID("JANUARY")
		if r := st.postLab("hl7", key, nistVariant(t, january, "", fieldEdit{"OBR", 22, "200801010000-0700"}, fieldEdit{"OBX", 5, "99"})); r.Status != http.StatusAccepted {
			t.Fatalf("january: %d %s", r.Status, r.Raw)
		}
		old := st.oneReport(t, st.settled(t, tenant, "hl7v2", january).ID)
		if old.SupersededBy == nil || *old.SupersededBy != current.ID {
			t.Fatalf("the January message replaced the current version")
		}
	})

	t.Run("a facility that is not UTF-8 is refused as bad data, not 'try again'", func(t *testing.T) {
		res, _ := st.Intake.HL7(t.Context(), nil, "mllp", nistVariant(t, freshID("FAC"), "", fieldEdit{"MSH", 4, "EHR Facility^2.16.840.1.113883.3.72.7.\xe9^HL7"}))
		if res.Status.String() != "refused" || res.Code != hl7.DataTypeError {
			t.Fatalf("status %s code %d: %s", res.Status, res.Code, res.Reason)
		}
	})

	t.Run("a resend that differs only in trailing line ends is a resend", func(t *testing.T) {
		id := freshID("TRAIL")
		raw := nistVariant(t, id, "F-TRAIL")
		if r := st.postLab("hl7", key, append(append([]byte{}, raw...), "\r\n\r\n"...)); r.Status != http.StatusAccepted {
			t.Fatalf("first: %d %s", r.Status, r.Raw)
		}
		if r := st.postLab("hl7", key, raw); r.Status != http.StatusAccepted || r.Body["duplicate"] != true {
			t.Fatalf("resend without the line ends: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("two labs may use the same message ID", func(t *testing.T) {
		id := freshID("SHARED")
		if r := st.postLab("hl7", key, nistVariant(t, id, "F-ONE")); r.Status != http.StatusAccepted {
			t.Fatalf("first lab: %d %s", r.Status, r.Raw)
		}
		other, _ := st.Intake.HL7(t.Context(), nil, "mllp",
			nistVariant(t, id, "F-TWO", fieldEdit{"MSH", 4, "Baseline West MC^33D1234567^L"}))
		if other.Status.String() != "accepted" || other.Duplicate {
			t.Fatalf("second lab: %s duplicate=%v %s", other.Status, other.Duplicate, other.Reason)
		}
		if n := st.count("SELECT count(DISTINCT partner_id) FROM lab_messages WHERE message_id = ?", id); n != 2 {
			t.Fatalf("partners recorded = %d, want 2", n)
		}
	})

	t.Run("a body in the wrong media type, or a resource that is no lab message, is not taken", func(t *testing.T) {
		before := st.labCounts()
		if r := st.do("POST", "/v1/labs/hl7", key, nistVariant(t, freshID("CT"), ""), "Content-Type", "application/json"); r.Status != http.StatusUnsupportedMediaType || r.problemType() != "unsupported-media-type" {
			t.Fatalf("HL7 as JSON: %d %s", r.Status, r.Raw)
		}
		if r := st.postLab("fhir", key, []byte(`{"resourceType":"Patient","id":"p1"}`)); r.Status != http.StatusBadRequest || r.problemType() != "lab-message-refused" {
			t.Fatalf("a Patient resource: %d %s", r.Status, r.Raw)
		}
		if after := st.labCounts(); after != before {
			t.Fatalf("counts moved: %v -> %v", before, after)
		}
	})

	t.Run("text that is not UTF-8 is rejected at intake", func(t *testing.T) {
		id := freshID("LATIN1")
		r := st.postLab("hl7", key, nistVariant(t, id, "F-LATIN", fieldEdit{"OBX", 3, "10368-9^Lead \xe9l\xe9ment^LN"}))
		if r.Status != http.StatusUnprocessableEntity || r.problemType() != "lab-message-rejected" {
			t.Fatalf("latin-1: %d %s", r.Status, r.Raw)
		}
		if m := st.settled(t, tenant, "hl7v2", id); m.Status != models.LabRejected {
			t.Fatalf("status %s", m.Status)
		}
		if r := st.postLab("hl7", key, nistVariant(t, "BAD\xff", "")); r.Status != http.StatusBadRequest || r.problemType() != "lab-message-refused" {
			t.Fatalf("message ID not UTF-8: %d %s", r.Status, r.Raw)
		}
	})
}

// TestLabStaffReasonsAndDoctorsReach: a dismissal's free-text reason stays
// on the message's row and out of the workflow's history; a doctor reaches
// a patient's results through a visit that is booked or was attended, not
// through one that was cancelled.
func TestLabStaffReasonsAndDoctorsReach(t *testing.T) {
	st := newStack(t)
	key := demo.LabKeyFor("demo")
	tenant := st.Demo.Tenant.ID
	staff := st.login("demo", "staff.newyork@demo.carebook.test")

	// A message for nobody on file, dismissed with a reason naming someone.
	lost := freshID("LOST")
	if r := st.postLab("hl7", key, nistVariant(t, lost, "F-LOST", fieldEdit{"PID", 3, "0000^^^NOWHERE^MR"})); r.Status != http.StatusAccepted {
		t.Fatalf("lost: %d %s", r.Status, r.Raw)
	}
	m := st.settled(t, tenant, "hl7v2", lost)
	const reason = "belongs to Philip Johnson of another clinic"
	if r := st.do("POST", "/v1/lab-messages/"+m.ID.String()+"/dismiss", staff, map[string]string{"reason": reason}); r.Status != http.StatusAccepted {
		t.Fatalf("dismiss: %d %s", r.Status, r.Raw)
	}
	st.labResult(t, m.WorkflowID)
	if got := st.labMessage(tenant, "hl7v2", lost); got.Status != models.LabDismissed || got.Reason != reason {
		t.Fatalf("row: %s %q", got.Status, got.Reason)
	}
	iter := st.Temporal.GetWorkflowHistory(t.Context(), m.WorkflowID, "", false, 0)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(ev.String(), "Philip") {
			t.Fatalf("history event %s holds the reason", ev.GetEventType())
		}
	}

	// John's result, ordered by Dr. Garcia; Dr. Demir has no visit with him.
	if err := st.Admin.Create(&models.PatientIdentifier{TenantID: tenant, PatientID: st.john(), System: "JOHNSYS", Value: "X1"}).Error; err != nil {
		t.Fatal(err)
	}
	johnsID := freshID("JOHN")
	if r := st.postLab("hl7", key, nistVariant(t, johnsID, "F-JOHN", fieldEdit{"PID", 3, "X1^^^JOHNSYS^MR"})); r.Status != http.StatusAccepted {
		t.Fatalf("john: %d %s", r.Status, r.Raw)
	}
	rep := st.oneReport(t, st.settled(t, tenant, "hl7v2", johnsID).ID)
	demir := st.login("demo", "doctor3@demo.carebook.test")
	path := "/v1/lab-results/" + rep.ID.String()
	visit := func(status models.Status, days int) {
		start := time.Now().Add(time.Duration(days) * 24 * time.Hour).Truncate(time.Hour)
		a := models.Appointment{ID: uuid.New(), TenantID: tenant, PractitionerID: st.Demo.Practitioners[2].ID, PatientID: st.john(),
			FacilityID: st.Demo.Facilities[0].ID, AppointmentTypeID: st.Demo.Types[0].ID, StartsAt: start, EndsAt: start.Add(20 * time.Minute),
			BlockedFrom: start, BlockedUntil: start.Add(20 * time.Minute), Status: status, Mode: models.ModeInPerson, Currency: "USD", Version: 1}
		if err := st.Admin.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
	}
	if r := st.do("GET", path, demir, nil); r.Status != http.StatusNotFound {
		t.Fatalf("no visit: %d", r.Status)
	}
	visit(models.StatusCancelled, 3)
	if r := st.do("GET", path, demir, nil); r.Status != http.StatusNotFound {
		t.Fatalf("a cancelled visit opened the record: %d", r.Status)
	}
	visit(models.StatusBooked, 4)
	if r := st.do("GET", path, demir, nil); r.Status != http.StatusOK {
		t.Fatalf("a booked visit: %d %s", r.Status, r.Raw)
	}
}
