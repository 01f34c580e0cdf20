// Package gobin finds the local peers the tests and `carebook dev` run
// (stripe-mock, versitygw, Mailpit): programs `make tools` builds with
// `go install`.
package gobin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Find returns the path of the program name, on PATH or in $GOPATH/bin
// (where `go install` puts it), or an error that says how to install it.
func Find(name, install string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	// GOPATH may be a list; `go install` writes to the first entry.
	gopath, _, _ = strings.Cut(gopath, string(os.PathListSeparator))
	p := filepath.Join(gopath, "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is not installed (%s)", name, install)
	}
	return p, nil
}
