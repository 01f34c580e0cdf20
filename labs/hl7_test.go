package labs

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/carebook/carebook/hl7"
)

const (
	nistFile   = "nist_oru_r01_2.5.1_case3_corrected_lead.hl7"
	cernerFile = "cerner_oru_r01_2.5.1_culture_abnormal.hl7"
	nhapiFile  = "nhapi_oru_r01_2.5.1_ft_br_repetitions.hl7"
	enumFile   = "hl7enumerator_oru_r01_2.3_escapes_T_R.hl7"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustHL7(t *testing.T, raw []byte) Message {
	t.Helper()
	o, err := hl7.ParseORU(raw)
	if err != nil {
		t.Fatalf("hl7.ParseORU: %v", err)
	}
	m, err := FromORU(o)
	if err != nil {
		t.Fatalf("FromORU: %v", err)
	}
	return m
}

func oneReport(t *testing.T, m Message) Report {
	t.Helper()
	if len(m.Reports) != 1 {
		t.Fatalf("reports = %d, want 1", len(m.Reports))
	}
	return m.Reports[0]
}

func oneObservation(t *testing.T, r Report) Observation {
	t.Helper()
	if len(r.Observations) != 1 {
		t.Fatalf("observations = %d, want 1", len(r.Observations))
	}
	return r.Observations[0]
}

func TestFromORUNISTCorrectedLead(t *testing.T) {
	m := mustHL7(t, readCase(t, "hl7", nistFile))
	eq(t, "Format", m.Format, FormatHL7v2)
	eq(t, "ID", m.ID, "NIST-100929110828087")
	// MSH-4's universal ID type is HL7, not ISO: the ID is kept as given.
	eq(t, "SendingFacility", m.SendingFacility, "2.16.840.1.113883.3.72.7.2")
	// MSH-7 carries no offset; FromORU reads it as UTC.
	eq(t, "SentAt", m.SentAt, utc("2010-09-29T11:08:28Z"))
	deq(t, "Patient.Identifiers", m.Patient.Identifiers, []Identifier{
		{System: "urn:oid:2.16.840.1.113883.19.3.2.1", Value: "9817566735", Type: "MR"},
	})
	eq(t, "Patient.Family", m.Patient.Family, "Johnson")
	eq(t, "Patient.Given", m.Patient.Given, "Philip")
	eq(t, "Patient.BirthDate", m.Patient.BirthDate, "2007-05-26")
	eq(t, "Patient.Sex", m.Patient.Sex, "M")

	r := oneReport(t, m)
	eq(t, "Report.Key", r.Key, "Lab|9700123")
	eq(t, "Report.FillerNumber", r.FillerNumber, "9700123")
	eq(t, "Report.PlacerNumber", r.PlacerNumber, "")
	eq(t, "Report.Status", r.Status, StatusCorrected)
	eq(t, "Report.Code", r.Code, Code{System: "http://loinc.org", Code: "10368-9", Display: "Lead BldC-mCnc"})
	// 200808151030-0700 and 200808181800-0700.
	eq(t, "Report.EffectiveAt", r.EffectiveAt, utc("2008-08-15T17:30:00Z"))
	eq(t, "Report.IssuedAt", r.IssuedAt, utc("2008-08-19T01:00:00Z"))
	eq(t, "Report.OrderingProvider", r.OrderingProvider, Identifier{System: "urn:oid:2.16.840.1.113883.19.4.6", Value: "1234"})
	deq(t, "Report.Specimens", r.Specimens, []Specimen{{
		Type: Code{System: "SCT", Code: "122554006", Display: "Capillary blood specimen"},
	}})
	eq(t, "Report.Severity", r.Severity(), SeverityAbnormal)

	o := oneObservation(t, r)
	eq(t, "Key", o.Key, "1.1")
	eq(t, "Code", o.Code, Code{System: "http://loinc.org", Code: "10368-9", Display: "Lead BldC-mCnc"})
	eq(t, "Kind", o.Kind, ValueQuantity)
	eq(t, "Number", o.Number, 25.0)
	eq(t, "Text", o.Text, "25")
	eq(t, "Comparator", o.Comparator, "")
	// The message spells the unit ug/dl, lower-case l: kept as sent.
	eq(t, "Unit", o.Unit, "ug/dl")
	eq(t, "ReferenceRange", o.ReferenceRange, "<10 ug/dl")
	deq(t, "Low", o.Low, (*float64)(nil))
	deq(t, "High", o.High, fptr(10))
	deq(t, "Flags", o.Flags, []string{"H"})
	eq(t, "Status", o.Status, StatusCorrected)
	eq(t, "EffectiveAt", o.EffectiveAt, utc("2008-08-15T17:30:00Z"))
	eq(t, "Severity", o.Severity(), SeverityAbnormal)
}

func TestFromORUCernerCodedAbnormalCulture(t *testing.T) {
	m := mustHL7(t, readCase(t, "hl7", cernerFile))
	eq(t, "ID", m.ID, "201010010913000771")
	eq(t, "SendingFacility", m.SendingFacility, "33D1234567")
	// The assigning authority's universal ID type is L, not ISO: the
	// namespace names the system.
	deq(t, "Patient.Identifiers", m.Patient.Identifiers, []Identifier{
		{System: "Baseline West MC", Value: "9339683996", Type: "MR"},
	})
	// PID-7 is 20050715050000: the day is kept, the hour dropped.
	eq(t, "Patient.BirthDate", m.Patient.BirthDate, "2005-07-15")

	r := oneReport(t, m)
	eq(t, "Report.Key", r.Key, "EHR|2010273000016")
	eq(t, "Report.FillerNumber", r.FillerNumber, "2010273000016")
	eq(t, "Report.Status", r.Status, StatusFinal)
	eq(t, "Report.Code", r.Code, Code{System: "http://loinc.org", Code: "548-8", Display: "Culture Sputum"})
	eq(t, "Report.IssuedAt", r.IssuedAt, utc("2010-10-01T13:28:00Z"))
	eq(t, "Report.OrderingProvider.System", r.OrderingProvider.System, "Baseline West MC")
	eq(t, "Report.Specimens[0].Type.Code", r.Specimens[0].Type.Code, "119334006")
	eq(t, "Report.Severity", r.Severity(), SeverityAbnormal)

	o := oneObservation(t, r)
	eq(t, "Key", o.Key, "1.1")
	eq(t, "Kind", o.Kind, ValueCoded)
	// The coded result has an empty code: text and system only.
	eq(t, "Coded", o.Coded, Code{System: "SNM", Display: "Bordetella pertussis"})
	eq(t, "Text", o.Text, "Bordetella pertussis")
	deq(t, "Flags", o.Flags, []string{"A"})
	eq(t, "Status", o.Status, StatusFinal)
	eq(t, "Severity", o.Severity(), SeverityAbnormal)
	eq(t, "EffectiveAt", o.EffectiveAt, utc("2010-11-04T16:40:00Z"))
}

func TestFromORUInReadsZonelessTimesInTheLabsZone(t *testing.T) {
	lab := time.FixedZone("lab", 3*60*60)
	o, err := hl7.ParseORU(readCase(t, "hl7", cernerFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := FromORUIn(o, lab)
	if err != nil {
		t.Fatal(err)
	}
	// OBX-14 201011041640 has no offset: 16:40 at +03:00.
	eq(t, "EffectiveAt", m.Reports[0].Observations[0].EffectiveAt, utc("2010-11-04T13:40:00Z"))
	eq(t, "SentAt", m.SentAt, utc("2010-11-04T13:40:00Z"))
	eq(t, "BirthDate", m.Patient.BirthDate, "2005-07-15")

	// NIST's OBR-7 carries -0700: the lab's zone does not move it.
	o, err = hl7.ParseORU(readCase(t, "hl7", nistFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err = FromORUIn(o, lab)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "NIST EffectiveAt", m.Reports[0].EffectiveAt, utc("2008-08-15T17:30:00Z"))
	eq(t, "NIST SentAt", m.SentAt, utc("2010-09-29T08:08:28Z"))
}

func TestFromORUNHapiFormattedTextRepetitions(t *testing.T) {
	raw := readCase(t, "hl7", nhapiFile)

	// As sent, the order has neither placer nor filler number: it is
	// keyed by the message, so it files but no later message corrects it.
	m := mustHL7(t, raw)
	r := oneReport(t, m)
	eq(t, "Report.Key", r.Key, "message:EBzH1711114101206#1")
	eq(t, "Report.FillerNumber", r.FillerNumber, "")

	// With a filler number in OBR-3, the number keys it.
	withFiller := oneReport(t, mustHL7(t, withField(t, raw, "OBR", 3, "F1^LAB")))
	eq(t, "Report.Key with filler", withFiller.Key, "LAB|F1")

	eq(t, "Report.Code", r.Code, Code{Code: "ehipack", Display: "eHippa Acknowlegment"})
	eq(t, "Report.Status", r.Status, StatusFinal)
	eq(t, "Report.OrderingProvider", r.OrderingProvider, Identifier{Value: "00002"})
	deq(t, "Patient.Identifiers", m.Patient.Identifiers, []Identifier{{Value: "1711114"}})
	eq(t, "Patient.BirthDate", m.Patient.BirthDate, "1972-05-01")
	if len(r.Observations) != 3 {
		t.Fatalf("observations = %d, want 3", len(r.Observations))
	}
	for i, o := range r.Observations {
		eq(t, "Key", o.Key, string(rune('1'+i)))
		eq(t, "Kind", o.Kind, ValueText)
		// \.br\ within a repetition and ~ between repetitions both
		// become line breaks.
		eq(t, "Text", o.Text, "This\nis\nA Test\nMoreText\nSomeMoreText")
		eq(t, "Status", o.Status, StatusFinal)
		eq(t, "Severity", o.Severity(), SeverityNormal)
	}
}

func TestParseHL7EnumeratorIsRejectedByTheParser(t *testing.T) {
	_, err := ParseHL7(readCase(t, "hl7", enumFile), time.UTC)
	// FromORUIn only ever returns *InvalidError; a *hl7.ParseError means
	// the message never reached it.
	var ie *InvalidError
	if errors.As(err, &ie) {
		t.Fatalf("error %v came from the mapping, want the parser's", err)
	}
	var pe *hl7.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("ParseHL7 error = %v, want *hl7.ParseError", err)
	}
	eq(t, "Segment", pe.Segment, "OBX")
	eq(t, "Field", pe.Field, 5)
	for _, s := range []string{"OBX-5", "OBX-4"} {
		if !strings.Contains(pe.Reason, s) {
			t.Errorf("Reason %q does not mention %q", pe.Reason, s)
		}
	}
}

// segments splits a message into its segments, whatever the line ends.
func segments(raw []byte) []string {
	var out []string
	for _, l := range strings.FieldsFunc(string(raw), func(r rune) bool { return r == '\r' || r == '\n' }) {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func join(segs []string) []byte { return []byte(strings.Join(segs, "\r") + "\r") }

// withField sets field n of the first segment named seg.
func withField(t *testing.T, raw []byte, seg string, n int, v string) []byte {
	t.Helper()
	segs := segments(raw)
	for i, s := range segs {
		if !strings.HasPrefix(s, seg+"|") {
			continue
		}
		parts := strings.Split(s, "|")
		idx := n
		if seg == "MSH" {
			idx = n - 1 // MSH-1 is the separator itself
		}
		for len(parts) <= idx {
			parts = append(parts, "")
		}
		parts[idx] = v
		segs[i] = strings.Join(parts, "|")
		return join(segs)
	}
	t.Fatalf("no %s segment", seg)
	return nil
}

// withSegmentAfter inserts line after the first segment named seg.
func withSegmentAfter(t *testing.T, raw []byte, seg, line string) []byte {
	t.Helper()
	segs := segments(raw)
	for i, s := range segs {
		if strings.HasPrefix(s, seg+"|") {
			out := append(append(append([]string{}, segs[:i+1]...), line), segs[i+1:]...)
			return join(out)
		}
	}
	t.Fatalf("no %s segment", seg)
	return nil
}

// segmentOf returns the first segment named seg.
func segmentOf(t *testing.T, raw []byte, seg string) string {
	t.Helper()
	for _, s := range segments(raw) {
		if strings.HasPrefix(s, seg+"|") {
			return s
		}
	}
	t.Fatalf("no %s segment", seg)
	return ""
}

// mapNIST maps the NIST message after edit. Its segments are MSH 1, SFT 2,
// PID 3, ORC 4, OBR 5, OBX 6, SPM 7.
func mapNIST(t *testing.T, edit func(raw []byte) []byte) (Message, error) {
	t.Helper()
	raw := edit(readCase(t, "hl7", nistFile))
	o, err := hl7.ParseORU(raw)
	if err != nil {
		t.Fatalf("hl7.ParseORU of the edited message: %v", err)
	}
	return FromORU(o)
}

func wantInvalid(t *testing.T, err error, mentions ...string) {
	t.Helper()
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("error = %v, want *InvalidError", err)
	}
	for _, s := range mentions {
		if !strings.Contains(ie.Reason, s) {
			t.Errorf("Reason %q does not mention %q", ie.Reason, s)
		}
	}
}

func TestReportStatusFromOBR25(t *testing.T) {
	tests := []struct {
		name string
		code string
		want Status
	}{
		{name: "final", code: "F", want: StatusFinal},
		{name: "correction", code: "C", want: StatusCorrected},
		{name: "preliminary", code: "P", want: StatusPreliminary},
		{name: "some results", code: "A", want: StatusPreliminary},
		{name: "stored, not verified", code: "R", want: StatusPreliminary},
		{name: "order received", code: "O", want: StatusRegistered},
		{name: "specimen in lab", code: "I", want: StatusRegistered},
		{name: "scheduled", code: "S", want: StatusRegistered},
		{name: "cancelled", code: "X", want: StatusCancelled},
		{name: "no order on record", code: "Y"},
		{name: "no patient on record", code: "Z"},
		{name: "missing", code: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mapNIST(t, func(raw []byte) []byte { return withField(t, raw, "OBR", 25, tt.code) })
			if tt.want == "" {
				wantInvalid(t, err, "OBR-25 (segment 5)")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "Status", m.Reports[0].Status, tt.want)
		})
	}
}

func TestObservationStatusFromOBX11(t *testing.T) {
	tests := []struct {
		name string
		code string
		want Status
	}{
		{name: "final", code: "F", want: StatusFinal},
		{name: "final without resending", code: "U", want: StatusFinal},
		{name: "correction", code: "C", want: StatusCorrected},
		{name: "preliminary", code: "P", want: StatusPreliminary},
		{name: "not verified", code: "R", want: StatusPreliminary},
		{name: "partial", code: "S", want: StatusPreliminary},
		{name: "in lab", code: "I", want: StatusRegistered},
		{name: "order detail", code: "O", want: StatusRegistered},
		{name: "cannot be obtained", code: "X", want: StatusCancelled},
		{name: "not asked", code: "N", want: StatusCancelled},
		{name: "delete", code: "D", want: StatusError},
		{name: "wrong", code: "W", want: StatusError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mapNIST(t, func(raw []byte) []byte { return withField(t, raw, "OBX", 11, tt.code) })
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "Status", m.Reports[0].Observations[0].Status, tt.want)
		})
	}
}

func TestObservationValueByType(t *testing.T) {
	tests := []struct {
		name       string
		vt, value  string
		want       Observation // Kind, Text, Number, Number2, Comparator, Coded
		wantReason string
	}{
		{name: "SN less than", vt: "SN", value: "<^10", want: Observation{Kind: ValueQuantity, Comparator: "<", Number: 10, Text: "<10"}},
		{name: "SN at least", vt: "SN", value: ">=^5.5", want: Observation{Kind: ValueQuantity, Comparator: ">=", Number: 5.5, Text: ">=5.5"}},
		{name: "SN equals", vt: "SN", value: "=^5", want: Observation{Kind: ValueQuantity, Number: 5, Text: "5"}},
		{name: "SN plain", vt: "SN", value: "^7", want: Observation{Kind: ValueQuantity, Number: 7, Text: "7"}},
		{name: "SN range", vt: "SN", value: "^10^-^20", want: Observation{Kind: ValueRange, Number: 10, Number2: 20, Text: "10-20"}},
		{name: "SN titer", vt: "SN", value: "^1^:^128", want: Observation{Kind: ValueRatio, Number: 1, Number2: 128, Text: "1:128"}},
		{name: "SN ratio with slash", vt: "SN", value: "^1^/^2", want: Observation{Kind: ValueRatio, Number: 1, Number2: 2, Text: "1/2"}},
		{name: "SN grade", vt: "SN", value: "^2^+", want: Observation{Kind: ValueText, Number: 2, Text: "2+"}},
		{name: "SN not equal", vt: "SN", value: "<>^5", wantReason: "OBX-5 (segment 6)"},
		{name: "SN decimal separator", vt: "SN", value: "^1^.^5", wantReason: "OBX-5 (segment 6)"},
		{name: "SN comparator and range", vt: "SN", value: "<^1^-^5", wantReason: "OBX-5 (segment 6)"},
		{name: "NM repeated", vt: "NM", value: "1~2", wantReason: "OBX-5 (segment 6)"},
		{name: "CWE", vt: "CWE", value: "260373001^Detected^SCT", want: Observation{Kind: ValueCoded, Text: "Detected", Coded: Code{System: "SCT", Code: "260373001", Display: "Detected"}}},
		{name: "CWE repeated", vt: "CWE", value: "A^a^L~B^b^L", wantReason: "OBX-5 (segment 6)"},
		{name: "TX lines", vt: "TX", value: "first~second", want: Observation{Kind: ValueText, Text: "first\nsecond"}},
		{name: "ST", vt: "ST", value: "positive", want: Observation{Kind: ValueText, Text: "positive"}},
		{name: "no value", vt: "", value: "", want: Observation{Kind: ValueNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mapNIST(t, func(raw []byte) []byte {
				return withField(t, withField(t, raw, "OBX", 2, tt.vt), "OBX", 5, tt.value)
			})
			if tt.wantReason != "" {
				wantInvalid(t, err, tt.wantReason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o := m.Reports[0].Observations[0]
			got := Observation{Kind: o.Kind, Text: o.Text, Number: o.Number, Number2: o.Number2, Comparator: o.Comparator, Coded: o.Coded}
			deq(t, "value", got, tt.want)
		})
	}
}

func TestObservationKeys(t *testing.T) {
	t.Run("set ID alone without a sub ID", func(t *testing.T) {
		m, err := mapNIST(t, func(raw []byte) []byte { return withField(t, raw, "OBX", 4, "") })
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "Key", m.Reports[0].Observations[0].Key, "1")
	})
	t.Run("a repeated key is refused", func(t *testing.T) {
		_, err := mapNIST(t, func(raw []byte) []byte {
			return withSegmentAfter(t, raw, "OBX", segmentOf(t, raw, "OBX"))
		})
		wantInvalid(t, err, "OBX-1 (segment 7)", "repeat")
	})
	t.Run("same set ID, other sub ID", func(t *testing.T) {
		_, err := mapNIST(t, func(raw []byte) []byte {
			second := withField(t, []byte(segmentOf(t, raw, "OBX")), "OBX", 4, "2")
			return withSegmentAfter(t, raw, "OBX", strings.TrimRight(string(second), "\r"))
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an empty set ID is refused", func(t *testing.T) {
		_, err := mapNIST(t, func(raw []byte) []byte { return withField(t, raw, "OBX", 1, "") })
		wantInvalid(t, err, "OBX-1 (segment 6)")
	})
}

func TestReportKeyFromOrderNumbers(t *testing.T) {
	tests := []struct {
		name           string
		placer, filler string
		want           string
	}{
		{name: "filler namespace", filler: "9700123^Lab^1.2.3^ISO", want: "Lab|9700123"},
		{name: "filler universal ID without namespace", filler: "123^^1.2.3^ISO", want: "1.2.3|123"},
		{name: "filler without authority", filler: "123", want: "|123"},
		{name: "placer when no filler", placer: "P1^PLAC", want: "PLAC|P1"},
		{name: "filler before placer", placer: "P1^PLAC", filler: "F1^FILL", want: "FILL|F1"},
		{name: "neither", want: "message:NIST-100929110828087#1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mapNIST(t, func(raw []byte) []byte {
				return withField(t, withField(t, raw, "OBR", 2, tt.placer), "OBR", 3, tt.filler)
			})
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "Key", m.Reports[0].Key, tt.want)
		})
	}
}

