// Package hl7 parses HL7 version 2 messages (the pipe-and-hat encoding) and
// exposes an ORU^R01 observation result as typed Go values.
//
// The package does no I/O: it takes the bytes of one message and returns a
// Message or an ORU. A message it cannot read with confidence is rejected
// with a *ParseError whose Reason names the segment and field at fault,
// because a misread lab value filed under a patient is worse than a message
// sent back to the lab.
//
// Decisions worth knowing:
//
//   - Segments may end in CR, LF or CRLF, mixed within one message; empty
//     lines are skipped.
//   - The encoding characters come from MSH-1 and MSH-2; MSH-2 holds four
//     characters (component, repetition, escape, subcomponent) or five, the
//     fifth being the truncation character of v2.7 and later.
//   - Escape sequences \F\ \S\ \T\ \R\ \E\ (and \P\ when a truncation
//     character is declared) and \Xhh..\ are decoded everywhere. Formatting
//     commands (\.br\, \.sp\, \.sk\, \.in\, \.ti\, \.ce\, \.fi\, \.nf\) are
//     interpreted only in FT values (\.br\ becomes a newline) and kept
//     literally elsewhere. Highlighting (\H\, \N\) is dropped, keeping the
//     text. Any other escape (character set switches \C..\ and \M..\, locally
//     defined \Z..\, unknown letters) and an escape without its closing
//     character is rejected: the parser cannot know what the sender meant.
package hl7

import (
	"strings"
)

// Delimiters are the encoding characters a message declares in MSH-1 and
// MSH-2.
type Delimiters struct {
	Field        byte
	Component    byte
	Repetition   byte
	Escape       byte
	Subcomponent byte
	// Truncation is the fifth encoding character (v2.7 and later), or 0
	// when MSH-2 declares only four.
	Truncation byte
}

// DefaultDelimiters are the encoding characters nearly every sender uses:
// |^~\&.
var DefaultDelimiters = Delimiters{
	Field:        '|',
	Component:    '^',
	Repetition:   '~',
	Escape:       '\\',
	Subcomponent: '&',
}

// Message is a parsed HL7 v2 message with its MSH header fields at hand.
type Message struct {
	Delimiters Delimiters
	Segments   []Segment

	SendingApplication   HD          // MSH-3
	SendingFacility      HD          // MSH-4
	ReceivingApplication HD          // MSH-5
	ReceivingFacility    HD          // MSH-6
	Time                 DateTime    // MSH-7
	Type                 MessageType // MSH-9
	ControlID            string      // MSH-10
	ProcessingID         string      // MSH-11
	Version              string      // MSH-12
}

// MessageType is MSH-9: message code, trigger event and message structure,
// as in ORU^R01^ORU_R01.
type MessageType struct {
	Code      string
	Event     string
	Structure string
}

// HD is a hierarchic designator: an application, facility or assigning
// authority named by a local namespace and/or a universal ID.
type HD struct {
	NamespaceID     string
	UniversalID     string
	UniversalIDType string
}

// Segment is one segment of a message. Fields are numbered as in the
// standard: Field(1) of MSH is the field separator, Field(2) the encoding
// characters.
type Segment struct {
	Name string
	// Fields[0] is unused so that Fields[n] is field n.
	Fields []Field
	// Line is the 1-based position of the segment in the message.
	Line int
}

// Field is one field with its repetitions, components and subcomponents,
// escape sequences decoded.
type Field struct {
	// Raw is the field as sent, escape sequences intact.
	Raw  string
	Reps []Repetition
}

// Repetition is one occurrence of a repeating field, split into
// components.
type Repetition []Component

// Component is one component, split into subcomponents.
type Component []string

// Field returns field n (1-based), or an empty Field when the segment has
// fewer fields.
func (s *Segment) Field(n int) Field {
	if n < 1 || n >= len(s.Fields) {
		return Field{}
	}
	return s.Fields[n]
}

