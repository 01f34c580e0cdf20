package workflows

import "time"

// KeyRotationWorkflowType is the registered name of KeyRotation.
const KeyRotationWorkflowType = "KeyRotation"

// KeyRotationTaskQueue is where KeyRotation and its activities run: the
// process's one queue. Batches are short transactions, so a rotation
// shares the queue with bookings without holding them up.
const KeyRotationTaskQueue = AppointmentTaskQueue

// KeyRotationWorkflowID is the workflow ID of a tenant's key rotation: one
// at a time per tenant, so a second start while one runs joins it.
func KeyRotationWorkflowID(tenantID string) string {
	return "key-rotation:" + tenantID
}

// Activity names of the key rotation (methods of activities.Keys).
const (
	ActivityKeyRotationBegin = "KeyRotationBegin"
	ActivityKeyReencrypt     = "KeyReencrypt"
	ActivityKeyRetire        = "KeyRetire"
)

// KeyRotationInput starts a rotation. It carries IDs and numbers only:
// no key material and no value ever enters the workflow's history.
type KeyRotationInput struct {
	TenantID string
	// Settle is how long to wait after the new version is active before
	// re-encrypting: every process's cache of the active version expires
	// within it (keyring.Keyring.ActiveCacheTTL), so no process seals
	// with the old version once the re-encryption has passed.
	Settle time.Duration
	// BatchSize is how many values one activity re-seals; 0 means 200.
	BatchSize int
}

// KeyRotationBeginRequest is the input of KeyRotationBegin. RotationID is
// the workflow's run ID: a retried first step finds the version it made.
type KeyRotationBeginRequest struct {
	TenantID   string
	RotationID string
}

// KeyRotationBegun is KeyRotationBegin's answer: the new active version,
// the versions being replaced, and the sealed columns to re-encrypt.
type KeyRotationBegun struct {
	Version uint32
	Old     []uint32
	Columns []string
}

// KeyReencryptRequest asks for one batch of one column.
type KeyReencryptRequest struct {
	TenantID string
	Column   string
	Version  uint32
	Limit    int
}

// KeyReencrypted is how many values a batch re-sealed; 0 ends the column.
type KeyReencrypted struct {
	Done int
}

// KeyRetireRequest retires every version before Version.
type KeyRetireRequest struct {
	TenantID string
	Version  uint32
}

// KeyRetired says which versions were retired, or, when values still use
// them (a write that raced the re-encryption), how many.
type KeyRetired struct {
	Retired   []uint32
	Remaining int64
}

// KeyRotationResult is what KeyRotation returns.
type KeyRotationResult struct {
	TenantID    string
	Version     uint32
	Retired     []uint32
	Reencrypted int
}
