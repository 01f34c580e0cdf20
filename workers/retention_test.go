package workers_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"
	"gorm.io/gorm"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/models/modelstest"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/objstore/versitygw"
	"github.com/carebook/carebook/workers"
	"github.com/carebook/carebook/workflows"
)

var retentionKey = []byte("retention-test-key-retention-key")

// The nightly Schedule exists after a worker start, and a run it starts
// (triggered here, with the activities' clock 100 days on) prunes what has
// expired, keeps what has not, archives the old audit log so that it
// still verifies, and anchors the head.
func TestRetentionScheduleRunPrunesAndArchives(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := modelstest.New(t)
	admin, err := models.Open(db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	app, err := models.Open(db.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	n, err := demo.Seed(ctx, admin, demo.Options{Slug: "ret", Name: "Ret", Now: time.Now(),
		HashPassword: func(string) (string, error) { return "x", nil }})
	if err != nil {
		t.Fatal(err)
	}
	tenant := n.Tenant.ID
	dir := t.TempDir()
	gw, err := versitygw.Start(ctx, dir)
	if err != nil {
		t.Fatalf("needs versitygw: %v", err)
	}
	t.Cleanup(gw.Stop)
	store, err := objstore.New(objstore.Config{Endpoint: gw.Endpoint, Region: gw.Region, Bucket: "retention",
		AccessKey: gw.AccessKey, SecretKey: gw.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	prefix := "retention-test-" + uuid.NewString() + ":"
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})

	base := time.Now().UTC().Truncate(time.Microsecond)
	clock := base.AddDate(0, 0, 100)
	day := 24 * time.Hour
	inTenant := func(fn func(tx *gorm.DB) error) {
		t.Helper()
		if err := models.InTenant(ctx, app, tenant, fn); err != nil {
			t.Fatal(err)
		}
	}
	// Outbox: sent long ago (goes), sent yesterday by the clock (stays),
	// never sent (stays: the sender's backlog).
	sentOld, sentNew := base.Add(-day), clock.Add(-day)
	outbox := map[string]*time.Time{"sent-old": &sentOld, "sent-recent": &sentNew, "unsent": nil}
	inTenant(func(tx *gorm.DB) error {
		for dedupe, sent := range outbox {
			if err := models.Enqueue(tx, models.Notification{TenantID: tenant, DedupeKey: dedupe, RecipientUser: nil,
				Channel: models.ChannelSMS, Template: "t", Payload: []byte("{}"), CreatedAt: base.Add(-2 * day), SentAt: sent}); err != nil {
				return err
			}
		}
		for k, at := range map[string]time.Time{"idem-old": base, "idem-recent": clock.Add(-time.Hour)} {
			if err := tx.Create(&models.IdempotencyKey{TenantID: tenant, UserID: uuid.New(), Key: k, RequestHash: "h", CreatedAt: at}).Error; err != nil {
				return err
			}
		}
		// Three events now (100 days old by the clock) and one at the clock.
		for _, at := range []time.Time{base, base, base, clock.Add(-time.Hour)} {
			if err := audit.Append(tx, retentionKey, &models.AuditEvent{TenantID: tenant, At: at, ActorRole: "admin", Action: "read", ResourceType: "x"}); err != nil {
				return err
			}
		}
		return nil
	})
	// Sessions: one user's list names a live session and an expired one.
	owner := uuid.New()
	list := prefix + "user-sessions:" + owner.String()
	if err := rdb.Set(ctx, prefix+"session:live", "{}", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SAdd(ctx, list, "live", "expired").Err(); err != nil {
		t.Fatal(err)
	}

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	policy := activities.DefaultRetentionPolicy
	policy.SegmentEvents = 2
	ts.NewWorker(workflows.RetentionTaskQueue, func(r worker.Registry) {
		workers.RegisterRetention(r, workers.Deps{Retention: &activities.Retention{DB: app, Store: store, Redis: rdb, RedisPrefix: prefix,
			AuditKey: retentionKey, Policy: policy, Now: func() time.Time { return clock }}})
	})
	c := ts.GetDefaultClient()
	for range 2 { // every worker start ensures it
		if err := workers.EnsureRetentionSchedule(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	h := c.ScheduleClient().GetHandle(ctx, workflows.RetentionScheduleID)
	desc, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction); !ok || action.Workflow != workflows.RetentionWorkflowType ||
		action.TaskQueue != workflows.RetentionTaskQueue {
		t.Fatalf("action %+v", desc.Schedule.Action)
	}
	if cal := desc.Schedule.Spec.Calendars; len(cal) != 1 || cal[0].Hour[0].Start != 3 {
		t.Fatalf("spec %+v", desc.Schedule.Spec)
	}

	if err := workers.TriggerRetention(ctx, c); err != nil {
		t.Fatal(err)
	}
	var runID string
	for runID == "" {
		desc, err := h.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if a := desc.Info.RecentActions; len(a) > 0 {
			runID = a[0].StartWorkflowResult.WorkflowID
		} else if ctx.Err() != nil {
			t.Fatal("the triggered run never started")
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	var res workflows.RetentionResult
	if err := c.GetWorkflow(ctx, runID, "").Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Tenants) != 1 || res.Tenants[0].ArchivedEvents != 3 || res.Tenants[0].AnchoredSeq != 4 ||
		res.Tenants[0].Prune != (workflows.PruneResult{Outbox: 1, Idempotency: 1}) || res.SessionsRemoved != 1 {
		t.Fatalf("result %+v", res)
	}

	var left []string
	if err := admin.Model(&models.Notification{}).Where("tenant_id = ?", tenant).Order("dedupe_key").Pluck("dedupe_key", &left).Error; err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0] != "sent-recent" || left[1] != "unsent" {
		t.Errorf("outbox left %q", left)
	}
	var keys []string
	if err := admin.Model(&models.IdempotencyKey{}).Where("tenant_id = ?", tenant).Pluck("key", &keys).Error; err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "idem-recent" {
		t.Errorf("idempotency keys left %q", keys)
	}
	if got, err := rdb.SMembers(ctx, list).Result(); err != nil || len(got) != 1 || got[0] != "live" {
		t.Errorf("session list %q %v", got, err)
	}
	var online int64
	if err := admin.Model(&models.AuditEvent{}).Where("tenant_id = ?", tenant).Count(&online).Error; err != nil || online != 1 {
		t.Errorf("online audit events %d %v", online, err)
	}
	rep, err := audit.Verify(ctx, app, retentionKey, tenant, audit.WithArchive(store))
	if err != nil || !rep.OK() || rep.Archived != 3 || rep.Segments != 2 || rep.Anchored != 4 {
		t.Fatalf("verify after the run: %+v %v", rep, err)
	}
}
