package mllp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carebook/carebook/hl7"
)

// patience bounds every wait for something that must eventually happen;
// it is generous so that a slow machine does not fail the tests.
const patience = 10 * time.Second

// secret stands for patient data: it is in every test message and must
// never reach the log.
const secret = "SECRET-PATIENT-DATA"

func testMessage(id string) []byte {
	return []byte("MSH|^~\\&|LABAPP|LABFAC|CAREBOOK|CLINIC|20260102103000||ORU^R01^ORU_R01|" + id + "|P|2.5.1\r" +
		"PID|1||" + secret + "^^^HOSP^MR\r")
}

// ackFor is a handler's acknowledgment: AA naming the message's control
// ID, AR for a message that does not parse.
func ackFor(msg []byte) []byte {
	a := hl7.Ack{Code: hl7.AckAccept, ControlID: "ACK", Time: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	if _, err := hl7.Parse(msg); err != nil {
		a.Code, a.Cause = hl7.AckReject, err
	}
	return hl7.NewACKRaw(msg, a)
}

func ackHandler(_ context.Context, _ ConnInfo, msg []byte) []byte { return ackFor(msg) }

// ackedID returns MSA-1 and MSA-2 of an acknowledgment.
func ackedID(t *testing.T, ack []byte) (code, id string) {
	t.Helper()
	m, err := hl7.Parse(ack)
	if err != nil {
		t.Fatalf("acknowledgment does not parse: %v", err)
	}
	msa := m.Segment("MSA")
	if msa == nil {
		t.Fatal("acknowledgment without MSA")
	}
	return msa.Field(1).Value(), msa.Field(2).Value()
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	*Server
	addr  string
	logs  *syncBuffer
	serve chan error
}

// startServer serves s on a free loopback port with a captured log. On
// cleanup it shuts s down, checks Serve returned ErrServerClosed, and that
// the log never quotes a message.
func startServer(t *testing.T, s *Server) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if s.Handler == nil {
		s.Handler = ackHandler
	}
	ts := &testServer{Server: s, addr: ln.Addr().String(), logs: logs, serve: make(chan error, 1)}
	go func() { ts.serve <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-ts.serve:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(patience):
			t.Error("Serve did not return after Shutdown")
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log quotes message content:\n%s", logs.String())
		}
	})
	return ts
}

func dial(t *testing.T, addr string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, patience)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

func send(t *testing.T, c *Client, msg []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ack, err := c.Send(ctx, msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return ack
}

// expectClosed reads from nc until the server closes it, failing if any
// byte arrives (no acknowledgment is due) or nothing happens in time.
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(patience))
	buf := make([]byte, 512)
	n, err := nc.Read(buf)
	if n > 0 {
		t.Fatalf("read %d bytes, want the connection closed without a reply", n)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection still open")
	}
	if err == nil {
		t.Fatal("read returned no error and no bytes")
	}
}

// eventually polls cond until it holds or patience runs out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: did not happen", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServerRoundTripInOrder(t *testing.T) {
	var inFlight, overlaps atomic.Int32
	var gotRemote sync.Map
	ts := startServer(t, &Server{Handler: func(ctx context.Context, conn ConnInfo, msg []byte) []byte {
		if inFlight.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inFlight.Add(-1)
		gotRemote.Store(conn.RemoteAddr.String(), true)
		return ackFor(msg)
	}})
	c := dial(t, ts.addr)
	for i := range 20 {
		id := fmt.Sprintf("MSG-%d", i)
		code, acked := ackedID(t, send(t, c, testMessage(id)))
		if code != "AA" || acked != id {
			t.Fatalf("message %d acknowledged as %s %q, want AA %q", i, code, acked, id)
		}
	}
	if n := overlaps.Load(); n != 0 {
		t.Errorf("handlers overlapped %d times on one connection", n)
	}
	if _, ok := gotRemote.Load(c.nc.LocalAddr().String()); !ok {
		t.Errorf("handler did not see the client's address %s", c.nc.LocalAddr())
	}
}

