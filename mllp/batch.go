package mllp

import (
	"bytes"
)

// SplitBatch splits the contents of a file holding one or more HL7 v2
// messages into messages ready to send: each starts at an MSH segment and
// has its segments ended by CR, whether the file ended them with CR, LF or
// CRLF. Blank lines, a leading UTF-8 byte order mark and the segments of
// the batch envelope (FHS, BHS, BTS, FTS) are dropped.
//
// Lines before the first MSH that are none of those are returned as an
// element of their own rather than dropped, so that a sender passes them
// on and the receiver's rejection shows them, instead of losing part of
// the file without a word.
func SplitBatch(data []byte) [][]byte {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var out [][]byte
	var cur []byte
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if len(bytes.TrimSpace(line)) == 0 || isEnvelope(line) {
			continue
		}
		if isMSH(line) && cur != nil {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, line...)
		cur = append(cur, '\r')
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

// isMSH reports whether line starts an MSH segment: "MSH" and a field
// separator, which is punctuation.
func isMSH(line []byte) bool {
	if len(line) < 4 || !bytes.HasPrefix(line, []byte("MSH")) {
		return false
	}
	c := line[3]
	return c > ' ' && c < 0x7f && !isAlnumByte(c)
}

func isEnvelope(line []byte) bool {
	if len(line) < 3 {
		return false
	}
	switch string(line[:3]) {
	case "FHS", "BHS", "BTS", "FTS":
		return len(line) == 3 || !isAlnumByte(line[3])
	}
	return false
}

func isAlnumByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}
