package models

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for migrations
	"github.com/pressly/goose/v3"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

//go:embed migrations/*.sql
var migrations embed.FS

// AppRole is the database role the api and workers connect as. The first
// migration creates it without SUPERUSER or BYPASSRLS, so row-level security
// binds every query it makes.
const AppRole = "carebook_app"

// Migrate applies every pending migration using an owner connection
// (adminDSN) and returns the schema version reached.
func Migrate(ctx context.Context, adminDSN string) (int64, error) {
	db, err := sql.Open("pgx", adminDSN)
	if err != nil {
		return 0, fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return 0, fmt.Errorf("migrations folder: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub)
	if err != nil {
		return 0, fmt.Errorf("load migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// maxOpenConns bounds each process's pool; see Open.
const maxOpenConns = 24

// Open connects GORM to dsn. Query logging is off: statements carry patient
// data in their parameters, and logs must not.
func Open(dsn string) (*gorm.DB, error) {
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("connection pool: %w", err)
	}
	// Postgres allows 100 connections by default and each costs memory;
	// requests hold one only for a short transaction, so a modest pool
	// serves hundreds of concurrent requests and leaves room for other
	// processes.
	sqlDB.SetMaxOpenConns(maxOpenConns)
	sqlDB.SetMaxIdleConns(maxOpenConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// InTenant runs fn in a transaction whose row-level security is scoped to
// tenant: the setting is transaction-local (set_config's third argument),
// so it can never leak to the next user of the pooled connection.
func InTenant(ctx context.Context, db *gorm.DB, tenant uuid.UUID, fn func(tx *gorm.DB) error) error {
	if tenant == uuid.Nil {
		return errors.New("models: tenant transaction without a tenant")
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT set_config('app.tenant_id', ?, true)", tenant.String()).Error; err != nil {
			return fmt.Errorf("scope transaction to tenant: %w", err)
		}
		return fn(tx)
	})
}

// Constraint names whose violations mean "that time is taken".
const (
	ConstraintPractitionerOverlap = "appointments_no_practitioner_overlap"
	ConstraintPatientOverlap      = "appointments_no_patient_overlap"
)

// OverlapConstraint returns the name of the exclusion constraint err
// violated, or "" when err is something else.
func OverlapConstraint(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23P01" {
		return pg.ConstraintName
	}
	return ""
}

// IsUniqueViolation reports whether err is a unique-key violation.
func IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// TenantZone is the zone a tenant's business days are counted in (billing
// totals, nightly settlement): its first facility's by name, or UTC for a
// tenant without facilities. tx must be a tenant transaction.
// TODO(#3): a tenant-level zone setting once tenants have settings.
func TenantZone(tx *gorm.DB) (string, error) {
	var zones []string
	if err := tx.Model(&Facility{}).Order("name, id").Limit(1).Pluck("time_zone", &zones).Error; err != nil {
		return "", fmt.Errorf("load tenant time zone: %w", err)
	}
	if len(zones) == 0 || zones[0] == "" {
		return "UTC", nil
	}
	return zones[0], nil
}
