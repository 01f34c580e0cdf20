package labs

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// casesDir finds a folder of the shared public test inputs:
// $CAREBOOK_SHARED_CASES/<sub>, or ../../shared/cases/<sub> from this
// package. A missing folder fails the test: these files are the evidence
// that the mapping works on what labs really send.
func casesDir(t testing.TB, sub string) string {
	t.Helper()
	root := os.Getenv("CAREBOOK_SHARED_CASES")
	if root == "" {
		root = filepath.Join("..", "..", "shared", "cases")
	}
	dir := filepath.Join(root, sub)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("shared cases not found at %s (set CAREBOOK_SHARED_CASES): %v", dir, err)
	}
	return dir
}

func readCase(t testing.TB, sub, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(casesDir(t, sub), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eq compares one field and names it when it differs.
func eq[T comparable](t *testing.T, name string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}

func deq(t *testing.T, name string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}

// fptr is a pointer to a bound, for comparing Low and High.
func fptr(f float64) *float64 { return &f }
