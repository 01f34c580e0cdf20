package models

import (
	"time"

	"github.com/google/uuid"
)

// AuditSegment records a run of a tenant's audit events, first to last in
// chain order, that was written to the object store and may then leave
// audit_events. FirstPrevHash and LastHash are the chain's links at both
// ends, so the archive can be checked against the rows around it without
// reading every object.
type AuditSegment struct {
	ID            uuid.UUID `gorm:"type:uuid;primaryKey"`
	TenantID      uuid.UUID `gorm:"type:uuid"`
	FirstSeq      int64
	LastSeq       int64
	FirstPrevHash []byte
	LastHash      []byte
	ObjectKey     string
	SHA256        string `gorm:"column:sha256"`
	Events        int64
	CreatedAt     time.Time
}
