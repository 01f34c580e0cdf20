package keyring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/models"
)

// Column is a table column that holds values sealed with SealFor. A
// rotation re-encrypts every registered column, and retires a version only
// when no registered column uses it any more; a sealed column that is not
// registered would keep old versions in use unseen, so every package that
// seals a column registers it (see columns.go).
type Column struct {
	// Name identifies the column in a rotation's history: "table.column".
	Name   string
	Table  string
	Sealed string // the bytea column
	// Purpose is the Binding's Purpose for every value in the column.
	Purpose string
	// Row is a SQL expression over the row that gives the Binding's Row,
	// exactly as the code that seals the column computes it ('' for none).
	Row string
}

var (
	columnsMu sync.Mutex
	columns   = map[string]Column{}
)

// Register adds a sealed column. It panics on a second column of the same
// name, a programming error found at start-up.
func Register(c Column) {
	columnsMu.Lock()
	defer columnsMu.Unlock()
	if _, dup := columns[c.Name]; dup {
		panic("keyring: column registered twice: " + c.Name)
	}
	columns[c.Name] = c
}

// Columns returns the registered columns by name.
func Columns() []Column {
	columnsMu.Lock()
	defer columnsMu.Unlock()
	out := make([]Column, 0, len(columns))
	for _, c := range columns {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ColumnByName returns a registered column.
func ColumnByName(name string) (Column, bool) {
	columnsMu.Lock()
	defer columnsMu.Unlock()
	c, ok := columns[name]
	return c, ok
}

// Rotation is the state of a tenant's rotation after its first step.
type Rotation struct {
	Version uint32   // the new active version
	Old     []uint32 // the versions it replaces, retiring until re-encrypted
}

// BeginRotation makes a new data key version the tenant's active one and
// marks the versions before it retiring. It is idempotent per rotationID:
// called again with the same ID (a retried activity) it answers the
// version it made the first time.
func (k *Keyring) BeginRotation(ctx context.Context, tenant uuid.UUID, rotationID string) (Rotation, error) {
	if rotationID == "" {
		return Rotation{}, errors.New("keyring: rotation without an ID")
	}
	var out Rotation
	err := models.InTenant(ctx, k.DB, tenant, func(tx *gorm.DB) error {
		// One rotation at a time per tenant, whatever started it: the
		// lock is the tenant's, held until this transaction ends.
		if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtextextended('carebook-keyring:' || ?, 0))", tenant.String()).Error; err != nil {
			return err
		}
		var mine keyRow
		err := tx.Where("tenant_id = ? AND kind = ? AND rotation_id = ?", tenant, KindData, rotationID).Take(&mine).Error
		switch {
		case err == nil:
			out.Version = mine.Version
		case errors.Is(err, gorm.ErrRecordNotFound):
			var last uint32
			if err := tx.Model(&keyRow{}).Where("tenant_id = ? AND kind = ?", tenant, KindData).Select("coalesce(max(version), 0)").Scan(&last).Error; err != nil {
				return err
			}
			if err := tx.Model(&keyRow{}).Where("tenant_id = ? AND kind = ? AND state = ?", tenant, KindData, StateActive).
				Updates(map[string]any{"state": StateRetiring, "retiring_at": k.now().UTC()}).Error; err != nil {
				return err
			}
			var row keyRow
			if err := k.create(ctx, tx, tenant, KindData, last+1, rotationID, &row); err != nil {
				return err
			}
			out.Version = row.Version
		default:
			return err
		}
		return tx.Model(&keyRow{}).Where("tenant_id = ? AND kind = ? AND state = ? AND version <> ?", tenant, KindData, StateRetiring, out.Version).
			Order("version").Pluck("version", &out.Old).Error
	})
	if err != nil {
		return Rotation{}, fmt.Errorf("keyring: begin rotation: %w", err)
	}
	// This process seals with the new version at once; the others within
	// ActiveCacheTTL.
	k.remember(tenant, out.Version)
	return out, nil
}

