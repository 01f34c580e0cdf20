package hl7

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// AckCode is MSA-1, the acknowledgment code of original-mode
// acknowledgments.
type AckCode string

const (
	// AckAccept (AA): the message was accepted and durably stored.
	AckAccept AckCode = "AA"
	// AckError (AE): the message could not be processed for a reason the
	// sender may be able to retry or fix, such as storage being down.
	AckError AckCode = "AE"
	// AckReject (AR): the message is refused as sent; sending it again
	// unchanged will not help.
	AckReject AckCode = "AR"
)

// ErrorCode is an HL7 error code of table 0357, carried in ERR-3.
type ErrorCode int

const (
	// SegmentSequenceError (100): segments out of order, or a required
	// segment missing.
	SegmentSequenceError ErrorCode = 100
	// RequiredFieldMissing (101): a required field is empty.
	RequiredFieldMissing ErrorCode = 101
	// DataTypeError (102): a field does not hold a value of its data type,
	// or cannot be decoded at all.
	DataTypeError ErrorCode = 102
	// TableValueNotFound (103): a coded field holds a code outside its
	// table.
	TableValueNotFound ErrorCode = 103
	// UnsupportedMessageType (200): the message type is not one this
	// receiver handles.
	UnsupportedMessageType ErrorCode = 200
	// DuplicateKey (205): the message's key (its control ID) is already
	// on file for another message.
	DuplicateKey ErrorCode = 205
	// ApplicationInternalError (207): the receiver failed for a reason of
	// its own, not the message's.
	ApplicationInternalError ErrorCode = 207
)

// Text returns the name table 0357 gives the code.
func (c ErrorCode) Text() string {
	switch c {
	case SegmentSequenceError:
		return "Segment sequence error"
	case RequiredFieldMissing:
		return "Required field missing"
	case DataTypeError:
		return "Data type error"
	case TableValueNotFound:
		return "Table value not found"
	case UnsupportedMessageType:
		return "Unsupported message type"
	case ApplicationInternalError:
		return "Application internal error"
	case DuplicateKey:
		return "Duplicate key identifier"
	}
	return ""
}

// ErrorCodeOf classifies err for ERR-3. A *ParseError (found with
// errors.As) is mapped from its segment, field and reason; anything else,
// nil included, is ApplicationInternalError.
//
// ParseError carries no error kind of its own, so the mapping reads the
// reason wording; TestErrorCodeOfParserReasons feeds every kind of broken
// message through the parser so that a change of wording shows up there.
func ErrorCodeOf(err error) ErrorCode {
	var pe *ParseError
	if !errors.As(err, &pe) {
		return ApplicationInternalError
	}
	r := pe.Reason
	switch {
	case pe.Segment == "":
		// The segment name itself is unreadable.
		return DataTypeError
	case pe.Field == 0:
		// Whole-segment faults: a segment missing, repeated or out of
		// place.
		return SegmentSequenceError
	case pe.Segment == "MSH" && pe.Field == 9:
		return UnsupportedMessageType
	case strings.Contains(r, "value is not a valid"):
		// OBX-5 against its value type; checked before the wording below
		// because its detail can say "missing" or "is not one of".
		return DataTypeError
	case strings.Contains(r, "table") || strings.Contains(r, "is not one of"):
		return TableValueNotFound
	case strings.Contains(r, "missing") || strings.Contains(r, "is empty"):
		return RequiredFieldMissing
	}
	return DataTypeError
}

// Ack describes the acknowledgment NewACK and NewACKRaw build.
type Ack struct {
	Code AckCode
	// ControlID is MSH-10 of the ACK itself: a fresh ID chosen by the
	// caller, never the original's.
	ControlID string
	// Time is MSH-7 of the ACK; it is written with its UTC offset.
	Time time.Time
	// Text goes to MSA-3 and, for AE and AR, ERR-8. When it is empty and
	// Cause is a *ParseError, the parse error's Reason is used: it names
	// the segment and field at fault and never quotes the message.
	Text string
	// Cause is why the message was not accepted (AE, AR). A *ParseError
	// locates the fault in ERR-2 and selects ERR-3 through ErrorCodeOf;
	// other errors, or none, give ApplicationInternalError. Cause is never
	// written itself: only its code and, when it is a *ParseError, its
	// location and reason.
	Cause error
	// ErrorCode, when not zero, replaces the ERR-3 code ErrorCodeOf(Cause)
	// would give.
	ErrorCode ErrorCode
}

