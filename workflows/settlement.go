package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/carebook/carebook/payments/reconcile"
)

// settlementDatabaseRetry is for the settlement's database steps. Nobody
// waits on a nightly report, so back off up to a minute apart and keep
// trying for the hour that settlementDatabaseStep allows: a failover or a
// restart is long over by then, and a database down for longer is an
// incident whose end an operator marks by settling the day again. A bad
// request (day, zone, tenant) or a missing tenant is final.
var settlementDatabaseRetry = &temporal.RetryPolicy{
	InitialInterval:        time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        time.Minute,
	NonRetryableErrorTypes: []string{ErrTypeInvalidSettlement, ErrTypeNotFound},
}

// settlementProviderRetry is for listing the provider's day. Listing
// changes nothing, so it can be retried without limit; Stripe asks clients
// to back off on 429 and 5xx, and an outage of the provider's reporting
// API can last a while, so start at 5 s and wait up to 5 minutes between
// attempts, within the six hours settlementProviderStep allows (the report
// is wanted by the morning). A refused key or request is final.
var settlementProviderRetry = &temporal.RetryPolicy{
	InitialInterval:        5 * time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        5 * time.Minute,
	NonRetryableErrorTypes: []string{ErrTypeInvalidSettlement, ErrTypeProviderReject},
}

// settlementDatabaseStep sets the options of a settlement database step.
// startToClose is per step: the plan is one query, reconciling loads a
// day of ledger entries, writing the report upserts one row per
// discrepancy.
func settlementDatabaseStep(ctx workflow.Context, startToClose time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    startToClose,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy:            settlementDatabaseRetry,
	})
}

// settlementProviderStep sets the options of the provider listing. It
// lists the day an hour at a time and heartbeats after each hour, so a
// worker that dies is noticed within two minutes rather than after the
// fifteen an attempt may take for a busy tenant's day.
func settlementProviderStep(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    15 * time.Minute,
		HeartbeatTimeout:       2 * time.Minute,
		ScheduleToCloseTimeout: 6 * time.Hour,
		RetryPolicy:            settlementProviderRetry,
	})
}

// scheduledStartTime is the search attribute Temporal sets on a workflow
// started by a Schedule: the time the Schedule meant to start it. A run
// that catches up after an outage uses it to settle the day it was meant
// for, not the day it happens to run on.
var scheduledStartTime = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// Settlement proves a tenant's ledger against its payment provider for a
// day: it lists the provider's balance transactions and payouts of the
// day, records the facts the ledger copies from the provider (payouts and
// the provider's fees), matches every provider item against the ledger,
// and writes the day's report with one discrepancy per mismatch for
// billing staff. Every step is idempotent, so settling a day again
// replaces its report and opens nothing twice.
//
// Started by the Schedule (Day empty), it settles yesterday and any
// recent day without a report, each as a child under that day's
// SettlementWorkflowID.
func Settlement(ctx workflow.Context, in SettlementInput) (SettlementResult, error) {
	s := &settlement{in: in}
	res := SettlementResult{TenantID: in.TenantID}

	plan, err := s.plan(ctx)
	if err != nil {
		return res, err
	}
	res.TimeZone = plan.TimeZone

	if in.Day == "" {
		res.Days, err = s.settleEachAsChild(ctx, plan)
		return res, err
	}

	day, err := s.settleDay(ctx, plan.TimeZone, plan.Days[0])
	res.Days = []DaySettlement{day}
	return res, err
}

type settlement struct {
	in SettlementInput
}

// plan resolves the zone and the days to settle. "Now" is when the
// Schedule meant the run to start, when a Schedule started it.
func (s *settlement) plan(ctx workflow.Context) (SettlementPlan, error) {
	now := workflow.Now(ctx)
	if at, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStartTime); ok && !at.IsZero() {
		now = at
	}
	var plan SettlementPlan
	err := workflow.ExecuteActivity(settlementDatabaseStep(ctx, 10*time.Second), ActivityPlanSettlement, SettlementPlanRequest{
		TenantID: s.in.TenantID,
		Day:      s.in.Day,
		TimeZone: s.in.TimeZone,
		Now:      now,
	}).Get(ctx, &plan)
	if err != nil {
		return plan, fmt.Errorf("plan settlement: %w", err)
	}
	if len(plan.Days) == 0 || (s.in.Day != "" && plan.Days[0].Day != s.in.Day) {
		return plan, temporal.NewNonRetryableApplicationError("settlement plan has no day to settle", ErrTypeInvalidSettlement, nil)
	}
	return plan, nil
}

