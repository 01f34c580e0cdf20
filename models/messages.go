package models

import (
	"time"

	"github.com/google/uuid"
)

// MessageThread is a conversation between one patient (or a proxy acting
// for them) and one practitioner. Its subject is sealed (keyring); the
// row itself holds IDs and times only.
type MessageThread struct {
	ID             uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID       uuid.UUID `gorm:"type:uuid"`
	PatientID      uuid.UUID `gorm:"type:uuid"`
	PractitionerID uuid.UUID `gorm:"type:uuid"`
	SubjectSealed  []byte
	StartedBy      uuid.UUID `gorm:"type:uuid"`
	StartedRole    Role
	CreatedAt      time.Time
	LastMessageAt  time.Time
	ClosedAt       *time.Time
	ClosedBy       *uuid.UUID `gorm:"type:uuid"`
}

// Message is one message of a thread; its body is sealed. Seq is assigned
// by the database and orders the thread.
type Message struct {
	ID              uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID        uuid.UUID `gorm:"type:uuid"`
	ThreadID        uuid.UUID `gorm:"type:uuid"`
	Seq             int64     `gorm:"<-:false"`
	SenderUser      uuid.UUID `gorm:"type:uuid"`
	SenderRole      Role
	SenderPatientID *uuid.UUID `gorm:"type:uuid"`
	BodySealed      []byte
	SentAt          time.Time
}

// MessageRead is how far a user has read a thread.
type MessageRead struct {
	TenantID    uuid.UUID `gorm:"type:uuid"`
	ThreadID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID      uuid.UUID `gorm:"type:uuid;primaryKey"`
	LastReadSeq int64
	ReadAt      time.Time
}