// defaultVersion is MSH-12 when the original's cannot be read: the version
// most lab interfaces in use speak.
const defaultVersion = "2.5.1"

// NewACK builds the original-mode acknowledgment (ACK^<event>^ACK) of m:
// MSH with the sending and receiving application and facility of m
// swapped, the same encoding characters, processing ID and version, and
// a.ControlID as MSH-10; MSA with a.Code and m's control ID; for AE and AR
// an ERR segment with severity E. Segments end in CR. m may be nil, which
// gives the same ACK as NewACKRaw on unreadable input.
func NewACK(m *Message, a Ack) []byte {
	return a.build(headerOf(m))
}

// NewACKRaw builds the acknowledgment of a message that may be too broken
// to parse: it reads what it can of the MSH segment (encoding characters,
// applications and facilities, event, control ID, processing ID, version)
// field by field, and uses defaults (|^~\&, version 2.5.1, processing ID
// P, empty names and control ID) for whatever it cannot read. The result
// always parses with Parse.
func NewACKRaw(raw []byte, a Ack) []byte {
	if m, err := Parse(raw); err == nil {
		return NewACK(m, a)
	}
	return a.build(headerOfRaw(raw))
}

// header is what an ACK needs from the original message.
type header struct {
	d                Delimiters
	sendApp, sendFac HD
	recvApp, recvFac HD
	event            string
	controlID        string
	processingID     string
	version          string
	segmentNames     []string // by line, for ERR-2's segment sequence
}

func headerOf(m *Message) header {
	if m == nil {
		return headerOfRaw(nil)
	}
	h := header{
		d:            m.Delimiters,
		sendApp:      m.SendingApplication,
		sendFac:      m.SendingFacility,
		recvApp:      m.ReceivingApplication,
		recvFac:      m.ReceivingFacility,
		event:        m.Type.Event,
		controlID:    m.ControlID,
		processingID: m.ProcessingID,
		version:      m.Version,
	}
	if h.d.Field == 0 {
		// A Message built by hand rather than by Parse.
		h.d = DefaultDelimiters
	}
	for _, s := range m.Segments {
		h.segmentNames = append(h.segmentNames, s.Name)
	}
	return h
}

func headerOfRaw(raw []byte) header {
	h := header{d: DefaultDelimiters}
	lines := splitSegments(string(raw))
	for _, l := range lines {
		name := l.text
		if len(name) > 3 {
			name = name[:3]
		}
		h.segmentNames = append(h.segmentNames, name)
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0].text, "MSH") {
		return h
	}
	msh := lines[0].text
	d, err := readDelimiters(msh)
	if err != nil {
		return h
	}
	h.d = d
	// raw[0] is "MSH" and raw[1] MSH-2, so raw[n-1] is MSH-n for n >= 2.
	fields := strings.Split(msh, string(d.Field))
	field := func(n int) Field {
		if n-1 >= len(fields) {
			return Field{}
		}
		f, err := splitField(fields[n-1], d, false)
		if err != nil {
			// An undecodable field is left out rather than echoed.
			return Field{}
		}
		return f
	}
	h.sendApp = hdOf(field(3).Rep(0))
	h.sendFac = hdOf(field(4).Rep(0))
	h.recvApp = hdOf(field(5).Rep(0))
	h.recvFac = hdOf(field(6).Rep(0))
	h.event = field(9).Comp(2)
	h.controlID = field(10).Value()
	h.processingID = field(11).Value()
	h.version = field(12).Value()
	return h
}