// settleEachAsChild settles the planned days oldest first, one at a time
// to stay well inside the provider's rate limits. A day that another run
// is settling right now is left to it. A day that fails does not stop the
// others; the run fails at the end, naming the days to settle again.
func (s *settlement) settleEachAsChild(ctx workflow.Context, plan SettlementPlan) ([]DaySettlement, error) {
	var (
		out    []DaySettlement
		failed []string
		first  error
	)
	for _, d := range plan.Days {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: SettlementWorkflowID(s.in.TenantID, d.Day),
			// A closed day may be settled again: that is what a re-run is.
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			// A day's settlement is complete in itself; it need not die
			// with the nightly run that started it.
			ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		})
		var r SettlementResult
		err := workflow.ExecuteChildWorkflow(cctx, SettlementWorkflowType, SettlementInput{
			TenantID: s.in.TenantID,
			Day:      d.Day,
			TimeZone: plan.TimeZone,
		}).Get(ctx, &r)
		var running *temporal.ChildWorkflowExecutionAlreadyStartedError
		switch {
		case errors.As(err, &running):
			workflow.GetLogger(ctx).Info("settlement day already running", "tenantID", s.in.TenantID, "day", d.Day)
			out = append(out, DaySettlement{Day: d.Day, AlreadyRunning: true})
		case err != nil:
			failed = append(failed, d.Day)
			if first == nil {
				first = err
			}
		default:
			out = append(out, r.Days...)
		}
	}
	if first != nil {
		return out, fmt.Errorf("settle %s: %w", strings.Join(failed, ", "), first)
	}
	return out, nil
}

// settleDay runs one day's steps.
func (s *settlement) settleDay(ctx workflow.Context, zone string, day SettlementDay) (DaySettlement, error) {
	out := DaySettlement{Day: day.Day}

	items, err := s.fetch(ctx, zone, day)
	if err != nil {
		return out, err
	}

	rec, err := s.reconcile(ctx, day, items)
	if err != nil {
		return out, err
	}

	out, err = s.report(ctx, zone, items.Provider, day, rec.Result)
	if err != nil {
		return DaySettlement{Day: day.Day}, err
	}
	out.Recorded = rec.Recorded
	workflow.GetLogger(ctx).Info("settlement done", "tenantID", s.in.TenantID, "day", day.Day,
		"status", out.Status, "discrepancies", out.Discrepancies, "opened", out.Opened)
	return out, nil
}

// fetch lists the provider's balance transactions and payouts of the day.
func (s *settlement) fetch(ctx workflow.Context, zone string, day SettlementDay) (ProviderDay, error) {
	var items ProviderDay
	err := workflow.ExecuteActivity(settlementProviderStep(ctx), ActivityFetchProviderDay, SettlementDayRequest{
		TenantID: s.in.TenantID,
		TimeZone: zone,
		Day:      day,
	}).Get(ctx, &items)
	if err != nil {
		return items, fmt.Errorf("fetch provider day: %w", err)
	}
	return items, nil
}

// reconcile records the provider's facts in the ledger and matches the
// day. Two minutes cover loading a busy day's ledger entries.
func (s *settlement) reconcile(ctx workflow.Context, day SettlementDay, items ProviderDay) (ReconcileResult, error) {
	var rec ReconcileResult
	err := workflow.ExecuteActivity(settlementDatabaseStep(ctx, 2*time.Minute), ActivityReconcileDay, ReconcileRequest{
		TenantID: s.in.TenantID,
		Day:      day,
		Items:    items,
	}).Get(ctx, &rec)
	if err != nil {
		return rec, fmt.Errorf("reconcile day: %w", err)
	}
	return rec, nil
}

// report writes the day's report and its discrepancies. A minute covers
// one upsert per discrepancy of a bad day.
func (s *settlement) report(ctx workflow.Context, zone, provider string, day SettlementDay, res reconcile.Result) (DaySettlement, error) {
	var out DaySettlement
	err := workflow.ExecuteActivity(settlementDatabaseStep(ctx, time.Minute), ActivityWriteSettlementReport, SettlementReportRequest{
		TenantID: s.in.TenantID,
		TimeZone: zone,
		Provider: provider,
		Day:      day,
		Result:   res,
	}).Get(ctx, &out)
	if err != nil {
		return out, fmt.Errorf("write settlement report: %w", err)
	}
	return out, nil
}
