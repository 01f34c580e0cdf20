package workers

import (
	"context"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/workflows"
)

// RegisterRetention registers the retention workflow and its activities
// under the names its contract uses.
func RegisterRetention(r Registrar, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: workflows.RetentionWorkflowType})
	a := d.Retention
	if a == nil {
		a = &activities.Retention{}
	}
	for name, fn := range map[string]any{
		workflows.ActivityRetentionTenants:    a.RetentionTenants,
		workflows.ActivityPruneTenant:         a.PruneTenant,
		workflows.ActivityArchiveAuditSegment: a.ArchiveAuditSegment,
		workflows.ActivityAnchorAuditHead:     a.AnchorAuditHead,
		workflows.ActivityPruneSessions:       a.PruneSessions,
		workflows.ActivityPurgeErased:         a.PurgeErased,
		workflows.ActivityExpireExports:       a.ExpireExports,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// retentionHour is when, in UTC, the nightly retention run starts: after
// the settlements at 02:00 in the tenants' zones have mostly finished, and
// before Europe and Turkey start work. It is one run for the deployment,
// so one zone has to be picked; deleting rows weeks old does not need to
// land at a tenant's local night.
const retentionHour = 3

// retentionCatchup is how late a missed run may still start. A run that
// misses it is made up by the next night's, which finds the same work.
const retentionCatchup = 12 * time.Hour

// EnsureRetentionSchedule creates the deployment's Schedule
// RetentionScheduleID, which runs Retention every night at 03:00 UTC over
// every tenant, or brings an existing one's time and action up to date.
// A paused Schedule stays paused. It is safe to call on every start of
// every worker.
//
// One Schedule for the deployment rather than one per tenant: the Redis
// session lists are not per tenant, the work per tenant is small and
// bounded, and one place to look, pause or trigger suits an operator. A
// tenant that fails is named in the run's result and does not stop the
// others.
func EnsureRetentionSchedule(ctx context.Context, c client.Client) error {
	spec := client.ScheduleSpec{
		Calendars:    []client.ScheduleCalendarSpec{{Hour: []client.ScheduleRange{{Start: retentionHour}}}},
		TimeZoneName: "UTC",
	}
	action := &client.ScheduleWorkflowAction{
		ID:        workflows.RetentionScheduleID,
		Workflow:  workflows.RetentionWorkflowType,
		Args:      []any{workflows.RetentionInput{}},
		TaskQueue: workflows.RetentionTaskQueue,
	}
	// A run still going at the next night is stuck; skip rather than pile
	// up, since the next run does the same work from where it stands.
	return ensureSchedule(ctx, c, workflows.RetentionScheduleID, spec, action, client.SchedulePolicies{
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: retentionCatchup,
	})
}

// TriggerRetention starts a retention run now through the Schedule, so it
// shows in the Temporal UI beside the nightly runs and obeys the same
// overlap policy: a run already going is not doubled.
func TriggerRetention(ctx context.Context, c client.Client) error {
	return c.ScheduleClient().GetHandle(ctx, workflows.RetentionScheduleID).Trigger(ctx, client.ScheduleTriggerOptions{
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	})
}
