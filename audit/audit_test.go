package audit_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/models/modelstest"
)

// key is the audit key of these tests.
var key = []byte("audit-test-key-audit-test-key-!!")

type fixture struct {
	admin, app *gorm.DB
	a, b       demo.Network
}

func setup(t *testing.T) fixture {
	t.Helper()
	db := modelstest.New(t)
	admin, err := models.Open(db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	app, err := models.Open(db.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	hash := func(string) (string, error) { return "not-a-real-hash", nil }
	f := fixture{admin: admin, app: app}
	ctx := context.Background()
	if f.a, err = demo.Seed(ctx, admin, demo.Options{Slug: "alpha", Name: "Alpha", Now: time.Now(), HashPassword: hash}); err != nil {
		t.Fatal(err)
	}
	if f.b, err = demo.Seed(ctx, admin, demo.Options{Slug: "bravo", Name: "Bravo", Now: time.Now(), HashPassword: hash}); err != nil {
		t.Fatal(err)
	}
	return f
}

// appendN records n reads of a patient's record in the tenant, each in
// its own transaction as the api does, and returns their IDs in order.
func (f fixture) appendN(t *testing.T, n demo.Network, count int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	patient := n.Patients[0].ID
	for i := 0; i < count; i++ {
		e := models.AuditEvent{TenantID: n.Tenant.ID, ActorRole: "doctor", Action: "read", ResourceType: "lab_report",
			ResourceID: &patient, PatientID: &patient, ClientAddr: "127.0.0.1", RequestID: "req"}
		err := models.InTenant(context.Background(), f.app, n.Tenant.ID, func(tx *gorm.DB) error { return audit.Append(tx, key, &e) })
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

func (f fixture) verify(t *testing.T, n demo.Network) audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), f.app, key, n.Tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func wantBreak(t *testing.T, rep audit.Report, seq int64, words string) {
	t.Helper()
	for _, b := range rep.Breaks {
		if b.Seq == seq && strings.Contains(b.Why, words) {
			return
		}
	}
	t.Fatalf("no break at event %d mentioning %q: %+v", seq, words, rep.Breaks)
}

func TestChainHoldsPerTenant(t *testing.T) {
	f := setup(t)
	f.appendN(t, f.a, 5)
	f.appendN(t, f.b, 3)
	for _, tc := range []struct {
		n    demo.Network
		want int64
	}{{f.a, 5}, {f.b, 3}} {
		rep := f.verify(t, tc.n)
		if !rep.OK() || rep.Events != tc.want || rep.Head != tc.want {
			t.Fatalf("%s: %+v", tc.n.Tenant.Slug, rep)
		}
	}
}

// Concurrent appends in one tenant still form one chain without gaps.
func TestConcurrentAppendsChainInOrder(t *testing.T) {
	f := setup(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.appendN(t, f.a, 5)
		}()
	}
	wg.Wait()
	if rep := f.verify(t, f.a); !rep.OK() || rep.Events != 40 {
		t.Fatalf("%+v", rep)
	}
}

// The application role may add events, never change or remove them.
func TestAppRoleCannotRewriteTheLog(t *testing.T) {
	f := setup(t)
	ids := f.appendN(t, f.a, 2)
	for _, stmt := range []string{
		"UPDATE audit_events SET reason = 'x' WHERE id = ?",
		"DELETE FROM audit_events WHERE id = ?",
	} {
		err := models.InTenant(context.Background(), f.app, f.a.Tenant.ID, func(tx *gorm.DB) error {
			return tx.Exec(stmt, ids[0]).Error
		})
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// Tampering done with the owner's connection, which row security and
// grants do not stop, is found by Verify: an edited field, a removed
// event, a removed tail, a swapped pair. The other tenant's chain is
// untouched.
func TestVerifyFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(f fixture, ids []uuid.UUID) error
		seq    int64
		words  string
	}{
		{"edited reason", func(f fixture, ids []uuid.UUID) error {
			return f.admin.Exec("UPDATE audit_events SET reason = 'nothing to see' WHERE id = ?", ids[2]).Error
		}, 3, "changed"},
		{"edited time", func(f fixture, ids []uuid.UUID) error {
			return f.admin.Exec("UPDATE audit_events SET at = at - interval '1 day' WHERE id = ?", ids[1]).Error
		}, 2, "changed"},
		{"edited actor and hash recomputed without the next link", func(f fixture, ids []uuid.UUID) error {
			var e models.AuditEvent
			if err := f.admin.Where("id = ?", ids[1]).Take(&e).Error; err != nil {
				return err
			}
			e.ActorRole = "admin"
			return f.admin.Exec("UPDATE audit_events SET actor_role = 'admin', hash = ? WHERE id = ?", audit.Hash(key, e), ids[1]).Error
		}, 3, "prev_hash"},
		{"edited and the whole chain and head recomputed without the key", func(f fixture, ids []uuid.UUID) error {
			// What a superuser who knows the scheme but not the key can do.
			forged := []byte("a-guess-at-the-key-a-guess-at-it")
			if err := f.admin.Exec("UPDATE audit_events SET client_addr = '10.0.0.9' WHERE id = ?", ids[2]).Error; err != nil {
				return err
			}
			var rows []models.AuditEvent
			if err := f.admin.Where("tenant_id = ?", f.a.Tenant.ID).Order("seq").Find(&rows).Error; err != nil {
				return err
			}
			prev := []byte{}
			for _, e := range rows {
				e.PrevHash = prev
				e.Hash = audit.Hash(forged, e)
				if err := f.admin.Exec("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?", e.PrevHash, e.Hash, e.ID).Error; err != nil {
					return err
				}
				prev = e.Hash
			}
			return f.admin.Exec("UPDATE audit_heads SET hash = ? WHERE tenant_id = ?", prev, f.a.Tenant.ID).Error
		}, 1, "changed"},
		{"removed event", func(f fixture, ids []uuid.UUID) error {
			return f.admin.Exec("DELETE FROM audit_events WHERE id = ?", ids[2]).Error
		}, 4, "missing"},
		{"removed tail", func(f fixture, ids []uuid.UUID) error {
			return f.admin.Exec("DELETE FROM audit_events WHERE id = ?", ids[4]).Error
		}, 5, "removed from the end"},
		{"swapped pair", func(f fixture, ids []uuid.UUID) error {
			return f.admin.Transaction(func(tx *gorm.DB) error {
				if err := tx.Exec("UPDATE audit_events SET seq = seq + 1000 WHERE id IN ?", ids[1:3]).Error; err != nil {
					return err
				}
				return tx.Exec("UPDATE audit_events SET seq = CASE WHEN id = ? THEN 3 ELSE 2 END WHERE id IN ?", ids[1], ids[1:3]).Error
			})
		}, 2, "prev_hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t)
			ids := f.appendN(t, f.a, 5)
			f.appendN(t, f.b, 2)
			if rep := f.verify(t, f.a); !rep.OK() {
				t.Fatalf("before tampering: %+v", rep)
			}
			if err := tc.tamper(f, ids); err != nil {
				t.Fatal(err)
			}
			rep := f.verify(t, f.a)
			if rep.OK() {
				t.Fatal("tampering not found")
			}
			wantBreak(t, rep, tc.seq, tc.words)
			for _, b := range rep.Breaks {
				if strings.Contains(b.Why, "nothing to see") {
					t.Fatal("a break quotes a value")
				}
			}
			if rep := f.verify(t, f.b); !rep.OK() {
				t.Fatalf("the other tenant's chain: %+v", rep)
			}
		})
	}
}
