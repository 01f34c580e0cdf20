package labs

import (
	"reflect"
	"testing"

	"github.com/carebook/carebook/internal/sharedcases"
)

func readCase(t testing.TB, sub, name string) []byte { return sharedcases.Read(t, sub, name) }

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
