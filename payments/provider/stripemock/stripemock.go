// Package stripemock runs stripe-mock, Stripe's API simulator, as a local
// process on loopback, for tests and for `carebook dev`.
package stripemock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/carebook/carebook/internal/gobin"
)

// Install is the command that builds the binary this package looks for.
const Install = "go install github.com/stripe/stripe-mock@v0.203.0"

// Binary finds stripe-mock on PATH or in $GOPATH/bin (where `go install`
// puts it).
func Binary() (string, error) { return gobin.Find("stripe-mock", Install) }

// Mock is a running stripe-mock.
type Mock struct {
	URL string // e.g. http://127.0.0.1:40123
	cmd *exec.Cmd
}

// Start runs stripe-mock on free loopback ports (both listeners, since it
// otherwise opens its HTTPS one on every interface) and returns once it
// says where it listens.
func Start(ctx context.Context) (*Mock, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	// The mock dies with its parent, even one killed with SIGKILL, so no
	// stray stripe-mock outlives a test run or a dev session.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start stripe-mock: %w", err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if _, addr, ok := strings.Cut(line, "Listening for HTTP at address: "); ok {
				select {
				case found <- strings.TrimSpace(addr):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case addr := <-found:
		return &Mock{URL: "http://" + addr, cmd: cmd}, nil
	case <-time.After(15 * time.Second):
	case <-ctx.Done():
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, errors.New("stripe-mock did not report its address")
}

// Stop ends the process.
func (m *Mock) Stop() {
	if m == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
}
