package demo

import (
	"context"
	"crypto/sha256"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/totp"
)

// TOTPSecretFor is the TOTP secret (base32) that Seed enrols for a demo
// account of the tenant slug. It derives from public names only, so that
// walk-throughs and `carebook demo-otp` can compute the current code: it
// exists only in demo data and protects nothing.
func TOTPSecretFor(slug, email string) string {
	sum := sha256.Sum256([]byte("carebook-demo-totp:" + slug + ":" + email))
	return totp.EncodeSecret(sum[:totp.SecretBytes])
}

// SeedMFA enrols every doctor, staff member, billing clerk and admin of
// the tenant o names with their TOTPSecretFor secret, sealed by
// o.SealSecret, through db (an owner connection). Seed does it too; this
// is for a caller that learns its sealing key after seeding. Enrolments
// that exist are left alone, so a user who enrolled a device of their own
// keeps it.
func SeedMFA(ctx context.Context, db *gorm.DB, o Options) error {
	return seedMFA(ctx, db, o, build(o))
}

func seedMFA(ctx context.Context, db *gorm.DB, o Options, n Network) error {
	if o.SealSecret == nil {
		return nil
	}
	t := n.Tenant.ID
	var rows []models.UserMFA
	for _, u := range *users(o.Slug, n, "") {
		if u.Role == models.RolePatient {
			continue
		}
		sealed, err := o.SealSecret(ctx, t, TOTPSecretFor(o.Slug, u.Email))
		if err != nil {
			return fmt.Errorf("seal demo TOTP secret: %w", err)
		}
		at := o.Now.UTC()
		rows = append(rows, models.UserMFA{UserID: u.ID, TenantID: t, TOTPSecretEnc: sealed, EnrolledAt: &at, UpdatedAt: at})
	}
	return models.InTenant(ctx, db, t, func(tx *gorm.DB) error {
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error
	})
}