// Reencrypt re-seals up to limit values of column that are not under
// version, each in place, and returns how many it re-sealed; 0 means the
// column is done. Rows are locked and skipped when another batch holds
// them, and a value changed since it was read is left to the next batch,
// so batches may run again or side by side.
func (k *Keyring) Reencrypt(ctx context.Context, tenant uuid.UUID, column string, version uint32, limit int) (int, error) {
	c, ok := ColumnByName(column)
	if !ok {
		return 0, fmt.Errorf("keyring: unknown column %q", column)
	}
	row := c.Row
	if row == "" {
		row = "''"
	}
	var vb [4]byte
	binary.BigEndian.PutUint32(vb[:], version)
	done := 0
	err := models.InTenant(ctx, k.DB, tenant, func(tx *gorm.DB) error {
		var rows []struct {
			Ctid   string
			RowID  string
			Sealed []byte
		}
		// Identifiers come from Register, never from a request.
		q := fmt.Sprintf(`SELECT ctid::text AS ctid, (%s)::text AS row_id, %s AS sealed FROM %s
			WHERE tenant_id = ? AND %s IS NOT NULL AND substring(%s FROM 2 FOR 4) <> ? LIMIT ? FOR UPDATE SKIP LOCKED`,
			row, c.Sealed, c.Table, c.Sealed, c.Sealed)
		if err := tx.Raw(q, tenant, vb[:], limit).Scan(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			b := Binding{Purpose: c.Purpose, Row: r.RowID}
			plain, err := k.OpenFor(ctx, tenant, b, r.Sealed)
			if err != nil {
				return fmt.Errorf("open %s: %w", c.Name, err)
			}
			fresh, err := k.sealWith(ctx, tenant, version, b, plain)
			if err != nil {
				return err
			}
			res := tx.Exec(fmt.Sprintf("UPDATE %s SET %s = ? WHERE ctid = ?::tid AND %s = ?", c.Table, c.Sealed, c.Sealed),
				fresh, r.Ctid, r.Sealed)
			if res.Error != nil {
				return res.Error
			}
			done += int(res.RowsAffected)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("keyring: re-encrypt %s: %w", column, err)
	}
	return done, nil
}

// InUse counts the values of every registered column that are not under
// version.
func (k *Keyring) InUse(ctx context.Context, tenant uuid.UUID, version uint32) (int64, error) {
	var vb [4]byte
	binary.BigEndian.PutUint32(vb[:], version)
	var total int64
	err := models.InTenant(ctx, k.DB, tenant, func(tx *gorm.DB) error {
		for _, c := range Columns() {
			var n int64
			q := fmt.Sprintf("SELECT count(*) FROM %s WHERE tenant_id = ? AND %s IS NOT NULL AND substring(%s FROM 2 FOR 4) <> ?", c.Table, c.Sealed, c.Sealed)
			if err := tx.Raw(q, tenant, vb[:]).Scan(&n).Error; err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("keyring: count old values: %w", err)
	}
	return total, nil
}

// Retire marks every retiring version before version retired, when no
// registered column uses any version but version any more; otherwise it
// retires nothing and returns how many values still use older versions.
// Retired keys stay wrapped in tenant_keys: they seal nothing, and they
// still open values restored from a backup taken before the rotation.
func (k *Keyring) Retire(ctx context.Context, tenant uuid.UUID, version uint32) (retired []uint32, remaining int64, err error) {
	if remaining, err = k.InUse(ctx, tenant, version); err != nil || remaining > 0 {
		return nil, remaining, err
	}
	err = models.InTenant(ctx, k.DB, tenant, func(tx *gorm.DB) error {
		if err := tx.Model(&keyRow{}).Where("tenant_id = ? AND kind = ? AND state = ? AND version < ?", tenant, KindData, StateRetiring, version).
			Order("version").Pluck("version", &retired).Error; err != nil {
			return err
		}
		return tx.Model(&keyRow{}).Where("tenant_id = ? AND kind = ? AND state = ? AND version < ?", tenant, KindData, StateRetiring, version).
			Updates(map[string]any{"state": StateRetired, "retired_at": k.now().UTC()}).Error
	})
	if err != nil {
		return nil, 0, fmt.Errorf("keyring: retire: %w", err)
	}
	return retired, 0, nil
}

// KeyInfo describes one of a tenant's keys, without its material.
type KeyInfo struct {
	Kind, State, KEKID string
	Version            uint32
}

// Keys lists a tenant's keys.
func (k *Keyring) Keys(ctx context.Context, tenant uuid.UUID) ([]KeyInfo, error) {
	var rows []keyRow
	err := models.InTenant(ctx, k.DB, tenant, func(tx *gorm.DB) error {
		return tx.Order("kind, version").Find(&rows).Error
	})
	out := make([]KeyInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, KeyInfo{Kind: r.Kind, State: r.State, KEKID: r.KEKID, Version: r.Version})
	}
	return out, err
}