func TestServerConnectionsConcurrent(t *testing.T) {
	// The first two messages wait for each other: if connections were
	// served one at a time, neither would return.
	var first sync.WaitGroup
	first.Add(2)
	var calls atomic.Int32
	ts := startServer(t, &Server{Handler: func(ctx context.Context, _ ConnInfo, msg []byte) []byte {
		if calls.Add(1) <= 2 {
			first.Done()
			first.Wait()
		}
		return ackFor(msg)
	}})

	const clients, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for k := range clients {
		c := dial(t, ts.addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("C%d-M%d", k, i)
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				ack, err := c.Send(ctx, testMessage(id))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
					return
				}
				m, err := hl7.Parse(ack)
				if err != nil {
					errs <- fmt.Errorf("%s: ack: %w", id, err)
					return
				}
				if got := m.Segment("MSA").Field(2).Value(); got != id {
					errs <- fmt.Errorf("%s acknowledged as %q", id, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := calls.Load(); n != clients*each {
		t.Errorf("handler called %d times, want %d", n, clients*each)
	}
}

func TestServerMessageInSmallWrites(t *testing.T) {
	ts := startServer(t, &Server{})
	nc := dialRaw(t, ts.addr)
	wire := []byte("\r\n" + frame(string(testMessage("SPLIT-1"))))
	for len(wire) > 0 {
		n := min(3, len(wire))
		if _, err := nc.Write(wire[:n]); err != nil {
			t.Fatal(err)
		}
		wire = wire[n:]
	}
	nc.SetReadDeadline(time.Now().Add(patience))
	ack, err := NewReader(nc, 0).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if code, id := ackedID(t, ack); code != "AA" || id != "SPLIT-1" {
		t.Errorf("acknowledged as %s %q", code, id)
	}
}

func TestServerTwoFramesInOneWrite(t *testing.T) {
	ts := startServer(t, &Server{})
	nc := dialRaw(t, ts.addr)
	wire := frame(string(testMessage("TWO-1"))) + frame(string(testMessage("TWO-2")))
	if _, err := nc.Write([]byte(wire)); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(patience))
	r := NewReader(nc, 0)
	for _, want := range []string{"TWO-1", "TWO-2"} {
		ack, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if code, id := ackedID(t, ack); code != "AA" || id != want {
			t.Errorf("acknowledged as %s %q, want AA %q", code, id, want)
		}
	}
}

func TestServerOversizeMessageClosesConnection(t *testing.T) {
	var calls atomic.Int32
	ts := startServer(t, &Server{MaxMessageSize: 200, Handler: func(_ context.Context, _ ConnInfo, msg []byte) []byte {
		calls.Add(1)
		return ackFor(msg)
	}})
	nc := dialRaw(t, ts.addr)
	big := string(testMessage("BIG")) + strings.Repeat("NTE|1||"+secret+"\r", 20)
	if _, err := nc.Write([]byte(frame(big))); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, nc)
	if n := calls.Load(); n != 0 {
		t.Errorf("handler called %d times for an oversize message", n)
	}

	// The server goes on with others.
	c := dial(t, ts.addr)
	if code, id := ackedID(t, send(t, c, testMessage("SMALL"))); code != "AA" || id != "SMALL" {
		t.Errorf("acknowledged as %s %q", code, id)
	}
	eventually(t, "oversize logged", func() bool { return strings.Contains(ts.logs.String(), closeTooLarge) })
}

func TestServerBadFramingClosesConnection(t *testing.T) {
	tests := []struct {
		name string
		wire string
	}{
		{name: "end block without CR", wire: "\x0b" + string(testMessage("X")) + "\x1cMSH"},
		{name: "junk before start block", wire: "GET / HTTP/1.1\r\n" + frame(string(testMessage("X")))},
		{name: "start block inside message", wire: "\x0bMSH|" + secret + "\x0b" + frame(string(testMessage("X")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, &Server{})
			nc := dialRaw(t, ts.addr)
			if _, err := nc.Write([]byte(tt.wire)); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, nc)
			c := dial(t, ts.addr)
			if code, _ := ackedID(t, send(t, c, testMessage("OK"))); code != "AA" {
				t.Errorf("next connection acknowledged %s", code)
			}
			eventually(t, "framing error logged", func() bool { return strings.Contains(ts.logs.String(), closeFraming) })
		})
	}
}

func TestServerHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	ts := startServer(t, &Server{Handler: func(_ context.Context, _ ConnInfo, msg []byte) []byte {
		if bytes.Contains(msg, []byte("|PANIC|")) {
			panic("handler failed on " + string(msg))
		}
		return ackFor(msg)
	}})
	other := dial(t, ts.addr)
	send(t, other, testMessage("BEFORE"))

	victim := dial(t, ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := victim.Send(ctx, testMessage("PANIC")); !errors.Is(err, io.EOF) {
		t.Errorf("Send of the panicking message: %v, want the connection closed (EOF)", err)
	}

	if _, id := ackedID(t, send(t, other, testMessage("AFTER"))); id != "AFTER" {
		t.Errorf("other connection acknowledged %q", id)
	}
	fresh := dial(t, ts.addr)
	if _, id := ackedID(t, send(t, fresh, testMessage("FRESH"))); id != "FRESH" {
		t.Errorf("new connection acknowledged %q", id)
	}
	eventually(t, "panic logged", func() bool { return strings.Contains(ts.logs.String(), "mllp handler panic") })
	// startServer's cleanup checks that the panic value, which quotes
	// the message, is not in the log.
}

func TestServerHandlerWithoutAckClosesConnection(t *testing.T) {
	ts := startServer(t, &Server{Handler: func(context.Context, ConnInfo, []byte) []byte { return nil }})
	c := dial(t, ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := c.Send(ctx, testMessage("NOACK")); !errors.Is(err, io.EOF) {
		t.Errorf("Send: %v, want the connection closed (EOF)", err)
	}
}

func TestServerIdleTimeoutClosesConnection(t *testing.T) {
	ts := startServer(t, &Server{IdleTimeout: 50 * time.Millisecond})

	t.Run("never sent", func(t *testing.T) {
		expectClosed(t, dialRaw(t, ts.addr))
	})
	t.Run("after a message", func(t *testing.T) {
		nc := dialRaw(t, ts.addr)
		if _, err := nc.Write([]byte(frame(string(testMessage("IDLE"))))); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(patience))
		if _, err := NewReader(nc, 0).ReadFrame(); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, nc)
	})
	eventually(t, "idle timeout logged", func() bool { return strings.Contains(ts.logs.String(), closeIdle) })
}

func TestServerReadTimeoutClosesSlowMessage(t *testing.T) {
	var calls atomic.Int32
	ts := startServer(t, &Server{ReadTimeout: 50 * time.Millisecond, IdleTimeout: time.Hour, Handler: func(_ context.Context, _ ConnInfo, msg []byte) []byte {
		calls.Add(1)
		return ackFor(msg)
	}})
	nc := dialRaw(t, ts.addr)
	if _, err := nc.Write([]byte("\x0bMSH|^~\\&|")); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, nc)
	if n := calls.Load(); n != 0 {
		t.Errorf("handler called %d times for an unfinished message", n)
	}
	eventually(t, "read timeout logged", func() bool { return strings.Contains(ts.logs.String(), closeRead) })
}

func TestServerMaxConns(t *testing.T) {
	ts := startServer(t, &Server{MaxConns: 1})
	first := dial(t, ts.addr)
	send(t, first, testMessage("FIRST"))

	expectClosed(t, dialRaw(t, ts.addr))

	first.Close()
	eventually(t, "a slot frees up", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		c, err := Dial(ctx, ts.addr)
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.Send(ctx, testMessage("LATER"))
		return err == nil
	})
}

