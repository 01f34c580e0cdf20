package workflows_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/carebook/carebook/payments/reconcile"
	"github.com/carebook/carebook/workers"
	"github.com/carebook/carebook/workflows"
)

const (
	settleTenant = "0b6f4d2e-8a15-4c3b-9e71-5d2a8c4f1e09"
	settleZone   = "Europe/Istanbul"
)

// settleDayOf bounds a day in Istanbul (UTC+3 all year).
func settleDayOf(day string) workflows.SettlementDay {
	d, _ := time.Parse(time.DateOnly, day)
	from := d.Add(-3 * time.Hour)
	return workflows.SettlementDay{Day: day, From: from, To: from.Add(24 * time.Hour)}
}

// fakeSettlement stands in for activities.Settlement: it plans the asked
// day (or, for a nightly run, the days in nightly), lists one charge per
// day, and records which workflow ran each step. fail makes a day's fetch
// fail with that error, failOnce only its first attempt.
type fakeSettlement struct {
	nightly  []string
	fail     map[string]error
	failOnce map[string]error

	mu       sync.Mutex
	plans    []workflows.SettlementPlanRequest
	steps    []string // "<activity> <day> <workflow ID>"
	reported []workflows.SettlementReportRequest
}

func (f *fakeSettlement) record(ctx context.Context, step, day string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.steps = append(f.steps, step+" "+day+" "+activity.GetInfo(ctx).WorkflowExecution.ID)
}

func (f *fakeSettlement) plan(_ context.Context, req workflows.SettlementPlanRequest) (workflows.SettlementPlan, error) {
	f.mu.Lock()
	f.plans = append(f.plans, req)
	f.mu.Unlock()
	if req.Day == "2031-13-01" {
		return workflows.SettlementPlan{}, temporal.NewNonRetryableApplicationError("day is not YYYY-MM-DD", workflows.ErrTypeInvalidSettlement, nil)
	}
	plan := workflows.SettlementPlan{TimeZone: settleZone}
	days := f.nightly
	if req.Day != "" {
		days = []string{req.Day}
	}
	for _, d := range days {
		plan.Days = append(plan.Days, settleDayOf(d))
	}
	return plan, nil
}

func (f *fakeSettlement) fetch(ctx context.Context, req workflows.SettlementDayRequest) (workflows.ProviderDay, error) {
	f.record(ctx, "fetch", req.Day.Day)
	f.mu.Lock()
	err := f.fail[req.Day.Day]
	if err == nil {
		err = f.failOnce[req.Day.Day]
		delete(f.failOnce, req.Day.Day)
	}
	f.mu.Unlock()
	if err != nil {
		return workflows.ProviderDay{}, err
	}
	return workflows.ProviderDay{Provider: "stripe", Transactions: []reconcile.Transaction{
		{ID: "txn_" + req.Day.Day, Type: "charge", AmountMinor: 45000, Currency: "TRY", Created: req.Day.From.Add(time.Hour)},
	}}, nil
}

func (f *fakeSettlement) reconcile(ctx context.Context, req workflows.ReconcileRequest) (workflows.ReconcileResult, error) {
	f.record(ctx, "reconcile", req.Day.Day)
	return workflows.ReconcileResult{Result: reconcile.Reconcile(reconcile.Input{Transactions: req.Items.Transactions}), Recorded: 1}, nil
}

func (f *fakeSettlement) report(ctx context.Context, req workflows.SettlementReportRequest) (workflows.DaySettlement, error) {
	f.record(ctx, "report", req.Day.Day)
	f.mu.Lock()
	f.reported = append(f.reported, req)
	f.mu.Unlock()
	r := req.Result
	return workflows.DaySettlement{Day: req.Day.Day, ReportID: "report-" + req.Day.Day, Status: r.Status(),
		Transactions: r.Transactions, Matched: r.Matched, Discrepancies: r.Discrepancies, Opened: r.Discrepancies}, nil
}

func newSettlementEnv(t *testing.T, f *fakeSettlement) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	workers.RegisterSettlement(env, workers.Deps{})
	env.OnActivity(workflows.ActivityPlanSettlement, mock.Anything, mock.Anything).Return(f.plan)
	env.OnActivity(workflows.ActivityFetchProviderDay, mock.Anything, mock.Anything).Return(f.fetch)
	env.OnActivity(workflows.ActivityReconcileDay, mock.Anything, mock.Anything).Return(f.reconcile)
	env.OnActivity(workflows.ActivityWriteSettlementReport, mock.Anything, mock.Anything).Return(f.report)
	env.SetStartTime(time.Date(2031, 3, 5, 10, 0, 0, 0, time.UTC))
	return env
}

