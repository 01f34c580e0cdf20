package workflows

import "time"

// LabWorkflowType is the registered name of LabIngestion.
const LabWorkflowType = "LabIngestion"

// LabTaskQueue is where lab ingestion runs: the one queue the worker
// process serves. Lab activities are short database and object-store steps.
const LabTaskQueue = AppointmentTaskQueue

// LabWorkflowID is the workflow ID of one received message: the tenant,
// the lab partner that sent it, the format and the sender's message ID
// (MSH-10, or the FHIR Bundle's or DiagnosticReport's id). A resend of the
// message lands on the same workflow, so it is filed once.
func LabWorkflowID(tenantID, partnerID, format, messageID string) string {
	return "lab:" + tenantID + ":" + partnerID + ":" + format + ":" + messageID
}

// The lab workflow's message names.
const (
	// UpdateLabAssign files an unmatched message under the patient staff
	// chose.
	UpdateLabAssign = "assign-patient"
	// UpdateLabDismiss closes an unmatched message without filing it.
	UpdateLabDismiss = "dismiss"
	// UpdateLabRelease releases one of the message's reports to the
	// patient now.
	UpdateLabRelease = "release"
	// SignalLabSuperseded tells the workflow that a correction replaced one
	// of its reports, so it stops waiting to release it.
	SignalLabSuperseded = "superseded"
	// QueryLabState returns the workflow's LabState.
	QueryLabState = "state"
)

// Activity names of lab ingestion (methods of activities.Labs).
const (
	ActivityLabParse         = "LabParse"
	ActivityLabMatch         = "LabMatch"
	ActivityLabMarkUnmatched = "LabMarkUnmatched"
	ActivityLabDismiss       = "LabDismiss"
	ActivityLabFile          = "LabFile"
	ActivityLabRenderPDF     = "LabRenderPDF"
	ActivityLabNotifyDoctor  = "LabNotifyDoctor"
	ActivityLabRelease       = "LabRelease"
)

// Lab error types.
const (
	// ErrTypeLabNotReviewed refuses a release that the tenant's rule says
	// must wait for a doctor's review.
	ErrTypeLabNotReviewed = "LabNotReviewed"
	// ErrTypeLabSuperseded refuses a release of a report a correction
	// replaced.
	ErrTypeLabSuperseded = "LabSuperseded"
	// ErrTypeLabUnknownReport is a release of a report this message did
	// not file.
	ErrTypeLabUnknownReport = "LabUnknownReport"
)

// LabInput starts LabIngestion for a message that intake has stored (its
// row and raw bytes exist). It carries IDs only: message content never
// enters workflow history.
type LabInput struct {
	TenantID  string
	MessageID string // lab_messages.id
}

// LabParsed is LabParse's answer: whether the message can be read, and
// if not, why (a reason naming the segment and field, never a value).
type LabParsed struct {
	Rejected bool
	Reason   string
	Reports  int
}

// Match outcomes.
const (
	LabMatched   = "matched"
	LabUnmatched = "unmatched"
	LabAmbiguous = "ambiguous"
	LabAssigned  = "assigned"
)

// LabMatch is LabMatch's answer: the patient, or why there is none.
type LabMatch struct {
	Outcome   string
	PatientID string
}

// LabUnmatchedRequest puts a message in the staff queue.
type LabUnmatchedRequest struct {
	TenantID  string
	MessageID string
	Outcome   string // LabUnmatched or LabAmbiguous
}

// LabAssignment is staff's choice of patient for an unmatched message.
type LabAssignment struct {
	PatientID string
	UserID    string
}

// LabDismissal closes an unmatched message. Staff's reason is written to
// the message's row by the api and never travels here: it is free text and
// may name the patient.
type LabDismissal struct {
	TenantID  string
	MessageID string
	UserID    string
}

// LabFileRequest files the message's reports under a patient.
type LabFileRequest struct {
	TenantID  string
	MessageID string
	PatientID string
	Match     string // LabMatched or LabAssigned
	UserID    string // who assigned, for LabAssigned
}

// LabFiled is LabFile's answer.
type LabFiled struct {
	Reports []FiledReport
}

// FiledReport is one report version the message filed.
type FiledReport struct {
	ReportID string
	Severity string // normal, abnormal or critical
	// ReleaseRule is the tenant's rule when the report was filed, and
	// ReleaseDueAt when it falls due under after_days.
	ReleaseRule  string
	ReleaseDueAt time.Time
	// Released is set when the report was already released (a retry).
	Released bool
	// Superseded is set when a later version is already on file: this
	// message was issued before it, so there is nothing to release.
	Superseded bool
	// Superseded names the earlier version this one replaces, and the
	// workflow that filed it, so that workflow can be told.
	SupersededReportID   string
	SupersededWorkflowID string
}

// LabReportRef names one report version.
type LabReportRef struct {
	TenantID string
	ReportID string
}

// LabReleaseRequest releases a report: by a user, or by the rule when
// UserID is empty.
type LabReleaseRequest struct {
	TenantID string
	ReportID string
	UserID   string
}

// LabRelease asks the workflow to release one report now.
type LabRelease struct {
	ReportID string
	UserID   string
}

// LabReleased is the release's answer.
type LabReleased struct {
	ReportID   string
	ReleasedAt time.Time
	// Already is set when the report had been released before.
	Already bool
}

// LabSuperseded names a report a correction replaced.
type LabSuperseded struct {
	ReportID string
}

// LabState is what the state query answers.
type LabState struct {
	Stage    string // parsing, matching, waiting-for-staff, filing, waiting-for-release, done
	Outcome  string // filed, rejected, dismissed, or "" while running
	Match    string
	Reports  []FiledReport
	Released []string
}
