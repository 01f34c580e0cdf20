package hl7

import (
	"errors"
	"strings"
	"testing"
)

func TestUnescape(t *testing.T) {
	d := DefaultDelimiters
	tests := []struct {
		name    string
		in      string
		ft      bool
		want    string
		wantErr bool
	}{
		{name: "plain", in: "abc", want: "abc"},
		{name: "field", in: `a\F\b`, want: "a|b"},
		{name: "component", in: `a\S\b`, want: "a^b"},
		{name: "subcomponent", in: `a\T\b`, want: "a&b"},
		{name: "repetition", in: `a\R\b`, want: "a~b"},
		{name: "escape", in: `a\E\b`, want: `a\b`},
		{name: "hex one byte", in: `\X41\`, want: "A"},
		{name: "hex several bytes", in: `x\X0D0A\y`, want: "x\r\ny"},
		{name: "hex lower case", in: `\Xc3a9\`, want: "é"},
		{name: "highlight dropped", in: `\H\high\N\ low`, want: "high low"},
		{name: "br outside FT kept", in: `a\.br\b`, want: `a\.br\b`},
		{name: "br in FT", in: `a\.br\b`, ft: true, want: "a\nb"},
		{name: "sp in FT", in: `a\.sp2\b`, ft: true, want: "a\n\nb"},
		{name: "sk in FT", in: `a\.sk3\b`, ft: true, want: "a   b"},
		{name: "layout dropped in FT", in: `\.in4\\.ti-2\\.ce\\.fi\\.nf\x`, ft: true, want: "x"},
		{name: "unterminated", in: `a\Fb`, wantErr: true},
		{name: "empty sequence", in: `a\\b`, wantErr: true},
		{name: "odd hex", in: `\X0\`, wantErr: true},
		{name: "non-hex", in: `\XZZ\`, wantErr: true},
		{name: "empty hex", in: `\X\`, wantErr: true},
		{name: "unknown letter", in: `\Q\`, wantErr: true},
		{name: "charset switch", in: `\C2842\`, wantErr: true},
		{name: "locally defined", in: `\Zfoo\`, wantErr: true},
		{name: "unknown formatting", in: `\.xx\`, ft: true, wantErr: true},
		{name: "truncation without fifth char", in: `\P\`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := unescape(tt.in, d, tt.ft)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("unescape(%q) = %q, want error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unescape(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("unescape(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	d := DefaultDelimiters
	d.Truncation = '#'
	for _, s := range []string{"", "a|b^c~d\\e&f#g", "line1\r\nline2\tx", "plain"} {
		got, err := Unescape(Escape(s, d), d)
		if err != nil || got != s {
			t.Errorf("round trip of %q = %q, %v", s, got, err)
		}
	}
}

const oruTail = "PID|1||123^^^HOSP&1.2.3&ISO^MR~456^^^OTHER^PI||Doe^Jane||19800102|F\r" +
	"OBR|1|P1^PLACER|F1^FILLER|1234-5^Glucose^LN|||202601021030|||||||||||||||202601021100|||F\r" +
	"OBX|1|NM|1234-5^Glucose^LN||5.4|mmol/L^mmol/L^UCUM|3.9-5.5||||F|||202601021030\r"

func TestSeparators(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want Delimiters
	}{
		{
			name: "default",
			msg:  "MSH|^~\\&|A|B|||20260102||ORU^R01|1|P|2.5.1\r",
			want: DefaultDelimiters,
		},
		{
			name: "other characters",
			msg:  "MSH*:!$%*A*B***20260102**ORU:R01*1*P*2.5.1\r",
			want: Delimiters{Field: '*', Component: ':', Repetition: '!', Escape: '$', Subcomponent: '%'},
		},
		{
			name: "fifth truncation character",
			msg:  "MSH|^~\\&#|A|B|||20260102||ORU^R01|1|P|2.7\r",
			want: Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&', Truncation: '#'},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			if m.Delimiters != tt.want {
				t.Errorf("delimiters = %+v, want %+v", m.Delimiters, tt.want)
			}
			if m.SendingApplication.NamespaceID != "A" || m.SendingFacility.NamespaceID != "B" {
				t.Errorf("MSH-3/4 = %+v %+v", m.SendingApplication, m.SendingFacility)
			}
			if m.Type != (MessageType{Code: "ORU", Event: "R01"}) || m.ControlID != "1" {
				t.Errorf("MSH-9/10 = %+v %q", m.Type, m.ControlID)
			}
		})
	}
}

func TestOtherSeparatorsThroughORU(t *testing.T) {
	msg := "MSH*:!$%*LAB*FAC***20260102**ORU:R01*7*P*2.5.1\r" +
		"PID*1**123:::HOSP%1.2.3%ISO:MR!456:::OTHER:PI**Doe:Jane\r" +
		"OBR*1**F1*1234-5:Glucose:LN\r" +
		"OBX*1*ST*X:Note**a$F$b$S$c$R$d$T$e$E$f******F\r"
	o, err := ParseORU([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Orders[0].Observations[0].Values[0].Text; got != "a*b:c!d%e$f" {
		t.Errorf("value = %q", got)
	}
	if got := o.Patient.Identifiers[1].ID; got != "456" {
		t.Errorf("second identifier = %q", got)
	}
}

func TestTruncationEscape(t *testing.T) {
	msg := "MSH|^~\\&#|A||||20260102||ORU^R01|1|P|2.7\rNTE|1||50\\P\\ off#\r"
	m, err := Parse([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Segment("NTE").Field(3).Value(); got != "50# off#" {
		t.Errorf("NTE-3 = %q", got)
	}
}

func TestSegmentTerminators(t *testing.T) {
	head := "MSH|^~\\&|A||||202601021200||ORU^R01|1|P|2.5.1"
	segs := strings.Split(strings.TrimSuffix(oruTail, "\r"), "\r")
	tests := []struct {
		name string
		sep  []string
		end  string
	}{
		{name: "CR", sep: []string{"\r", "\r", "\r"}, end: "\r"},
		{name: "LF", sep: []string{"\n", "\n", "\n"}, end: "\n"},
		{name: "CRLF", sep: []string{"\r\n", "\r\n", "\r\n"}, end: "\r\n"},
		{name: "mixed", sep: []string{"\r", "\n", "\r\n"}, end: ""},
		{name: "blank lines", sep: []string{"\r\n\r\n", "\n\n", "\r\r"}, end: "\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := head
			for i, s := range segs {
				msg += tt.sep[i] + s
			}
			msg += tt.end
			o, err := ParseORU([]byte(msg))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(o.Message.Segments); n != 4 {
				t.Fatalf("segments = %d, want 4", n)
			}
			v := o.Orders[0].Observations[0]
			if v.Values[0].Number != 5.4 || v.ObservationTime.Raw != "202601021030" || v.ResultStatus != "F" {
				t.Errorf("observation = %+v", v)
			}
		})
	}
}

func TestORUValues(t *testing.T) {
	head := "MSH|^~\\&|A||||202601021200||ORU^R01|1|P|2.5.1\r" +
		"PID|1||123^^^HOSP^MR||Doe^Jane\rOBR|1||F1|1234-5^Glucose^LN\r"
	tests := []struct {
		name string
		obx  string
		want []Value
	}{
		{name: "NM", obx: "OBX|1|NM|X||-0.5||||||F", want: []Value{{Text: "-0.5", Number: -0.5}}},
		{name: "NM repetitions", obx: "OBX|1|NM|X||1~2||||||F", want: []Value{{Text: "1", Number: 1}, {Text: "2", Number: 2}}},
		{name: "SN comparator", obx: "OBX|1|SN|X||<^10||||||F", want: []Value{{Text: "<^10", Comparator: "<", Number: 10}}},
		{name: "SN ratio", obx: "OBX|1|SN|X||^1^:^128||||||F", want: []Value{{Text: "^1^:^128", Number: 1, Separator: ":", Number2: 128, HasNumber2: true}}},
		{name: "SN range", obx: "OBX|1|SN|X||>=^2^-^4||||||F", want: []Value{{Text: ">=^2^-^4", Comparator: ">=", Number: 2, Separator: "-", Number2: 4, HasNumber2: true}}},
		{name: "CWE", obx: "OBX|1|CWE|X||260373001^Detected^SCT||||||F", want: []Value{{Code: Coded{Code: "260373001", Text: "Detected", System: "SCT"}}}},
		{name: "ST escaped", obx: "OBX|1|ST|X||a\\S\\b||||||F", want: []Value{{Text: "a^b"}}},
		{name: "TX keeps br", obx: "OBX|1|TX|X||a\\.br\\b||||||F", want: []Value{{Text: "a\\.br\\b"}}},
		{name: "FT", obx: "OBX|1|FT|X||a\\.br\\b~c||||||F", want: []Value{{Text: "a\nb"}, {Text: "c"}}},
		{name: "no value", obx: "OBX|1|NM|X||||||||X", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseORU([]byte(head + tt.obx + "\r"))
			if err != nil {
				t.Fatal(err)
			}
			deq(t, "values", o.Orders[0].Observations[0].Values, tt.want)
		})
	}
}

func TestNotesAttachToPrecedingSegment(t *testing.T) {
	msg := "MSH|^~\\&|A||||202601021200||ORU^R01|1|P|2.5.1\r" +
		"NTE|1||header\r" +
		"PID|1||123^^^HOSP^MR||Doe^Jane\rNTE|1||patient\r" +
		"ORC|RE|P1\rOBR|1||F1|X\rNTE|1||order\\.br\\line~second\r" +
		"OBX|1|ST|X||v||||||F\rNTE|1|L|obs1|RE\r" +
		"OBX|2|ST|X||w||||||F\rNTE|1||obs2\r" +
		"SPM|1|S1&LAB||BLD^Blood^HL70487\rNTE|1||specimen\r" +
		"OBR|2||F2|Y\rNTE|1||order2\r"
	o, err := ParseORU([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	deq(t, "message notes", o.Notes, []Note{{SetID: "1", Comment: []string{"header"}}})
	deq(t, "patient notes", o.Patient.Notes, []Note{{SetID: "1", Comment: []string{"patient"}}})
	if len(o.Orders) != 2 {
		t.Fatalf("orders = %d, want 2", len(o.Orders))
	}
	o1 := o.Orders[0]
	eq(t, "placer from ORC", o1.PlacerOrderNumber.ID, "P1")
	deq(t, "order notes", o1.Notes, []Note{{SetID: "1", Comment: []string{"order\nline", "second"}}})
	deq(t, "obs1 notes", o1.Observations[0].Notes, []Note{{SetID: "1", Source: "L", Comment: []string{"obs1"}, Type: "RE"}})
	deq(t, "obs2 notes", o1.Observations[1].Notes, []Note{{SetID: "1", Comment: []string{"obs2"}}})
	eq(t, "specimen ID", o1.Specimens[0].ID, EI{ID: "S1", NamespaceID: "LAB"})
	deq(t, "specimen notes", o1.Specimens[0].Notes, []Note{{SetID: "1", Comment: []string{"specimen"}}})
	deq(t, "order2 notes", o.Orders[1].Notes, []Note{{SetID: "1", Comment: []string{"order2"}}})
	eq(t, "order2 placer not inherited", o.Orders[1].PlacerOrderNumber.ID, "")
}

func TestRejections(t *testing.T) {
	msh := "MSH|^~\\&|A||||202601021200||ORU^R01|1|P|2.5.1\r"
	pid := "PID|1||123^^^HOSP^MR||Doe^Jane\r"
	obr := "OBR|1||F1|X\r"
	tests := []struct {
		name        string
		msg         string
		wantSegment string
		wantField   int
	}{
		{name: "empty", msg: "", wantSegment: "MSH"},
		{name: "missing MSH", msg: pid + obr, wantSegment: "MSH"},
		{name: "short MSH-2", msg: "MSH|^~\\|A\r" + pid + obr, wantSegment: "MSH", wantField: 2},
		{name: "duplicate encoding characters", msg: "MSH|^^\\&|A\r" + pid + obr, wantSegment: "MSH", wantField: 2},
		{name: "alphanumeric separator", msg: "MSHA^~\\&A\r", wantSegment: "MSH", wantField: 1},
		{name: "bad segment name", msg: msh + "pid|1\r", wantSegment: ""},
		{name: "not ORU", msg: "MSH|^~\\&|A||||202601021200||ADT^A01|1|P|2.5.1\r" + pid + obr, wantSegment: "MSH", wantField: 9},
		{name: "no PID", msg: msh + obr, wantSegment: "OBR"},
		{name: "no PID at all", msg: msh, wantSegment: "PID"},
		{name: "no OBR", msg: msh + pid, wantSegment: "OBR"},
		{name: "OBX before OBR", msg: msh + pid + "OBX|1|ST|X||v||||||F\r", wantSegment: "OBX"},
		{name: "second patient", msg: msh + pid + obr + pid + obr, wantSegment: "PID"},
		{name: "unknown value type", msg: msh + pid + obr + "OBX|1|ZZ|X||v||||||F\r", wantSegment: "OBX", wantField: 2},
		{name: "NM not a number", msg: msh + pid + obr + "OBX|1|NM|X||high||||||F\r", wantSegment: "OBX", wantField: 5},
		{name: "NM exponent", msg: msh + pid + obr + "OBX|1|NM|X||1e3||||||F\r", wantSegment: "OBX", wantField: 5},
		{name: "SN bad comparator", msg: msh + pid + obr + "OBX|1|SN|X||!^3||||||F\r", wantSegment: "OBX", wantField: 5},
		{name: "ST unescaped component", msg: msh + pid + obr + "OBX|1|ST|X||a^b||||||F\r", wantSegment: "OBX", wantField: 5},
		{name: "CWE empty", msg: msh + pid + obr + "OBX|1|CWE|X||^^L||||||F\r", wantSegment: "OBX", wantField: 5},
		{name: "missing result status", msg: msh + pid + obr + "OBX|1|ST|X||v\r", wantSegment: "OBX", wantField: 11},
		{name: "shifted result status", msg: msh + pid + obr + "OBX|1|ST|X||v|||||F\r", wantSegment: "OBX", wantField: 11},
		{name: "unknown result status", msg: msh + pid + obr + "OBX|1|ST|X||v||||||Q\r", wantSegment: "OBX", wantField: 11},
		{name: "bad OBR-25", msg: msh + pid + "OBR|1||F1|X|||||||||||||||||||||Q\r", wantSegment: "OBR", wantField: 25},
		{name: "bad observation time", msg: msh + pid + obr + "OBX|1|ST|X||v||||||F|||20261340\r", wantSegment: "OBX", wantField: 14},
		{name: "bad escape", msg: msh + pid + obr + "OBX|1|ST|X||\\Zx\\||||||F\r", wantSegment: "OBX", wantField: 5},
		{name: "empty PID-3", msg: msh + "PID|1||\r" + obr, wantSegment: "PID", wantField: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseORU([]byte(tt.msg))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v, want *ParseError", err)
			}
			if pe.Segment != tt.wantSegment || pe.Field != tt.wantField {
				t.Errorf("rejected at %s-%d (%s), want %s-%d", pe.Segment, pe.Field, pe.Reason, tt.wantSegment, tt.wantField)
			}
			if tt.wantSegment != "" && !strings.HasPrefix(pe.Reason, tt.wantSegment) {
				t.Errorf("Reason %q does not start with the segment", pe.Reason)
			}
		})
	}
}

func TestParseDateTime(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		zone    bool
		wantErr bool
	}{
		{name: "day", in: "20070526", want: "2007-05-26T00:00:00Z"},
		{name: "year", in: "2007", want: "2007-01-01T00:00:00Z"},
		{name: "minute with zone", in: "200808151030-0700", want: "2008-08-15T10:30:00-07:00", zone: true},
		{name: "fraction", in: "20080815103001.25+0100", want: "2008-08-15T10:30:01.25+01:00", zone: true},
		{name: "odd digits", in: "2008081", wantErr: true},
		{name: "month 13", in: "20081301", wantErr: true},
		{name: "bad zone", in: "200808151030-07", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDateTime(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDateTime(%q) = %v, want error", tt.in, got.Time)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := got.Time.Format("2006-01-02T15:04:05.999Z07:00"); s != tt.want || got.HasZone != tt.zone {
				t.Errorf("ParseDateTime(%q) = %s zone %v, want %s zone %v", tt.in, s, got.HasZone, tt.want, tt.zone)
			}
		})
	}
}

func TestSecondMSHRejected(t *testing.T) {
	for _, msg := range []string{
		"MSH|^~\\&|A\rMSH\r",
		"MSH|^~\\&|A\rMSH|^~\\&|B\r",
	} {
		_, err := Parse([]byte(msg))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Segment != "MSH" || pe.Line != 2 {
			t.Errorf("Parse(%q) error = %v, want MSH rejected at segment 2", msg, err)
		}
	}
}