func TestSettlementSettlesTheAskedDay(t *testing.T) {
	f := &fakeSettlement{}
	env := newSettlementEnv(t, f)
	id := workflows.SettlementWorkflowID(settleTenant, "2031-03-04")
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	env.ExecuteWorkflow(workflows.SettlementWorkflowType, workflows.SettlementInput{TenantID: settleTenant, Day: "2031-03-04"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res workflows.SettlementResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := workflows.SettlementResult{TenantID: settleTenant, TimeZone: settleZone, Days: []workflows.DaySettlement{{
		Day: "2031-03-04", ReportID: "report-2031-03-04", Status: reconcile.ReportMismatched, Transactions: 1,
		Discrepancies: 1, Opened: 1, Recorded: 1,
	}}}
	if !equalSettlement(res, want) {
		t.Errorf("result %+v, want %+v", res, want)
	}
	wantSteps := []string{"fetch 2031-03-04 " + id, "reconcile 2031-03-04 " + id, "report 2031-03-04 " + id}
	if !slices.Equal(f.steps, wantSteps) {
		t.Errorf("steps %q, want %q", f.steps, wantSteps)
	}
	// The plan is asked with the workflow's clock and an empty zone: the
	// activity resolves the tenant's.
	if len(f.plans) != 1 || !f.plans[0].Now.Equal(time.Date(2031, 3, 5, 10, 0, 0, 0, time.UTC)) || f.plans[0].TimeZone != "" {
		t.Errorf("plans %+v", f.plans)
	}
	// The report gets the zone, the provider and the day's bounds.
	if len(f.reported) != 1 || f.reported[0].TimeZone != settleZone || f.reported[0].Provider != "stripe" ||
		f.reported[0].Day != settleDayOf("2031-03-04") {
		t.Errorf("reported %+v", f.reported)
	}
}

func TestSettlementNightlySettlesEachDayUnderItsOwnID(t *testing.T) {
	f := &fakeSettlement{nightly: []string{"2031-03-03", "2031-03-04"}}
	env := newSettlementEnv(t, f)
	scheduled := time.Date(2031, 3, 4, 23, 0, 0, 0, time.UTC) // 02:00 on 5 March in Istanbul
	if err := env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime").ValueSet(scheduled))); err != nil {
		t.Fatal(err)
	}
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.SettlementScheduleID(settleTenant) + "-2031-03-04T23:00:00Z"})
	env.ExecuteWorkflow(workflows.SettlementWorkflowType, workflows.SettlementInput{TenantID: settleTenant, TimeZone: settleZone})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res workflows.SettlementResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	var days []string
	for _, d := range res.Days {
		days = append(days, d.Day+" "+d.ReportID)
	}
	if want := []string{"2031-03-03 report-2031-03-03", "2031-03-04 report-2031-03-04"}; !slices.Equal(days, want) {
		t.Errorf("days %q, want %q", days, want)
	}
	// A run the Schedule started late still settles the day it was meant
	// for: the plan gets the scheduled time, not the clock.
	if len(f.plans) == 0 || !f.plans[0].Now.Equal(scheduled) || f.plans[0].Day != "" {
		t.Errorf("nightly plan request %+v, want Now %s", f.plans, scheduled)
	}
	var children []string
	for _, s := range f.steps {
		if strings.HasPrefix(s, "fetch ") {
			children = append(children, strings.Fields(s)[2])
		}
	}
	want := []string{workflows.SettlementWorkflowID(settleTenant, "2031-03-03"), workflows.SettlementWorkflowID(settleTenant, "2031-03-04")}
	if !slices.Equal(children, want) {
		t.Errorf("days settled by %q, want %q", children, want)
	}
}

func TestSettlementNightlyGoesOnPastAFailedDay(t *testing.T) {
	f := &fakeSettlement{
		nightly: []string{"2031-03-03", "2031-03-04"},
		fail: map[string]error{"2031-03-03": temporal.NewNonRetryableApplicationError("key refused",
			workflows.ErrTypeProviderReject, nil)},
	}
	env := newSettlementEnv(t, f)
	env.ExecuteWorkflow(workflows.SettlementWorkflowType, workflows.SettlementInput{TenantID: settleTenant})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "settle 2031-03-03") {
		t.Fatalf("error %v, want one naming 2031-03-03", err)
	}
	var reported []string
	for _, r := range f.reported {
		reported = append(reported, r.Day.Day)
	}
	if !slices.Equal(reported, []string{"2031-03-04"}) {
		t.Errorf("reported %q, want the day after the failed one", reported)
	}
	// A refused key is final: one attempt.
	if n := countPrefix(f.steps, "fetch 2031-03-03"); n != 1 {
		t.Errorf("%d fetches of the failed day, want 1", n)
	}
}

func TestSettlementRetriesTheProvider(t *testing.T) {
	f := &fakeSettlement{failOnce: map[string]error{"2031-03-04": errors.New("provider unavailable")}}
	env := newSettlementEnv(t, f)
	env.ExecuteWorkflow(workflows.SettlementWorkflowType, workflows.SettlementInput{TenantID: settleTenant, Day: "2031-03-04"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(f.steps, "fetch 2031-03-04"); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
}

func TestSettlementRefusesABadDay(t *testing.T) {
	f := &fakeSettlement{}
	env := newSettlementEnv(t, f)
	env.ExecuteWorkflow(workflows.SettlementWorkflowType, workflows.SettlementInput{TenantID: settleTenant, Day: "2031-13-01"})
	if err := env.GetWorkflowError(); !hasErrType(err, workflows.ErrTypeInvalidSettlement) {
		t.Fatalf("error %v, want %s", err, workflows.ErrTypeInvalidSettlement)
	}
	if len(f.plans) != 1 || len(f.steps) != 0 {
		t.Errorf("plans %d (want 1, no retry), steps %q (want none)", len(f.plans), f.steps)
	}
}

// hasErrType reports whether an application error of type typ is in err's
// chain; the workflow wraps what its activities return.
func hasErrType(err error, typ string) bool {
	for err != nil {
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			return false
		}
		if appErr.Type() == typ {
			return true
		}
		err = appErr.Unwrap()
	}
	return false
}

func countPrefix(ss []string, prefix string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func equalSettlement(a, b workflows.SettlementResult) bool {
	return a.TenantID == b.TenantID && a.TimeZone == b.TimeZone && slices.Equal(a.Days, b.Days)
}
