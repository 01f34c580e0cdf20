// Package models holds the GORM models over Carebook's SQL schema, the
// embedded migrations that create it, and the tenant-scoped transaction that
// every request and activity runs in.
package models

import (
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Role is what a user is allowed to do in a tenant.
type Role string

// The roles of a tenant's users.
const (
	RolePatient Role = "patient"
	RoleDoctor  Role = "doctor"
	RoleStaff   Role = "staff"
	RoleBilling Role = "billing"
	RoleAdmin   Role = "admin"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RolePatient, RoleDoctor, RoleStaff, RoleBilling, RoleAdmin:
		return true
	}
	return false
}

// Status is an appointment's state, in FHIR's Appointment.status vocabulary
// plus Held for a slot reserved while payment is pending.
type Status string

// The appointment states.
const (
	StatusProposed  Status = "proposed"
	StatusPending   Status = "pending"
	StatusHeld      Status = "held"
	StatusBooked    Status = "booked"
	StatusArrived   Status = "arrived"
	StatusFulfilled Status = "fulfilled"
	StatusCancelled Status = "cancelled"
	StatusNoShow    Status = "noshow"
)

// ActiveStatuses are the states that occupy a slot; the exclusion
// constraints in the schema list the same set.
var ActiveStatuses = []Status{StatusPending, StatusHeld, StatusBooked, StatusArrived}

// Active reports whether s occupies its slot.
func (s Status) Active() bool {
	for _, a := range ActiveStatuses {
		if s == a {
			return true
		}
	}
	return false
}

// Mode is how a visit happens.
type Mode string

// The visit modes.
const (
	ModeInPerson Mode = "in_person"
	ModeVideo    Mode = "video"
)

// Tenant is a hospital or clinic network.
type Tenant struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	Slug      string
	Name      string
	CreatedAt time.Time
}

// Facility is a hospital or clinic site with its own time zone.
type Facility struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID  uuid.UUID `gorm:"type:uuid"`
	Name      string
	Address   string
	City      string
	Country   string
	TimeZone  string
	CreatedAt time.Time
}

// Specialty is a department or medical specialty.
type Specialty struct {
	ID       uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID uuid.UUID `gorm:"type:uuid"`
	Code     string
	Name     string
}

// Practitioner is a doctor or other clinician who sees patients.
type Practitioner struct {
	ID          uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID    uuid.UUID `gorm:"type:uuid"`
	DisplayName string
	Title       string
	CreatedAt   time.Time
}

// PractitionerRole places a practitioner in a specialty at a facility.
type PractitionerRole struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID       uuid.UUID `gorm:"type:uuid"`
	PractitionerID uuid.UUID `gorm:"type:uuid"`
	FacilityID     uuid.UUID `gorm:"type:uuid"`
	SpecialtyID    uuid.UUID `gorm:"type:uuid"`
	Active         bool
}

// Patient is a person who books visits.
type Patient struct {
	ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID   uuid.UUID `gorm:"type:uuid"`
	GivenName  string
	FamilyName string
	BirthDate  *time.Time `gorm:"type:date"`
	Phone      string
	CreatedAt  time.Time
	// ErasedAt is when a data subject's erasure pseudonymised the row.
	ErasedAt *time.Time
	// Version counts the row's rectifications, from 1: the API's ETag.
	Version int `gorm:"default:1"`
	// PreferredLanguage is "en" or "tr", or nil when the patient has not
	// said.
	PreferredLanguage *string
}

// User is a login identity with one role in one tenant.
type User struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID       uuid.UUID `gorm:"type:uuid"`
	Email          string
	PasswordHash   string
	Role           Role
	PatientID      *uuid.UUID `gorm:"type:uuid"`
	PractitionerID *uuid.UUID `gorm:"type:uuid"`
	FacilityID     *uuid.UUID `gorm:"type:uuid"`
	CreatedAt      time.Time
	// EmailVerifiedAt is when the user proved the address is theirs (by
	// the link mailed to it); nil until then.
	EmailVerifiedAt *time.Time
}

// AppointmentType says how long a visit lasts, how it happens, what it
// costs and how far ahead it can be booked.
type AppointmentType struct {
	ID              uuid.UUID  `gorm:"type:uuid;primaryKey"`
	TenantID        uuid.UUID  `gorm:"type:uuid"`
	SpecialtyID     *uuid.UUID `gorm:"type:uuid"`
	Code            string
	Name            string
	DurationMinutes int
	Mode            Mode
	PriceMinor      int64
	Currency        string
	BufferBeforeMin int
	BufferAfterMin  int
	MinNoticeMin    int
	HorizonDays     int
	// Money rules of a paid type; see the payments migration.
	HoldMinutes      int
	FreeCancelHours  int
	LateCancelFeeBps int
	NoShowFeeBps     int
	CaptureAt        string
}

