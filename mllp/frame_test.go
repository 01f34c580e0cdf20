package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func frame(s string) string { return "\x0b" + s + "\x1c\r" }

// readAll reads frames until the first error and returns them with it.
func readAll(r *Reader) ([]string, error) {
	var got []string
	for {
		m, err := r.ReadFrame()
		if err != nil {
			return got, err
		}
		got = append(got, string(m))
	}
}

func TestReader(t *testing.T) {
	big := strings.Repeat("OBX|1|ST|X||0123456789||||||F\r", 4000) // ~120 kB, many buffers
	tests := []struct {
		name    string
		in      string
		max     int
		want    []string
		wantErr error // the error after the frames; io.EOF for a clean end
	}{
		{name: "empty stream", in: "", wantErr: io.EOF},
		{name: "one frame", in: frame("MSH|a\rPID|1\r"), want: []string{"MSH|a\rPID|1\r"}, wantErr: io.EOF},
		{name: "two frames", in: frame("A") + frame("B"), want: []string{"A", "B"}, wantErr: io.EOF},
		{name: "empty frame", in: frame(""), want: []string{""}, wantErr: io.EOF},
		{name: "whitespace around frames", in: "\r\n \t" + frame("A") + "\r\n" + frame("B") + "\n", want: []string{"A", "B"}, wantErr: io.EOF},
		{name: "junk before start", in: "x" + frame("A"), wantErr: ErrFraming},
		{name: "junk between frames", in: frame("A") + "MSH" + frame("B"), want: []string{"A"}, wantErr: ErrFraming},
		{name: "end block without CR", in: "\x0bA\x1cX", wantErr: ErrFraming},
		{name: "end block, LF instead of CR", in: "\x0bA\x1c\n", wantErr: ErrFraming},
		{name: "start block inside message", in: "\x0bA\x0bB\x1c\r", wantErr: ErrFraming},
		{name: "stray end block before start", in: "\x1c\r" + frame("A"), wantErr: ErrFraming},
		{name: "stream ends inside message", in: "\x0bMSH|", wantErr: io.ErrUnexpectedEOF},
		{name: "stream ends after end block", in: "\x0bMSH|\x1c", wantErr: io.ErrUnexpectedEOF},
		{name: "stream ends after start block", in: "\x0b", wantErr: io.ErrUnexpectedEOF},
		{name: "exactly the limit", in: frame("12345"), max: 5, want: []string{"12345"}, wantErr: io.EOF},
		{name: "one over the limit", in: frame("123456"), max: 5, wantErr: ErrTooLarge},
		{name: "far over the limit, no end", in: "\x0b" + big, max: 100, wantErr: ErrTooLarge},
		{name: "large within the limit", in: frame(big) + frame("B"), want: []string{big, "B"}, wantErr: io.EOF},
		{name: "start block after the limit", in: "\x0b123456\x0b\x1c\r", max: 5, wantErr: ErrTooLarge},
		{name: "start block at the limit", in: "\x0b12345\x0b\x1c\r", max: 5, wantErr: ErrFraming},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{name: "whole", wrap: func(r io.Reader) io.Reader { return r }},
		{name: "one byte", wrap: iotest.OneByteReader},
		{name: "half", wrap: iotest.HalfReader},
		{name: "small buffer", wrap: func(r io.Reader) io.Reader { return bufio.NewReaderSize(r, 16) }},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				got, err := readAll(NewReader(rd.wrap(strings.NewReader(tt.in)), tt.max))
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %d frames, want %d", len(got), len(tt.want))
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("frame %d = %.40q (%d bytes), want %.40q (%d bytes)", i, got[i], len(got[i]), tt.want[i], len(tt.want[i]))
					}
				}
			})
		}
	}
}

func TestReaderErrorsQuoteNoContent(t *testing.T) {
	const secret = "SECRET-VALUE"
	for _, in := range []string{
		secret + frame("A"),
		"\x0b" + secret + "\x1c" + secret,
		"\x0b" + secret + "\x0b",
		"\x0b" + strings.Repeat(secret, 10),
	} {
		_, err := readAll(NewReader(strings.NewReader(in), 20))
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error %v for %q: want an error that quotes nothing", err, in)
		}
	}
}

func TestWriteFrame(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		want    string
		wantErr error
	}{
		{name: "message", msg: "MSH|x\r", want: "\x0bMSH|x\r\x1c\r"},
		{name: "empty", msg: "", want: "\x0b\x1c\r"},
		{name: "start block inside", msg: "a\x0bb", wantErr: ErrFraming},
		{name: "end block inside", msg: "a\x1cb", wantErr: ErrFraming},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w countingWriter
			err := WriteFrame(&w, []byte(tt.msg))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if got := w.buf.String(); got != tt.want {
				t.Errorf("wrote %q, want %q", got, tt.want)
			}
			if tt.wantErr == nil && w.writes != 1 {
				t.Errorf("%d writes, want one", w.writes)
			}
		})
	}
}

type countingWriter struct {
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.buf.Write(p)
}
