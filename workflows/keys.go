package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// keyBatch is the default batch: 200 short AES-GCM re-seals and updates
// are one quick transaction, and a million values make 5000 activities.
const keyBatch = 200

// keyRetirePasses bounds the re-encrypt-then-retire passes. A value sealed
// with the old version after the first pass can only come from a process
// whose cache outlived Settle; a second pass catches it, and a third that
// still finds some means something is wrong (a process with a clock or
// configuration of its own), which an operator should look at.
const keyRetirePasses = 3

// keyDatabaseRetry is for the rotation's steps. Nobody waits on a
// rotation, and every step is idempotent, so back off up to a minute and
// keep trying for the hour keyStep allows; an unknown tenant or column is
// final.
var keyDatabaseRetry = &temporal.RetryPolicy{
	InitialInterval:        time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        time.Minute,
	NonRetryableErrorTypes: []string{ErrTypeNotFound, ErrTypeInvalidState},
}

// keyStep sets a rotation step's options: one transaction of a batch (or
// the key's creation, a KMS call included) finishes well within 30 s.
func keyStep(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy:            keyDatabaseRetry,
	})
}

// KeyRotation replaces a tenant's data key without downtime: it makes a
// new version active for new writes, waits until every process seals
// with it, re-encrypts every sealed column in batches, and retires the old
// versions once no value uses them. Reads open values of any version
// throughout. Every step is idempotent, so a crashed worker resumes where
// the history says it was.
func KeyRotation(ctx workflow.Context, in KeyRotationInput) (KeyRotationResult, error) {
	r := &keyRotation{in: in}
	res := KeyRotationResult{TenantID: in.TenantID}

	begun, err := r.begin(ctx)
	if err != nil {
		return res, err
	}
	res.Version = begun.Version
	workflow.GetLogger(ctx).Info("key version active", "tenantID", in.TenantID, "version", begun.Version, "old", begun.Old)

	if in.Settle > 0 {
		if err := workflow.Sleep(ctx, in.Settle); err != nil {
			return res, err
		}
	}

	for pass := 1; ; pass++ {
		n, err := r.reencryptAll(ctx, begun)
		res.Reencrypted += n
		if err != nil {
			return res, err
		}

		retired, err := r.retire(ctx, begun.Version)
		if err != nil {
			return res, err
		}
		if retired.Remaining == 0 {
			res.Retired = retired.Retired
			break
		}
		if pass == keyRetirePasses {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%d values still use old key versions after %d passes", retired.Remaining, pass), ErrTypeInvalidState, nil)
		}
	}
	workflow.GetLogger(ctx).Info("key rotation done", "tenantID", in.TenantID, "version", res.Version,
		"retired", res.Retired, "reencrypted", res.Reencrypted)
	return res, nil
}

type keyRotation struct {
	in KeyRotationInput
}

// begin makes the new version active.
func (r *keyRotation) begin(ctx workflow.Context) (KeyRotationBegun, error) {
	var out KeyRotationBegun
	err := workflow.ExecuteActivity(keyStep(ctx), ActivityKeyRotationBegin, KeyRotationBeginRequest{
		TenantID:   r.in.TenantID,
		RotationID: workflow.GetInfo(ctx).WorkflowExecution.RunID,
	}).Get(ctx, &out)
	if err != nil {
		return out, fmt.Errorf("begin key rotation: %w", err)
	}
	return out, nil
}

// reencryptAll re-seals every column, a batch at a time, until a batch
// finds nothing left.
func (r *keyRotation) reencryptAll(ctx workflow.Context, begun KeyRotationBegun) (int, error) {
	limit := r.in.BatchSize
	if limit <= 0 {
		limit = keyBatch
	}
	total := 0
	for _, col := range begun.Columns {
		for {
			var out KeyReencrypted
			err := workflow.ExecuteActivity(keyStep(ctx), ActivityKeyReencrypt, KeyReencryptRequest{
				TenantID: r.in.TenantID,
				Column:   col,
				Version:  begun.Version,
				Limit:    limit,
			}).Get(ctx, &out)
			if err != nil {
				return total, fmt.Errorf("re-encrypt %s: %w", col, err)
			}
			total += out.Done
			if out.Done == 0 {
				break
			}
		}
	}
	return total, nil
}

// retire retires the old versions if nothing uses them.
func (r *keyRotation) retire(ctx workflow.Context, version uint32) (KeyRetired, error) {
	var out KeyRetired
	err := workflow.ExecuteActivity(keyStep(ctx), ActivityKeyRetire, KeyRetireRequest{
		TenantID: r.in.TenantID,
		Version:  version,
	}).Get(ctx, &out)
	if err != nil {
		return out, fmt.Errorf("retire old keys: %w", err)
	}
	return out, nil
}
