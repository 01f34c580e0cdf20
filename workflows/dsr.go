package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// dsrRetry is for the steps of a data subject request: Postgres, Redis and
// object-store calls that either succeed on a retry or fail for good with
// a typed error. Nobody waits on them interactively (the api answers 202
// and the requester polls), so back off to a minute; dsrStep gives up
// after a day, which leaves the request failed and the workflow visible in
// the Temporal UI for an operator.
var dsrRetry = &temporal.RetryPolicy{
	InitialInterval:        500 * time.Millisecond,
	BackoffCoefficient:     2,
	MaximumInterval:        time.Minute,
	NonRetryableErrorTypes: []string{ErrTypeNotFound, ErrTypeDSRLegalHold},
}

// dsrStep allows each attempt five minutes: an export reads every record
// and PDF of a patient and writes one archive, which takes seconds for a
// patient with years of history; the activity heartbeats while it works.
func dsrStep(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    5 * time.Minute,
		HeartbeatTimeout:       time.Minute,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy:            dsrRetry,
	})
}

// DSRExport gathers everything Carebook holds about a patient into one
// machine-readable archive in the object store, then marks the request
// completed so the api hands out a short-lived link to it.
func DSRExport(ctx workflow.Context, in DSRInput) (DSRResult, error) {
	step := dsrStep(ctx)

	var started DSRStarted
	if err := workflow.ExecuteActivity(step, ActivityDSRStart, in).Get(ctx, &started); err != nil {
		return dsrFail(ctx, in, err)
	}
	if started.Done {
		return DSRResult{Status: "completed"}, nil
	}

	var out DSRExported
	if err := workflow.ExecuteActivity(step, ActivityDSRBuildExport, in).Get(ctx, &out); err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == ErrTypeDSRPatientErased {
			return dsrRefuseFor(ctx, in, "patient-erased")
		}
		return dsrFail(ctx, in, err)
	}
	workflow.GetLogger(ctx).Info("export archived", "requestID", in.RequestID, "files", out.Files)

	done := DSRFinishRequest{TenantID: in.TenantID, RequestID: in.RequestID, Status: "completed", ArchiveKey: out.ArchiveKey}
	if err := workflow.ExecuteActivity(step, ActivityDSRFinish, done).Get(ctx, nil); err != nil {
		return DSRResult{}, err
	}
	return DSRResult{Status: "completed", ArchiveKey: out.ArchiveKey}, nil
}

// DSRErasure erases a patient within the law: it deletes the files in the
// object store that carry their name or identifiers; in one transaction
// deletes their identifiers and contact details, disables their account
// and puts a pseudonym on what retention keeps; then ends their sessions. A legal hold, checked at the
// start and again inside the last transaction, refuses it. Every step is
// idempotent, so a second erasure of the same patient changes nothing
// that the first left.
func DSRErasure(ctx workflow.Context, in DSRInput) (DSRResult, error) {
	step := dsrStep(ctx)

	var started DSRStarted
	if err := workflow.ExecuteActivity(step, ActivityDSRStart, in).Get(ctx, &started); err != nil {
		return dsrFail(ctx, in, err)
	}
	if started.Done {
		return DSRResult{Status: "completed"}, nil
	}
	if started.Held {
		return dsrRefuse(ctx, in)
	}

	var res DSRResult
	if err := workflow.ExecuteActivity(step, ActivityDSREraseObjects, in).Get(ctx, &res.Erased.Objects); err != nil {
		return dsrFail(ctx, in, err)
	}

	err := workflow.ExecuteActivity(step, ActivityDSREraseRecords, in).Get(ctx, &res.Erased.Rows)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == ErrTypeDSRLegalHold {
		return dsrRefuse(ctx, in)
	}
	if err != nil {
		return dsrFail(ctx, in, err)
	}

	// After the account's e-mail and password are gone, so that nobody
	// signs in again between the two.
	if err := workflow.ExecuteActivity(step, ActivityDSREraseSessions, in).Get(ctx, &res.Erased.Sessions); err != nil {
		return dsrFail(ctx, in, err)
	}
	workflow.GetLogger(ctx).Info("patient erased", "requestID", in.RequestID,
		"objects", res.Erased.Objects, "sessions", res.Erased.Sessions, "rows", res.Erased.Rows)

	done := DSRFinishRequest{TenantID: in.TenantID, RequestID: in.RequestID, Status: "completed"}
	if err := workflow.ExecuteActivity(step, ActivityDSRFinish, done).Get(ctx, nil); err != nil {
		return res, err
	}
	res.Status = "completed"
	return res, nil
}

// dsrRefuse records that a legal hold stopped the erasure.
func dsrRefuse(ctx workflow.Context, in DSRInput) (DSRResult, error) {
	return dsrRefuseFor(ctx, in, "legal-hold")
}

// dsrRefuseFor records a refusal with its outcome: legal-hold (an erasure)
// or patient-erased (an export).
func dsrRefuseFor(ctx workflow.Context, in DSRInput, outcome string) (DSRResult, error) {
	workflow.GetLogger(ctx).Info("request refused", "requestID", in.RequestID, "outcome", outcome)
	refused := DSRFinishRequest{TenantID: in.TenantID, RequestID: in.RequestID, Status: "refused", Outcome: outcome}
	if err := workflow.ExecuteActivity(dsrStep(ctx), ActivityDSRFinish, refused).Get(ctx, nil); err != nil {
		return DSRResult{}, err
	}
	return DSRResult{Status: "refused", Outcome: outcome}, nil
}

// dsrFail marks the request failed after a step gave up, so the requester
// sees it, and fails the workflow with the step's error for the operator.
func dsrFail(ctx workflow.Context, in DSRInput, cause error) (DSRResult, error) {
	failed := DSRFinishRequest{TenantID: in.TenantID, RequestID: in.RequestID, Status: "failed", Outcome: "step-failed"}
	if err := workflow.ExecuteActivity(dsrStep(ctx), ActivityDSRFinish, failed).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("request not marked failed", "requestID", in.RequestID, "error", err)
	}
	return DSRResult{Status: "failed"}, cause
}