func (a Ack) build(h header) []byte {
	d := h.d
	if h.processingID == "" {
		h.processingID = "P"
	}
	if h.version == "" {
		h.version = defaultVersion
	}
	esc := func(s string) string { return Escape(s, d) }
	comps := func(parts ...string) string {
		for i := range parts {
			parts[i] = esc(parts[i])
		}
		return strings.TrimRight(strings.Join(parts, string(d.Component)), string(d.Component))
	}
	hd := func(v HD) string { return comps(v.NamespaceID, v.UniversalID, v.UniversalIDType) }

	var b strings.Builder
	seg := func(name string, fields ...string) {
		b.WriteString(name)
		for _, f := range fields {
			b.WriteByte(d.Field)
			b.WriteString(f)
		}
		b.WriteByte('\r')
	}

	enc := []byte{d.Component, d.Repetition, d.Escape, d.Subcomponent}
	if d.Truncation != 0 {
		enc = append(enc, d.Truncation)
	}
	msgType := comps("ACK", h.event, "ACK")
	if h.event == "" {
		msgType = comps("ACK")
	}
	// MSH-1 is the field separator itself, written by seg between "MSH"
	// and MSH-2; receiver and sender swap places.
	seg("MSH",
		string(enc),
		hd(h.recvApp), hd(h.recvFac),
		hd(h.sendApp), hd(h.sendFac),
		esc(a.Time.Format("20060102150405-0700")),
		"",
		msgType,
		esc(a.ControlID),
		esc(h.processingID),
		esc(h.version),
	)

	var pe *ParseError
	isParse := errors.As(a.Cause, &pe)
	text := a.Text
	if text == "" && isParse {
		text = pe.Reason
	}
	if text != "" {
		seg("MSA", esc(string(a.Code)), esc(h.controlID), esc(text))
	} else {
		seg("MSA", esc(string(a.Code)), esc(h.controlID))
	}
	if a.Code != AckError && a.Code != AckReject {
		return []byte(b.String())
	}

	code := a.ErrorCode
	if code == 0 {
		code = ErrorCodeOf(a.Cause)
	}
	var segName, seq, fieldNo string
	if isParse && pe.Segment != "" {
		segName = pe.Segment
		if pe.Line > 0 {
			if n := h.occurrence(pe.Segment, pe.Line); n > 0 {
				seq = strconv.Itoa(n)
			}
		}
		if pe.Field > 0 {
			fieldNo = strconv.Itoa(pe.Field)
		}
	}
	codeText := code.Text()
	// ERR-1 (ELD) is how versions before 2.5 carry location and code; it
	// was withdrawn later, so newer receivers get ERR-2 to ERR-4 only.
	// Older receivers ignore the fields they do not know.
	eld := ""
	if before25(h.version) {
		c, sc := string(d.Component), string(d.Subcomponent)
		eld = esc(segName) + c + esc(seq) + c + esc(fieldNo) + c +
			esc(strconv.Itoa(int(code))) + sc + esc(codeText) + sc + esc("HL70357")
	}
	seg("ERR",
		eld,
		comps(segName, seq, fieldNo),
		comps(strconv.Itoa(int(code)), codeText, "HL70357"),
		"E",
		"", "", "",
		esc(text),
	)
	return []byte(b.String())
}

// occurrence returns which occurrence of segment name the segment on line
// is (1 for the first), or 0 when the line does not hold that segment.
func (h header) occurrence(name string, line int) int {
	if line < 1 || line > len(h.segmentNames) || h.segmentNames[line-1] != name {
		return 0
	}
	n := 0
	for _, s := range h.segmentNames[:line] {
		if s == name {
			n++
		}
	}
	return n
}

// before25 reports whether version is 2.1 to 2.4 (2.3.1 included).
func before25(version string) bool {
	rest, ok := strings.CutPrefix(version, "2.")
	if !ok {
		return false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	minor, err := strconv.Atoi(rest[:i])
	return err == nil && minor < 5
}
