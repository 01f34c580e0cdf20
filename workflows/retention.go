package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// retentionRetry is for every retention step. Nobody waits on the nightly
// run, so back off to a minute apart and keep trying for the half hour
// retentionStep allows; a database or store down for longer is made up by
// the next night's run, which starts where this one stopped. A tampered
// log is final.
var retentionRetry = &temporal.RetryPolicy{
	InitialInterval:        time.Second,
	BackoffCoefficient:     2,
	MaximumInterval:        time.Minute,
	NonRetryableErrorTypes: []string{ErrTypeAuditChainBroken, ErrTypeNotFound},
}

// retentionStep sets a retention step's options. A step is one bounded
// batch (a few thousand rows, one segment, one page of Redis keys), so two
// minutes per attempt is generous.
func retentionStep(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy:            retentionRetry,
	})
}

// retentionPurgeStep sets the options of the steps that delete patients'
// kept records and export archives: each call works through a page of
// patients or requests, deleting objects in the store one by one, so it
// heartbeats after each, and a worker that dies mid-page is noticed within
// a minute and the page retried (every deletion is idempotent).
func retentionPurgeStep(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    5 * time.Minute,
		HeartbeatTimeout:       time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy:            retentionRetry,
	})
}

// maxPurgePages bounds the pages of erased patients (and of expired
// exports) one tenant's run walks, for the same reason as
// maxSegmentsPerRun; what is left is done the next night.
const maxPurgePages = 100

// maxSegmentsPerRun bounds the archive steps of one tenant in one run,
// which keeps the run's history small; a backlog larger than this (the
// first run over years of log) is worked off over the following nights.
const maxSegmentsPerRun = 50

// maxSessionPages bounds the Redis scan of one run for the same reason.
const maxSessionPages = 500

// Retention keeps the database lean: in each tenant it deletes sent
// notifications and spent Idempotency-Key answers past their retention,
// deletes export archives past their lifetime, deletes what erasures kept
// of patients whose retention has run out (unless a legal hold keeps it),
// moves audit events past the online period to the object store, and
// anchors the audit head outside the database; then it removes ended
// sessions from the users' session lists in Redis. Every step is
// idempotent and starts from what the database says, so a run that fails
// part way is finished by the next one. A tenant that fails does not stop
// the others; the run fails at the end, naming them.
func Retention(ctx workflow.Context, in RetentionInput) (RetentionResult, error) {
	r := &retention{ctx: retentionStep(ctx)}
	var res RetentionResult

	tenants := in.Tenants
	if len(tenants) == 0 {
		if err := workflow.ExecuteActivity(r.ctx, ActivityRetentionTenants).Get(ctx, &tenants); err != nil {
			return res, fmt.Errorf("list tenants: %w", err)
		}
	}

	var failed []string
	for _, t := range tenants {
		tr := r.tenant(t)
		if tr.Err != "" {
			failed = append(failed, t)
		}
		res.Tenants = append(res.Tenants, tr)
	}

	removed, err := r.sessions()
	res.SessionsRemoved = removed
	if err != nil {
		return res, err
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("retention failed in tenants %s", strings.Join(failed, ", "))
	}
	return res, nil
}

type retention struct {
	ctx workflow.Context
}

// tenant runs one tenant's steps: prune, expire exports, purge erased
// patients past retention, archive, anchor. The purge comes before the
// archive so that its audit events are in the head the run anchors; the
// anchor comes last so that it records the head the archive was checked
// against. A failed expiry or purge is reported and the archive still
// runs.
func (r *retention) tenant(id string) TenantRetention {
	out := TenantRetention{TenantID: id}
	req := RetentionTenantRequest{TenantID: id}

	if err := workflow.ExecuteActivity(r.ctx, ActivityPruneTenant, req).Get(r.ctx, &out.Prune); err != nil {
		out.Err = "prune: " + err.Error()
		return out
	}

	if err := r.expireExports(req, &out); err != nil {
		out.Err = "expire exports: " + err.Error()
	}

	if err := r.purgeErased(id, &out.Purge); err != nil && out.Err == "" {
		out.Err = "purge erased patients: " + err.Error()
	}

	for range maxSegmentsPerRun {
		var a ArchiveResult
		if err := workflow.ExecuteActivity(r.ctx, ActivityArchiveAuditSegment, req).Get(r.ctx, &a); err != nil {
			out.Err = "archive audit: " + err.Error()
			break
		}
		if a.FirstSeq > 0 {
			out.ArchivedEvents += a.LastSeq - a.FirstSeq + 1
			out.ArchivedThrough = a.LastSeq
		}
		if !a.More {
			break
		}
	}

	var anchor AnchorResult
	if err := workflow.ExecuteActivity(r.ctx, ActivityAnchorAuditHead, req).Get(r.ctx, &anchor); err != nil && out.Err == "" {
		out.Err = "anchor audit head: " + err.Error()
	}
	out.AnchoredSeq = anchor.Seq
	workflow.GetLogger(r.ctx).Info("retention tenant done", "tenantID", id, "outbox", out.Prune.Outbox,
		"idempotency", out.Prune.Idempotency, "archived", out.ArchivedEvents, "anchored", out.AnchoredSeq,
		"expiredExports", out.ExpiredExports, "purged", out.Purge.Purged, "held", out.Purge.Held)
	return out
}

// expireExports deletes the tenant's export archives past their lifetime,
// a page at a time.
func (r *retention) expireExports(req RetentionTenantRequest, out *TenantRetention) error {
	ctx := retentionPurgeStep(r.ctx)
	for range maxPurgePages {
		var page ExpireResult
		if err := workflow.ExecuteActivity(ctx, ActivityExpireExports, req).Get(ctx, &page); err != nil {
			return err
		}
		out.ExpiredExports += page.Expired
		if !page.More {
			break
		}
	}
	return nil
}

// purgeErased walks the tenant's erased patients not yet purged, a page at
// a time, and deletes what their erasure kept once retention has run out
// and no legal hold stands.
func (r *retention) purgeErased(tenant string, total *PurgeResult) error {
	ctx := retentionPurgeStep(r.ctx)
	req := PurgeErasedRequest{TenantID: tenant}
	for range maxPurgePages {
		var page PurgeResult
		if err := workflow.ExecuteActivity(ctx, ActivityPurgeErased, req).Get(ctx, &page); err != nil {
			return err
		}
		total.Purged += page.Purged
		total.Kept += page.Kept
		total.Held += page.Held
		total.Rows += page.Rows
		if !page.More {
			break
		}
		req.After = page.After
	}
	return nil
}

// sessions scans every user's session list once.
func (r *retention) sessions() (int, error) {
	removed := 0
	req := PruneSessionsRequest{}
	for range maxSessionPages {
		var page PruneSessionsResult
		if err := workflow.ExecuteActivity(r.ctx, ActivityPruneSessions, req).Get(r.ctx, &page); err != nil {
			return removed, fmt.Errorf("prune sessions: %w", err)
		}
		removed += page.Removed
		if page.Cursor == 0 {
			break
		}
		req.Cursor = page.Cursor
	}
	return removed, nil
}
