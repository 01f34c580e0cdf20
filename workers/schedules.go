package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
	"gorm.io/gorm"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/workflows"
)

// RegisterSettlement registers the settlement workflow and its activities
// under the names its contract uses.
func RegisterSettlement(r Registrar, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.Settlement, workflow.RegisterOptions{Name: workflows.SettlementWorkflowType})
	s := d.Settlement
	if s == nil {
		s = &activities.Settlement{}
	}
	for name, fn := range map[string]any{
		workflows.ActivityPlanSettlement:        s.PlanSettlement,
		workflows.ActivityFetchProviderDay:      s.FetchProviderDay,
		workflows.ActivityReconcileDay:          s.ReconcileDay,
		workflows.ActivityWriteSettlementReport: s.WriteSettlementReport,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// settlementHour is when, in the tenant's zone, the nightly settlement of
// the day before runs: late enough that the day's last ledger writes and
// the provider's reporting have landed, early enough that the report is
// there when billing staff arrive. On a night whose clocks skip 02:00
// Temporal does not fire; the next night's run settles the missed day too
// (see workflows.SettlementInput).
const settlementHour = 2

// settlementCatchup is how late a missed nightly run may still start once
// Temporal is back. A run that misses it is made up by the next night's.
const settlementCatchup = 24 * time.Hour

// settlementSchedule is the Schedule of one tenant, in zone.
func settlementSchedule(tenantID, zone string) (client.ScheduleSpec, *client.ScheduleWorkflowAction) {
	spec := client.ScheduleSpec{
		Calendars:    []client.ScheduleCalendarSpec{{Hour: []client.ScheduleRange{{Start: settlementHour}}}},
		TimeZoneName: zone,
	}
	action := &client.ScheduleWorkflowAction{
		// Temporal appends the scheduled time to this ID for each run.
		ID:        workflows.SettlementScheduleID(tenantID),
		Workflow:  workflows.SettlementWorkflowType,
		Args:      []any{workflows.SettlementInput{TenantID: tenantID, TimeZone: zone}},
		TaskQueue: workflows.SettlementTaskQueue,
	}
	return spec, action
}

// EnsureSettlementSchedules creates, for every tenant, the Schedule
// SettlementScheduleID(tenant) that runs Settlement daily at 02:00 in the
// tenant's zone (see activities.TenantTimeZone) for the day before, and
// brings an existing one's time, zone and action up to date. A paused
// Schedule stays paused. It returns the errors of all tenants joined; a
// tenant that fails does not stop the others.
//
// It is safe to call on every start of every worker. A tenant that no
// longer exists keeps its Schedule; Carebook does not delete tenants.
func EnsureSettlementSchedules(ctx context.Context, c client.Client, db *gorm.DB) error {
	var tenants []models.Tenant
	if err := db.WithContext(ctx).Order("id").Find(&tenants).Error; err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	var errs []error
	for _, t := range tenants {
		zone, err := activities.TenantTimeZone(ctx, db, t.ID)
		if err == nil {
			err = ensureSettlementSchedule(ctx, c, t.ID.String(), zone)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("settlement schedule of tenant %s: %w", t.ID, err))
		}
	}
	return errors.Join(errs...)
}

func ensureSettlementSchedule(ctx context.Context, c client.Client, tenantID, zone string) error {
	spec, action := settlementSchedule(tenantID, zone)
	policy := client.SchedulePolicies{
		// A run still going at the next 02:00 is stuck on the provider;
		// skip rather than pile up, the next run makes the day up.
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: settlementCatchup,
	}
	return ensureSchedule(ctx, c, workflows.SettlementScheduleID(tenantID), spec, action, policy)
}

// ensureSchedule creates the Schedule id, or brings an existing one's
// spec, action, overlap policy and catch-up window up to date. A paused
// Schedule stays paused.
func ensureSchedule(ctx context.Context, c client.Client, id string, spec client.ScheduleSpec, action *client.ScheduleWorkflowAction,
	policy client.SchedulePolicies) error {
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            id,
		Spec:          spec,
		Action:        action,
		Overlap:       policy.Overlap,
		CatchupWindow: policy.CatchupWindow,
	})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return err
	}
	return c.ScheduleClient().GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec = &spec
			s.Action = action
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap, s.Policy.CatchupWindow = policy.Overlap, policy.CatchupWindow
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
}
