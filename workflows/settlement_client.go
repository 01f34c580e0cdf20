package workflows

// This file is client code, not workflow code: the api and the workers
// call it to start settlements. It sits beside the contract so that both
// share one way of naming and starting the runs.

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/carebook/carebook/payments/reconcile"
)

// maxTriggerDays bounds one manual trigger: a month of days, each its own
// workflow, is as much provider listing as is sensible to start at once.
const maxTriggerDays = 31

// TriggerSettlement settles a tenant's days from first to last (YYYY-MM-DD,
// both included, in the tenant's zone) now, one workflow per day under its
// SettlementWorkflowID, and returns their runs in day order. A day whose
// settlement is running is joined, not started twice; a settled day is
// settled again, which replaces its report and opens no discrepancy twice.
// A day that has not ended yet fails its workflow at once.
//
// It returns an error before starting anything if the tenant is not a
// UUID, a day is malformed, last is before first, or the range is longer
// than 31 days; and the runs started so far with the error if starting
// one fails.
func StartSettlements(ctx context.Context, c client.Client, tenantID, first, last string) ([]client.WorkflowRun, error) {
	if _, err := uuid.Parse(tenantID); err != nil {
		return nil, fmt.Errorf("start settlement: tenant %q is not a UUID", tenantID)
	}
	days, err := reconcile.Days(first, last)
	if err != nil {
		return nil, fmt.Errorf("start settlement: %w", err)
	}
	if len(days) > maxTriggerDays {
		return nil, fmt.Errorf("start settlement: %d days, at most %d at once", len(days), maxTriggerDays)
	}
	runs := make([]client.WorkflowRun, 0, len(days))
	for _, day := range days {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:        SettlementWorkflowID(tenantID, day),
			TaskQueue: SettlementTaskQueue,
			// A closed day may run again; a running one is joined.
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		}, SettlementWorkflowType, SettlementInput{TenantID: tenantID, Day: day})
		if err != nil {
			return runs, fmt.Errorf("start settlement of %s: %w", day, err)
		}
		runs = append(runs, run)
	}
	return runs, nil
}
