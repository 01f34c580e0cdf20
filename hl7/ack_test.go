package hl7

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// ackClock is the injected "now" of every ACK built here.
var ackClock = time.Date(2026, 1, 2, 10, 30, 0, 0, time.FixedZone("+0300", 3*3600))

const ackHead = "MSH|^~\\&|LABAPP^1.2.3^ISO|LABFAC|CAREBOOK|CLINIC^2.16.840.1.113883.3.1^ISO|20260102103000||ORU^R01^ORU_R01|CTRL-1|P|2.5.1\r"

const ackBody = "PID|1||TEST123^^^HOSP^MR||TEST^PATIENT\r" +
	"OBR|1||F1|1234-5^Glucose^LN|||202601021030|||||||||||||||202601021100|||F\r" +
	"OBX|1|NM|1234-5^Glucose^LN||5.4|mmol/L||||||F\r"

// parseACK parses an ACK back, failing the test when it does not parse or
// holds anything but CR segment ends.
func parseACK(t *testing.T, ack []byte) *Message {
	t.Helper()
	if strings.ContainsRune(string(ack), '\n') || !strings.HasSuffix(string(ack), "\r") {
		t.Fatalf("ACK segments must end in CR only: %q", ack)
	}
	m, err := Parse(ack)
	if err != nil {
		t.Fatalf("ACK does not parse: %v\n%q", err, ack)
	}
	return m
}

func TestNewACKAccept(t *testing.T) {
	for _, tt := range sharedCases {
		if !strings.HasSuffix(tt.file, ".hl7") {
			continue
		}
		t.Run(tt.file, func(t *testing.T) {
			orig, err := Parse(readCase(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			ack := parseACK(t, NewACK(orig, Ack{Code: AckAccept, ControlID: "ACK-9", Time: ackClock}))

			if ack.Delimiters != orig.Delimiters {
				t.Errorf("delimiters = %+v, want %+v", ack.Delimiters, orig.Delimiters)
			}
			if ack.SendingApplication != orig.ReceivingApplication || ack.SendingFacility != orig.ReceivingFacility {
				t.Errorf("ACK sender = %+v %+v, want original receiver %+v %+v",
					ack.SendingApplication, ack.SendingFacility, orig.ReceivingApplication, orig.ReceivingFacility)
			}
			if ack.ReceivingApplication != orig.SendingApplication || ack.ReceivingFacility != orig.SendingFacility {
				t.Errorf("ACK receiver = %+v %+v, want original sender %+v %+v",
					ack.ReceivingApplication, ack.ReceivingFacility, orig.SendingApplication, orig.SendingFacility)
			}
			want := MessageType{Code: "ACK", Event: orig.Type.Event, Structure: "ACK"}
			if ack.Type != want {
				t.Errorf("MSH-9 = %+v, want %+v", ack.Type, want)
			}
			if ack.ControlID != "ACK-9" {
				t.Errorf("MSH-10 = %q, want the new control ID", ack.ControlID)
			}
			if ack.Version != orig.Version || ack.ProcessingID != orig.ProcessingID {
				t.Errorf("MSH-11/12 = %q %q, want %q %q", ack.ProcessingID, ack.Version, orig.ProcessingID, orig.Version)
			}
			if !ack.Time.Time.Equal(ackClock) || !ack.Time.HasZone {
				t.Errorf("MSH-7 = %+v, want %v with its offset", ack.Time, ackClock)
			}
			msa := ack.Segment("MSA")
			if msa == nil {
				t.Fatal("no MSA")
			}
			if got := msa.Field(1).Value(); got != "AA" {
				t.Errorf("MSA-1 = %q", got)
			}
			if got := msa.Field(2).Value(); got != orig.ControlID {
				t.Errorf("MSA-2 = %q, want original control ID %q", got, orig.ControlID)
			}
			if ack.Segment("ERR") != nil {
				t.Error("an AA carries no ERR")
			}
			if n := len(ack.Segments); n != 2 {
				t.Errorf("segments = %d, want MSH and MSA", n)
			}
		})
	}
}

func TestNewACKTextEscaped(t *testing.T) {
	tests := []struct {
		name string
		head string
	}{
		{name: "default delimiters", head: ackHead},
		{name: "other delimiters", head: "MSH*:!$%*LABAPP*LABFAC*CAREBOOK*CLINIC*20260102103000**ORU:R01*CTRL*1*P*2.5.1\r"},
		{name: "truncation character", head: "MSH|^~\\&#|LABAPP|LABFAC|CAREBOOK|CLINIC|20260102103000||ORU^R01|CTRL#1|P|2.7\r"},
		{name: "dash and plus as delimiters", head: "MSH+-~\\&+LABAPP+LABFAC+CAREBOOK+CLINIC+20260102103000++ORU-R01+CTRL-1+P+2.5.1\r"},
	}
	const text = "bad |^~\\&#*:!$%+- value\r\nnext line"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig, err := Parse([]byte(tt.head))
			if err != nil {
				t.Fatal(err)
			}
			raw := NewACK(orig, Ack{Code: AckError, ControlID: "A|1^2", Time: ackClock, Text: text})
			ack := parseACK(t, raw)
			if ack.Delimiters != orig.Delimiters {
				t.Errorf("delimiters = %+v, want %+v", ack.Delimiters, orig.Delimiters)
			}
			msa := ack.Segment("MSA")
			if got := msa.Field(1).Value(); got != "AE" {
				t.Errorf("MSA-1 = %q", got)
			}
			if got := msa.Field(2).Value(); got != orig.ControlID {
				t.Errorf("MSA-2 = %q, want %q", got, orig.ControlID)
			}
			if got := msa.Field(3).Value(); got != text {
				t.Errorf("MSA-3 = %q, want %q", got, text)
			}
			if ack.ControlID != "A|1^2" {
				t.Errorf("MSH-10 = %q", ack.ControlID)
			}
			if !ack.Time.Time.Equal(ackClock) {
				t.Errorf("MSH-7 = %+v", ack.Time)
			}
			errSeg := ack.Segment("ERR")
			if errSeg == nil {
				t.Fatal("AE without ERR")
			}
			if got := errSeg.Field(8).Value(); got != text {
				t.Errorf("ERR-8 = %q, want %q", got, text)
			}
			if got := errSeg.Field(4).Value(); got != "E" {
				t.Errorf("ERR-4 = %q, want E", got)
			}
			if got := errSeg.Field(3).Rep(0); got.Comp(1) != "207" || got.Comp(3) != "HL70357" {
				t.Errorf("ERR-3 = %v, want 207 of HL70357 for an error that is not a parse error", got)
			}
		})
	}
}