// ScheduleRule is a weekly wall-clock window, or a break, in the facility's
// zone. Minutes count from local midnight; EndMinute 1440 is 24:00.
type ScheduleRule struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID       uuid.UUID `gorm:"type:uuid"`
	PractitionerID uuid.UUID `gorm:"type:uuid"`
	FacilityID     uuid.UUID `gorm:"type:uuid"`
	Weekday        int
	StartMinute    int
	EndMinute      int
	IsBreak        bool
	ValidFrom      *time.Time `gorm:"type:date"`
	ValidUntil     *time.Time `gorm:"type:date"`
}

// Exception kinds.
const (
	ExceptionTimeOff    = "time_off"
	ExceptionExtraHours = "extra_hours"
)

// ScheduleException removes time (time off) or adds it (extra hours).
type ScheduleException struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID       uuid.UUID `gorm:"type:uuid"`
	PractitionerID uuid.UUID `gorm:"type:uuid"`
	FacilityID     uuid.UUID `gorm:"type:uuid"`
	Kind           string
	StartsAt       time.Time
	EndsAt         time.Time
	Reason         string
}

// Appointment is one visit of a patient with a practitioner.
type Appointment struct {
	ID                uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID          uuid.UUID `gorm:"type:uuid"`
	PractitionerID    uuid.UUID `gorm:"type:uuid"`
	PatientID         uuid.UUID `gorm:"type:uuid"`
	FacilityID        uuid.UUID `gorm:"type:uuid"`
	AppointmentTypeID uuid.UUID `gorm:"type:uuid"`
	StartsAt          time.Time
	EndsAt            time.Time
	BlockedFrom       time.Time
	BlockedUntil      time.Time
	Status            Status
	HoldExpiresAt     *time.Time
	Mode              Mode
	PriceMinor        int64
	Currency          string
	CancelReason      string
	CancelledBy       string
	Version           int
	BookedBy          *uuid.UUID `gorm:"type:uuid"`
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// IdempotencyKey is the first answer given to a client's Idempotency-Key.
type IdempotencyKey struct {
	TenantID     uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID       uuid.UUID `gorm:"type:uuid;primaryKey"`
	Key          string    `gorm:"primaryKey"`
	RequestHash  string
	StatusCode   *int
	ResponseBody []byte
	CreatedAt    time.Time
}

// Notification channels.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
	ChannelPush  = "push"
)

// Notification is an outbox row. It names a template and IDs, never patient
// data; a sender renders and delivers it.
type Notification struct {
	ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID      uuid.UUID `gorm:"type:uuid"`
	DedupeKey     string
	RecipientUser *uuid.UUID `gorm:"type:uuid"`
	Channel       string
	Template      string
	AppointmentID *uuid.UUID `gorm:"type:uuid"`
	Payload       []byte     `gorm:"type:jsonb"`
	ScheduledFor  time.Time
	CreatedAt     time.Time
	SentAt        *time.Time
}

// TableName keeps GORM on the schema's name for the outbox.
func (Notification) TableName() string { return "notification_outbox" }

// Refund is one refund of a payment, recorded before the provider is asked
// so that a crash between the two is found and finished by the retry.
type Refund struct {
	ID               uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID         uuid.UUID `gorm:"type:uuid"`
	PaymentID        uuid.UUID `gorm:"type:uuid"`
	ProviderRefundID *string
	AmountMinor      int64
	Currency         string
	Reason           string
	RequestedBy      *uuid.UUID `gorm:"type:uuid"`
	Status           string
	IdempotencyKey   string
	CreatedAt        time.Time
}

// Payment is one paid appointment's money: what was asked, captured,
// refunded and kept as fees, and its provider intent.
type Payment struct {
	ID               uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID         uuid.UUID `gorm:"type:uuid"`
	AppointmentID    uuid.UUID `gorm:"type:uuid"`
	PatientID        uuid.UUID `gorm:"type:uuid"`
	PractitionerID   uuid.UUID `gorm:"type:uuid"`
	Provider         string
	ProviderIntentID *string
	Status           string
	AmountMinor      int64
	Currency         string
	CapturedMinor    int64
	RefundedMinor    int64
	FeeMinor         int64
	HoldExpiresAt    *time.Time
	FailureCode      string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Enqueue adds n to the outbox once per dedupe key: a second enqueue with
// the same key (an activity retried, a request repeated) does nothing. A
// zero ID is filled in. tx must be a tenant transaction.
func Enqueue(tx *gorm.DB, n Notification) error {
	if n.ID == uuid.Nil {
		n.ID = uuid.New()
	}
	return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&n).Error
}
