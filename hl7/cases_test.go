package hl7

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/carebook/carebook/internal/sharedcases"
)

func casesDir(t testing.TB) string { return sharedcases.Dir(t, "hl7") }

func readCase(t *testing.T, name string) []byte { return sharedcases.Read(t, "hl7", name) }

func TestSharedCasesAllCovered(t *testing.T) {
	entries, err := os.ReadDir(casesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if !e.IsDir() {
			got = append(got, e.Name())
		}
	}
	var want []string
	for _, c := range sharedCases {
		want = append(want, c.file)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("shared files %v, table covers %v: every file needs a case", got, want)
	}
}

type sharedCase struct {
	file  string
	check func(t *testing.T, raw []byte)
}

var sharedCases = []sharedCase{
	{file: "nist_oru_r01_2.5.1_case3_corrected_lead.hl7", check: checkNIST},
	{file: "cerner_oru_r01_2.5.1_culture_abnormal.hl7", check: checkCerner},
	{file: "nhapi_oru_r01_2.5.1_ft_br_repetitions.hl7", check: checkNHapi},
	{file: "hl7enumerator_oru_r01_2.3_escapes_T_R.hl7", check: checkEnumerator},
	{file: "hl7enumerator_escape_vector.json", check: checkEscapeVector},
}

func TestSharedCases(t *testing.T) {
	for _, c := range sharedCases {
		t.Run(c.file, func(t *testing.T) {
			c.check(t, readCase(t, c.file))
		})
	}
}

// eq compares field by field and names the field that differs.
func eq[T comparable](t *testing.T, name string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}

func deq(t *testing.T, name string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}

func mustORU(t *testing.T, raw []byte) ORU {
	t.Helper()
	o, err := ParseORU(raw)
	if err != nil {
		t.Fatalf("ParseORU: %v", err)
	}
	return o
}

func checkNIST(t *testing.T, raw []byte) {
	o := mustORU(t, raw)
	m := o.Message
	eq(t, "SendingApplication", m.SendingApplication, HD{"EHR Application", "2.16.840.1.113883.3.72.7.1", "HL7"})
	eq(t, "SendingFacility", m.SendingFacility, HD{"EHR Facility", "2.16.840.1.113883.3.72.7.2", "HL7"})
	eq(t, "ReceivingApplication", m.ReceivingApplication, HD{"PH Application", "2.16.840.1.113883.3.72.7.3", "HL7"})
	eq(t, "ReceivingFacility", m.ReceivingFacility, HD{"PH Facility", "2.16.840.1.113883.3.72.7.4", "HL7"})
	eq(t, "Type", m.Type, MessageType{"ORU", "R01", "ORU_R01"})
	eq(t, "ControlID", m.ControlID, "NIST-100929110828087")
	eq(t, "Version", m.Version, "2.5.1")
	eq(t, "Time.Raw", m.Time.Raw, "20100929110828")

	deq(t, "Patient.Identifiers", o.Patient.Identifiers, []PatientID{{
		ID:                 "9817566735",
		AssigningAuthority: HD{"MPI", "2.16.840.1.113883.19.3.2.1", "ISO"},
		IdentifierType:     "MR",
	}})
	eq(t, "Patient.Name", o.Patient.Name, PersonName{Family: "Johnson", Given: "Philip"})
	eq(t, "Patient.BirthDate", o.Patient.BirthDate.Time.Format("2006-01-02"), "2007-05-26")
	eq(t, "Patient.Sex", o.Patient.Sex, "M")

	if len(o.Orders) != 1 {
		t.Fatalf("orders = %d, want 1", len(o.Orders))
	}
	ord := o.Orders[0]
	eq(t, "OrderControl", ord.OrderControl, "RE")
	eq(t, "PlacerOrderNumber", ord.PlacerOrderNumber, EI{})
	eq(t, "FillerOrderNumber", ord.FillerOrderNumber, EI{"9700123", "Lab", "2.16.840.1.113883.19.3.1.6", "ISO"})
	eq(t, "ServiceID", ord.ServiceID, Coded{"10368-9", "Lead BldC-mCnc", "LN", "3456543", "Blood lead test", "99USI"})
	eq(t, "OBR ResultStatus", ord.ResultStatus, "C")
	eq(t, "OBR ObservationTime", ord.ObservationTime.Time.Format("2006-01-02T15:04-0700"), "2008-08-15T10:30-0700")
	eq(t, "OBR ResultsReported", ord.ResultsReported.Raw, "200808181800-0700")

	if len(ord.Observations) != 1 {
		t.Fatalf("observations = %d, want 1", len(ord.Observations))
	}
	obs := ord.Observations[0]
	eq(t, "OBX SetID", obs.SetID, "1")
	eq(t, "OBX ValueType", obs.ValueType, "NM")
	eq(t, "OBX Identifier", obs.Identifier, Coded{Code: "10368-9", Text: "Lead BldC-mCnc", System: "LN"})
	eq(t, "OBX SubID", obs.SubID, "1")
	deq(t, "OBX Values", obs.Values, []Value{{Text: "25", Number: 25}})
	// The message spells the unit ug/dl (lower-case l); it is kept as sent.
	eq(t, "OBX Units", obs.Units, Coded{Code: "ug/dl", Text: "micro-gram per deci-liter", System: "UCUM"})
	eq(t, "OBX ReferenceRange", obs.ReferenceRange, "<10 ug/dl")
	deq(t, "OBX AbnormalFlags", obs.AbnormalFlags, []string{"H"})
	eq(t, "OBX ResultStatus", obs.ResultStatus, "C")
	eq(t, "OBX ObservationTime", obs.ObservationTime.Raw, "200808151030-0700")
	eq(t, "OBX ObservationTime.HasZone", obs.ObservationTime.HasZone, true)

	if len(ord.Specimens) != 1 {
		t.Fatalf("specimens = %d, want 1", len(ord.Specimens))
	}
	eq(t, "SPM Type", ord.Specimens[0].Type, Coded{"122554006", "Capillary blood specimen", "SCT", "BLDC", "Blood capillary", "HL70070"})

	// OBR-31 repeats: three reasons for study.
	obr := m.Segment("OBR")
	reasons := obr.Field(31)
	eq(t, "OBR-31 repetitions", len(reasons.Reps), 3)
	eq(t, "OBR-31[2] text", reasons.Rep(2).Comp(2), "Abdominal pain")
}

