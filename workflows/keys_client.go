package workflows

// This file is client code, not workflow code: the api and the command
// line start rotations through it.

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// StartKeyRotation starts a rotation of a tenant's data key, or joins the
// one that is running, and returns its run. settle is the keyring's
// ActiveCacheTTL of the processes that seal.
func StartKeyRotation(ctx context.Context, c client.Client, tenantID string, settle time.Duration) (client.WorkflowRun, error) {
	if _, err := uuid.Parse(tenantID); err != nil {
		return nil, fmt.Errorf("start key rotation: tenant %q is not a UUID", tenantID)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        KeyRotationWorkflowID(tenantID),
		TaskQueue: KeyRotationTaskQueue,
		// A finished rotation may be followed by another; a running one
		// is joined rather than raced.
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, KeyRotationWorkflowType, KeyRotationInput{TenantID: tenantID, Settle: settle})
	if err != nil {
		return nil, fmt.Errorf("start key rotation: %w", err)
	}
	return run, nil
}
