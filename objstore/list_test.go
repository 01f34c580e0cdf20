package objstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/carebook/carebook/objstore"
)

func TestListReturnsTheKindsKeysInOrder(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	tenant, other := uuid.New(), uuid.New()
	p := objstore.TenantPrefix(tenant)
	for _, k := range []string{p + "anchors/b", p + "anchors/a", p + "anchors/c", p + "anchors/deeper/x", p + "anchors-2/a"} {
		if _, err := s.PutKey(ctx, tenant, k, []byte(k), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutKey(ctx, other, objstore.TenantPrefix(other)+"anchors/0", []byte("x"), ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		limit int
		want  []string
	}{
		{"all", 10, []string{p + "anchors/a", p + "anchors/b", p + "anchors/c"}},
		{"first", 1, []string{p + "anchors/a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.List(ctx, tenant, "anchors", tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPutKeyOnceNeverReplaces(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	tenant := uuid.New()
	key := objstore.TenantPrefix(tenant) + "anchors/1"
	if _, err := s.PutKeyOnce(ctx, tenant, key, []byte("first"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutKeyOnce(ctx, tenant, key, []byte("second"), ""); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("second put: %v", err)
	}
	got, err := s.Get(ctx, tenant, key)
	if err != nil || string(got) != "first" {
		t.Fatalf("%q %v", got, err)
	}
}
