package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// refRead is the framing rule written the slow, obvious way: byte by byte,
// with the outcome the Reader must match.
func refRead(data []byte, max int) ([][]byte, error) {
	var frames [][]byte
	i := 0
	for {
		for i < len(data) && isSpace(data[i]) {
			i++
		}
		if i == len(data) {
			return frames, io.EOF
		}
		if data[i] != StartBlock {
			return frames, ErrFraming
		}
		i++
		msg := []byte{}
		for {
			if i == len(data) {
				return frames, io.ErrUnexpectedEOF
			}
			c := data[i]
			i++
			if c == EndBlock {
				break
			}
			if c == StartBlock {
				return frames, ErrFraming
			}
			msg = append(msg, c)
			if len(msg) > max {
				return frames, ErrTooLarge
			}
		}
		if i == len(data) {
			return frames, io.ErrUnexpectedEOF
		}
		if data[i] != CarriageReturn {
			return frames, ErrFraming
		}
		i++
		frames = append(frames, msg)
	}
}

// chunkReader returns at most n bytes per Read, to vary where reads split.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(r.n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func FuzzReader(f *testing.F) {
	f.Add([]byte(frame("MSH|^~\\&|A\rPID|1\r")+"\r\n"+frame("B")), uint16(100), uint8(3), uint8(0))
	f.Add([]byte("\x0bA\x1cX"), uint16(10), uint8(1), uint8(1))
	f.Add([]byte("\x0b12345\x0b\x1c\r"), uint16(5), uint8(7), uint8(0))
	f.Add([]byte(" x\x0b\x1c\r"), uint16(0), uint8(2), uint8(200))
	f.Add([]byte("\x0b\x1c\r\x0b\x1c"), uint16(1), uint8(255), uint8(16))
	f.Fuzz(func(t *testing.T, data []byte, max uint16, chunk uint8, bufSize uint8) {
		limit := int(max%512) + 1
		want, wantErr := refRead(data, limit)

		src := &chunkReader{data: data, n: int(chunk%64) + 1}
		r := NewReader(bufio.NewReaderSize(src, int(bufSize)), limit)
		var got [][]byte
		var err error
		for {
			var m []byte
			m, err = r.ReadFrame()
			if err != nil {
				break
			}
			got = append(got, m)
		}
		if !errors.Is(err, wantErr) {
			t.Fatalf("error = %v, want %v", err, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("%d frames, want %d", len(got), len(want))
		}
		var again bytes.Buffer
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d = %q, want %q", i, got[i], want[i])
			}
			if len(got[i]) > limit {
				t.Fatalf("frame %d has %d bytes, over the limit %d", i, len(got[i]), limit)
			}
			if err := WriteFrame(&again, got[i]); err != nil {
				t.Fatalf("frame %d read but not writable: %v", i, err)
			}
		}
		// What was read writes back to frames that read the same.
		back, err := refRead(again.Bytes(), limit)
		if err != io.EOF || len(back) != len(got) {
			t.Fatalf("rewritten frames read back as %d frames, %v", len(back), err)
		}
		for i := range back {
			if !bytes.Equal(back[i], got[i]) {
				t.Fatalf("rewritten frame %d = %q, want %q", i, back[i], got[i])
			}
		}
	})
}
