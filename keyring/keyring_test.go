package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/models/modelstest"
	"github.com/carebook/carebook/nationalid"
)

// fixture is a fresh database with two seeded tenants (their national IDs
// sealed by keys) and the owner connection for assertions.
type fixture struct {
	admin, app *gorm.DB
	keys       *keyring.Keyring
	kek        *keyring.LocalKEK
	a, b       demo.Network
}

func newFixture(t *testing.T) fixture {
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
	kek, err := keyring.NewLocalKEK(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{admin: admin, app: app, kek: kek, keys: keyring.New(app, kek)}
	hash := func(string) (string, error) { return "not-a-real-hash", nil }
	ctx := context.Background()
	if f.a, err = demo.Seed(ctx, admin, demo.Options{Slug: "alpha", Name: "Alpha", Now: time.Now(), HashPassword: hash, Keys: f.keys}); err != nil {
		t.Fatal(err)
	}
	if f.b, err = demo.Seed(ctx, admin, demo.Options{Slug: "bravo", Name: "Bravo", Now: time.Now(), HashPassword: hash, Keys: f.keys}); err != nil {
		t.Fatal(err)
	}
	return f
}

// fresh is a keyring with nothing cached, as a process that just started.
func (f fixture) fresh() *keyring.Keyring { return keyring.New(f.app, f.kek) }

func TestSealedValuesOpenOnlyWhereTheyWereSealed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alpha, bravo := f.a.Tenant.ID, f.b.Tenant.ID
	here := keyring.Binding{Purpose: "notes.body", Row: "row-1"}

	sealed, err := f.keys.SealFor(ctx, alpha, here, "chest pain since Monday")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("chest")) {
		t.Fatal("the sealed value carries its plaintext")
	}
	if sealed[0] != keyring.Format1 {
		t.Errorf("format byte %d", sealed[0])
	}
	if v, err := keyring.Version(sealed); err != nil || v != 1 {
		t.Errorf("version %d, %v; want 1", v, err)
	}
	got, err := f.fresh().OpenFor(ctx, alpha, here, sealed)
	if err != nil || got != "chest pain since Monday" {
		t.Fatalf("OpenFor = %q, %v", got, err)
	}

	tests := []struct {
		name   string
		tenant uuid.UUID
		b      keyring.Binding
		sealed []byte
	}{
		{"another row", alpha, keyring.Binding{Purpose: "notes.body", Row: "row-2"}, sealed},
		{"another column", alpha, keyring.Binding{Purpose: "messages.body", Row: "row-1"}, sealed},
		{"another tenant", bravo, here, sealed},
		{"one bit flipped", alpha, here, flip(sealed, len(sealed)-1)},
		{"version byte edited", alpha, here, flip(sealed, 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.keys.OpenFor(ctx, tt.tenant, tt.b, tt.sealed)
			if err == nil || got != "" {
				t.Fatalf("opened: %q", got)
			}
			if !errors.Is(err, keyring.ErrDoesNotOpen) {
				t.Errorf("err = %v, want ErrDoesNotOpen", err)
			}
		})
	}

	// The signatures other code calls, without a binding.
	plain, err := f.keys.Seal(ctx, bravo, "JBSWY3DPEHPK3PXP")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.keys.Open(ctx, bravo, plain); err != nil || got != "JBSWY3DPEHPK3PXP" {
		t.Errorf("Open = %q, %v", got, err)
	}
	if _, err := f.keys.Open(ctx, alpha, plain); err == nil {
		t.Error("a value of bravo opened for alpha")
	}
	if _, err := f.keys.Open(ctx, alpha, []byte("plain text")); !errors.Is(err, keyring.ErrNotSealed) {
		t.Errorf("unsealed bytes: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 1
	return out
}

func TestWrongKEKFailsClosed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tenant := f.a.Tenant.ID
	sealed, err := f.keys.Seal(ctx, tenant, "sk_live_secret")
	if err != nil {
		t.Fatal(err)
	}

	other, err := keyring.NewLocalKEK(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	wrong := keyring.New(f.app, other)
	if got, err := wrong.Open(ctx, tenant, sealed); !errors.Is(err, keyring.ErrWrongKEK) || got != "" {
		t.Errorf("open with another KEK = %q, %v; want ErrWrongKEK", got, err)
	}
	if _, err := wrong.Seal(ctx, tenant, "x"); !errors.Is(err, keyring.ErrWrongKEK) {
		t.Errorf("seal with another KEK: %v; want ErrWrongKEK", err)
	}
	if _, err := wrong.Index(ctx, tenant, keyring.PurposeNationalID, "765894312"); !errors.Is(err, keyring.ErrWrongKEK) {
		t.Errorf("index with another KEK: %v; want ErrWrongKEK", err)
	}

	// The right KEK, but a wrapped key moved from another tenant.
	if err := f.admin.Exec(`UPDATE tenant_keys SET wrapped = (SELECT wrapped FROM tenant_keys WHERE tenant_id = ? AND kind = 'data' AND version = 1)
		WHERE tenant_id = ? AND kind = 'data' AND version = 1`, f.b.Tenant.ID, tenant).Error; err != nil {
		t.Fatal(err)
	}
	if got, err := f.fresh().Open(ctx, tenant, sealed); !errors.Is(err, keyring.ErrWrongKEK) || got != "" {
		t.Errorf("open under a key wrapped for another tenant = %q, %v; want ErrWrongKEK", got, err)
	}
}

func TestBlindIndexIsStableNormalisedAndPerTenant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alpha, bravo := f.a.Tenant.ID, f.b.Tenant.ID
	idx := func(k *keyring.Keyring, tenant uuid.UUID, purpose, v string) []byte {
		t.Helper()
		b, err := k.Index(ctx, tenant, purpose, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := idx(f.keys, alpha, keyring.PurposeNationalID, "765894312")
	tests := []struct {
		name string
		got  []byte
		want bool // equal to base
	}{
		{"same value, fresh process", idx(f.fresh(), alpha, keyring.PurposeNationalID, "765894312"), true},
		{"with hyphens", idx(f.keys, alpha, keyring.PurposeNationalID, "765-89-4312"), true},
		{"with spaces", idx(f.keys, alpha, keyring.PurposeNationalID, " 765 89 4312 "), true},
		{"another value", idx(f.keys, alpha, keyring.PurposeNationalID, "765894313"), false},
		{"another tenant", idx(f.keys, bravo, keyring.PurposeNationalID, "765894312"), false},
		{"another purpose", idx(f.keys, alpha, "other.column", "765894312"), false},
	}
	for _, tt := range tests {
		if got := bytes.Equal(tt.got, base); got != tt.want {
			t.Errorf("%s: equal = %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := f.keys.BeginRotation(ctx, alpha, "r1"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(idx(f.fresh(), alpha, keyring.PurposeNationalID, "765894312"), base) {
		t.Error("the blind index changed with a data key rotation")
	}
}

// TestRotationReencryptsEveryValueAndRetiresTheOldKey walks a rotation step
// by step, reading at each step as a process with a cold cache would.
func TestRotationReencryptsEveryValueAndRetiresTheOldKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tenant := f.a.Tenant.ID
	paul := f.a.Patients[3].ID
	readPaul := func(step string) {
		t.Helper()
		err := models.InTenant(ctx, f.app, tenant, func(tx *gorm.DB) error {
			ids, err := nationalid.Find(ctx, tx, f.fresh(), tenant, nationalid.SystemUSSSN, "765-89-4312")
			if err != nil {
				return err
			}
			if len(ids) != 1 || ids[0] != paul {
				t.Errorf("%s: found %v, want Paul", step, ids)
			}
			got, err := nationalid.Reveal(ctx, tx, f.fresh(), tenant, paul)
			if err != nil {
				return err
			}
			if got[nationalid.SystemUSSSN] != "765894312" {
				t.Errorf("%s: Paul's SSN reads %q", step, got[nationalid.SystemUSSSN])
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	readPaul("before")
	// More rows than one batch.
	for i := 0; i < 7; i++ {
		if err := models.InTenant(ctx, f.admin, tenant, func(tx *gorm.DB) error {
			p := models.Patient{ID: uuid.New(), TenantID: tenant, GivenName: "P", FamilyName: "Q"}
			if err := tx.Create(&p).Error; err != nil {
				return err
			}
			return nationalid.Store(ctx, tx, f.keys, tenant, p.ID, nationalid.SystemTCKimlik, "2000000"+string(rune('0'+i))+"146", "NI")
		}); err != nil {
			t.Fatal(err)
		}
	}

	r, err := f.keys.BeginRotation(ctx, tenant, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 2 || len(r.Old) != 1 || r.Old[0] != 1 {
		t.Fatalf("rotation = %+v, want version 2 replacing 1", r)
	}
	if again, err := f.keys.BeginRotation(ctx, tenant, "run-1"); err != nil || again.Version != 2 {
		t.Fatalf("the retried first step = %+v, %v; want version 2 again", again, err)
	}
	readPaul("old version, new one active")
	if s, err := f.keys.Seal(ctx, tenant, "new"); err != nil {
		t.Fatal(err)
	} else if v, _ := keyring.Version(s); v != 2 {
		t.Errorf("a new write sealed with version %d, want 2", v)
	}
	if _, remaining, err := f.keys.Retire(ctx, tenant, 2); err != nil || remaining != 9 {
		t.Fatalf("retire before re-encryption: remaining %d, %v; want 9 and nothing retired", remaining, err)
	}

	total := 0
	for _, c := range keyring.Columns() {
		for {
			n, err := f.keys.Reencrypt(ctx, tenant, c.Name, 2, 3)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			total += n
			readPaul("part re-encrypted")
		}
	}
	if total != 9 {
		t.Errorf("re-encrypted %d values, want 9 (Ayşe, Paul and 7 more)", total)
	}
	var old int64
	f.admin.Raw(`SELECT count(*) FROM patient_identifiers WHERE tenant_id = ? AND value_sealed IS NOT NULL AND substring(value_sealed FROM 2 FOR 4) <> '\x00000002'::bytea`, tenant).Scan(&old)
	if old != 0 {
		t.Errorf("%d national IDs still under version 1", old)
	}
	retired, remaining, err := f.keys.Retire(ctx, tenant, 2)
	if err != nil || remaining != 0 || len(retired) != 1 || retired[0] != 1 {
		t.Fatalf("retire = %v, %d, %v; want [1]", retired, remaining, err)
	}
	keys, err := f.keys.Keys(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	states := map[uint32]string{}
	for _, k := range keys {
		if k.Kind == keyring.KindData {
			states[k.Version] = k.State
		}
	}
	if states[1] != keyring.StateRetired || states[2] != keyring.StateActive {
		t.Errorf("data keys %v, want 1 retired and 2 active", states)
	}
	readPaul("after")

	// The other tenant's values and keys are untouched.
	var bravoOld int64
	f.admin.Raw(`SELECT count(*) FROM patient_identifiers WHERE tenant_id = ? AND substring(value_sealed FROM 2 FOR 4) = '\x00000001'::bytea`, f.b.Tenant.ID).Scan(&bravoOld)
	if bravoOld != 2 {
		t.Errorf("bravo has %d values under its version 1, want 2", bravoOld)
	}
}

// The owner connection (carebook seed, migrations) is not bound by row
// security: a keyring on it must still pick each tenant's own keys, as the
// second tenant seeded on one database does.
func TestOwnerConnectionKeepsTenantsKeysApart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	owner := keyring.New(f.admin, f.kek)
	hash := func(string) (string, error) { return "not-a-real-hash", nil }
	c, err := demo.Seed(ctx, f.admin, demo.Options{Slug: "charlie", Name: "Charlie", Now: time.Now(), HashPassword: hash, Keys: owner})
	if err != nil {
		t.Fatalf("seeding a third tenant with the owner's keyring: %v", err)
	}
	for _, tenant := range []uuid.UUID{f.a.Tenant.ID, c.Tenant.ID} {
		sealed, err := owner.Seal(ctx, tenant, "s3cret")
		if err != nil {
			t.Fatal(err)
		}
		// The app's keyring, bound by row security, opens it: it was sealed
		// under this tenant's own key.
		if got, err := f.fresh().Open(ctx, tenant, sealed); err != nil || got != "s3cret" {
			t.Fatalf("tenant %s: sealed by the owner's keyring, opened %q, %v", tenant, got, err)
		}
	}
	var n int64
	f.admin.Raw("SELECT count(*) FROM tenant_keys WHERE tenant_id = ? AND kind = 'data'", c.Tenant.ID).Scan(&n)
	if n != 1 {
		t.Fatalf("the third tenant has %d data keys, want its own one", n)
	}
}
