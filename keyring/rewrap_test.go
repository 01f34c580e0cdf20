package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/carebook/carebook/keyring"
)

// TestRewrapMovesEveryKeyToTheNewKEK replaces the KEK: while processes
// carry the new KEK and the old one, values sealed before still open and
// new keys are wrapped by the new one; after the rewrap the new KEK alone
// opens everything and the old one nothing. A chain without the KEK that
// wrapped a key refuses to rewrap and changes nothing.
func TestRewrapMovesEveryKeyToTheNewKEK(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alpha, bravo := f.a.Tenant.ID, f.b.Tenant.ID
	here := keyring.Binding{Purpose: "notes.body", Row: "row-1"}
	sealed, err := f.keys.SealFor(ctx, alpha, here, "old KEK")
	if err != nil {
		t.Fatal(err)
	}
	kek2, err := keyring.NewLocalKEK(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := keyring.NewLocalKEK(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.New(f.app, kek2).OpenFor(ctx, alpha, here, sealed); !errors.Is(err, keyring.ErrWrongKEK) {
		t.Fatalf("the new KEK alone opened a key the old one wraps: %v", err)
	}

	chain := keyring.Chain{Current: kek2, Previous: []keyring.KEK{f.kek}}
	if got, err := keyring.New(f.app, chain).OpenFor(ctx, alpha, here, sealed); err != nil || got != "old KEK" {
		t.Fatalf("through the chain: %q, %v", got, err)
	}
	var before int64
	if err := f.admin.Raw(`SELECT count(*) FROM tenant_keys WHERE kek_id = ?`, f.kek.ID()).Scan(&before).Error; err != nil || before == 0 {
		t.Fatalf("%d keys under the old KEK, %v", before, err)
	}

	// A chain that lacks the old KEK cannot open the keys, and leaves
	// them as they are.
	if _, err := keyring.New(f.admin, keyring.Chain{Current: kek2, Previous: []keyring.KEK{stranger}}).Rewrap(ctx, alpha); !errors.Is(err, keyring.ErrWrongKEK) {
		t.Fatalf("rewrap without the old KEK: %v", err)
	}
	var still int64
	if err := f.admin.Raw(`SELECT count(*) FROM tenant_keys WHERE kek_id = ?`, f.kek.ID()).Scan(&still).Error; err != nil || still != before {
		t.Fatalf("a failed rewrap changed keys: %d of %d left, %v", still, before, err)
	}

	owner := keyring.New(f.admin, chain)
	total := 0
	for tenant, id := range map[string]uuid.UUID{"alpha": alpha, "bravo": bravo} {
		r, err := owner.Rewrap(ctx, id)
		if err != nil {
			t.Fatalf("rewrap %s: %v", tenant, err)
		}
		if r.Keys == 0 || len(r.From) != 1 || r.From[0] != f.kek.ID() {
			t.Fatalf("rewrap %s: %+v", tenant, r)
		}
		total += r.Keys
	}
	if int64(total) != before {
		t.Fatalf("rewrapped %d keys of %d", total, before)
	}
	if again, err := owner.Rewrap(ctx, alpha); err != nil || again.Keys != 0 {
		t.Fatalf("second rewrap: %+v, %v", again, err)
	}
	var old int64
	if err := f.admin.Raw(`SELECT count(*) FROM tenant_keys WHERE kek_id <> ?`, kek2.ID()).Scan(&old).Error; err != nil || old != 0 {
		t.Fatalf("%d keys not under the new KEK, %v", old, err)
	}
	if got, err := keyring.New(f.app, kek2).OpenFor(ctx, alpha, here, sealed); err != nil || got != "old KEK" {
		t.Fatalf("the new KEK alone after the rewrap: %q, %v", got, err)
	}
	if _, err := keyring.New(f.app, f.kek).OpenFor(ctx, alpha, here, sealed); !errors.Is(err, keyring.ErrWrongKEK) {
		t.Fatalf("the old KEK still opens a rewrapped key: %v", err)
	}
	// Blind indexes are unchanged: the index key's material did not move.
	if a, b := mustIndex(t, f.keys, alpha), mustIndex(t, keyring.New(f.app, kek2), alpha); !bytes.Equal(a, b) {
		t.Fatal("the blind index changed with the rewrap")
	}
}

func mustIndex(t *testing.T, k *keyring.Keyring, tenant uuid.UUID) []byte {
	t.Helper()
	ix, err := k.Index(context.Background(), tenant, keyring.PurposeNationalID, "10000000146")
	if err != nil {
		t.Fatal(err)
	}
	return ix
}
