package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
)

// Chain is the KEK of a process while the KEK itself is being replaced:
// Current wraps every new key, and keys wrapped by Current or by one of
// Previous still open. Once `carebook keys rewrap` has wrapped every key
// again under Current, the previous KEKs can be dropped from the
// configuration (and, in a KMS, scheduled for deletion).
type Chain struct {
	Current  KEK
	Previous []KEK
}

// ID implements KEK: the current KEK's.
func (c Chain) ID() string { return c.Current.ID() }

// Wrap implements KEK with the current KEK.
func (c Chain) Wrap(ctx context.Context, key []byte, info string) ([]byte, error) {
	return c.Current.Wrap(ctx, key, info)
}

// Unwrap implements KEK: the first KEK of the chain that opens the key
// does. A KEK that cannot be the one that wrapped it says so at once
// (ErrWrongKEK) and the next is tried; any other failure (a KMS outage)
// is returned as it is, to be retried.
func (c Chain) Unwrap(ctx context.Context, kekID string, wrapped []byte, info string) ([]byte, error) {
	for _, k := range append([]KEK{c.Current}, c.Previous...) {
		key, err := k.Unwrap(ctx, kekID, wrapped, info)
		if errors.Is(err, ErrWrongKEK) {
			continue
		}
		return key, err
	}
	return nil, fmt.Errorf("%w (wrapped by %s; no configured KEK opens it)", ErrWrongKEK, kekID)
}

// Rewrapped counts the keys of a tenant that Rewrap wrapped again.
type Rewrapped struct {
	Tenant uuid.UUID
	Keys   int
	// From names the KEKs the keys were wrapped by before.
	From []string
}

// Rewrap wraps again, under the keyring's current KEK, every key of
// tenant that another KEK wraps: the key material does not change, so no
// sealed value is touched and nothing stops while it runs. Each new
// wrapping is opened again before it replaces the old one, in one
// transaction per tenant. The keyring's DB must be the owner's
// connection: the application role may not rewrite wrapped keys.
func (k *Keyring) Rewrap(ctx context.Context, tenant uuid.UUID) (Rewrapped, error) {
	out := Rewrapped{Tenant: tenant}
	current := k.KEK.ID()
	err := models.InTenant(ctx, k.DB, tenant, func(tx *gorm.DB) error {
		var rows []keyRow
		if err := tx.Where("tenant_id = ? AND kek_id <> ?", tenant, current).Order("kind, version").
			Clauses(clause.Locking{Strength: "UPDATE"}).Find(&rows).Error; err != nil {
			return err
		}
		for _, row := range rows {
			info := wrapInfo(tenant, row.Kind, row.Version)
			raw, err := k.KEK.Unwrap(ctx, row.KEKID, row.Wrapped, info)
			if err != nil {
				return fmt.Errorf("keyring: open %s key version %d: %w", row.Kind, row.Version, err)
			}
			wrapped, err := k.KEK.Wrap(ctx, raw, info)
			if err != nil {
				return fmt.Errorf("keyring: wrap %s key version %d: %w", row.Kind, row.Version, err)
			}
			back, err := k.KEK.Unwrap(ctx, current, wrapped, info)
			if err != nil || !bytes.Equal(back, raw) {
				return fmt.Errorf("keyring: %s key version %d does not open under the new wrapping: %v", row.Kind, row.Version, err)
			}
			res := tx.Model(&keyRow{}).Where("tenant_id = ? AND kind = ? AND version = ? AND kek_id = ?", tenant, row.Kind, row.Version, row.KEKID).
				Updates(map[string]any{"wrapped": wrapped, "kek_id": current})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return fmt.Errorf("keyring: %s key version %d changed while it was rewrapped", row.Kind, row.Version)
			}
			out.Keys++
			if !slices.Contains(out.From, row.KEKID) {
				out.From = append(out.From, row.KEKID)
			}
		}
		return nil
	})
	return out, err
}
