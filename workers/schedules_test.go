package workers_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"
	"gorm.io/gorm"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/models/modelstest"
	"github.com/carebook/carebook/payments/accounts"
	"github.com/carebook/carebook/workers"
	"github.com/carebook/carebook/workflows"
)

// settlementStack is a seeded database and an in-process Temporal server
// with the settlement registered. The tenant has no provider settings, so
// it pays at the desk: the offline provider lists nothing, and every day
// settles to an empty, matched report.
type settlementStack struct {
	admin  *gorm.DB
	app    *gorm.DB
	c      client.Client
	tenant string
}

func newSettlementStack(t *testing.T) settlementStack {
	t.Helper()
	db := modelstest.New(t)
	admin, err := models.Open(db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	n, err := demo.Seed(context.Background(), admin, demo.Options{Slug: "sched", Name: "Sched", Now: time.Now(),
		HashPassword: func(string) (string, error) { return "x", nil }})
	if err != nil {
		t.Fatal(err)
	}
	app, err := models.Open(db.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	kek, err := keyring.NewLocalKEK(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	ts.NewWorker(workflows.SettlementTaskQueue, func(r worker.Registry) {
		workers.RegisterSettlement(r, workers.Deps{Settlement: &activities.Settlement{DB: app, Providers: &accounts.Accounts{DB: app, Keys: keyring.New(app, kek)}}})
	})
	return settlementStack{admin: admin, app: app, c: ts.GetDefaultClient(), tenant: n.Tenant.ID.String()}
}

func (s settlementStack) reportDays(t *testing.T) []string {
	t.Helper()
	var days []string
	if err := s.admin.Raw(`SELECT to_char(day, 'YYYY-MM-DD') FROM settlement_reports WHERE tenant_id = ? ORDER BY day`, s.tenant).
		Scan(&days).Error; err != nil {
		t.Fatal(err)
	}
	return days
}

func TestTriggerSettlementSettlesEachDayOnceAndAgain(t *testing.T) {
	s := newSettlementStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	runs, err := workflows.StartSettlements(ctx, s.c, s.tenant, "2025-01-30", "2025-02-01")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.GetID())
		var res workflows.SettlementResult
		if err := r.Get(ctx, &res); err != nil {
			t.Fatalf("%s: %v", r.GetID(), err)
		}
		if res.TimeZone != "Europe/Istanbul" || len(res.Days) != 1 || res.Days[0].Status != "matched" {
			t.Errorf("%s: %+v", r.GetID(), res)
		}
	}
	wantIDs := []string{
		workflows.SettlementWorkflowID(s.tenant, "2025-01-30"),
		workflows.SettlementWorkflowID(s.tenant, "2025-01-31"),
		workflows.SettlementWorkflowID(s.tenant, "2025-02-01"),
	}
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("workflow IDs %q, want %q", ids, wantIDs)
	}

	// A closed day runs again, and replaces its report.
	again, err := workflows.StartSettlements(ctx, s.c, s.tenant, "2025-01-31", "2025-01-31")
	if err != nil {
		t.Fatal(err)
	}
	if again[0].GetRunID() == runs[1].GetRunID() {
		t.Error("the re-run joined the closed run instead of starting a new one")
	}
	if err := again[0].Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := s.reportDays(t), []string{"2025-01-30", "2025-01-31", "2025-02-01"}; !slices.Equal(got, want) {
		t.Errorf("reports for %q, want %q", got, want)
	}

	for _, bad := range [][2]string{{"2025-02-01", "2025-01-31"}, {"2025-01-01", "2025-03-01"}, {"31.01.2025", "2025-02-01"}} {
		if _, err := workflows.StartSettlements(ctx, s.c, s.tenant, bad[0], bad[1]); err == nil {
			t.Errorf("range %s..%s was accepted", bad[0], bad[1])
		}
	}
}

func TestSettlementScheduleRunsYesterdayInTheTenantsZone(t *testing.T) {
	s := newSettlementStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if err := workers.EnsureSettlementSchedules(ctx, s.c, s.app); err != nil {
		t.Fatal(err)
	}
	// A second call (every worker start makes one) updates in place.
	if err := workers.EnsureSettlementSchedules(ctx, s.c, s.app); err != nil {
		t.Fatal(err)
	}
	h := s.c.ScheduleClient().GetHandle(ctx, workflows.SettlementScheduleID(s.tenant))
	desc, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec := desc.Schedule.Spec
	if spec.TimeZoneName != "Europe/Istanbul" || len(spec.Calendars) != 1 || len(spec.Calendars[0].Hour) != 1 ||
		spec.Calendars[0].Hour[0].Start != 2 {
		t.Errorf("spec %+v", spec)
	}
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || action.TaskQueue != workflows.SettlementTaskQueue {
		t.Fatalf("action %+v", desc.Schedule.Action)
	}
	if wt, ok := action.Workflow.(string); !ok || wt != workflows.SettlementWorkflowType {
		t.Errorf("action workflow %v", action.Workflow)
	}

	// Fire it now rather than wait for 02:00: it settles yesterday, in
	// Istanbul, under the day's own workflow ID.
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	ist, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		t.Fatal(err)
	}
	yesterday := time.Now().In(ist).AddDate(0, 0, -1).Format(time.DateOnly)
	deadline := time.Now().Add(30 * time.Second)
	for {
		days := s.reportDays(t)
		if slices.Contains(days, yesterday) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report for %s after 30 s; reports for %q", yesterday, days)
		}
		time.Sleep(200 * time.Millisecond)
	}
	day, err := s.c.DescribeWorkflowExecution(ctx, workflows.SettlementWorkflowID(s.tenant, yesterday), "")
	if err != nil {
		t.Fatalf("the day's own workflow: %v", err)
	}
	if day.WorkflowExecutionInfo.GetParentExecution().GetWorkflowId() == "" {
		t.Error("the day's workflow was not started by the scheduled run")
	}
}
