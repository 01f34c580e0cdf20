package hl7

import (
	"strconv"
	"strings"
)

// Unescape decodes the escape sequences of one value (a field, component or
// subcomponent already split from its neighbours). Formatting commands are
// kept literally; see UnescapeFT for FT values. It returns an error for an
// escape sequence it does not know or one left open.
func Unescape(s string, d Delimiters) (string, error) { return unescape(s, d, false) }

// UnescapeFT decodes a formatted text (FT) value: like Unescape, and \.br\
// becomes a newline, \.sp n\ n newlines, \.sk n\ n spaces; the layout
// commands \.in\ \.ti\ \.ce\ \.fi\ \.nf\ are dropped.
func UnescapeFT(s string, d Delimiters) (string, error) { return unescape(s, d, true) }

func unescape(s string, d Delimiters, ft bool) (string, error) {
	if strings.IndexByte(s, d.Escape) < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, d.Escape)
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		j := strings.IndexByte(s, d.Escape)
		if j < 0 {
			return "", &escapeError{"escape sequence has no closing escape character"}
		}
		seq := s[:j]
		s = s[j+1:]
		if err := decodeSeq(&b, seq, d, ft); err != nil {
			return "", err
		}
	}
}

func decodeSeq(b *strings.Builder, seq string, d Delimiters, ft bool) error {
	switch seq {
	case "F":
		b.WriteByte(d.Field)
		return nil
	case "S":
		b.WriteByte(d.Component)
		return nil
	case "T":
		b.WriteByte(d.Subcomponent)
		return nil
	case "R":
		b.WriteByte(d.Repetition)
		return nil
	case "E":
		b.WriteByte(d.Escape)
		return nil
	case "P":
		if d.Truncation == 0 {
			return &escapeError{"\\P\\ escape used but MSH-2 declares no truncation character"}
		}
		b.WriteByte(d.Truncation)
		return nil
	case "H", "N":
		// Start and end of highlighting: the text is kept, the emphasis
		// is not.
		return nil
	case "":
		return &escapeError{"empty escape sequence"}
	}
	switch seq[0] {
	case 'X':
		hex := seq[1:]
		if len(hex) == 0 || len(hex)%2 != 0 {
			return &escapeError{"\\X escape needs an even, non-zero count of hex digits"}
		}
		for k := 0; k < len(hex); k += 2 {
			v, err := strconv.ParseUint(hex[k:k+2], 16, 8)
			if err != nil {
				return &escapeError{"\\X escape holds a non-hex digit"}
			}
			b.WriteByte(byte(v))
		}
		return nil
	case '.':
		return formatting(b, seq, d, ft)
	}
	return &escapeError{"unsupported escape sequence (only F S T R E P X H N and FT formatting are decoded)"}
}

func formatting(b *strings.Builder, seq string, d Delimiters, ft bool) error {
	if len(seq) < 3 {
		return &escapeError{"unknown formatting command"}
	}
	cmd, arg := seq[1:3], strings.TrimSpace(seq[3:])
	n := 1
	switch cmd {
	case "sp", "sk", "in", "ti":
		if arg != "" {
			v, err := strconv.Atoi(strings.TrimPrefix(arg, "+"))
			if err != nil || v < -1000 || v > 1000 {
				return &escapeError{"formatting command has a bad number"}
			}
			n = v
		}
	case "br", "fi", "nf", "ce":
		if arg != "" {
			return &escapeError{"formatting command takes no argument"}
		}
	default:
		return &escapeError{"unknown formatting command"}
	}
	if !ft {
		// Outside FT the command has no meaning; keep it as sent.
		b.WriteByte(d.Escape)
		b.WriteString(seq)
		b.WriteByte(d.Escape)
		return nil
	}
	switch cmd {
	case "br":
		b.WriteByte('\n')
	case "sp":
		for ; n > 0; n-- {
			b.WriteByte('\n')
		}
	case "sk":
		for ; n > 0; n-- {
			b.WriteByte(' ')
		}
	}
	return nil
}

// Escape encodes s for use as one value: each delimiter becomes its escape
// sequence and each run of control characters (CR, LF, TAB...) one \Xhh..\
// sequence.
func Escape(s string, d Delimiters) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			b.WriteByte(d.Escape)
			b.WriteByte('X')
			for ; i < len(s) && (s[i] < 0x20 || s[i] == 0x7f); i++ {
				b.WriteString(strings.ToUpper(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:]))
			}
			i--
			b.WriteByte(d.Escape)
		case c == d.Escape:
			writeSeq(&b, d, 'E')
		case c == d.Field:
			writeSeq(&b, d, 'F')
		case c == d.Component:
			writeSeq(&b, d, 'S')
		case c == d.Subcomponent:
			writeSeq(&b, d, 'T')
		case c == d.Repetition:
			writeSeq(&b, d, 'R')
		case d.Truncation != 0 && c == d.Truncation:
			writeSeq(&b, d, 'P')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func writeSeq(b *strings.Builder, d Delimiters, c byte) {
	b.WriteByte(d.Escape)
	b.WriteByte(c)
	b.WriteByte(d.Escape)
}
