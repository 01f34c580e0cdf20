// Package keyring keeps each tenant's encryption keys and seals sensitive
// column values with them.
//
// Every tenant has AES-256-GCM data-encryption keys (DEKs) in versions: one
// active for new writes, older ones retiring while a rotation re-encrypts
// the rows that use them, then retired. Every tenant also has one
// blind-index key for HMAC-SHA256 equality lookups; it is never rotated,
// so an index computed today finds a row indexed years ago. Keys are
// stored only wrapped by a key-encryption key (KEK), local or in a KMS, in
// the tenant_keys table under row security; unwrapped keys are cached in
// memory for a short while.
//
// A sealed value is self-describing: a format byte, the DEK version, the
// nonce and the AES-GCM output. Its associated data binds the tenant, the
// version, and a Binding (the column's purpose and the row), so a sealed
// value copied into another row, column or tenant does not open.
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/carebook/carebook/models"
)

// Format1 is the first byte of every sealed value this version writes: a
// later format (another cipher, a longer nonce) gets its own byte, and
// values of both kinds open side by side.
const Format1 byte = 1

// keySize is the size of every key the keyring makes: AES-256 and an
// HMAC-SHA256 key of the hash's own size.
const keySize = 32

// header is the format byte and the 4-byte big-endian DEK version.
const header = 5

// Key kinds and states, as stored in tenant_keys.
const (
	KindData  = "data"
	KindIndex = "index"

	StateActive   = "active"
	StateRetiring = "retiring"
	StateRetired  = "retired"
)

// Default cache lifetimes. ActiveTTL bounds how long a process keeps
// sealing with a version after a rotation made another one active, so a
// rotation waits that long before it re-encrypts; KeyTTL bounds how long an
// unwrapped key stays in memory (and so how many KMS calls a busy process
// makes: one per tenant and version every five minutes).
const (
	DefaultActiveTTL = 30 * time.Second
	DefaultKeyTTL    = 5 * time.Minute
)

// ErrNotSealed means the bytes are not a value this keyring sealed: empty,
// too short, or of an unknown format.
var ErrNotSealed = errors.New("keyring: not a sealed value")

// ErrDoesNotOpen means a sealed value does not authenticate under the
// tenant and binding it is opened with: it was copied from another row,
// column or tenant, or altered. The message names no value.
var ErrDoesNotOpen = errors.New("keyring: sealed value does not open here")

// Binding says where a sealed value lives: Purpose names the column (such
// as "patient_identifiers.value") and Row the row, when the row has an ID
// that never changes. Both are part of the associated data.
type Binding struct {
	Purpose string
	Row     string
}

// Keyring seals and opens values with per-tenant keys. Build one per
// process; it is safe for concurrent use.
type Keyring struct {
	// DB is the application connection; keys are read and written in the
	// tenant's own transaction.
	DB  *gorm.DB
	KEK KEK
	// ActiveTTL and KeyTTL override DefaultActiveTTL and DefaultKeyTTL.
	ActiveTTL time.Duration
	KeyTTL    time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	keys   map[keyRef]cachedKey
	active map[uuid.UUID]cachedActive
}

type keyRef struct {
	tenant  uuid.UUID
	kind    string
	version uint32
}

type cachedKey struct {
	key     []byte
	aead    cipher.AEAD
	expires time.Time
}

type cachedActive struct {
	version uint32
	expires time.Time
}

// keyRow is a row of tenant_keys.
type keyRow struct {
	TenantID   uuid.UUID `gorm:"type:uuid;primaryKey"`
	Kind       string    `gorm:"primaryKey"`
	Version    uint32    `gorm:"primaryKey;autoIncrement:false"`
	Wrapped    []byte
	KEKID      string `gorm:"column:kek_id"`
	State      string
	RotationID string
	CreatedAt  time.Time
	RetiringAt *time.Time
	RetiredAt  *time.Time
}

func (keyRow) TableName() string { return "tenant_keys" }

func (k *Keyring) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// ActiveCacheTTL is how long a process may keep sealing with a version
// after it stopped being active.
func (k *Keyring) ActiveCacheTTL() time.Duration {
	if k.ActiveTTL > 0 {
		return k.ActiveTTL
	}
	return DefaultActiveTTL
}

