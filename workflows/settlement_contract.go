package workflows

import (
	"time"

	"github.com/carebook/carebook/payments/reconcile"
)

// SettlementWorkflowType is the registered name of Settlement.
const SettlementWorkflowType = "Settlement"

// SettlementTaskQueue is where Settlement and its activities run. It is the
// appointment queue because the process runs one worker; the settlement
// activities are few and run at night, so they do not crowd out bookings.
const SettlementTaskQueue = AppointmentTaskQueue

// SettlementWorkflowID is the workflow ID of one tenant's settlement of one
// day (YYYY-MM-DD, in the tenant's zone). Deriving it from the day makes a
// second start for a day that is being settled join that run, and lets a
// closed day be settled again under the same ID.
func SettlementWorkflowID(tenantID, day string) string {
	return "settlement:" + tenantID + ":" + day
}

// SettlementScheduleID is the ID of a tenant's nightly settlement Schedule.
// Temporal appends the scheduled time to it for each run it starts; that
// run then settles each day as a child under SettlementWorkflowID.
func SettlementScheduleID(tenantID string) string {
	return "settlement:" + tenantID
}

// Activity names of the settlement (methods of activities.Settlement).
const (
	ActivityPlanSettlement        = "PlanSettlement"
	ActivityFetchProviderDay      = "FetchProviderDay"
	ActivityReconcileDay          = "ReconcileDay"
	ActivityWriteSettlementReport = "WriteSettlementReport"
)

// ErrTypeInvalidSettlement is a settlement request that cannot succeed on a
// retry: a malformed day, an unknown time zone, a tenant ID that is not a
// UUID, a day that has not ended yet.
const ErrTypeInvalidSettlement = "InvalidSettlement"

// SettlementInput starts a settlement.
//
// With Day set, the workflow settles that day. With Day empty (how the
// Schedule starts it) it settles yesterday in the tenant's zone, counted
// from the time the Schedule meant to start it, plus any of the few days
// before that have no report yet: a nightly run that never happened (a
// daylight-saving night without 02:00, an outage longer than the catch-up
// window) is made up the next night.
type SettlementInput struct {
	TenantID string
	Day      string // YYYY-MM-DD, or empty for "yesterday"
	// TimeZone is the IANA zone that bounds the day; empty means the
	// zone of the tenant's first facility by name, or UTC without one.
	TimeZone string
}

// SettlementPlanRequest asks which days to settle and in which zone. Now is
// the workflow's notion of the present, passed in so that the answer
// follows from the workflow's history alone.
type SettlementPlanRequest struct {
	TenantID string
	Day      string
	TimeZone string
	Now      time.Time
}

// SettlementPlan is PlanSettlement's answer.
type SettlementPlan struct {
	TimeZone string
	Days     []SettlementDay // oldest first
}

// SettlementDay is a day and the instants that bound it in the zone:
// [From, To).
type SettlementDay struct {
	Day      string
	From, To time.Time
}

// SettlementDayRequest is the input of FetchProviderDay.
type SettlementDayRequest struct {
	TenantID string
	TimeZone string
	Day      SettlementDay
}

// ProviderDay is what the provider says about a day, each item linked to
// its Carebook payment or refund where that could be found.
type ProviderDay struct {
	Provider     string // provider name, e.g. "stripe"
	Transactions []reconcile.Transaction
	Payouts      []reconcile.Payout
}

// ReconcileRequest is the input of ReconcileDay.
type ReconcileRequest struct {
	TenantID string
	Day      SettlementDay
	Items    ProviderDay
}

// ReconcileResult is ReconcileDay's answer: the day's lines, and how many
// facts (payouts, provider fees) this run added to the ledger.
type ReconcileResult struct {
	Result   reconcile.Result
	Recorded int
}

// SettlementReportRequest is the input of WriteSettlementReport.
type SettlementReportRequest struct {
	TenantID string
	TimeZone string
	Provider string
	Day      SettlementDay
	Result   reconcile.Result
}

// DaySettlement is the outcome of settling one day.
type DaySettlement struct {
	Day           string
	ReportID      string
	Status        string // reconcile.ReportMatched or reconcile.ReportMismatched
	Transactions  int
	Payouts       int
	Matched       int
	Discrepancies int // found by this run, resolved or not
	Opened        int // discrepancies this run opened (0 on a re-run)
	Recorded      int // ledger facts this run added (0 on a re-run)
	// AlreadyRunning is set by a nightly run whose day was being settled
	// by another run at the time; that run's outcome is not known here.
	AlreadyRunning bool
}

// SettlementResult is what Settlement returns.
type SettlementResult struct {
	TenantID string
	TimeZone string
	Days     []DaySettlement
}
