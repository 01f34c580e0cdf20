package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/models/modelstest"
)

// tenantTables lists every table that carries tenant_id, from the catalog,
// so that a new table is covered by these tests the day it is created.
func tenantTables(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	var tables []string
	err := db.Raw(`SELECT c.table_name FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE'
		ORDER BY 1`).Scan(&tables).Error
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 20 {
		t.Fatalf("only %d tenant tables found: %v", len(tables), tables)
	}
	return tables
}

func seedTwo(t *testing.T) (db modelstest.DB, app *gorm.DB, a, b demo.Network) {
	t.Helper()
	db = modelstest.New(t)
	admin, err := models.Open(db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	hash := func(string) (string, error) { return "not-a-real-hash", nil }
	ctx := context.Background()
	if a, err = demo.Seed(ctx, admin, demo.Options{Slug: "alpha", Name: "Alpha", Now: time.Now(), HashPassword: hash}); err != nil {
		t.Fatal(err)
	}
	if b, err = demo.Seed(ctx, admin, demo.Options{Slug: "bravo", Name: "Bravo", Now: time.Now(), HashPassword: hash}); err != nil {
		t.Fatal(err)
	}
	if app, err = models.Open(db.AppDSN); err != nil {
		t.Fatal(err)
	}
	return db, app, a, b
}

// TestRowLevelSecurityScopesUnfilteredQueries runs queries that forget the
// tenant filter, as the application role, and sees only the tenant of the
// transaction; with no tenant set it sees nothing at all.
func TestRowLevelSecurityScopesUnfilteredQueries(t *testing.T) {
	db, app, a, b := seedTwo(t)
	ctx := context.Background()
	admin, err := models.Open(db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tenantTables(t, admin) {
		var enabled, forced bool
		if err := admin.Raw("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = ?::regclass", table).
			Row().Scan(&enabled, &forced); err != nil {
			t.Fatal(err)
		}
		if !enabled || !forced {
			t.Errorf("%s: row security enabled=%v forced=%v", table, enabled, forced)
		}
		var foreign, none int64
		err := models.InTenant(ctx, app, a.Tenant.ID, func(tx *gorm.DB) error {
			return tx.Raw("SELECT count(*) FROM "+table+" WHERE tenant_id <> ?", a.Tenant.ID).Scan(&foreign).Error
		})
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if foreign != 0 {
			t.Errorf("%s: tenant alpha's transaction sees %d rows of other tenants", table, foreign)
		}
		if err := app.Raw("SELECT count(*) FROM " + table).Scan(&none).Error; err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if none != 0 {
			t.Errorf("%s: a query outside any tenant transaction sees %d rows", table, none)
		}
	}
	// Each tenant sees exactly its own practitioners.
	for _, n := range []demo.Network{a, b} {
		var ids []uuid.UUID
		err := models.InTenant(ctx, app, n.Tenant.ID, func(tx *gorm.DB) error {
			return tx.Raw("SELECT id FROM practitioners").Scan(&ids).Error
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != len(n.Practitioners) {
			t.Errorf("tenant %s sees %d practitioners, want %d", n.Tenant.Slug, len(ids), len(n.Practitioners))
		}
	}
	// The setting is transaction-local: the pooled connection does not keep it.
	var after int64
	if err := app.Raw("SELECT count(*) FROM practitioners").Scan(&after).Error; err != nil || after != 0 {
		t.Fatalf("after a tenant transaction: %d rows, %v", after, err)
	}
}

// TestRowLevelSecurityRefusesForeignWrites inserts and updates across the
// tenant line and is refused or affects nothing.
func TestRowLevelSecurityRefusesForeignWrites(t *testing.T) {
	_, app, a, b := seedTwo(t)
	ctx := context.Background()
	err := models.InTenant(ctx, app, a.Tenant.ID, func(tx *gorm.DB) error {
		return tx.Create(&models.Specialty{ID: uuid.New(), TenantID: b.Tenant.ID, Code: "x", Name: "x"}).Error
	})
	if err == nil {
		t.Fatal("inserting a row of tenant bravo inside tenant alpha's transaction succeeded")
	}
	var affected int64
	err = models.InTenant(ctx, app, a.Tenant.ID, func(tx *gorm.DB) error {
		res := tx.Exec("UPDATE practitioners SET title = 'hacked' WHERE id = ?", b.Practitioners[0].ID)
		affected = res.RowsAffected
		return res.Error
	})
	if err != nil || affected != 0 {
		t.Fatalf("cross-tenant update: affected %d, err %v", affected, err)
	}
}

// TestAppRoleCannotBypassRLS checks the role the product connects as.
func TestAppRoleCannotBypassRLS(t *testing.T) {
	_, app, _, _ := seedTwo(t)
	var super, bypass bool
	if err := app.Raw("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").Row().Scan(&super, &bypass); err != nil {
		t.Fatal(err)
	}
	if super || bypass {
		t.Fatalf("application role: superuser=%v bypassrls=%v", super, bypass)
	}
}

// TestLedgerIsAppendOnly: the application role may add ledger rows, never
// change or remove them, and an entry that does not balance is refused.
func TestLedgerIsAppendOnly(t *testing.T) {
	_, app, a, _ := seedTwo(t)
	ctx := context.Background()
	entry := uuid.New()
	insert := func(tx *gorm.DB, amounts ...int64) error {
		if err := tx.Exec("INSERT INTO ledger_entries (id, tenant_id, key, kind) VALUES (?, ?, ?, 'test')", entry, a.Tenant.ID, "k-"+entry.String()).Error; err != nil {
			return err
		}
		accounts := []string{"provider_balance", "clinic_revenue"}
		for i, amt := range amounts {
			if err := tx.Exec("INSERT INTO ledger_postings (tenant_id, entry_id, account, amount_minor, currency) VALUES (?, ?, ?, ?, 'USD')",
				a.Tenant.ID, entry, accounts[i], amt).Error; err != nil {
				return err
			}
		}
		return nil
	}
	if err := models.InTenant(ctx, app, a.Tenant.ID, func(tx *gorm.DB) error { return insert(tx, 500, -400) }); err == nil {
		t.Fatal("an unbalanced entry was accepted")
	}
	if err := models.InTenant(ctx, app, a.Tenant.ID, func(tx *gorm.DB) error { return insert(tx, 500, -500) }); err != nil {
		t.Fatalf("balanced entry: %v", err)
	}
	for _, stmt := range []string{
		"UPDATE ledger_postings SET amount_minor = 1",
		"DELETE FROM ledger_postings",
		"UPDATE ledger_entries SET memo = 'x'",
		"DELETE FROM ledger_entries",
	} {
		err := models.InTenant(ctx, app, a.Tenant.ID, func(tx *gorm.DB) error { return tx.Exec(stmt).Error })
		if err == nil {
			t.Errorf("%s: allowed for the application role", stmt)
		}
	}
}