func (k *Keyring) keyTTL() time.Duration {
	if k.KeyTTL > 0 {
		return k.KeyTTL
	}
	return DefaultKeyTTL
}

// Seal seals plain for tenant with no column binding. Prefer SealFor for
// columns: its binding keeps a value from being moved to another row.
func (k *Keyring) Seal(ctx context.Context, tenant uuid.UUID, plain string) ([]byte, error) {
	return k.SealFor(ctx, tenant, Binding{}, plain)
}

// Open opens what Seal sealed.
func (k *Keyring) Open(ctx context.Context, tenant uuid.UUID, sealed []byte) (string, error) {
	return k.OpenFor(ctx, tenant, Binding{}, sealed)
}

// SealFor seals plain for tenant under the tenant's active data key, bound
// to b.
func (k *Keyring) SealFor(ctx context.Context, tenant uuid.UUID, b Binding, plain string) ([]byte, error) {
	version, err := k.activeVersion(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return k.sealWith(ctx, tenant, version, b, plain)
}

func (k *Keyring) sealWith(ctx context.Context, tenant uuid.UUID, version uint32, b Binding, plain string) ([]byte, error) {
	ck, err := k.key(ctx, tenant, KindData, version)
	if err != nil {
		return nil, err
	}
	out := make([]byte, header, header+ck.aead.NonceSize()+len(plain)+ck.aead.Overhead())
	out[0] = Format1
	binary.BigEndian.PutUint32(out[1:header], version)
	nonce := make([]byte, ck.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return ck.aead.Seal(out, nonce, []byte(plain), associated(tenant, version, b)), nil
}

// OpenFor opens a value that SealFor sealed for tenant and b, under
// whichever data key version sealed it (active, retiring or retired, so
// reads work throughout a rotation and from backups made before one).
func (k *Keyring) OpenFor(ctx context.Context, tenant uuid.UUID, b Binding, sealed []byte) (string, error) {
	version, err := Version(sealed)
	if err != nil {
		return "", err
	}
	ck, err := k.key(ctx, tenant, KindData, version)
	if err != nil {
		return "", err
	}
	n := ck.aead.NonceSize()
	if len(sealed) < header+n+ck.aead.Overhead() {
		return "", ErrNotSealed
	}
	plain, err := ck.aead.Open(nil, sealed[header:header+n], sealed[header+n:], associated(tenant, version, b))
	if err != nil {
		return "", ErrDoesNotOpen
	}
	return string(plain), nil
}

// Version returns the data key version that sealed a value.
func Version(sealed []byte) (uint32, error) {
	if len(sealed) < header || sealed[0] != Format1 {
		return 0, ErrNotSealed
	}
	return binary.BigEndian.Uint32(sealed[1:header]), nil
}

// associated is the AEAD's associated data: a domain label, the tenant,
// the version (so the header cannot be edited to point elsewhere) and the
// binding, each field length-prefixed so that no two bindings share an
// encoding.
func associated(tenant uuid.UUID, version uint32, b Binding) []byte {
	ad := make([]byte, 0, 64+len(b.Purpose)+len(b.Row))
	ad = append(ad, "carebook keyring v1\x00"...)
	ad = append(ad, tenant[:]...)
	ad = binary.BigEndian.AppendUint32(ad, version)
	for _, f := range []string{b.Purpose, b.Row} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(f)))
		ad = append(ad, f...)
	}
	return ad
}

// Index is the blind index of value for tenant and purpose:
// HMAC-SHA256 under the tenant's index key over the purpose and the
// normalised value. Equal values give equal indexes within a tenant and
// purpose, and nothing about the value can be read from it without the
// key, which only the KEK unwraps.
func (k *Keyring) Index(ctx context.Context, tenant uuid.UUID, purpose, value string) ([]byte, error) {
	ck, err := k.key(ctx, tenant, KindIndex, 1)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, ck.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(Normalize(value)))
	return m.Sum(nil), nil
}

