package api_test

import (
	"net/http"
	"testing"

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