func checkCerner(t *testing.T, raw []byte) {
	// The last segment ends in LF, the others in CR.
	if !strings.HasSuffix(string(raw), "\n") || !strings.Contains(string(raw), "\r") {
		t.Fatal("case no longer mixes CR and LF")
	}
	o := mustORU(t, raw)
	m := o.Message
	eq(t, "SendingApplication", m.SendingApplication, HD{"HealthSentry", "HealthSentry", "L"})
	eq(t, "SendingFacility", m.SendingFacility, HD{"Baseline West MC", "33D1234567", "L"})
	eq(t, "ControlID", m.ControlID, "201010010913000771")
	eq(t, "Version", m.Version, "2.5.1")
	var names []string
	for _, s := range m.Segments {
		names = append(names, s.Name)
	}
	deq(t, "segments", names, []string{"MSH", "SFT", "PID", "ORC", "OBR", "SPM", "OBX"})

	deq(t, "Patient.Identifiers", o.Patient.Identifiers, []PatientID{{
		ID:                 "9339683996",
		AssigningAuthority: HD{"Baseline West MC", "33D1234567", "L"},
		IdentifierType:     "MR",
		AssigningFacility:  HD{"Baseline West MC", "33D1234567", "L"},
	}})
	eq(t, "Patient.Name", o.Patient.Name, PersonName{Family: "Miller", Given: "Paul", Middle: "One"})
	eq(t, "Patient.BirthDate", o.Patient.BirthDate.Raw, "20050715050000")

	if len(o.Orders) != 1 {
		t.Fatalf("orders = %d, want 1", len(o.Orders))
	}
	ord := o.Orders[0]
	eq(t, "FillerOrderNumber", ord.FillerOrderNumber, EI{"2010273000016", "EHR", "33D1234567", "L"})
	eq(t, "ServiceID", ord.ServiceID, Coded{"548-8", "Culture Sputum", "LN", "114", "Culture Sputum", "99zzz or L"})
	eq(t, "OBR ResultStatus", ord.ResultStatus, "F")
	eq(t, "specimens", len(ord.Specimens), 1)
	eq(t, "SPM Type.Code", ord.Specimens[0].Type.Code, "119334006")
	eq(t, "SPM Type.Text", ord.Specimens[0].Type.Text, "Sputum")

	if len(ord.Observations) != 1 {
		t.Fatalf("observations = %d, want 1", len(ord.Observations))
	}
	obs := ord.Observations[0]
	eq(t, "OBX ValueType", obs.ValueType, "CE")
	eq(t, "OBX Identifier.Code", obs.Identifier.Code, "548-8")
	// A coded result with an empty code component: text and system only.
	deq(t, "OBX Values", obs.Values, []Value{{Code: Coded{Text: "Bordetella pertussis", System: "SNM"}}})
	deq(t, "OBX AbnormalFlags", obs.AbnormalFlags, []string{"A"})
	eq(t, "OBX ResultStatus", obs.ResultStatus, "F")
	eq(t, "OBX ObservationTime", obs.ObservationTime.Raw, "201011041640")
	eq(t, "OBX ObservationTime.HasZone", obs.ObservationTime.HasZone, false)
}