func TestOrderingProviderFallsBackToORC12(t *testing.T) {
	m, err := mapNIST(t, func(raw []byte) []byte {
		raw = withField(t, raw, "ORC", 12, "999^Doe^Jan^^^^^^&1.2.9&ISO^^^^NPI")
		return withField(t, raw, "OBR", 16, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "OrderingProvider", m.Reports[0].OrderingProvider, Identifier{System: "urn:oid:1.2.9", Value: "999", Type: "NPI"})
}

func TestIdentifiersAndFacility(t *testing.T) {
	m, err := mapNIST(t, func(raw []byte) []byte {
		raw = withField(t, raw, "MSH", 4, "Lab^1.2.840.1^ISO")
		return withField(t, raw, "PID", 3, "1^^^A&1.2&ISO^MR~2^^^B^PI~3^^^&9.9&L")
	})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "SendingFacility", m.SendingFacility, "urn:oid:1.2.840.1")
	deq(t, "Identifiers", m.Patient.Identifiers, []Identifier{
		{System: "urn:oid:1.2", Value: "1", Type: "MR"},
		{System: "B", Value: "2", Type: "PI"},
		{System: "9.9", Value: "3"},
	})

	m, err = mapNIST(t, func(raw []byte) []byte { return withField(t, raw, "MSH", 4, "Lab") })
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "SendingFacility without universal ID", m.SendingFacility, "Lab")
}