// TestErrorCodeOfParserReasons feeds the parser one broken message per
// kind of fault and checks the ERR segment of the resulting AR: the code
// ErrorCodeOf derives from the reason, and the location.
func TestErrorCodeOfParserReasons(t *testing.T) {
	pid := "PID|1||TEST123^^^HOSP^MR||TEST^PATIENT\r"
	obr := "OBR|1||F1|1234-5^Glucose^LN\r"
	obx := func(rest string) string { return "OBX|1|" + rest + "\r" }
	tests := []struct {
		name    string
		msg     string
		want    ErrorCode
		wantLoc string // ERR-2 as sent
	}{
		{name: "empty message", msg: "", want: SegmentSequenceError, wantLoc: "MSH"},
		{name: "first segment not MSH", msg: pid, want: SegmentSequenceError, wantLoc: "MSH"},
		{name: "second MSH", msg: ackHead + ackHead, want: SegmentSequenceError, wantLoc: "MSH^2"},
		{name: "unreadable segment name", msg: ackHead + "pid|1\r", want: DataTypeError, wantLoc: ""},
		{name: "field separator missing", msg: "MSH", want: RequiredFieldMissing, wantLoc: "MSH^1^1"},
		{name: "three encoding characters", msg: "MSH|^~\\|A\r", want: DataTypeError, wantLoc: "MSH^1^2"},
		{name: "encoding characters repeated", msg: "MSH|^^\\&|A\r", want: DataTypeError, wantLoc: "MSH^1^2"},
		{name: "bad MSH-7", msg: "MSH|^~\\&|A|B|C|D|2026010|", want: DataTypeError, wantLoc: "MSH^1^7"},
		{name: "not an ORU", msg: strings.Replace(ackHead, "ORU^R01^ORU_R01", "ADT^A01", 1) + pid, want: UnsupportedMessageType, wantLoc: "MSH^1^9"},
		{name: "no PID", msg: ackHead + obr, want: SegmentSequenceError, wantLoc: "OBR^1"},
		{name: "no OBR", msg: ackHead + pid, want: SegmentSequenceError, wantLoc: "OBR"},
		{name: "OBX before OBR", msg: ackHead + pid + obx("NM|X||1||||||F"), want: SegmentSequenceError, wantLoc: "OBX^1"},
		{name: "SPM before OBR", msg: ackHead + pid + "SPM|1\r", want: SegmentSequenceError, wantLoc: "SPM^1"},
		{name: "second PID", msg: ackHead + pid + obr + pid, want: SegmentSequenceError, wantLoc: "PID^2"},
		{name: "PID-3 empty", msg: ackHead + "PID|1||\r" + obr, want: RequiredFieldMissing, wantLoc: "PID^1^3"},
		{name: "bad escape", msg: ackHead + pid + obr + obx("ST|X||a\\Qb\\||||||F"), want: DataTypeError, wantLoc: "OBX^1^5"},
		{name: "unknown value type", msg: ackHead + pid + obr + obx("XX|X||1||||||F"), want: TableValueNotFound, wantLoc: "OBX^1^2"},
		{name: "value without value type", msg: ackHead + pid + obr + obx("|X||1||||||F"), want: RequiredFieldMissing, wantLoc: "OBX^1^2"},
		{name: "NM not a number", msg: ackHead + pid + obr + obx("NM|X||high||||||F"), want: DataTypeError, wantLoc: "OBX^1^5"},
		{name: "OBX-4 looks missing", msg: ackHead + pid + obr + obx("NM|X|5|mmol/L||||||F"), want: DataTypeError, wantLoc: "OBX^1^5"},
		{name: "SN comparator", msg: ackHead + pid + obr + obx("SN|X||~~^1||||||F"), want: DataTypeError, wantLoc: "OBX^1^5"},
		{name: "SN second number", msg: ackHead + pid + obr + obx("SN|X||^1^-^x||||||F"), want: DataTypeError, wantLoc: "OBX^1^5"},
		{name: "result status missing", msg: ackHead + pid + obr + obx("NM|X||1|||||||"), want: RequiredFieldMissing, wantLoc: "OBX^1^11"},
		{name: "result status shifted left", msg: ackHead + pid + obr + obx("NM|X||1|||||F|"), want: RequiredFieldMissing, wantLoc: "OBX^1^11"},
		{name: "result status not in table", msg: ackHead + pid + obr + obx("NM|X||1||||||Q"), want: TableValueNotFound, wantLoc: "OBX^1^11"},
		{name: "OBR-25 not in table", msg: ackHead + pid + "OBR|1||F1|X" + strings.Repeat("|", 21) + "Q\r", want: TableValueNotFound, wantLoc: "OBR^1^25"},
		{name: "fraction of a second", msg: ackHead + pid + obr + obx("NM|X||1||||||F|||20260102103000.12345"), want: DataTypeError, wantLoc: "OBX^1^14"},
		{name: "second OBX at fault", msg: ackHead + pid + obr + obx("NM|X||1||||||F") + obx("NM|X||x||||||F"), want: DataTypeError, wantLoc: "OBX^2^5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseORU([]byte(tt.msg))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseORU error = %v, want a *ParseError", err)
			}
			if got := ErrorCodeOf(err); got != tt.want {
				t.Errorf("ErrorCodeOf(%q) = %d, want %d", pe.Reason, got, tt.want)
			}
			ack := parseACK(t, NewACKRaw([]byte(tt.msg), Ack{Code: AckReject, ControlID: "ACK-1", Time: ackClock, Cause: err}))
			e := ack.Segment("ERR")
			if e == nil {
				t.Fatal("AR without ERR")
			}
			if got := e.Field(2).Raw; got != tt.wantLoc {
				t.Errorf("ERR-2 = %q, want %q (reason %q)", got, tt.wantLoc, pe.Reason)
			}
			if got := e.Field(3).Comp(1); got != fmt.Sprint(int(tt.want)) {
				t.Errorf("ERR-3.1 = %q, want %d", got, tt.want)
			}
			if got := e.Field(3).Comp(2); got != tt.want.Text() {
				t.Errorf("ERR-3.2 = %q, want %q", got, tt.want.Text())
			}
			if got := ack.Segment("MSA").Field(3).Value(); got != pe.Reason {
				t.Errorf("MSA-3 = %q, want the parse error's reason %q", got, pe.Reason)
			}
		})
	}
}