// FieldCount returns the number of the last field present.
func (s *Segment) FieldCount() int {
	if len(s.Fields) == 0 {
		return 0
	}
	return len(s.Fields) - 1
}

// Value returns the first subcomponent of the first component of the first
// repetition.
func (f Field) Value() string { return f.Rep(0).Sub(1, 1) }

// Comp returns component n (1-based) of the first repetition.
func (f Field) Comp(n int) string { return f.Rep(0).Sub(n, 1) }

// Empty reports whether the field carries no value.
func (f Field) Empty() bool { return f.Raw == "" }

// Rep returns repetition i (0-based), or nil when absent.
func (f Field) Rep(i int) Repetition {
	if i < 0 || i >= len(f.Reps) {
		return nil
	}
	return f.Reps[i]
}

// Comp returns the first subcomponent of component n (1-based).
func (r Repetition) Comp(n int) string { return r.Sub(n, 1) }

// Sub returns subcomponent m of component n, both 1-based.
func (r Repetition) Sub(n, m int) string {
	if n < 1 || n > len(r) {
		return ""
	}
	c := r[n-1]
	if m < 1 || m > len(c) {
		return ""
	}
	return c[m-1]
}

// Segment returns the first segment with the given name, or nil.
func (m *Message) Segment(name string) *Segment {
	for i := range m.Segments {
		if m.Segments[i].Name == name {
			return &m.Segments[i]
		}
	}
	return nil
}

// Parse reads one HL7 v2 message. It returns a *ParseError when the message
// has no MSH segment first, declares unusable encoding characters, holds a
// malformed segment name or an escape sequence it cannot decode.
func Parse(raw []byte) (*Message, error) {
	lines := splitSegments(string(raw))
	if len(lines) == 0 {
		return nil, errorf("MSH", 0, 0, "message is empty: no MSH segment")
	}
	first := lines[0].text
	if !strings.HasPrefix(first, "MSH") {
		return nil, errorf("MSH", 0, lines[0].line, "first segment is not MSH")
	}
	d, err := readDelimiters(first)
	if err != nil {
		return nil, err
	}
	m := &Message{Delimiters: d, Segments: make([]Segment, 0, len(lines))}
	for _, l := range lines {
		seg, err := parseSegment(l.text, l.line, d)
		if err != nil {
			return nil, err
		}
		m.Segments = append(m.Segments, seg)
	}
	if err := m.readHeader(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Message) readHeader() error {
	msh := &m.Segments[0]
	m.SendingApplication = hdOf(msh.Field(3).Rep(0))
	m.SendingFacility = hdOf(msh.Field(4).Rep(0))
	m.ReceivingApplication = hdOf(msh.Field(5).Rep(0))
	m.ReceivingFacility = hdOf(msh.Field(6).Rep(0))
	t, err := timeField(msh, 7)
	if err != nil {
		return err
	}
	m.Time = t
	mt := msh.Field(9)
	m.Type = MessageType{Code: mt.Comp(1), Event: mt.Comp(2), Structure: mt.Comp(3)}
	m.ControlID = msh.Field(10).Value()
	m.ProcessingID = msh.Field(11).Value()
	m.Version = msh.Field(12).Value()
	return nil
}

func hdOf(r Repetition) HD {
	return HD{NamespaceID: r.Comp(1), UniversalID: r.Comp(2), UniversalIDType: r.Comp(3)}
}

// hdOfSubs reads an HD carried as the subcomponents of one component, as in
// the assigning authority of PID-3.
func hdOfSubs(r Repetition, comp int) HD {
	return HD{NamespaceID: r.Sub(comp, 1), UniversalID: r.Sub(comp, 2), UniversalIDType: r.Sub(comp, 3)}
}

type line struct {
	text string
	line int
}

// splitSegments cuts the message at every CR or LF, so CR, LF and CRLF
// terminators may be mixed; blank lines are skipped.
func splitSegments(s string) []line {
	var out []line
	n := 0
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		var seg string
		if i < 0 {
			seg, s = s, ""
		} else {
			seg, s = s[:i], s[i+1:]
		}
		if strings.TrimSpace(seg) == "" {
			continue
		}
		n++
		out = append(out, line{text: seg, line: n})
	}
	return out
}

