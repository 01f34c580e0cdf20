package models

import (
	"time"

	"github.com/google/uuid"
)

// PatientIdentifier is an identifier a patient is known by outside
// Carebook, such as a hospital's medical record number.
type PatientIdentifier struct {
	TenantID  uuid.UUID `gorm:"type:uuid;primaryKey"`
	PatientID uuid.UUID `gorm:"type:uuid"`
	System    string    `gorm:"primaryKey"`
	Value     string    `gorm:"primaryKey"`
	Type      string
}

// PractitionerIdentifier is an identifier a practitioner is known by
// outside Carebook, such as an NPI.
type PractitionerIdentifier struct {
	TenantID       uuid.UUID `gorm:"type:uuid;primaryKey"`
	PractitionerID uuid.UUID `gorm:"type:uuid"`
	System         string    `gorm:"primaryKey"`
	Value          string    `gorm:"primaryKey"`
}

// LabPartner is a lab that sends results to one tenant.
type LabPartner struct {
	ID                uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID          uuid.UUID `gorm:"type:uuid"`
	Name              string
	KeyID             string
	KeyHash           []byte
	SendingFacility   string
	ReceivingFacility string
	DefaultIDSystem   string `gorm:"column:default_id_system"`
	Active            bool
	CreatedAt         time.Time
}

// Release rules for lab results.
const (
	ReleaseImmediate   = "immediate"
	ReleaseAfterReview = "after_review"
	ReleaseAfterDays   = "after_days"
)

// LabSettings is a tenant's rule for releasing results to patients.
type LabSettings struct {
	TenantID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	ReleaseRule string
	ReleaseDays int
}

// TableName keeps GORM on the schema's name.
func (LabSettings) TableName() string { return "lab_settings" }

// Lab message states.
const (
	LabReceived  = "received"
	LabFiled     = "filed"
	LabUnmatched = "unmatched"
	LabRejected  = "rejected"
	LabDismissed = "dismissed"
)

// LabMessage is one message as received; its bytes are in the object store
// at RawKey.
type LabMessage struct {
	ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID      uuid.UUID `gorm:"type:uuid"`
	PartnerID     uuid.UUID `gorm:"type:uuid"`
	Format        string
	Transport     string
	MessageID     string
	RawKey        string
	ContentSHA256 string `gorm:"column:content_sha256"`
	Size          int
	WorkflowID    string
	Status        string
	Reason        string
	Match         string
	PatientID     *uuid.UUID `gorm:"type:uuid"`
	ResolvedBy    *uuid.UUID `gorm:"type:uuid"`
	ResolvedAt    *time.Time
	ReceivedAt    time.Time
	ProcessedAt   *time.Time
}

// LabReport is one version of a filed report.
type LabReport struct {
	ID           uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID     uuid.UUID `gorm:"type:uuid"`
	MessageID    uuid.UUID `gorm:"type:uuid"`
	PartnerID    uuid.UUID `gorm:"type:uuid"`
	PatientID    uuid.UUID `gorm:"type:uuid"`
	ReportKey    string
	Version      int
	SupersededBy *uuid.UUID `gorm:"type:uuid"`
	Status       string
	CodeSystem   string
	Code         string
	Display      string
	PlacerNumber string
	FillerNumber string
	EffectiveAt  *time.Time
	IssuedAt     *time.Time
	// AsOf orders versions: IssuedAt, else the message's time, else when
	// the version was filed.
	AsOf                   time.Time
	OrderingPractitionerID *uuid.UUID `gorm:"type:uuid"`
	Severity               string
	Notes                  string
	Conclusion             string
	PDFKey                 string     `gorm:"column:pdf_key"`
	ReviewedBy             *uuid.UUID `gorm:"type:uuid"`
	ReviewedAt             *time.Time
	ReviewComment          string
	ReleaseRule            string
	ReleaseDueAt           *time.Time
	ReleasedAt             *time.Time
	ReleasedBy             *uuid.UUID `gorm:"type:uuid"`
	FiledAt                time.Time
}

// LabObservation is one result value of a report version.
type LabObservation struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID       uuid.UUID `gorm:"type:uuid"`
	ReportID       uuid.UUID `gorm:"type:uuid"`
	PatientID      uuid.UUID `gorm:"type:uuid"`
	Seq            int
	ObsKey         string
	CodeSystem     string
	Code           string
	Display        string
	Status         string
	Kind           string
	ValueText      string
	ValueNumber    *float64
	ValueNumber2   *float64 `gorm:"column:value_number2"`
	Comparator     string
	Unit           string
	CodedSystem    string
	CodedCode      string
	CodedDisplay   string
	ReferenceRange string
	RefLow         *float64
	RefHigh        *float64
	Flags          []string `gorm:"serializer:json"`
	Severity       string
	EffectiveAt    *time.Time
	Notes          string
	Members        []string `gorm:"serializer:json"`
}

// AuditEvent records who read or changed what; package audit appends it
// to the tenant's hash chain.
type AuditEvent struct {
	ID           uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID     uuid.UUID `gorm:"type:uuid"`
	Seq          int64
	PrevHash     []byte
	Hash         []byte
	At           time.Time
	ActorUser    *uuid.UUID `gorm:"type:uuid"`
	ActorRole    string
	Action       string
	ResourceType string
	ResourceID   *uuid.UUID `gorm:"type:uuid"`
	PatientID    *uuid.UUID `gorm:"type:uuid"`
	ClientAddr   string
	RequestID    string
	Reason       string
}

// AuditHead is the last link of a tenant's audit chain.
type AuditHead struct {
	TenantID uuid.UUID `gorm:"type:uuid;primaryKey"`
	Seq      int64
	Hash     []byte
}
