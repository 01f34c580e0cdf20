package workflows

// RetentionWorkflowType is the registered name of Retention.
const RetentionWorkflowType = "Retention"

// RetentionTaskQueue is where Retention and its activities run: the one
// queue the worker polls. The run is nightly and mostly short deletes.
const RetentionTaskQueue = AppointmentTaskQueue

// RetentionScheduleID is the ID of the deployment's one retention
// Schedule. Temporal appends the scheduled time to it for each run.
const RetentionScheduleID = "retention"

// Activity names of the retention run (methods of activities.Retention).
const (
	ActivityRetentionTenants    = "RetentionTenants"
	ActivityPruneTenant         = "PruneTenant"
	ActivityArchiveAuditSegment = "ArchiveAuditSegment"
	ActivityAnchorAuditHead     = "AnchorAuditHead"
	ActivityPruneSessions       = "PruneSessions"
	ActivityPurgeErased         = "PurgeErased"
	ActivityExpireExports       = "ExpireExports"
)

// ErrTypeAuditChainBroken is an archive step that found the events it
// would archive tampered with. Retrying cannot help; an operator runs
// `carebook audit verify` and decides.
const ErrTypeAuditChainBroken = "AuditChainBroken"

// RetentionInput starts a retention run. The Schedule starts it empty;
// Tenants limits a run started by hand to the named tenant IDs.
type RetentionInput struct {
	Tenants []string
}

// RetentionTenantRequest names the tenant an activity works on.
type RetentionTenantRequest struct {
	TenantID string
}

// PruneResult is what PruneTenant deleted.
type PruneResult struct {
	Outbox      int64 // sent notifications past their retention
	Idempotency int64 // Idempotency-Key answers past their useful life
}

// ArchiveResult is one ArchiveAuditSegment call: the events it archived
// (none when FirstSeq is 0) and whether older events are left.
type ArchiveResult struct {
	FirstSeq, LastSeq int64
	Deleted           int64
	More              bool
}

// AnchorResult is the head AnchorAuditHead recorded.
type AnchorResult struct {
	Seq int64
}

// PruneSessionsRequest continues a scan of the users' session lists from
// Cursor (0 starts one).
type PruneSessionsRequest struct {
	Cursor uint64
}

// PruneSessionsResult is one page of the scan: the lists looked at, the
// ended sessions removed from them, and where to continue (0 when done).
type PruneSessionsResult struct {
	Lists   int
	Removed int
	Cursor  uint64
}

// PurgeErasedRequest continues a tenant's walk over its erased patients
// after the patient ID After (the nil UUID starts one).
type PurgeErasedRequest struct {
	TenantID string
	After    string
}

// PurgeResult counts what the purge of erased patients found: patients
// whose kept records were deleted (in part, when only the financial or
// the medical years have run out, or in whole), patients still inside
// retention, and patients a legal hold keeps; Rows is how many rows were
// deleted. After
// is where the next page starts, and More says there is one.
type PurgeResult struct {
	Purged int
	Kept   int
	Held   int
	Rows   int64
	After  string
	More   bool
}

// ExpireResult is what ExpireExports did: export archives deleted after
// their lifetime (their requests marked expired), and whether more are
// left for another call.
type ExpireResult struct {
	Expired int
	More    bool
}

// TenantRetention is what a run did in one tenant.
type TenantRetention struct {
	TenantID        string
	Prune           PruneResult
	ArchivedEvents  int64
	ArchivedThrough int64 // last archived seq, 0 when nothing was
	AnchoredSeq     int64
	Purge           PurgeResult // erased patients past retention
	ExpiredExports  int         // export archives past their lifetime
	Err             string      `json:",omitempty"` // why the tenant's steps failed
}

// RetentionResult is what Retention returns.
type RetentionResult struct {
	Tenants         []TenantRetention
	SessionsRemoved int
}