func readDelimiters(msh string) (Delimiters, error) {
	if len(msh) < 4 {
		return Delimiters{}, errorf("MSH", 1, 1, "MSH-1 field separator missing")
	}
	var d Delimiters
	d.Field = msh[3]
	rest := msh[4:]
	enc := rest
	if i := strings.IndexByte(rest, d.Field); i >= 0 {
		enc = rest[:i]
	}
	if len(enc) != 4 && len(enc) != 5 {
		return Delimiters{}, errorf("MSH", 2, 1, "MSH-2 must hold 4 or 5 encoding characters")
	}
	d.Component, d.Repetition, d.Escape, d.Subcomponent = enc[0], enc[1], enc[2], enc[3]
	if len(enc) == 5 {
		d.Truncation = enc[4]
	}
	all := []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent}
	if d.Truncation != 0 {
		all = append(all, d.Truncation)
	}
	seen := map[byte]bool{}
	for i, c := range all {
		field := 2
		if i == 0 {
			field = 1
		}
		if c <= ' ' || c >= 0x7f || isAlnum(c) {
			return Delimiters{}, errorf("MSH", field, 1, "encoding character is not printable punctuation")
		}
		if seen[c] {
			return Delimiters{}, errorf("MSH", field, 1, "encoding characters are not distinct")
		}
		seen[c] = true
	}
	return d, nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func parseSegment(text string, n int, d Delimiters) (Segment, error) {
	raw := strings.Split(text, string(d.Field))
	name := raw[0]
	if len(name) != 3 || !isAlnum(name[0]) || !isAlnum(name[1]) || !isAlnum(name[2]) || strings.ToUpper(name) != name {
		return Segment{}, errorf("", 0, n, "segment name is not three upper-case letters or digits")
	}
	seg := Segment{Name: name, Line: n}
	if name == "MSH" && n > 1 {
		return Segment{}, errorf("MSH", 0, n, "a second MSH segment: one message per parse")
	}
	if name == "MSH" {
		// MSH-1 is the separator itself and MSH-2 the encoding characters;
		// neither is split nor unescaped.
		seg.Fields = make([]Field, 0, len(raw)+1)
		seg.Fields = append(seg.Fields, Field{Raw: name})
		seg.Fields = append(seg.Fields, literal(string(d.Field)))
		seg.Fields = append(seg.Fields, literal(raw[1]))
		raw = raw[2:]
	} else {
		seg.Fields = make([]Field, 0, len(raw))
		seg.Fields = append(seg.Fields, Field{Raw: name})
		raw = raw[1:]
	}
	for _, r := range raw {
		num := len(seg.Fields)
		f, err := splitField(r, d, false)
		if err != nil {
			return Segment{}, errorf(name, num, n, "%v", err)
		}
		seg.Fields = append(seg.Fields, f)
	}
	return seg, nil
}

func literal(s string) Field {
	return Field{Raw: s, Reps: []Repetition{{Component{s}}}}
}

// splitField splits a raw field into repetitions, components and
// subcomponents, then decodes each leaf. ft selects FT formatting commands.
func splitField(raw string, d Delimiters, ft bool) (Field, error) {
	f := Field{Raw: raw}
	if raw == "" {
		return f, nil
	}
	for _, rr := range strings.Split(raw, string(d.Repetition)) {
		var rep Repetition
		for _, cr := range strings.Split(rr, string(d.Component)) {
			var comp Component
			for _, sr := range strings.Split(cr, string(d.Subcomponent)) {
				v, err := unescape(sr, d, ft)
				if err != nil {
					return Field{}, err
				}
				comp = append(comp, v)
			}
			rep = append(rep, comp)
		}
		f.Reps = append(f.Reps, rep)
	}
	return f, nil
}
