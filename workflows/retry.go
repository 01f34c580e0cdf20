package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// databaseRetry is for activities that only talk to Postgres. A failover or
// a restarted pooler is over in seconds, so back off quickly to a 10 s
// ceiling and keep trying; constraint refusals and wrong states come back as
// non-retryable application errors and end the retries at once.
var databaseRetry = &temporal.RetryPolicy{
	InitialInterval:    200 * time.Millisecond,
	BackoffCoefficient: 2,
	MaximumInterval:    10 * time.Second,
	NonRetryableErrorTypes: []string{
		ErrTypeSlotTaken,
		ErrTypeInvalidState,
		ErrTypeNotFound,
		ErrTypeCheckInWindow,
		ErrTypeVersionChanged,
	},
}

// interactiveRetry is databaseRetry for steps a person is waiting on (the
// api answers a booking from it): five attempts, about six seconds in all,
// so a broken database becomes a clear "try again" instead of a hung
// request.
var interactiveRetry = &temporal.RetryPolicy{
	InitialInterval:        databaseRetry.InitialInterval,
	BackoffCoefficient:     databaseRetry.BackoffCoefficient,
	MaximumInterval:        2 * time.Second,
	MaximumAttempts:        5,
	NonRetryableErrorTypes: databaseRetry.NonRetryableErrorTypes,
}

// databaseStep sets the options of a short database activity: one statement
// or transaction, so 10 s to finish is generous and a stuck attempt is
// abandoned and retried rather than waited on.
func databaseStep(ctx workflow.Context, policy *temporal.RetryPolicy) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         policy,
	})
}
