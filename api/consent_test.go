package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workflows"
)

// TestConsentLedgerAndSMSReminders: patients read the current notices in
// Turkish or English, grant and withdraw consent per purpose against a
// notice version (each entry kept, append-only), staff record a desk
// consent, and SMS reminders follow the patient's consent at the moment a
// reminder falls due: a withdrawal stops the next one at once.
func TestConsentLedgerAndSMSReminders(t *testing.T) {
	st := newStack(t)
	john := st.login("demo", "john@demo.carebook.test")

	tr := st.do("GET", "/v1/notices?language=tr", john, nil)
	if tr.Status != http.StatusOK || len(tr.items()) != 2 || tr.items()[0]["language"] != "tr" {
		t.Fatalf("notices: %d %s", tr.Status, tr.Raw)
	}
	var clarification string
	for _, n := range tr.items() {
		if n["kind"] == "clarification" {
			clarification = n["id"].(string)
		}
	}
	consent := func(token string, body map[string]any) response { return st.do("POST", "/v1/consents", token, body) }
	if r := consent(john, map[string]any{"purpose": "sms_reminders", "granted": true, "channel": "web"}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "notice-required" {
		t.Fatalf("grant without a notice: %d %s", r.Status, r.Raw)
	}
	if r := consent(john, map[string]any{"purpose": "sms_reminders", "granted": true, "channel": "web", "notice_id": clarification}); r.Status != http.StatusCreated {
		t.Fatalf("grant: %d %s", r.Status, r.Raw)
	}
	// Patients answer in the apps, not "at the desk".
	if r := consent(john, map[string]any{"purpose": "marketing", "granted": false, "channel": "desk"}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "invalid-channel" {
		t.Fatalf("patient at the desk: %d %s", r.Status, r.Raw)
	}
	// Another patient's ID in a patient's request finds nothing.
	if r := consent(john, map[string]any{"patient_id": st.Demo.Patients[0].ID.String(), "purpose": "marketing", "granted": false, "channel": "web"}); r.Status != http.StatusNotFound {
		t.Fatalf("for another patient: %d %s", r.Status, r.Raw)
	}
	// A visit at the Istanbul clinic puts John in its desk's reach.
	appt := st.seedAppointment(t)
	// The desk records a consent a patient gave in person.
	staff := st.login("demo", "staff.istanbul@demo.carebook.test")
	if r := consent(staff, map[string]any{"patient_id": st.Demo.Patients[1].ID.String(), "purpose": "health_data", "granted": true, "channel": "desk", "notice_id": clarification}); r.Status != http.StatusCreated {
		t.Fatalf("desk consent: %d %s", r.Status, r.Raw)
	}

	// A reminder while John consents: e-mail and SMS.
	remind := func(step string) {
		err := st.Deps.Appointments.EnqueueNotification(t.Context(), workflows.Notification{
			TenantID: st.Demo.Tenant.ID.String(), DedupeKey: "appointment:" + appt.String() + ":" + step,
			RecipientUser: st.userID("john@demo.carebook.test"), Template: workflows.TemplateReminder,
			AppointmentID: appt.String(), ScheduledFor: time.Now(),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sms := func() int64 {
		return st.count("SELECT count(*) FROM notification_outbox WHERE appointment_id = ? AND channel = 'sms'", appt)
	}
	remind("reminder-24h")
	if n := sms(); n != 1 {
		t.Fatalf("SMS reminders with consent = %d, want 1", n)
	}
	// Withdrawn: the next reminder goes by e-mail only.
	if r := consent(john, map[string]any{"purpose": "sms_reminders", "granted": false, "channel": "mobile"}); r.Status != http.StatusCreated {
		t.Fatalf("withdraw: %d %s", r.Status, r.Raw)
	}
	remind("reminder-2h")
	if n := sms(); n != 1 {
		t.Fatalf("SMS reminders after withdrawal = %d, want still 1", n)
	}
	if n := st.count("SELECT count(*) FROM notification_outbox WHERE appointment_id = ? AND channel = 'email'", appt); n != 2 {
		t.Fatalf("e-mail reminders = %d, want 2", n)
	}

	list := st.do("GET", "/v1/consents", john, nil)
	current, _ := list.Body["current"].(map[string]any)
	if list.Status != http.StatusOK || current["sms_reminders"] != false || current["health_data"] != true || len(list.items()) != 3 {
		t.Fatalf("ledger: %d %s", list.Status, list.Raw)
	}
	// The ledger is append-only for the application.
	if err := st.App.Exec("UPDATE consents SET granted = true").Error; err == nil {
		t.Fatal("the app role updated the consent ledger")
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action IN ('consent-grant', 'consent-withdraw')"); n != 3 {
		t.Fatalf("consent audit events = %d, want 3", n)
	}
}

// seedAppointment inserts a booked visit of John's with the Istanbul
// family doctor, three days ahead.
func (st *stack) seedAppointment(t *testing.T) uuid.UUID {
	t.Helper()
	start := time.Now().Add(72 * time.Hour).Truncate(time.Hour)
	a := models.Appointment{ID: uuid.New(), TenantID: st.Demo.Tenant.ID, PractitionerID: st.Demo.Practitioners[2].ID, PatientID: st.Demo.Patients[1].ID,
		FacilityID: st.Demo.Facilities[0].ID, AppointmentTypeID: st.Demo.Types[0].ID, StartsAt: start, EndsAt: start.Add(20 * time.Minute),
		BlockedFrom: start, BlockedUntil: start.Add(20 * time.Minute), Status: models.StatusBooked, Mode: models.ModeInPerson, Currency: "USD", Version: 1}
	if err := st.Admin.Create(&a).Error; err != nil {
		t.Fatal(err)
	}
	return a.ID
}