func TestShutdownWaitsForInFlightHandler(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	ts := startServer(t, &Server{Handler: func(_ context.Context, _ ConnInfo, msg []byte) []byte {
		if bytes.Contains(msg, []byte("|SLOW|")) {
			close(started)
			<-release
			finished.Store(true)
		}
		return ackFor(msg)
	}})

	idle := dialRaw(t, ts.addr)
	busy := dial(t, ts.addr)
	type result struct {
		ack []byte
		err error
	}
	sent := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		ack, err := busy.Send(ctx, testMessage("SLOW"))
		sent <- result{ack, err}
	}()
	select {
	case <-started:
	case <-time.After(patience):
		t.Fatal("handler did not start")
	}

	shutdown := make(chan bool, 1) // whether the handler had finished
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		shutdown <- finished.Load()
	}()

	// Idle connections close at once, while the handler still runs.
	expectClosed(t, idle)
	close(release)

	select {
	case handlerDone := <-shutdown:
		if !handlerDone {
			t.Error("Shutdown returned before the in-flight handler finished")
		}
	case <-time.After(patience):
		t.Fatal("Shutdown did not return")
	}
	r := <-sent
	if r.err != nil {
		t.Fatalf("in-flight message not acknowledged: %v", r.err)
	}
	if _, id := ackedID(t, r.ack); id != "SLOW" {
		t.Errorf("acknowledged %q", id)
	}
	select {
	case err := <-ts.serve:
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
		ts.serve <- err // for startServer's cleanup
	case <-time.After(patience):
		t.Fatal("Serve did not return")
	}
}

func TestShutdownGivesUpAtDeadline(t *testing.T) {
	started := make(chan struct{})
	handlerCtxDone := make(chan struct{})
	ts := startServer(t, &Server{Handler: func(ctx context.Context, _ ConnInfo, msg []byte) []byte {
		close(started)
		<-ctx.Done()
		close(handlerCtxDone)
		return ackFor(msg)
	}})
	c := dial(t, ts.addr)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		c.Send(ctx, testMessage("STUCK"))
	}()
	select {
	case <-started:
	case <-time.After(patience):
		t.Fatal("handler did not start")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	select {
	case <-handlerCtxDone:
	case <-time.After(patience):
		t.Fatal("handler context not cancelled when Shutdown gave up")
	}
}

func TestShutdownClosesConnectionIdleAfterTrailingCRLF(t *testing.T) {
	// A sender ending frames with CRLF is idle once the CRLF is read; it
	// must not hold Shutdown up as if a message were arriving.
	ts := startServer(t, &Server{ReadTimeout: time.Hour})
	nc := dialRaw(t, ts.addr)
	if _, err := nc.Write([]byte(frame(string(testMessage("CRLF"))) + "\r\n")); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(patience))
	if _, err := NewReader(nc, 0).ReadFrame(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	expectClosed(t, nc)
}

func TestServeWithoutHandler(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var s Server
	if err := s.Serve(ln); err == nil || errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve without a handler = %v, want an error", err)
	}
}

// TestMaxConnsPerHost: one address holding its share of connections is
// refused more, while the server still has room; a freed slot is usable.
func TestMaxConnsPerHost(t *testing.T) {
	srv := &Server{Handler: func(ctx context.Context, _ ConnInfo, msg []byte) []byte { return msg }, MaxConnsPerHost: 2}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	dial := func() *Client {
		c, err := Dial(context.Background(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	send := func(c *Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Send(ctx, []byte("MSH|^~\\&|A"))
		return err
	}
	a, b := dial(), dial()
	if err := send(a); err != nil {
		t.Fatal(err)
	}
	if err := send(b); err != nil {
		t.Fatal(err)
	}
	third := dial()
	if err := send(third); err == nil {
		t.Fatal("a third connection from the same address was served")
	}
	third.Close()
	a.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dial()
		err := send(c)
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a freed slot was never usable: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Close()
}
