package mllp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrConnBroken is returned by Send once an earlier Send on the same Client
// failed part way: a late acknowledgment of the earlier message could be
// taken for the next one's, so the connection is not used again. Close the
// Client and dial again.
var ErrConnBroken = errors.New("mllp: connection unusable after an earlier failed send")

// Client sends messages over one MLLP connection and waits for each
// acknowledgment. Its methods may be called from several goroutines; sends
// take turns, as MLLP allows one message in flight per connection.
type Client struct {
	nc net.Conn
	r  *Reader
	// turn holds a token while a Send is in progress; a channel rather
	// than a mutex so that waiting for a turn honours the context.
	turn chan struct{}

	mu     sync.Mutex
	broken bool
}

// Dial connects to an MLLP receiver at addr (host:port) over TCP,
// honouring ctx for the connection attempt.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mllp: dial: %w", err)
	}
	return NewClient(nc), nil
}

// NewClient returns a Client over an established connection, such as a
// TLS one. The Client owns nc from then on.
func NewClient(nc net.Conn) *Client {
	return &Client{
		nc:   nc,
		r:    NewReader(nc, DefaultMaxMessageSize),
		turn: make(chan struct{}, 1),
	}
}

// Send writes msg as one frame and returns the acknowledgment that comes
// back, unframed; it does not read the acknowledgment's content. ctx's
// deadline bounds the whole exchange and cancelling ctx interrupts it; then
// Send returns an error wrapping ctx.Err(). A receiver that closes the
// connection instead of acknowledging gives an error wrapping io.EOF.
// After any failure once msg may
// have been partly written, the Client is broken (see ErrConnBroken).
//
// A msg holding a start or end block byte is refused with an error
// wrapping ErrFraming before anything is written; the Client stays usable.
func (c *Client) Send(ctx context.Context, msg []byte) ([]byte, error) {
	if err := checkContent(msg); err != nil {
		return nil, err
	}
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("mllp: send: %w", ctx.Err())
	}
	defer func() { <-c.turn }()
	if c.isBroken() {
		return nil, ErrConnBroken
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mllp: send: %w", err)
	}

	// ctx alone bounds the exchange: clear a deadline an earlier
	// interruption left, and let ctx's end move it to the past, which
	// wakes a blocked Write or Read at once. Going through ctx rather than
	// copying its deadline to the connection means ctx.Err() is set
	// whenever the I/O was cut short by it.
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("mllp: send: %w", err)
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.nc.SetDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	defer func() {
		if !stop() {
			// The interruption has started; let it finish before the
			// next Send sets its own deadline.
			<-interrupted
		}
	}()

	ack, err := c.exchange(msg)
	if err != nil {
		c.mu.Lock()
		c.broken = true
		c.mu.Unlock()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mllp: send: %w", ctx.Err())
		}
		return nil, fmt.Errorf("mllp: send: %w", err)
	}
	return ack, nil
}

func (c *Client) exchange(msg []byte) ([]byte, error) {
	if err := WriteFrame(c.nc, msg); err != nil {
		return nil, err
	}
	return c.r.ReadFrame()
}

func (c *Client) isBroken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// Close closes the connection; a Send in progress fails.
func (c *Client) Close() error {
	c.mu.Lock()
	c.broken = true
	c.mu.Unlock()
	return c.nc.Close()
}