// Normalize is the form a value is indexed in: identifiers are written
// with and without separators ("765-89-4312", "765 89 4312") and in either
// case, and must find the same row. Letters are upper-cased; spaces,
// hyphens, dots and slashes are dropped.
func Normalize(value string) string {
	var b strings.Builder
	for _, r := range value {
		if unicode.IsSpace(r) || r == '-' || r == '.' || r == '/' {
			continue
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// activeVersion returns the tenant's active data key version, making the
// first one when the tenant has none.
func (k *Keyring) activeVersion(ctx context.Context, tenant uuid.UUID) (uint32, error) {
	k.mu.Lock()
	a, ok := k.active[tenant]
	k.mu.Unlock()
	if ok && k.now().Before(a.expires) {
		return a.version, nil
	}
	var row keyRow
	err := models.InTenant(ctx, k.DB, tenant, func(tx *gorm.DB) error {
		err := tx.Where("tenant_id = ? AND kind = ? AND state = ?", tenant, KindData, StateActive).Take(&row).Error
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		return k.create(ctx, tx, tenant, KindData, 1, "", &row)
	})
	if err != nil {
		return 0, fmt.Errorf("keyring: active key: %w", err)
	}
	k.remember(tenant, row.Version)
	return row.Version, nil
}

func (k *Keyring) remember(tenant uuid.UUID, version uint32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.active == nil {
		k.active = map[uuid.UUID]cachedActive{}
	}
	k.active[tenant] = cachedActive{version: version, expires: k.now().Add(k.ActiveCacheTTL())}
}

// create makes, wraps and inserts a new key, or, when another process
// inserted the same one first, reads that one into row.
func (k *Keyring) create(ctx context.Context, tx *gorm.DB, tenant uuid.UUID, kind string, version uint32, rotation string, row *keyRow) error {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	wrapped, err := k.KEK.Wrap(ctx, key, wrapInfo(tenant, kind, version))
	if err != nil {
		return err
	}
	*row = keyRow{TenantID: tenant, Kind: kind, Version: version, Wrapped: wrapped, KEKID: k.KEK.ID(),
		State: StateActive, RotationID: rotation, CreatedAt: k.now().UTC()}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(row)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 1 {
		return nil
	}
	// Two processes made a tenant's first key at once: the one that
	// committed first wins, and both use its key.
	return tx.Where("tenant_id = ? AND kind = ? AND state = ?", tenant, kind, StateActive).Take(row).Error
}

// wrapInfo binds a wrapped key to its tenant, kind and version.
func wrapInfo(tenant uuid.UUID, kind string, version uint32) string {
	return fmt.Sprintf("tenant=%s;kind=%s;version=%d", tenant, kind, version)
}

// key returns an unwrapped key, from the cache or from tenant_keys. The
// index key is made on first use.
func (k *Keyring) key(ctx context.Context, tenant uuid.UUID, kind string, version uint32) (cachedKey, error) {
	ref := keyRef{tenant, kind, version}
	k.mu.Lock()
	ck, ok := k.keys[ref]
	k.mu.Unlock()
	if ok && k.now().Before(ck.expires) {
		return ck, nil
	}
	var row keyRow
	err := models.InTenant(ctx, k.DB, tenant, func(tx *gorm.DB) error {
		err := tx.Where("tenant_id = ? AND kind = ? AND version = ?", tenant, kind, version).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) && kind == KindIndex {
			return k.create(ctx, tx, tenant, kind, version, "", &row)
		}
		return err
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return cachedKey{}, fmt.Errorf("keyring: tenant has no %s key version %d: %w", kind, version, ErrDoesNotOpen)
	}
	if err != nil {
		return cachedKey{}, fmt.Errorf("keyring: load %s key: %w", kind, err)
	}
	raw, err := k.KEK.Unwrap(ctx, row.KEKID, row.Wrapped, wrapInfo(tenant, kind, version))
	if err != nil {
		return cachedKey{}, err
	}
	if len(raw) != keySize {
		return cachedKey{}, ErrWrongKEK
	}
	ck = cachedKey{key: raw, expires: k.now().Add(k.keyTTL())}
	if kind == KindData {
		block, err := aes.NewCipher(raw)
		if err != nil {
			return cachedKey{}, err
		}
		if ck.aead, err = cipher.NewGCM(block); err != nil {
			return cachedKey{}, err
		}
	}
	k.mu.Lock()
	if k.keys == nil {
		k.keys = map[keyRef]cachedKey{}
	}
	k.keys[ref] = ck
	k.mu.Unlock()
	return ck, nil
}

// New returns a keyring over db whose keys kek wraps.
func New(db *gorm.DB, kek KEK) *Keyring { return &Keyring{DB: db, KEK: kek} }