func checkNHapi(t *testing.T, raw []byte) {
	o := mustORU(t, raw)
	m := o.Message
	eq(t, "SendingApplication", m.SendingApplication.NamespaceID, "XPress Arrival")
	eq(t, "ControlID", m.ControlID, "EBzH1711114101206")
	eq(t, "MSH-18", m.Segment("MSH").Field(18).Value(), "ASCII")
	deq(t, "Patient.Identifiers", o.Patient.Identifiers, []PatientID{{ID: "1711114"}})
	eq(t, "Patient.Name", o.Patient.Name, PersonName{Family: "Appt", Given: "Test"})
	if len(o.Orders) != 1 {
		t.Fatalf("orders = %d, want 1", len(o.Orders))
	}
	ord := o.Orders[0]
	eq(t, "OrderStatus", ord.OrderStatus, "F")
	eq(t, "ServiceID", ord.ServiceID, Coded{Code: "ehipack", Text: "eHippa Acknowlegment"})
	eq(t, "OBR ResultStatus", ord.ResultStatus, "F")
	eq(t, "observations", len(ord.Observations), 3)
	want := []Value{{Text: "This\nis\nA Test"}, {Text: "MoreText"}, {Text: "SomeMoreText"}}
	for i, obs := range ord.Observations {
		eq(t, "OBX ValueType", obs.ValueType, "FT")
		eq(t, "OBX SetID", obs.SetID, string(rune('1'+i)))
		deq(t, "OBX Values", obs.Values, want)
		eq(t, "OBX ResultStatus", obs.ResultStatus, "F")
	}
	// Outside FT the formatting command is kept as sent.
	eq(t, "generic OBX-5", m.Segment("OBX").Field(5).Value(), `This\.br\is\.br\A Test`)
}

func checkEnumerator(t *testing.T, raw []byte) {
	// The generic parse reads the message, escapes decoded.
	m, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	eq(t, "Version", m.Version, "2.3")
	eq(t, "ControlID", m.ControlID, "Q479004375T431430612")
	var third *Segment
	for i := range m.Segments {
		if m.Segments[i].Name == "OBX" && m.Segments[i].Field(1).Value() == "3" {
			third = &m.Segments[i]
		}
	}
	if third == nil {
		t.Fatal("OBX 3 not found")
	}
	eq(t, "OBX-3.2 with \\T\\ and \\R\\", third.Field(3).Comp(2), "A Test & another ~")

	// As an ORU it is rejected: OBX-4 is missing, so 59 sits in OBX-4 and
	// the unit in OBX-5.
	_, err = ParseORU(raw)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("ParseORU error = %v, want *ParseError", err)
	}
	eq(t, "Segment", pe.Segment, "OBX")
	eq(t, "Field", pe.Field, 5)
	eq(t, "Line", pe.Line, 5)
	for _, s := range []string{"OBX-5", "OBX-4", "one place right"} {
		if !strings.Contains(pe.Reason, s) {
			t.Errorf("Reason %q does not mention %q", pe.Reason, s)
		}
	}
	if strings.Contains(pe.Error(), "mg/dL") {
		t.Errorf("error quotes a message value: %q", pe.Error())
	}
}

func checkEscapeVector(t *testing.T, raw []byte) {
	var v struct {
		EncodingChars string `json:"encoding_chars"`
		Unescaped     string `json:"unescaped"`
		Escaped       string `json:"escaped"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	m, err := Parse([]byte("MSH" + v.EncodingChars + "|\r"))
	if err != nil {
		t.Fatalf("delimiters from %q: %v", v.EncodingChars, err)
	}
	d := m.Delimiters
	got, err := Unescape(v.Escaped, d)
	if err != nil {
		t.Fatalf("Unescape: %v", err)
	}
	eq(t, "Unescape(escaped)", got, v.Unescaped)
	eq(t, "Escape(unescaped)", Escape(v.Unescaped, d), v.Escaped)

	// The vector inside a message field decodes the same way.
	msg := "MSH" + v.EncodingChars + "|||||||ORU^R01|1|P|2.3\rNTE|1||" + v.Escaped + "\r"
	m, err = Parse([]byte(msg))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	eq(t, "NTE-3", m.Segment("NTE").Field(3).Value(), v.Unescaped)
}