func TestBirthDateNeedsTheDay(t *testing.T) {
	tests := []struct {
		name, pid7, want string
	}{
		{name: "day", pid7: "20070526", want: "2007-05-26"},
		{name: "minute with offset", pid7: "200705262330-0500", want: "2007-05-26"},
		{name: "month only", pid7: "200705", want: ""},
		{name: "year only", pid7: "2007", want: ""},
		{name: "absent", pid7: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mapNIST(t, func(raw []byte) []byte { return withField(t, raw, "PID", 7, tt.pid7) })
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "BirthDate", m.Patient.BirthDate, tt.want)
		})
	}
}

func TestNotesFromNTE(t *testing.T) {
	m, err := mapNIST(t, func(raw []byte) []byte {
		raw = withSegmentAfter(t, raw, "OBR", "NTE|1||order line one~order line two")
		return withSegmentAfter(t, raw, "OBX", "NTE|1||retest advised")
	})
	if err != nil {
		t.Fatal(err)
	}
	deq(t, "Report.Notes", m.Reports[0].Notes, []string{"order line one\norder line two"})
	deq(t, "Observation.Notes", m.Reports[0].Observations[0].Notes, []string{"retest advised"})
}

func TestObservationTimeFallsBackToTheReports(t *testing.T) {
	m, err := mapNIST(t, func(raw []byte) []byte { return withField(t, raw, "OBX", 14, "") })
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "EffectiveAt", m.Reports[0].Observations[0].EffectiveAt, utc("2008-08-15T17:30:00Z"))
}

func TestAnOrderWithoutOBRIsRefused(t *testing.T) {
	_, err := mapNIST(t, func(raw []byte) []byte { return withSegmentAfter(t, raw, "PID", "ORC|RE") })
	wantInvalid(t, err, "ORC (segment 4)", "no OBR")
}

func TestFromORUWithoutMessage(t *testing.T) {
	_, err := FromORU(hl7.ORU{})
	wantInvalid(t, err)
}