func TestErrorCodeOfOtherErrors(t *testing.T) {
	pe := &ParseError{Segment: "OBX", Field: 11, Line: 4, Reason: "OBX-11 (segment 4): result status is missing"}
	tests := []struct {
		name string
		err  error
		want ErrorCode
	}{
		{name: "nil", err: nil, want: ApplicationInternalError},
		{name: "plain error", err: errors.New("storage unavailable"), want: ApplicationInternalError},
		{name: "wrapped parse error", err: fmt.Errorf("ingest: %w", pe), want: RequiredFieldMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorCodeOf(tt.err); got != tt.want {
				t.Errorf("ErrorCodeOf = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestNewACKErrorCodeOverride(t *testing.T) {
	orig, err := Parse([]byte(ackHead + ackBody))
	if err != nil {
		t.Fatal(err)
	}
	ack := parseACK(t, NewACK(orig, Ack{
		Code:      AckReject,
		ControlID: "ACK-2",
		Time:      ackClock,
		Text:      "unknown sending facility",
		ErrorCode: TableValueNotFound,
	}))
	e := ack.Segment("ERR")
	if got := e.Field(3).Comp(1); got != "103" {
		t.Errorf("ERR-3.1 = %q, want the override 103", got)
	}
	if got := e.Field(2).Raw; got != "" {
		t.Errorf("ERR-2 = %q, want empty without a parse error", got)
	}
	if got := ack.Segment("MSA").Field(1).Value(); got != "AR" {
		t.Errorf("MSA-1 = %q", got)
	}
}

func TestNewACKBefore25CarriesERR1(t *testing.T) {
	tests := []struct {
		name     string
		version  string
		wantERR1 string
	}{
		{name: "2.3.1", version: "2.3.1", wantERR1: "OBX^1^5^102&Data type error&HL70357"},
		{name: "2.4", version: "2.4", wantERR1: "OBX^1^5^102&Data type error&HL70357"},
		{name: "2.5.1", version: "2.5.1", wantERR1: ""},
		{name: "2.7", version: "2.7", wantERR1: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := strings.Replace(ackHead, "|2.5.1\r", "|"+tt.version+"\r", 1) +
				"PID|1||TEST123\rOBR|1\rOBX|1|NM|X||x||||||F\r"
			_, err := ParseORU([]byte(msg))
			if err == nil {
				t.Fatal("want a parse error")
			}
			ack := parseACK(t, NewACKRaw([]byte(msg), Ack{Code: AckReject, ControlID: "ACK-3", Time: ackClock, Cause: err}))
			if ack.Version != tt.version {
				t.Errorf("MSH-12 = %q, want %q", ack.Version, tt.version)
			}
			e := ack.Segment("ERR")
			if got := e.Field(1).Raw; got != tt.wantERR1 {
				t.Errorf("ERR-1 = %q, want %q", got, tt.wantERR1)
			}
			if got := e.Field(2).Raw; got != "OBX^1^5" {
				t.Errorf("ERR-2 = %q", got)
			}
			if got := e.Field(4).Value(); got != "E" {
				t.Errorf("ERR-4 = %q", got)
			}
		})
	}
}

func TestNewACKRawBrokenInput(t *testing.T) {
	tests := []struct {
		name          string
		raw           string
		wantControlID string
		wantSender    string // MSH-3 of the ACK: the original MSH-5
		wantReceiver  string // MSH-5 of the ACK: the original MSH-3
		wantVersion   string
		wantDelims    Delimiters
	}{
		{name: "empty", raw: "", wantVersion: defaultVersion, wantDelims: DefaultDelimiters},
		{name: "not HL7", raw: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", wantVersion: defaultVersion, wantDelims: DefaultDelimiters},
		{name: "binary", raw: "\x00\x01\xff\x0b\x1c", wantVersion: defaultVersion, wantDelims: DefaultDelimiters},
		{name: "MSH only", raw: "MSH", wantVersion: defaultVersion, wantDelims: DefaultDelimiters},
		{name: "bad encoding characters", raw: "MSH|^^^^|A|B|C|D||||X|P|2.4\r", wantVersion: defaultVersion, wantDelims: DefaultDelimiters},
		{
			name:          "bad MSH-7 keeps the rest",
			raw:           "MSH|^~\\&|LABAPP|LABFAC|CAREBOOK|CLINIC|notatime||ORU^R01|C-77|T|2.3\rPID|1\r",
			wantControlID: "C-77", wantSender: "CAREBOOK", wantReceiver: "LABAPP", wantVersion: "2.3", wantDelims: DefaultDelimiters,
		},
		{
			name:          "bad escape in MSH-3 is left out",
			raw:           "MSH|^~\\&|LAB\\Q\\APP|LABFAC|CAREBOOK|CLINIC|||ORU^R01|C-78|P|2.5.1\r",
			wantControlID: "C-78", wantSender: "CAREBOOK", wantReceiver: "", wantVersion: "2.5.1", wantDelims: DefaultDelimiters,
		},
		{
			name:          "short MSH",
			raw:           "MSH|^~\\&|LABAPP",
			wantReceiver:  "LABAPP",
			wantVersion:   defaultVersion,
			wantDelims:    DefaultDelimiters,
			wantControlID: "",
		},
		{
			name:          "other delimiters, broken body",
			raw:           "MSH*:!$%*LABAPP*LABFAC*CAREBOOK*CLINIC*20260102**ORU:R01*C9*P*2.5.1\rOBX*1*NM*X**$Q$\r",
			wantControlID: "C9", wantSender: "CAREBOOK", wantReceiver: "LABAPP", wantVersion: "2.5.1",
			wantDelims: Delimiters{Field: '*', Component: ':', Repetition: '!', Escape: '$', Subcomponent: '%'},
		},
		{
			name:          "control characters in control ID",
			raw:           "MSH|^~\\&|LABAPP||||||ORU^R01|C\\X0B1C\\1|P|2.5.1\rbad\r",
			wantControlID: "C\x0b\x1c1", wantReceiver: "LABAPP", wantVersion: "2.5.1", wantDelims: DefaultDelimiters,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := NewACKRaw([]byte(tt.raw), Ack{Code: AckReject, ControlID: "ACK-4", Time: ackClock, Text: "message unreadable"})
			if strings.ContainsAny(string(raw), "\x0b\x1c") {
				t.Errorf("ACK holds MLLP framing bytes: %q", raw)
			}
			ack := parseACK(t, raw)
			if ack.Delimiters != tt.wantDelims {
				t.Errorf("delimiters = %+v, want %+v", ack.Delimiters, tt.wantDelims)
			}
			msa := ack.Segment("MSA")
			if got := msa.Field(1).Value(); got != "AR" {
				t.Errorf("MSA-1 = %q", got)
			}
			if got := msa.Field(2).Value(); got != tt.wantControlID {
				t.Errorf("MSA-2 = %q, want %q", got, tt.wantControlID)
			}
			if ack.SendingApplication.NamespaceID != tt.wantSender || ack.ReceivingApplication.NamespaceID != tt.wantReceiver {
				t.Errorf("MSH-3/5 = %q %q, want %q %q", ack.SendingApplication.NamespaceID, ack.ReceivingApplication.NamespaceID, tt.wantSender, tt.wantReceiver)
			}
			if ack.Version != tt.wantVersion {
				t.Errorf("MSH-12 = %q, want %q", ack.Version, tt.wantVersion)
			}
			if ack.ControlID != "ACK-4" {
				t.Errorf("MSH-10 = %q", ack.ControlID)
			}
			if e := ack.Segment("ERR"); e == nil || e.Field(4).Value() != "E" {
				t.Errorf("AR without an ERR of severity E")
			}
		})
	}
}

func TestNewACKNilMessage(t *testing.T) {
	ack := parseACK(t, NewACK(nil, Ack{Code: AckError, ControlID: "ACK-5", Time: ackClock}))
	if got := ack.Segment("MSA").Field(1).Value(); got != "AE" {
		t.Errorf("MSA-1 = %q", got)
	}
	if ack.Version != defaultVersion || ack.ProcessingID != "P" {
		t.Errorf("MSH-11/12 = %q %q, want defaults", ack.ProcessingID, ack.Version)
	}
}

func FuzzNewACKRaw(f *testing.F) {
	f.Add([]byte(ackHead + ackBody))
	f.Add([]byte("MSH*:!$%*A*B*C*D*x**ORU:R01*C*9*P*2.5.1\r"))
	f.Add([]byte("MSH|^~\\&#|A\\X0D\\|B|||||ORU^R01|\\F\\|P|2.7\rOBX|1\r"))
	f.Add([]byte("MSH|^~\\&|A|B|C|D|2026|"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, code := range []AckCode{AckAccept, AckError, AckReject} {
			_, cause := ParseORU(raw)
			text := "text " + string(raw)
			ack := NewACKRaw(raw, Ack{Code: code, ControlID: "ACK|1", Time: ackClock, Text: text, Cause: cause})
			m, err := Parse(ack)
			if err != nil {
				t.Fatalf("ACK of %q does not parse: %v\n%q", raw, err, ack)
			}
			if got := m.Segment("MSA").Field(1).Value(); got != string(code) {
				t.Fatalf("MSA-1 = %q, want %q", got, code)
			}
			if got := m.Segment("MSA").Field(3).Value(); got != text {
				t.Fatalf("MSA-3 = %q, want the text %q", got, text)
			}
			if m.ControlID != "ACK|1" {
				t.Fatalf("MSH-10 = %q", m.ControlID)
			}
		}
	})
}
