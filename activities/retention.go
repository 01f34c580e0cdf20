package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/temporal"
	"gorm.io/gorm"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/internal/sessionkeys"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/workflows"
)

// RetentionPolicy says how long what is kept.
type RetentionPolicy struct {
	// OutboxAge is how long a sent notification stays in the outbox after
	// it was sent: long enough to answer "did the patient get the
	// reminder?", the only question the row answers.
	OutboxAge time.Duration
	// IdempotencyAge is how long an Idempotency-Key answer is kept for
	// replay. Clients retry within minutes; a day covers a phone that was
	// offline overnight.
	IdempotencyAge time.Duration
	// AuditOnline is how long audit events stay in Postgres, where the api
	// can search them, before they move to the object store.
	AuditOnline time.Duration
	// SegmentEvents is the most events one archived segment holds.
	SegmentEvents int
}

// DefaultRetentionPolicy is the policy without configuration.
var DefaultRetentionPolicy = RetentionPolicy{
	OutboxAge:      30 * 24 * time.Hour,
	IdempotencyAge: 24 * time.Hour,
	AuditOnline:    90 * 24 * time.Hour,
	SegmentEvents:  10000,
}

// Retention runs the steps of the nightly retention run. Every step
// decides from what the database and Redis say now, so any step can run
// again, and a run that stopped part way is finished by the next.
type Retention struct {
	DB    *gorm.DB
	Store *objstore.Store
	// Redis and RedisPrefix are the api's session store and key prefix.
	Redis       *redis.Client
	RedisPrefix string
	AuditKey    []byte
	Policy      RetentionPolicy
	// Now is the clock ages are measured against; nil means time.Now.
	Now func() time.Time
}

func (r *Retention) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// pruneBatch is how many rows one delete statement removes, so a large
// backlog is deleted in short transactions that do not hold locks long.
const pruneBatch = 5000

// RetentionTenants lists every tenant's ID.
func (r *Retention) RetentionTenants(ctx context.Context) ([]string, error) {
	var ids []string
	if err := r.DB.WithContext(ctx).Model(&models.Tenant{}).Order("id").Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return ids, nil
}

func retentionTenant(id string) (uuid.UUID, error) {
	t, err := uuid.Parse(id)
	if err != nil {
		return t, temporal.NewNonRetryableApplicationError("tenant ID is not a UUID", workflows.ErrTypeNotFound, nil)
	}
	return t, nil
}

// PruneTenant deletes the tenant's sent notifications older than
// OutboxAge (unsent ones stay, however old: they are the sender's
// backlog) and its Idempotency-Key answers older than IdempotencyAge.
func (r *Retention) PruneTenant(ctx context.Context, req workflows.RetentionTenantRequest) (workflows.PruneResult, error) {
	var out workflows.PruneResult
	tenant, err := retentionTenant(req.TenantID)
	if err != nil {
		return out, err
	}
	now := r.now()
	for _, step := range []struct {
		sql  string
		arg  time.Time
		into *int64
	}{
		{`DELETE FROM notification_outbox WHERE id IN
		    (SELECT id FROM notification_outbox WHERE sent_at IS NOT NULL AND sent_at < ? LIMIT ?)`,
			now.Add(-r.Policy.OutboxAge), &out.Outbox},
		{`DELETE FROM idempotency_keys WHERE ctid IN
		    (SELECT ctid FROM idempotency_keys WHERE created_at < ? LIMIT ?)`,
			now.Add(-r.Policy.IdempotencyAge), &out.Idempotency},
	} {
		for {
			var n int64
			err := models.InTenant(ctx, r.DB, tenant, func(tx *gorm.DB) error {
				res := tx.Exec(step.sql, step.arg, pruneBatch)
				n = res.RowsAffected
				return res.Error
			})
			if err != nil {
				return out, fmt.Errorf("prune: %w", err)
			}
			*step.into += n
			if n < pruneBatch {
				break
			}
		}
	}
	return out, nil
}

