// Package mllp carries HL7 v2 messages over TCP with the Minimal Lower
// Layer Protocol: each message is framed as 0x0B <message> 0x1C 0x0D, and
// the receiver answers every message with an acknowledgment on the same
// connection before the sender sends the next.
//
// The package holds the framing (Reader, WriteFrame), a Server that hands
// each message to a handler and writes back the acknowledgment the handler
// returns, a Client that sends a message and waits for its acknowledgment,
// and SplitBatch for files holding several messages. It knows nothing of
// what the acknowledgment says; hl7.NewACK builds one.
//
// Errors and log lines of this package never quote message bytes: the
// messages carry patient data.
package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// The MLLP framing bytes.
const (
	StartBlock     = 0x0B // VT: starts a frame
	EndBlock       = 0x1C // FS: ends the message
	CarriageReturn = 0x0D // CR: must follow EndBlock
)

// DefaultMaxMessageSize is the largest message a Reader accepts when not
// told otherwise. Lab results with embedded reports stay well below it; a
// message larger than this is more likely a runaway sender than a result.
const DefaultMaxMessageSize = 1 << 20

// ErrFraming is wrapped by every error for bytes that break MLLP framing:
// anything but whitespace before a start block, a start block inside a
// message, or an end block not followed by a carriage return. After such an
// error the position in the stream is unknown and the connection should be
// closed.
var ErrFraming = errors.New("mllp: framing error")

// ErrTooLarge is wrapped by the error for a message longer than the
// Reader's limit. The rest of the message is not read, so the connection
// should be closed.
var ErrTooLarge = errors.New("mllp: message too large")

// Reader reads MLLP frames from a stream.
type Reader struct {
	br  *bufio.Reader
	max int
}

// NewReader returns a Reader of frames from r holding at most maxSize
// bytes of message each; maxSize <= 0 means DefaultMaxMessageSize. When r
// is a *bufio.Reader it is used as is, so its caller may Peek at it between
// frames.
func NewReader(r io.Reader, maxSize int) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	if maxSize <= 0 {
		maxSize = DefaultMaxMessageSize
	}
	return &Reader{br: br, max: maxSize}
}

// ReadFrame returns the next message, without its framing bytes, in a new
// slice the caller may keep. Space, tab, CR and LF before the start block
// are skipped, so senders that end frames with CRLF work.
//
// It returns io.EOF when the stream ends cleanly between frames,
// io.ErrUnexpectedEOF when it ends inside a frame, an error wrapping
// ErrFraming or ErrTooLarge as documented on those, or the error of the
// underlying reader.
func (r *Reader) ReadFrame() ([]byte, error) {
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			return nil, err
		}
		if c == StartBlock {
			break
		}
		if !isSpace(c) {
			return nil, fmt.Errorf("%w: data before the start block", ErrFraming)
		}
	}
	var msg []byte
	for {
		chunk, err := r.br.ReadSlice(EndBlock)
		body := chunk
		if err == nil {
			body = chunk[:len(chunk)-1]
		}
		// Report whichever fault comes first in the stream: a start block
		// within the limit, or the limit.
		room := r.max - len(msg)
		if i := bytes.IndexByte(body, StartBlock); i >= 0 && i <= room {
			return nil, fmt.Errorf("%w: start block inside a message", ErrFraming)
		}
		if len(body) > room {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, r.max)
		}
		msg = append(msg, body...)
		if err == nil {
			break
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c, err := r.br.ReadByte()
	if err == io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	if c != CarriageReturn {
		return nil, fmt.Errorf("%w: end block not followed by a carriage return", ErrFraming)
	}
	if msg == nil {
		msg = []byte{}
	}
	return msg, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// WriteFrame writes msg as one MLLP frame in a single Write. It returns an
// error wrapping ErrFraming, having written nothing, when msg holds a
// start or end block byte, which no receiver could frame.
func WriteFrame(w io.Writer, msg []byte) error {
	if err := checkContent(msg); err != nil {
		return err
	}
	buf := make([]byte, 0, len(msg)+3)
	buf = append(buf, StartBlock)
	buf = append(buf, msg...)
	buf = append(buf, EndBlock, CarriageReturn)
	_, err := w.Write(buf)
	return err
}

func checkContent(msg []byte) error {
	if bytes.IndexByte(msg, StartBlock) >= 0 || bytes.IndexByte(msg, EndBlock) >= 0 {
		return fmt.Errorf("%w: message holds a start or end block byte", ErrFraming)
	}
	return nil
}
