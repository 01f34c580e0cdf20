package peer

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvDropsThePeersOwnSettings(t *testing.T) {
	got := Env([]string{"VGW_PORT=1", "ROOT_X=2", "LOGFILE=/x", "LOGFILES=keep", "PATH=/bin", "MP_SMTP=3"}, "VGW_*", "ROOT_*", "LOGFILE")
	want := []string{"LOGFILES=keep", "PATH=/bin", "MP_SMTP=3"}
	if !slices.Equal(got, want) {
		t.Fatalf("Env = %v, want %v", got, want)
	}
}

func TestRetryOnlyRetriesATakenPort(t *testing.T) {
	calls := 0
	_, err := Retry(3, func() (int, error) { calls++; return 0, ErrPortTaken })
	if !errors.Is(err, ErrPortTaken) || calls != 3 {
		t.Fatalf("taken port: %d calls, %v; want 3 calls", calls, err)
	}
	calls = 0
	other := errors.New("boom")
	if _, err := Retry(3, func() (int, error) { calls++; return 0, other }); err != other || calls != 1 {
		t.Fatalf("other error: %d calls, %v; want 1 call", calls, err)
	}
	calls = 0
	if v, err := Retry(3, func() (int, error) {
		calls++
		if calls < 2 {
			return 0, ErrPortTaken
		}
		return 7, nil
	}); err != nil || v != 7 || calls != 2 {
		t.Fatalf("second try: %d, %v after %d calls", v, err, calls)
	}
}

func TestStartWaitsForReadyAndStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	polls := 0
	p, err := Start(ctx, "sleeper", exec.Command("sleep", "30"), func(context.Context) error {
		if polls++; polls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || polls != 3 {
		t.Fatalf("start: %v after %d polls", err, polls)
	}
	p.Stop()
	p.Stop() // twice is fine
	select {
	case <-p.exited:
	default:
		t.Fatal("Stop returned before the process ended")
	}
}

func TestStartReportsAnExitAndATakenPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	never := func(context.Context) error { return errors.New("not ready") }
	_, err := Start(ctx, "crasher", exec.Command("sh", "-c", "echo config broken; exit 1"), never)
	if err == nil || errors.Is(err, ErrPortTaken) || !strings.Contains(err.Error(), "config broken") {
		t.Fatalf("an exiting peer: %v; want its output and no ErrPortTaken", err)
	}
	_, err = Start(ctx, "busy", exec.Command("sh", "-c", "echo 'listen tcp 127.0.0.1:1: bind: address already in use'; exit 1"), never)
	if !errors.Is(err, ErrPortTaken) {
		t.Fatalf("a peer whose port was taken: %v; want ErrPortTaken", err)
	}
}
