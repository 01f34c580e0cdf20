// Package peer runs the local peers that tests and `carebook dev` start as
// child processes (versitygw, Mailpit): started on loopback ports, tied to
// the life of this process, polled until they answer, stopped gently.
package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrPortTaken says a peer exited because a port found free was taken
// before it could bind it; a start on other free ports cures it.
var ErrPortTaken = errors.New("port taken")

// Proc is a running peer process.
type Proc struct {
	name     string
	cmd      *exec.Cmd
	out      *tailBuffer
	exited   chan struct{} // closed once the process has been waited for
	stopOnce sync.Once
}

// Start starts cmd, named name in errors, and polls ready every 50 ms until
// it answers nil, the process exits, or ctx ends; on failure the process is
// stopped and the error carries the end of its output (ErrPortTaken when
// its port was taken). The process is killed if this process dies, even by
// SIGKILL. (Linux ties this to the OS thread that started it: do not call
// Start from a goroutine that locks its thread and then exits.)
func Start(ctx context.Context, name string, cmd *exec.Cmd, ready func(context.Context) error) (*Proc, error) {
	p := &Proc{name: name, cmd: cmd, out: &tailBuffer{max: 4096}, exited: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(ctx, ready); err != nil {
		p.Stop()
		tail := strings.TrimSpace(p.out.String())
		if strings.Contains(tail, "address already in use") {
			return nil, fmt.Errorf("%s: %w: %s", name, ErrPortTaken, tail)
		}
		return nil, fmt.Errorf("%s did not start: %w; output: %s", name, err, tail)
	}
	return p, nil
}

func (p *Proc) waitReady(ctx context.Context, ready func(context.Context) error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		last := ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return errors.New("process exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last probe: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Stop ends the process with SIGTERM (SIGKILL after 5 s) and waits for
// it. It is safe to call more than once, and on a nil Proc.
func (p *Proc) Stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// Retry calls start up to attempts times while it fails with ErrPortTaken:
// the ports it picked were free when found, and another process took one
// in between.
func Retry[T any](attempts int, start func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := start()
		if err == nil || !errors.Is(err, ErrPortTaken) || attempt >= attempts {
			return v, err
		}
	}
}

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Env returns env without the variables drop names (by prefix when the
// name ends in '*'), so that a peer reads no settings of its own from this
// process's environment.
func Env(env []string, drop ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		for _, d := range drop {
			if prefix, ok := strings.CutSuffix(d, "*"); ok && strings.HasPrefix(name, prefix) || name == d {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// tailBuffer keeps the last max bytes written to it: enough of a peer's
// output to explain a failed start.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
