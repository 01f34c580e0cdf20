package api_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carebook/carebook/intake"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workflows"
)

// TestLabResumeStartsOrphanedMessages: an intake that died after recording
// a message but before starting its workflow leaves the message received
// with no workflow; Resume starts it and it is filed. A message recorded
// just now is left to its own intake.
func TestLabResumeStartsOrphanedMessages(t *testing.T) {
	st := newStack(t)
	ctx := t.Context()
	raw := sharedCase(t, "hl7", "nist_oru_r01_2.5.1_case3_corrected_lead.hl7")
	tenant := st.Demo.Tenant.ID
	obj, err := st.Store.Put(ctx, tenant, "hl7", raw, "application/hl7-v2")
	if err != nil {
		t.Fatal(err)
	}
	record := func(messageID string, age time.Duration) uuid.UUID {
		row := models.LabMessage{
			ID: uuid.New(), TenantID: tenant, PartnerID: st.Demo.LabPartners[0].ID, Format: "hl7v2", Transport: "mllp",
			MessageID: messageID, RawKey: obj.Key, ContentSHA256: obj.SHA256, Size: len(raw),
			WorkflowID: workflows.LabWorkflowID(tenant.String(), st.Demo.LabPartners[0].ID.String(), "hl7v2", messageID),
			Status:     models.LabReceived, ReceivedAt: time.Now().Add(-age),
		}
		if err := st.Admin.Create(&row).Error; err != nil {
			t.Fatal(err)
		}
		return row.ID
	}
	old := record("NIST-100929110828087", 2*time.Minute)
	fresh := record("FRESH-1", 0)

	n, err := st.Intake.Resume(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("resumed %d messages, want 1", n)
	}
	eventually(t, "the orphaned message filed", func() bool {
		return st.count("SELECT count(*) FROM lab_messages WHERE id = ? AND status = 'filed'", old) == 1
	})
	if got := st.count("SELECT count(*) FROM lab_reports WHERE message_id = ?", old); got != 1 {
		t.Fatalf("reports filed = %d", got)
	}
	if got := st.count("SELECT count(*) FROM lab_messages WHERE id = ? AND status = 'received'", fresh); got != 1 {
		t.Fatal("a message recorded just now was taken over")
	}
	// A message taken now is recorded with the time it arrived, so the
	// next Resume leaves it to its own intake.
	taken, _ := st.Intake.HL7(ctx, nil, intake.TransportMLLP, sharedCase(t, "hl7", "cerner_oru_r01_2.5.1_culture_abnormal.hl7"))
	if taken.Status != intake.Accepted {
		t.Fatalf("cerner message: %s %s", taken.Status, taken.Reason)
	}
	if got := st.count("SELECT count(*) FROM lab_messages WHERE id = ? AND received_at > now() - interval '1 minute'", taken.Message.ID); got != 1 {
		t.Fatal("received_at is not the time the message arrived")
	}
	// Again: the filed message is not started a second time.
	if n, err := st.Intake.Resume(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("second resume: %d, %v", n, err)
	}
}
