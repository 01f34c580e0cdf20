// Package sharedcases finds the shared public test inputs (real HL7
// messages, FHIR resources, Stripe events) that tests read in place. They
// live in $CAREBOOK_SHARED_CASES, or in shared/cases beside the repository
// (the Makefile sets the variable to that folder). A missing file fails the
// test instead of skipping it: these files are the evidence.
package sharedcases

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Root is the cases folder: $CAREBOOK_SHARED_CASES, else ../shared/cases
// from the module's root (found by walking up to go.mod from the working
// directory, which is the package's folder under go test).
func Root() (string, error) {
	if dir := os.Getenv("CAREBOOK_SHARED_CASES"); dir != "" {
		return dir, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "cases"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; set CAREBOOK_SHARED_CASES")
		}
		dir = parent
	}
}

// Dir is the folder of one kind of case (hl7, fhir, stripe), checked to
// exist.
func Dir(t testing.TB, sub string) string {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, sub)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("shared cases not found at %s (set CAREBOOK_SHARED_CASES to the cases folder): %v", dir, err)
	}
	return dir
}

// Read reads one case file.
func Read(t testing.TB, sub, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(t, sub), name))
	if err != nil {
		t.Fatalf("shared case %s/%s: %v", sub, name, err)
	}
	return b
}
