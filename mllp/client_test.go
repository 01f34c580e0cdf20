package mllp

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// blockingServer serves a handler that holds every message whose control
// ID is STUCK until the test ends, and acknowledges the others.
func blockingServer(t *testing.T) (*testServer, <-chan struct{}) {
	t.Helper()
	started := make(chan struct{}, 16)
	release := make(chan struct{})
	ts := startServer(t, &Server{Handler: func(_ context.Context, _ ConnInfo, msg []byte) []byte {
		if bytes.Contains(msg, []byte("|STUCK|")) {
			started <- struct{}{}
			<-release
		}
		return ackFor(msg)
	}})
	// Registered after startServer, so it runs before its Shutdown.
	t.Cleanup(func() { close(release) })
	return ts, started
}

func TestClientSendHonoursCancel(t *testing.T) {
	ts, started := blockingServer(t)
	c := dial(t, ts.addr)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, testMessage("STUCK"))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Send = %v, want context.Canceled", err)
		}
	case <-time.After(patience):
		t.Fatal("Send did not return after cancel")
	}

	// A late acknowledgment could now be mistaken for the next one's.
	ctx2, cancel2 := context.WithTimeout(context.Background(), patience)
	defer cancel2()
	if _, err := c.Send(ctx2, testMessage("NEXT")); !errors.Is(err, ErrConnBroken) {
		t.Errorf("Send after a cancelled one = %v, want ErrConnBroken", err)
	}
}

func TestClientSendHonoursDeadline(t *testing.T) {
	ts, _ := blockingServer(t)
	c := dial(t, ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, testMessage("STUCK"))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(patience):
		t.Fatal("Send did not return at its deadline")
	}
}

func TestClientSendWithDoneContextWritesNothing(t *testing.T) {
	ts, _ := blockingServer(t)
	c := dial(t, ts.addr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Send(ctx, testMessage("STUCK")); !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}
	// Nothing was written, so the connection is still good.
	if _, id := ackedID(t, send(t, c, testMessage("AFTER"))); id != "AFTER" {
		t.Errorf("acknowledged %q", id)
	}
}

func TestClientRefusesUnframeableMessage(t *testing.T) {
	ts := startServer(t, &Server{})
	c := dial(t, ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	bad := append(testMessage("BAD"), EndBlock)
	if _, err := c.Send(ctx, bad); !errors.Is(err, ErrFraming) {
		t.Errorf("Send = %v, want ErrFraming", err)
	}
	if _, id := ackedID(t, send(t, c, testMessage("GOOD"))); id != "GOOD" {
		t.Errorf("acknowledged %q", id)
	}
}

func TestClientSendsTakeTurns(t *testing.T) {
	ts := startServer(t, &Server{})
	c := dial(t, ts.addr)
	ids := []string{"T0", "T1", "T2", "T3", "T4", "T5", "T6", "T7"}
	errs := make(chan error, len(ids))
	for _, id := range ids {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			ack, err := c.Send(ctx, testMessage(id))
			if err == nil && !bytes.Contains(ack, []byte("|"+id+"\r")) {
				err = errors.New(id + " got another message's acknowledgment")
			}
			errs <- err
		}()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
