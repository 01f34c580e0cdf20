package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/audit"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/objstore/versitygw"
)

// gw is the S3 gateway the archive tests store segments and anchors in.
var gw *versitygw.Server

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "audit-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Missing versitygw fails the package: the archive is only proven
	// against a real S3 server.
	if gw, err = versitygw.Start(context.Background(), dir); err != nil {
		fmt.Fprintf(os.Stderr, "audit tests need versitygw: %v\n", err)
		return 1
	}
	defer gw.Stop()
	return m.Run()
}

func newStore(t *testing.T) *objstore.Store {
	t.Helper()
	s, err := objstore.New(objstore.Config{Endpoint: gw.Endpoint, Region: gw.Region, Bucket: "audit-" + uuid.NewString()[:13],
		AccessKey: gw.AccessKey, SecretKey: gw.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// appendAt records count events in the tenant, all at the instant at.
func (f fixture) appendAt(t *testing.T, n demo.Network, count int, at time.Time) {
	t.Helper()
	for i := 0; i < count; i++ {
		e := models.AuditEvent{TenantID: n.Tenant.ID, At: at, ActorRole: "doctor", Action: "read", ResourceType: "lab_report"}
		if err := models.InTenant(context.Background(), f.app, n.Tenant.ID, func(tx *gorm.DB) error { return audit.Append(tx, key, &e) }); err != nil {
			t.Fatal(err)
		}
	}
}

// archived is a tenant with five events archived in segments of two
// (1-2, 3-4, 5) and three online (6-8), its head anchored at 8.
type archived struct {
	fixture
	store *objstore.Store
	now   time.Time
}

func newArchived(t *testing.T) archived {
	t.Helper()
	a := archived{fixture: setup(t), store: newStore(t), now: time.Now()}
	a.appendAt(t, a.a, 5, a.now.AddDate(0, 0, -100))
	a.appendAt(t, a.a, 3, a.now.Add(-time.Hour))
	a.appendAt(t, a.b, 2, a.now.AddDate(0, 0, -100))
	cutoff := a.now.AddDate(0, 0, -90)
	var got [][2]int64
	for {
		r, err := audit.ArchiveSegment(context.Background(), a.app, a.store, key, a.a.Tenant.ID, cutoff, 2)
		if err != nil {
			t.Fatal(err)
		}
		if r.Segment == uuid.Nil {
			break
		}
		got = append(got, [2]int64{r.FirstSeq, r.LastSeq})
	}
	if fmt.Sprint(got) != "[[1 2] [3 4] [5 5]]" {
		t.Fatalf("segments %v", got)
	}
	var online int64
	if err := a.admin.Model(&models.AuditEvent{}).Where("tenant_id = ?", a.a.Tenant.ID).Count(&online).Error; err != nil || online != 3 {
		t.Fatalf("online events %d %v", online, err)
	}
	if _, err := audit.AnchorHead(context.Background(), a.app, a.store, key, a.a.Tenant.ID, a.now); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a archived) verify(t *testing.T) audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), a.app, key, a.a.Tenant.ID, audit.WithArchive(a.store))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestArchivedChainVerifies(t *testing.T) {
	a := newArchived(t)
	rep := a.verify(t)
	if !rep.OK() || rep.Events != 8 || rep.Archived != 5 || rep.Segments != 3 || rep.Head != 8 || rep.Anchored != 8 {
		t.Fatalf("%+v", rep)
	}
	// The other tenant's old events were not archived by this tenant's run.
	if rep := a.fixture.verify(t, a.b); !rep.OK() || rep.Events != 2 {
		t.Fatalf("other tenant: %+v", rep)
	}
	// Without the store, an archived chain cannot be checked at all.
	if _, err := audit.Verify(context.Background(), a.app, key, a.a.Tenant.ID); err == nil {
		t.Fatal("verified an archived chain without reading the archive")
	}
	// Nothing older is left: archiving again changes nothing.
	r, err := audit.ArchiveSegment(context.Background(), a.app, a.store, key, a.a.Tenant.ID, a.now.AddDate(0, 0, -90), 2)
	if err != nil || r.Segment != uuid.Nil {
		t.Fatalf("second archive: %+v %v", r, err)
	}
	// New events after the anchor still verify, and move the anchor.
	a.appendAt(t, a.a, 2, a.now)
	rep, err = audit.Verify(context.Background(), a.app, key, a.a.Tenant.ID, audit.WithArchive(a.store), audit.WithAnchor(time.Now))
	if err != nil || !rep.OK() || rep.Anchored != 8 || rep.Reanchored != 10 {
		t.Fatalf("%+v %v", rep, err)
	}
	if rep := a.verify(t); !rep.OK() || rep.Anchored != 10 {
		t.Fatalf("after anchoring on verify: %+v", rep)
	}
}

// Every way of losing or changing archived or online events, or hiding a
// cut tail, is found.
func TestVerifyFindsTamperingAcrossTheArchive(t *testing.T) {
	segmentKey := func(t *testing.T, a archived, first int64) string {
		var seg models.AuditSegment
		if err := a.admin.Where("tenant_id = ? AND first_seq = ?", a.a.Tenant.ID, first).Take(&seg).Error; err != nil {
			t.Fatal(err)
		}
		return seg.ObjectKey
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, a archived)
		seq    int64
		words  string
	}{
		{"archived object rewritten on the server's disk", func(t *testing.T, a archived) {
			path := filepath.Join(gw.Dir, a.store.Bucket(), segmentKey(t, a, 3))
			if err := os.WriteFile(path, []byte("not the segment"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, 3, "changed"},
		{"archived object deleted", func(t *testing.T, a archived) {
			if err := a.store.Delete(context.Background(), a.a.Tenant.ID, segmentKey(t, a, 3)); err != nil {
				t.Fatal(err)
			}
		}, 3, "missing from the object store"},
		{"segment record deleted", func(t *testing.T, a archived) {
			if err := a.admin.Exec("DELETE FROM audit_segments WHERE tenant_id = ? AND first_seq = 3", a.a.Tenant.ID).Error; err != nil {
				t.Fatal(err)
			}
		}, 5, "expected event 3"},
		{"online event deleted by a superuser without a segment", func(t *testing.T, a archived) {
			if err := a.admin.Exec("DELETE FROM audit_events WHERE tenant_id = ? AND seq = 7", a.a.Tenant.ID).Error; err != nil {
				t.Fatal(err)
			}
		}, 8, "missing"},
		{"tail cut and head moved back", func(t *testing.T, a archived) {
			err := a.admin.Transaction(func(tx *gorm.DB) error {
				if err := tx.Exec("DELETE FROM audit_events WHERE tenant_id = ? AND seq > 6", a.a.Tenant.ID).Error; err != nil {
					return err
				}
				return tx.Exec(`UPDATE audit_heads SET seq = 6, hash = (SELECT hash FROM audit_events WHERE tenant_id = ? AND seq = 6)
					WHERE tenant_id = ?`, a.a.Tenant.ID, a.a.Tenant.ID).Error
			})
			if err != nil {
				t.Fatal(err)
			}
		}, 8, "cut short"},
		{"tail cut, head moved back, and the log written on past the anchor", func(t *testing.T, a archived) {
			err := a.admin.Transaction(func(tx *gorm.DB) error {
				if err := tx.Exec("DELETE FROM audit_events WHERE tenant_id = ? AND seq > 6", a.a.Tenant.ID).Error; err != nil {
					return err
				}
				return tx.Exec(`UPDATE audit_heads SET seq = 6, hash = (SELECT hash FROM audit_events WHERE tenant_id = ? AND seq = 6)
					WHERE tenant_id = ?`, a.a.Tenant.ID, a.a.Tenant.ID).Error
			})
			if err != nil {
				t.Fatal(err)
			}
			a.appendAt(t, a.a, 3, a.now)
		}, 8, "rewritten after it was anchored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newArchived(t)
			if rep := a.verify(t); !rep.OK() {
				t.Fatalf("before tampering: %+v", rep)
			}
			tc.tamper(t, a)
			rep := a.verify(t)
			if rep.OK() {
				t.Fatalf("tampering not found: %+v", rep)
			}
			wantBreak(t, rep, tc.seq, tc.words)
		})
	}
}

// The application role deletes audit events only through
// audit_delete_archived, and that only for rows a recorded segment of its
// own tenant covers exactly.
func TestDeleteArchivedRefusesRowsWithoutTheirSegment(t *testing.T) {
	f := setup(t)
	f.appendAt(t, f.a, 4, time.Now())
	f.appendAt(t, f.b, 2, time.Now())
	var rows []models.AuditEvent
	if err := f.admin.Where("tenant_id = ?", f.a.Tenant.ID).Order("seq").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	bogus := models.AuditSegment{ID: uuid.New(), TenantID: f.a.Tenant.ID, FirstSeq: 1, LastSeq: 2, FirstPrevHash: rows[0].PrevHash,
		LastHash: rows[2].Hash, ObjectKey: "tenants/x/audit-segments/y", SHA256: strings.Repeat("0", 64), Events: 2}
	other := bogus
	other.ID, other.TenantID, other.LastHash = uuid.New(), f.b.Tenant.ID, rows[1].Hash
	for _, seg := range []models.AuditSegment{bogus, other} {
		if err := f.admin.Create(&seg).Error; err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		segment uuid.UUID
		want    string
	}{
		{"no such segment", uuid.New(), "no recorded audit segment"},
		{"segment whose hashes are not the rows'", bogus.ID, "does not match"},
		{"another tenant's segment", other.ID, "no recorded audit segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := models.InTenant(context.Background(), f.app, f.a.Tenant.ID, func(tx *gorm.DB) error {
				var n int64
				return tx.Raw("SELECT audit_delete_archived(?)", tc.segment).Scan(&n).Error
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			var left int64
			if err := f.admin.Model(&models.AuditEvent{}).Where("tenant_id = ?", f.a.Tenant.ID).Count(&left).Error; err != nil || left != 4 {
				t.Fatalf("%d events left, want 4 (%v)", left, err)
			}
		})
	}
	// Nor may the application rewrite the record of what was archived.
	err := models.InTenant(context.Background(), f.app, f.a.Tenant.ID, func(tx *gorm.DB) error {
		return tx.Exec("UPDATE audit_segments SET last_seq = 4, events = 4").Error
	})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("update of audit_segments: %v", err)
	}
}
