package mllp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"
)

// Defaults for the Server fields left at zero.
const (
	// DefaultReadTimeout bounds reading one message once its first byte
	// has arrived: a megabyte at a slow link's pace arrives well within
	// it, and a sender trickling bytes cannot hold a connection forever.
	DefaultReadTimeout = time.Minute
	// DefaultIdleTimeout is how long a connection may wait for its next
	// message. Lab interface engines keep connections open between
	// results and reconnect when one was closed, so closing quiet ones
	// costs a reconnect and frees their slot under MaxConns.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultWriteTimeout bounds writing one acknowledgment, a few hundred
	// bytes: only a sender that stopped reading takes longer.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxConns is the number of connections served at once. Each
	// lab sends over one or a few connections.
	DefaultMaxConns = 256
	// DefaultMaxConnsPerHost is the share of them one remote address may
	// hold: plenty for a lab's interface engine, and far short of the
	// whole server.
	DefaultMaxConnsPerHost = 32
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("mllp: server closed")

// ConnInfo identifies the connection a message came in on.
type ConnInfo struct {
	RemoteAddr net.Addr
	LocalAddr  net.Addr
}

// HandlerFunc handles one message and returns the acknowledgment to send
// back, unframed. It must return only once the message is durably stored
// (or refused): the sender takes the acknowledgment as the receiver's word
// that the message is safe. A nil or empty return sends nothing and closes
// the connection, so the sender will send the message again.
//
// Messages of one connection are handled one at a time, in order. ctx is
// cancelled only when Shutdown gives up waiting.
type HandlerFunc func(ctx context.Context, conn ConnInfo, msg []byte) []byte

// Server accepts MLLP connections and hands each message to Handler. Set
// the fields before Serve and do not change them afterwards; zero (or
// negative) limits take the defaults above. A Server is not reused after
// Shutdown.
type Server struct {
	Handler HandlerFunc
	// ReadTimeout bounds reading one message from its first byte.
	ReadTimeout time.Duration
	// IdleTimeout bounds the wait for the next message.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one acknowledgment.
	WriteTimeout time.Duration
	// MaxMessageSize is the largest message accepted, in bytes
	// (DefaultMaxMessageSize when zero). A larger one closes the
	// connection.
	MaxMessageSize int
	// MaxConns is how many connections are served at once; a connection
	// beyond it is closed as soon as it is accepted.
	MaxConns int
	// MaxConnsPerHost is how many of them one remote address may hold
	// (DefaultMaxConnsPerHost when zero), so that one sender, or anyone
	// opening idle connections, cannot fill the server for every lab.
	MaxConnsPerHost int
	// Logger receives one line per message and per closed connection,
	// with addresses, sizes and durations, never message content.
	// slog.Default() when nil.
	Logger *slog.Logger

	initOnce  sync.Once
	baseCtx   context.Context
	cancel    context.CancelFunc
	mu        sync.Mutex
	shutdown  bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perHost   map[string]int
	wg        sync.WaitGroup
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.baseCtx, s.cancel = context.WithCancel(context.Background())
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		s.perHost = map[string]int{}
	})
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Serve accepts connections on ln and serves each in its own goroutine
// until Shutdown, then returns ErrServerClosed. It retries temporary
// Accept errors (such as running out of file descriptors) and returns any
// other. ln is closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	if s.Handler == nil {
		return errors.New("mllp: Server.Handler is nil")
	}
	s.init()
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing() {
				return ErrServerClosed
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				// Out of file descriptors and the like: wait for some to
				// be released rather than spin or give up.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("mllp accept failed", "error", err, "retryMs", backoff.Milliseconds())
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("mllp: accept: %w", err)
		}
		backoff = 0
		c := &conn{srv: s, nc: nc, info: ConnInfo{RemoteAddr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr()}}
		if !s.track(c) {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// track registers c, or refuses it during shutdown or when MaxConns
// connections are open.
func (s *Server) track(c *conn) bool {
	limit := orDefault(s.MaxConns, DefaultMaxConns)
	hostLimit := orDefault(s.MaxConnsPerHost, DefaultMaxConnsPerHost)
	host := hostOf(c.info.RemoteAddr)
	s.mu.Lock()
	shutdown, full, hostFull := s.shutdown, len(s.conns) >= limit, s.perHost[host] >= hostLimit
	ok := !shutdown && !full && !hostFull
	if ok {
		s.conns[c] = struct{}{}
		s.perHost[host]++
		s.wg.Add(1)
	}
	s.mu.Unlock()
	switch {
	case shutdown:
	case full:
		s.logger().Warn("mllp connection refused: too many connections",
			"remoteAddr", c.info.RemoteAddr.String(), "maxConns", limit)
	case hostFull:
		s.logger().Warn("mllp connection refused: too many connections from one address",
			"remoteAddr", c.info.RemoteAddr.String(), "maxConnsPerHost", hostLimit)
	}
	return ok
}

func (s *Server) untrack(c *conn) {
	host := hostOf(c.info.RemoteAddr)
	s.mu.Lock()
	delete(s.conns, c)
	if s.perHost[host]--; s.perHost[host] <= 0 {
		delete(s.perHost, host)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// hostOf is the address's host without its port.
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// Shutdown stops the server gracefully: it closes the listeners, closes
// connections waiting for a message, and waits for those handling one to
// write its acknowledgment, after which they close too. If ctx ends first,
// Shutdown cancels the handlers' context, closes every connection and
// returns ctx's error; handlers that ignore their context may still be
// running then.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.shutdown = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		if c.idle {
			c.nc.Close()
		}
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// conn is one accepted connection.
type conn struct {
	srv  *Server
	nc   net.Conn
	info ConnInfo
	// idle is true while the connection waits for a message; guarded by
	// srv.mu.
	idle bool
}

// setIdle marks c idle, or reports false when the server is shutting down
// and c should close instead of waiting for another message.
func (c *conn) setIdle(idle bool) bool {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if c.srv.shutdown {
		return false
	}
	c.idle = idle
	return true
}

// Reasons a connection closes, for the log.
const (
	closeEOF        = "peer closed"
	closeTruncated  = "peer closed inside a message"
	closeShutdown   = "server shutdown"
	closeIdle       = "idle timeout"
	closeRead       = "read timeout"
	closeReadError  = "read error"
	closeFraming    = "framing error"
	closeTooLarge   = "message too large"
	closePanic      = "handler panic"
	closeNoAck      = "handler returned no acknowledgment"
	closeWriteError = "write error"
)

func (c *conn) serve() {
	s := c.srv
	log := s.logger().With("remoteAddr", c.info.RemoteAddr.String())
	opened := time.Now()
	messages := 0
	reason := closeEOF
	defer func() {
		c.nc.Close()
		s.untrack(c)
		level := slog.LevelInfo
		switch reason {
		case closeFraming, closeTooLarge, closeNoAck, closeWriteError, closeRead, closeReadError, closeTruncated:
			level = slog.LevelWarn
		case closePanic:
			level = slog.LevelError
		}
		log.Log(context.Background(), level, "mllp connection closed",
			"reason", reason,
			"messages", messages,
			"ms", time.Since(opened).Milliseconds(),
		)
	}()

	br := bufio.NewReader(c.nc)
	fr := NewReader(br, s.MaxMessageSize)
	readTimeout := orDefault(s.ReadTimeout, DefaultReadTimeout)
	idleTimeout := orDefault(s.IdleTimeout, DefaultIdleTimeout)
	writeTimeout := orDefault(s.WriteTimeout, DefaultWriteTimeout)
	for {
		if !c.setIdle(true) {
			reason = closeShutdown
			return
		}
		c.nc.SetReadDeadline(time.Now().Add(idleTimeout))
		if err := skipSpace(br); err != nil {
			reason = c.readFailure(err, closeIdle)
			return
		}
		if !c.setIdle(false) {
			// The message has begun to arrive but is not read: the
			// sender gets no acknowledgment and sends it again.
			reason = closeShutdown
			return
		}
		start := time.Now()
		c.nc.SetReadDeadline(start.Add(readTimeout))
		msg, err := fr.ReadFrame()
		if err != nil {
			reason = c.readFailure(err, closeRead)
			return
		}

		ack, panicked := c.handle(msg, log)
		if panicked {
			reason = closePanic
			return
		}
		if len(ack) == 0 {
			reason = closeNoAck
			return
		}
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := WriteFrame(c.nc, ack); err != nil {
			// Either the peer is gone or the handler's bytes cannot be
			// framed; the error names no content in both cases.
			log.Warn("mllp acknowledgment not written", "error", err)
			reason = closeWriteError
			return
		}
		messages++
		log.Info("mllp message",
			"bytes", len(msg),
			"ackBytes", len(ack),
			"ms", time.Since(start).Milliseconds(),
		)
	}
}

// skipSpace waits for the next byte that is not whitespace, dropping the
// whitespace before it, so that a sender ending frames with CRLF does not
// look busy while it is idle.
func skipSpace(br *bufio.Reader) error {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return err
		}
		if !isSpace(b[0]) {
			return nil
		}
		br.Discard(1)
	}
}

// readFailure names why reading stopped; timeout is the reason to give
// when the deadline passed.
func (c *conn) readFailure(err error, timeout string) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return closeEOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return closeTruncated
	case errors.Is(err, ErrFraming):
		return closeFraming
	case errors.Is(err, ErrTooLarge):
		return closeTooLarge
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
		return timeout
	case errors.Is(err, net.ErrClosed) && c.srv.closing():
		return closeShutdown
	}
	return closeReadError
}

// handle runs the handler, turning a panic into a closed connection. The
// panic value is not logged: it may quote the message.
func (c *conn) handle(msg []byte, log *slog.Logger) (ack []byte, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			log.Error("mllp handler panic",
				"panicType", fmt.Sprintf("%T", v),
				"bytes", len(msg),
				"stack", string(debug.Stack()),
			)
		}
	}()
	return c.srv.Handler(c.srv.baseCtx, c.info, msg), false
}