// ArchiveAuditSegment moves the tenant's oldest audit events past
// AuditOnline, at most SegmentEvents of them, to one segment in the
// object store (see audit.ArchiveSegment). More says that a full segment
// was archived, so older events may be left.
func (r *Retention) ArchiveAuditSegment(ctx context.Context, req workflows.RetentionTenantRequest) (workflows.ArchiveResult, error) {
	var out workflows.ArchiveResult
	tenant, err := retentionTenant(req.TenantID)
	if err != nil {
		return out, err
	}
	if r.Store == nil {
		return out, errors.New("archive audit: no object store")
	}
	a, err := audit.ArchiveSegment(ctx, r.DB, r.Store, r.AuditKey, tenant, r.now().Add(-r.Policy.AuditOnline), r.Policy.SegmentEvents)
	if errors.Is(err, audit.ErrChainBroken) {
		return out, temporal.NewNonRetryableApplicationError("the audit events to archive do not form an unbroken chain; run carebook audit verify",
			workflows.ErrTypeAuditChainBroken, nil)
	}
	if err != nil {
		return out, err
	}
	out.FirstSeq, out.LastSeq, out.Deleted = a.FirstSeq, a.LastSeq, a.Deleted
	out.More = a.Segment != uuid.Nil && a.LastSeq-a.FirstSeq+1 >= int64(r.Policy.SegmentEvents)
	return out, nil
}

// AnchorAuditHead records the tenant's audit head in the object store
// (see audit.AnchorHead).
func (r *Retention) AnchorAuditHead(ctx context.Context, req workflows.RetentionTenantRequest) (workflows.AnchorResult, error) {
	tenant, err := retentionTenant(req.TenantID)
	if err != nil {
		return workflows.AnchorResult{}, err
	}
	if r.Store == nil {
		return workflows.AnchorResult{}, errors.New("anchor audit head: no object store")
	}
	a, err := audit.AnchorHead(ctx, r.DB, r.Store, r.AuditKey, tenant, r.now())
	return workflows.AnchorResult{Seq: a.Seq}, err
}

// sessionScanCount is the COUNT hint of one SCAN page.
const sessionScanCount = 500

// PruneSessions removes, from one page of users' session lists, the
// sessions whose keys Redis has expired. The lists are the api's
// (internal/sessionkeys: a user's set of session families, and each
// family's session). A list only ever
// grows while its user keeps signing in, because each sign-in renews its
// lifetime; this keeps it to the sessions that can still be used, which
// is what "log out everywhere" walks.
//
// Removing a family whose key is gone is safe against a racing sign-in:
// a new session gets a new family, and a session key never comes back
// once it has expired.
func (r *Retention) PruneSessions(ctx context.Context, req workflows.PruneSessionsRequest) (workflows.PruneSessionsResult, error) {
	var out workflows.PruneSessionsResult
	if r.Redis == nil {
		return out, nil
	}
	keys, cursor, err := r.Redis.Scan(ctx, req.Cursor, sessionkeys.UserSessionsPattern(r.RedisPrefix), sessionScanCount).Result()
	if err != nil {
		return out, fmt.Errorf("scan session lists: %w", err)
	}
	out.Cursor = cursor
	for _, list := range keys {
		out.Lists++
		families, err := r.Redis.SMembers(ctx, list).Result()
		if err != nil {
			return out, fmt.Errorf("read session list: %w", err)
		}
		if len(families) == 0 {
			continue
		}
		exists := make([]*redis.IntCmd, len(families))
		if _, err := r.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, f := range families {
				exists[i] = p.Exists(ctx, sessionkeys.Session(r.RedisPrefix, f))
			}
			return nil
		}); err != nil {
			return out, fmt.Errorf("check sessions: %w", err)
		}
		var gone []any
		for i, f := range families {
			if exists[i].Val() == 0 {
				gone = append(gone, f)
			}
		}
		if len(gone) == 0 {
			continue
		}
		n, err := r.Redis.SRem(ctx, list, gone...).Result()
		if err != nil {
			return out, fmt.Errorf("prune session list: %w", err)
		}
		out.Removed += int(n)
	}
	return out, nil
}
