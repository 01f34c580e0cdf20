package workflows

// Registered names of the data subject request workflows.
const (
	DSRExportWorkflowType  = "DSRExport"
	DSRErasureWorkflowType = "DSRErasure"
)

// DSRTaskQueue is where data subject requests run: the worker's one queue.
const DSRTaskQueue = AppointmentTaskQueue

// DSRExportWorkflowID is the workflow ID of one export request. The
// request's ID makes it unique; the tenant makes it readable in the UI.
func DSRExportWorkflowID(tenantID, requestID string) string {
	return "dsr-export:" + tenantID + ":" + requestID
}

// DSRErasureWorkflowID is the workflow ID of one erasure request.
func DSRErasureWorkflowID(tenantID, requestID string) string {
	return "dsr-erasure:" + tenantID + ":" + requestID
}

// Activity names of the data subject requests (methods of activities.DSR).
const (
	ActivityDSRStart         = "DSRStart"
	ActivityDSRBuildExport   = "DSRBuildExport"
	ActivityDSREraseObjects  = "DSREraseObjects"
	ActivityDSREraseSessions = "DSREraseSessions"
	ActivityDSREraseRecords  = "DSREraseRecords"
	ActivityDSRFinish        = "DSRFinish"
)

// ErrTypeDSRLegalHold refuses an erasure of a patient under an active legal
// hold; the workflow records the refusal instead of retrying.
const ErrTypeDSRLegalHold = "DSRLegalHold"

// ErrTypeDSRPatientErased refuses an export of a patient whose erasure has
// been asked for: an archive written while the erasure runs could outlive
// it with the data the erasure removed.
const ErrTypeDSRPatientErased = "DSRPatientErased"

// DSRInput starts either workflow. It carries IDs only: the patient is
// read from the request's row by each activity, so nothing about them
// enters workflow history.
type DSRInput struct {
	TenantID  string
	RequestID string
}

// DSRStarted is DSRStart's answer.
type DSRStarted struct {
	// Done is set when the request had already finished (a rerun).
	Done bool
	// Held is set when an erasure's patient is under a legal hold.
	Held bool
}

// DSRExported is DSRBuildExport's answer: where the archive is (a key of
// IDs) and how many files it holds.
type DSRExported struct {
	ArchiveKey string
	Files      int
}

// DSRErased counts what an erasure step removed, for the workflow's result
// in the Temporal UI; counts, never values.
type DSRErased struct {
	Objects  int
	Sessions int
	Rows     int
}

// DSRFinishRequest closes a request: completed, refused or failed, with a
// stable outcome code and, for an export, the archive.
type DSRFinishRequest struct {
	TenantID   string
	RequestID  string
	Status     string // completed, refused or failed
	Outcome    string
	ArchiveKey string
}

// DSRResult is what either workflow returns.
type DSRResult struct {
	Status     string
	Outcome    string
	ArchiveKey string
	Erased     DSRErased
}
