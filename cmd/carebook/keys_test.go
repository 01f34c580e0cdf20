package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/models/modelstest"
)

// TestKeysRewrapReplacesTheKEK runs `carebook keys rewrap` the way an
// operator replacing the KEK does: with the old KEK missing it stops and
// changes nothing; with it in CAREBOOK_PREVIOUS_KEKS every tenant's keys
// move to the new KEK, each tenant's audit log says so and still
// verifies, and a second run has nothing to do.
func TestKeysRewrapReplacesTheKEK(t *testing.T) {
	db := modelstest.New(t)
	admin, err := models.Open(db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	oldKEK, newKEK := bytes.Repeat([]byte{4}, 32), bytes.Repeat([]byte{5}, 32)
	old, err := keyring.NewLocalKEK(oldKEK)
	if err != nil {
		t.Fatal(err)
	}
	hash := func(string) (string, error) { return "not-a-real-hash", nil }
	net, err := demo.Seed(ctx, admin, demo.Options{Slug: "demo", Name: "Demo", Now: time.Now(), HashPassword: hash, Keys: keyring.New(admin, old)})
	if err != nil {
		t.Fatal(err)
	}
	auditKey := bytes.Repeat([]byte{6}, 32)
	cfg := Config{AdminDatabaseURL: db.AdminDSN, KEK: newKEK, AuditKey: auditKey}
	underOld := func() int64 {
		var n int64
		if err := admin.Raw(`SELECT count(*) FROM tenant_keys WHERE kek_id = ?`, old.ID()).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := underOld()
	if before == 0 {
		t.Fatal("the seed wrapped no keys")
	}

	var out bytes.Buffer
	if err := rewrapKeys(ctx, cfg, &out); !errors.Is(err, keyring.ErrWrongKEK) {
		t.Fatalf("rewrap without the old KEK: %v", err)
	}
	if underOld() != before {
		t.Fatal("a failed rewrap changed keys")
	}

	cfg.PreviousKEKs = [][]byte{oldKEK}
	out.Reset()
	if err := rewrapKeys(commandContext(ctx, "keys"), cfg, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "demo: ") || !strings.Contains(out.String(), "keys rewrapped from "+old.ID()) {
		t.Fatalf("rewrap printed %q", out.String())
	}
	if n := underOld(); n != 0 {
		t.Fatalf("%d keys still under the old KEK", n)
	}
	var events int64
	if err := admin.Raw(`SELECT count(*) FROM audit_events WHERE tenant_id = ? AND action = 'kek-rewrap' AND request_id LIKE 'cli-%'`, net.Tenant.ID).Scan(&events).Error; err != nil {
		t.Fatal(err)
	}
	if events != 1 {
		t.Fatalf("%d kek-rewrap audit events naming the command's request ID", events)
	}
	if rep, err := audit.Verify(ctx, admin, auditKey, net.Tenant.ID); err != nil || !rep.OK() {
		t.Fatalf("audit chain after the rewrap: %+v, %v", rep, err)
	}
	// The new KEK alone now opens the national IDs the seed sealed.
	cur, err := keyring.NewLocalKEK(newKEK)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.New(admin, cur).Index(ctx, net.Tenant.ID, keyring.PurposeNationalID, "10000000146"); err != nil {
		t.Fatalf("the new KEK alone: %v", err)
	}

	out.Reset()
	if err := rewrapKeys(ctx, cfg, &out); err != nil || !strings.Contains(out.String(), "already wrapped by") {
		t.Fatalf("second rewrap: %q, %v", out.String(), err)
	}
}
