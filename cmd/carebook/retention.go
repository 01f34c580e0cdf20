package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/workers"
	"github.com/carebook/carebook/workflows"
)

// newRetention builds the retention activities from the configuration.
func newRetention(cfg Config, db *gorm.DB, store *objstore.Store, rdb *redis.Client) *activities.Retention {
	policy := activities.DefaultRetentionPolicy
	policy.OutboxAge = time.Duration(cfg.Retention.OutboxDays) * 24 * time.Hour
	policy.IdempotencyAge = time.Duration(cfg.Retention.IdempotencyHours) * time.Hour
	policy.AuditOnline = time.Duration(cfg.Retention.AuditOnlineDays) * 24 * time.Hour
	return &activities.Retention{DB: db, Store: store, Redis: rdb, RedisPrefix: cfg.RedisPrefix, AuditKey: cfg.AuditKey, Policy: policy}
}

// runRetention is `carebook retention run`: it triggers the retention
// Schedule, so the run starts now on the workers and shows in the
// Temporal UI like a nightly one, and prints the run's workflow ID prefix.
// A worker must have started once, which creates the Schedule.
func runRetention(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if len(os.Args) < 3 || os.Args[2] != "run" {
		return errors.New("usage: carebook retention run")
	}
	tc, err := dialTemporal(ctx, cfg.TemporalAddress, cfg.TemporalNamespace, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := workers.TriggerRetention(ctx, tc); err != nil {
		return fmt.Errorf("trigger the retention schedule (has a worker started?): %w", err)
	}
	fmt.Printf("retention run started by schedule %q; its workflow ID starts with %q\n", workflows.RetentionScheduleID, workflows.RetentionScheduleID+"-")
	return nil
}
