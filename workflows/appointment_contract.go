package workflows

import (
	"time"
)

// AppointmentTaskQueue is the task queue of the appointment workflow and its
// activities.
const AppointmentTaskQueue = "carebook-appointments"

// AppointmentWorkflowID is the workflow ID of an appointment's lifecycle.
// Deriving it from the appointment ID makes a repeated start land on the
// same workflow instead of booking twice.
func AppointmentWorkflowID(appointmentID string) string {
	return "appointment:" + appointmentID
}

// The appointment workflow's message names.
const (
	// UpdateBook holds the slot and answers booked or taken. It is sent
	// with Update-With-Start, so the api answers from the workflow's outcome.
	UpdateBook = "book"
	// UpdateCancel cancels with a reason; SignalCancel does the same for
	// callers that cannot wait for an answer (other workflows).
	UpdateCancel = "cancel"
	SignalCancel = "cancel"
	// UpdateReschedule moves the appointment; the old time is freed only
	// once the new one is held.
	UpdateReschedule = "reschedule"
	// UpdateCheckIn marks the patient arrived.
	UpdateCheckIn = "check-in"
	// QueryState returns the workflow's AppointmentState.
	QueryState = "state"
)

// Activity names of the appointment workflow. The activities are methods of
// activities.Appointments registered under these names; workflows refer to
// them by name so that this package never imports the database code.
const (
	ActivityHoldSlot    = "HoldSlot"
	ActivityCancel      = "CancelAppointment"
	ActivityReschedule  = "RescheduleAppointment"
	ActivityCheckIn     = "CheckInAppointment"
	ActivityClose       = "CloseAppointment"
	ActivityEnqueueNote = "EnqueueNotification"
)

// Application error types: permanent failures that activities return as
// non-retryable errors and that workflows and the api switch on.
const (
	ErrTypeSlotTaken      = "SlotTaken"      // the exclusion constraint refused the time
	ErrTypeInvalidState   = "InvalidState"   // the appointment's status forbids the change
	ErrTypeNotFound       = "NotFound"       // no such appointment in the tenant
	ErrTypeCheckInWindow  = "CheckInWindow"  // check-in too early or after the visit
	ErrTypeVersionChanged = "VersionChanged" // a concurrent reschedule won
)

// Conflict says whose calendar refused a booking.
type Conflict string

// The conflicts a hold can meet.
const (
	ConflictPractitioner Conflict = "practitioner"
	ConflictPatient      Conflict = "patient"
)

// Outcome is the answer to a booking.
type Outcome string

// The outcomes of UpdateBook.
const (
	OutcomeBooked Outcome = "booked"
	OutcomeTaken  Outcome = "taken"
)

// AppointmentInput starts the lifecycle workflow.
type AppointmentInput struct {
	TenantID      string
	AppointmentID string
	// GracePeriod is how long after the visit's end the workflow waits for
	// a check-in before closing it as no-show; zero means DefaultGrace.
	GracePeriod time.Duration
}

// DefaultGrace is the time after a visit's end before it closes: long enough
// for a late-running clinic to check the patient in at the desk.
const DefaultGrace = time.Hour

// ReminderLeads are how long before the start the reminders go out.
var ReminderLeads = []time.Duration{24 * time.Hour, 2 * time.Hour}

// BookRequest asks to hold a slot. The api has already recomputed that the
// time is a free slot; the database constraint has the last word.
type BookRequest struct {
	TenantID          string
	AppointmentID     string
	PractitionerID    string
	PatientID         string
	FacilityID        string
	AppointmentTypeID string
	StartsAt          time.Time
	EndsAt            time.Time
	BlockedFrom       time.Time // StartsAt minus the type's buffer before
	BlockedUntil      time.Time // EndsAt plus the type's buffer after
	Mode              string
	PriceMinor        int64
	Currency          string
	BookedBy          string // user ID
	PatientUserID     string // who is notified; empty when the patient has no login
	// Payment is set when the visit must be paid before it is confirmed:
	// the slot is held until the saga secures the money or the hold
	// expires.
	Payment *PaymentTerms `json:",omitempty"`
	// HoldExpiresAt is set by the workflow for a held slot.
	HoldExpiresAt time.Time
}

// PaymentTerms are the money side of a paid booking.
type PaymentTerms struct {
	PaymentID   string
	AmountMinor int64
	Currency    string
	HoldTTL     time.Duration
	Policy      PaymentPolicy
}

// PaymentHandle is what the patient's client needs to pay.
type PaymentHandle struct {
	PaymentID     string
	Provider      string
	ClientSecret  string
	HoldExpiresAt time.Time
}

// BookResult answers UpdateBook.
type BookResult struct {
	Outcome  Outcome
	Conflict Conflict `json:",omitempty"`
	State    AppointmentState
	Payment  *PaymentHandle `json:",omitempty"`
}

// AppointmentState is what the workflow knows of its appointment.
type AppointmentState struct {
	AppointmentID string
	Status        string
	StartsAt      time.Time
	EndsAt        time.Time
	Version       int
	// RemindersSent lists the dedupe keys of reminders enqueued, for
	// operators and tests.
	RemindersSent []string
}

// CancelRequest cancels an appointment.
type CancelRequest struct {
	Reason string
	By     string // "patient", "practitioner", "staff", "system"
	UserID string
}

// RescheduleRequest moves an appointment to a new time. The api has checked
// the new time is a free slot.
type RescheduleRequest struct {
	StartsAt     time.Time
	EndsAt       time.Time
	BlockedFrom  time.Time
	BlockedUntil time.Time
	UserID       string
}

// CheckInRequest marks the patient arrived.
type CheckInRequest struct {
	UserID string
}

// AppointmentChange is the input of the cancel, reschedule, check-in and
// close activities.
type AppointmentChange struct {
	TenantID        string
	AppointmentID   string
	ExpectedVersion int
	Cancel          *CancelRequest     `json:",omitempty"`
	Reschedule      *RescheduleRequest `json:",omitempty"`
}

// Notification asks for an outbox row. It holds IDs and a template name,
// never patient data.
type Notification struct {
	TenantID      string
	DedupeKey     string
	RecipientUser string
	Template      string
	AppointmentID string
	ScheduledFor  time.Time
}

// Notification templates.
const (
	TemplateConfirmed   = "appointment.confirmed"
	TemplateReminder    = "appointment.reminder"
	TemplateCancelled   = "appointment.cancelled"
	TemplateRescheduled = "appointment.rescheduled"
)

// AppointmentWorkflowType is the registered name of Appointment.
const AppointmentWorkflowType = "Appointment"

// BookUpdateID is the update ID of the booking. There is one booking per
// workflow, so a fixed ID lets Temporal answer a retried Update-With-Start
// with the first outcome instead of running it again.
const BookUpdateID = "book"
