package hl7

import (
	"strconv"
	"strings"
)

// ORU is an ORU^R01 unsolicited observation result: one patient with the
// orders reported and their observations.
type ORU struct {
	Message *Message
	Patient Patient
	Orders  []Order
	// Notes are NTE segments that follow MSH directly.
	Notes []Note
}

// Patient is what the PID segment says about the patient.
type Patient struct {
	Identifiers []PatientID // PID-3, every repetition
	Name        PersonName  // PID-5, first repetition
	BirthDate   DateTime    // PID-7
	Sex         string      // PID-8
	// Notes are NTE segments that follow PID (or PD1, PV1...) before the
	// first order.
	Notes []Note
}

// PatientID is one repetition of PID-3 (CX).
type PatientID struct {
	ID                 string
	CheckDigit         string
	AssigningAuthority HD     // PID-3.4, from its subcomponents
	IdentifierType     string // PID-3.5, such as MR
	AssigningFacility  HD     // PID-3.6
}

// PersonName is an XPN: family and given names.
type PersonName struct {
	Family string
	Given  string
	Middle string
	Suffix string
	Prefix string
}

// EI is an entity identifier such as a placer or filler order number.
type EI struct {
	ID              string
	NamespaceID     string
	UniversalID     string
	UniversalIDType string
}

// Coded is a coded value (CE, CWE): a code in a coding system, with an
// optional alternate code.
type Coded struct {
	Code      string
	Text      string
	System    string
	AltCode   string
	AltText   string
	AltSystem string
}

// Order is one ORDER_OBSERVATION group: an optional ORC, the OBR, and the
// observations, specimens and notes reported for it.
type Order struct {
	OrderControl string // ORC-1, such as RE
	OrderStatus  string // ORC-5
	// PlacerOrderNumber is OBR-2, or ORC-2 when OBR-2 is empty.
	PlacerOrderNumber EI
	// FillerOrderNumber is OBR-3, or ORC-3 when OBR-3 is empty.
	FillerOrderNumber EI
	ServiceID         Coded    // OBR-4 universal service identifier
	ObservationTime   DateTime // OBR-7
	ObservationEnd    DateTime // OBR-8
	ResultsReported   DateTime // OBR-22
	// ResultStatus is OBR-25: F final, C corrected, P preliminary, X
	// cancelled...
	ResultStatus string
	Observations []Observation
	Specimens    []Specimen
	// Notes are NTE segments that follow ORC or OBR.
	Notes []Note
}

// Observation is one OBX segment.
type Observation struct {
	SetID      string // OBX-1
	ValueType  string // OBX-2: NM, ST, TX, FT, CWE, CE or SN
	Identifier Coded  // OBX-3
	SubID      string // OBX-4
	// Values are OBX-5, one per repetition, typed by ValueType.
	Values          []Value
	Units           Coded    // OBX-6
	ReferenceRange  string   // OBX-7
	AbnormalFlags   []string // OBX-8, every repetition
	ResultStatus    string   // OBX-11: F final, C corrected...
	ObservationTime DateTime // OBX-14
	// Notes are NTE segments that follow this OBX.
	Notes []Note
}

// Value is one OBX-5 value. Which fields are set depends on the value type:
// Text for ST, TX and FT (FT with formatting applied) and, as sent, for NM
// and SN; Number for NM; Comparator, Number, Separator and Number2 for SN;
// Code for CWE and CE.
type Value struct {
	Text       string
	Number     float64
	Comparator string // SN: "", "<", ">", "<=", ">=", "=" or "<>"
	Separator  string // SN: "", "-", "+", "/", "." or ":"
	Number2    float64
	HasNumber2 bool
	Code       Coded
}

// Specimen is one SPM segment.
type Specimen struct {
	SetID          string   // SPM-1
	ID             EI       // SPM-2, placer assigned part
	Type           Coded    // SPM-4
	CollectionTime DateTime // SPM-17, start of the range
	ReceivedTime   DateTime // SPM-18
	Notes          []Note
}

// Note is one NTE segment.
type Note struct {
	SetID   string   // NTE-1
	Source  string   // NTE-2
	Comment []string // NTE-3, one entry per repetition, FT decoded
	Type    string   // NTE-4 (CE code)
}

// ParseORU parses raw and reads it as an ORU^R01. It returns a *ParseError
// when Parse does, when MSH-9 is not ORU^R01, when PID or OBR is missing,
// when a second PID appears (one patient per message is supported), and
// when an OBX cannot be read with confidence: an unknown value type, a value
// that is not of its type, a result status that is missing or unknown, or
// values that sit in the wrong field.
func ParseORU(raw []byte) (ORU, error) {
	m, err := Parse(raw)
	if err != nil {
		return ORU{}, err
	}
	return ReadORU(m)
}

// ReadORU reads an already parsed message as an ORU^R01; see ParseORU.
func ReadORU(m *Message) (ORU, error) {
	if m.Type.Code != "ORU" || m.Type.Event != "R01" {
		return ORU{}, errorf("MSH", 9, 1, "message type is not ORU^R01")
	}
	r := &oruReader{oru: ORU{Message: m}}
	for i := range m.Segments {
		if err := r.segment(&m.Segments[i]); err != nil {
			return ORU{}, err
		}
	}
	if !r.sawPID {
		return ORU{}, errorf("PID", 0, 0, "ORU^R01 has no PID segment")
	}
	if len(r.oru.Orders) == 0 {
		return ORU{}, errorf("OBR", 0, 0, "ORU^R01 has no OBR segment")
	}
	return r.oru, nil
}

type oruReader struct {
	oru    ORU
	sawPID bool
	// notes is where the next NTE goes: the segment it follows.
	notes *[]Note
	// order is the open order; hasOBR tells whether its OBR was read.
	order  *Order
	hasOBR bool
}

func (r *oruReader) segment(s *Segment) error {
	switch s.Name {
	case "MSH":
		r.notes = &r.oru.Notes
	case "PID":
		if r.sawPID {
			return errorf("PID", 0, s.Line, "a second PID: only one patient per message is supported")
		}
		r.sawPID = true
		return r.pid(s)
	case "ORC":
		r.openOrder()
		r.order.OrderControl = s.Field(1).Value()
		r.order.OrderStatus = s.Field(5).Value()
		r.order.PlacerOrderNumber = eiOf(s.Field(2).Rep(0))
		r.order.FillerOrderNumber = eiOf(s.Field(3).Rep(0))
		r.notes = &r.order.Notes
	case "OBR":
		if !r.sawPID {
			return errorf("OBR", 0, s.Line, "OBR before PID")
		}
		if r.order == nil || r.hasOBR {
			r.openOrder()
		}
		r.hasOBR = true
		r.notes = &r.order.Notes
		return r.obr(s)
	case "OBX":
		if r.order == nil || !r.hasOBR {
			return errorf("OBX", 0, s.Line, "OBX before any OBR")
		}
		obs, err := r.obx(s)
		if err != nil {
			return err
		}
		// An OBX after SPM belongs, in v2.5.1, to the specimen; senders
		// use that place for the order's results too, so it is kept with
		// the order.
		r.order.Observations = append(r.order.Observations, obs)
		r.notes = &r.order.Observations[len(r.order.Observations)-1].Notes
	case "SPM":
		if r.order == nil || !r.hasOBR {
			return errorf("SPM", 0, s.Line, "SPM before any OBR")
		}
		sp, err := spm(s)
		if err != nil {
			return err
		}
		r.order.Specimens = append(r.order.Specimens, sp)
		r.notes = &r.order.Specimens[len(r.order.Specimens)-1].Notes
	case "NTE":
		if r.notes == nil {
			return errorf("NTE", 0, s.Line, "NTE with no segment to attach to")
		}
		n, err := nte(s, r.oru.Message.Delimiters)
		if err != nil {
			return err
		}
		*r.notes = append(*r.notes, n)
	}
	return nil
}

// openOrder starts a new order. Pointers into the previous order's slices
// stay valid because they are replaced here before further use.
func (r *oruReader) openOrder() {
	r.oru.Orders = append(r.oru.Orders, Order{})
	r.order = &r.oru.Orders[len(r.oru.Orders)-1]
	r.hasOBR = false
	r.notes = &r.order.Notes
}

func (r *oruReader) pid(s *Segment) error {
	p := &r.oru.Patient
	for _, rep := range s.Field(3).Reps {
		p.Identifiers = append(p.Identifiers, PatientID{
			ID:                 rep.Comp(1),
			CheckDigit:         rep.Comp(2),
			AssigningAuthority: hdOfSubs(rep, 4),
			IdentifierType:     rep.Comp(5),
			AssigningFacility:  hdOfSubs(rep, 6),
		})
	}
	if len(p.Identifiers) == 0 {
		return errorf("PID", 3, s.Line, "PID-3 patient identifier list is empty")
	}
	n := s.Field(5).Rep(0)
	p.Name = PersonName{Family: n.Comp(1), Given: n.Comp(2), Middle: n.Comp(3), Suffix: n.Comp(4), Prefix: n.Comp(5)}
	bd, err := timeField(s, 7)
	if err != nil {
		return err
	}
	p.BirthDate = bd
	p.Sex = s.Field(8).Value()
	r.notes = &p.Notes
	return nil
}

// resultStatusOBR lists the OBR-25 codes of HL7 table 0123.
const resultStatusOBR = "OISAPCRFXYZ"

// resultStatusOBX lists the OBX-11 codes of HL7 table 0085.
const resultStatusOBX = "CDFINOPRSUWX"

func (r *oruReader) obr(s *Segment) error {
	o := r.order
	if p := eiOf(s.Field(2).Rep(0)); p.ID != "" || o.PlacerOrderNumber.ID == "" {
		o.PlacerOrderNumber = p
	}
	if f := eiOf(s.Field(3).Rep(0)); f.ID != "" || o.FillerOrderNumber.ID == "" {
		o.FillerOrderNumber = f
	}
	o.ServiceID = codedOf(s.Field(4).Rep(0))
	var err error
	if o.ObservationTime, err = timeField(s, 7); err != nil {
		return err
	}
	if o.ObservationEnd, err = timeField(s, 8); err != nil {
		return err
	}
	if o.ResultsReported, err = timeField(s, 22); err != nil {
		return err
	}
	o.ResultStatus = s.Field(25).Value()
	if o.ResultStatus != "" && !oneCode(o.ResultStatus, resultStatusOBR) {
		return errorf("OBR", 25, s.Line, "result status is not a code of HL7 table 0123")
	}
	return nil
}

func oneCode(v, set string) bool { return len(v) == 1 && strings.Contains(set, v) }

func (r *oruReader) obx(s *Segment) (Observation, error) {
	d := r.oru.Message.Delimiters
	o := Observation{
		SetID:      s.Field(1).Value(),
		ValueType:  s.Field(2).Value(),
		Identifier: codedOf(s.Field(3).Rep(0)),
		SubID:      s.Field(4).Value(),
		Units:      codedOf(s.Field(6).Rep(0)),
		// OBX-7 is a plain string such as "3.9-5.5" or "<10 ug/dl"; its
		// first component is kept, escapes decoded.
		ReferenceRange: s.Field(7).Value(),
		ResultStatus:   s.Field(11).Value(),
	}
	switch o.ValueType {
	case "NM", "ST", "TX", "FT", "CWE", "CE", "SN":
	case "":
		if !s.Field(5).Empty() {
			return o, errorf("OBX", 2, s.Line, "value type is empty but OBX-5 holds a value")
		}
	default:
		return o, errorf("OBX", 2, s.Line, "value type is not one of NM ST TX FT CWE CE SN")
	}
	vals, err := obxValues(s, o.ValueType, d)
	if err != nil {
		return o, err
	}
	o.Values = vals
	for _, rep := range s.Field(8).Reps {
		if f := rep.Comp(1); f != "" {
			o.AbnormalFlags = append(o.AbnormalFlags, f)
		}
	}
	if o.ResultStatus == "" {
		if oneCode(s.Field(10).Value(), resultStatusOBX) {
			return o, errorf("OBX", 11, s.Line, "result status is empty while OBX-10 holds a result status code: fields sit one place left of where they belong")
		}
		return o, errorf("OBX", 11, s.Line, "result status is missing")
	}
	if !oneCode(o.ResultStatus, resultStatusOBX) {
		return o, errorf("OBX", 11, s.Line, "result status is not a code of HL7 table 0085")
	}
	if o.ObservationTime, err = timeField(s, 14); err != nil {
		return o, err
	}
	return o, nil
}

// obxValues reads OBX-5 by value type. When the value does not fit its type
// but OBX-4 would, the likely cause (OBX-4 left out, later fields shifted
// one place right) is named in the reason.
func obxValues(s *Segment, vt string, d Delimiters) ([]Value, error) {
	f := s.Field(5)
	if vt == "FT" {
		var err error
		f, err = splitField(f.Raw, d, true)
		if err != nil {
			return nil, errorf("OBX", 5, s.Line, "%v", err)
		}
	}
	var out []Value
	for _, rep := range f.Reps {
		v, ok, why := typedValue(rep, vt)
		if !ok {
			sub := s.Field(4)
			if _, subOK, _ := typedValue(sub.Rep(0), vt); subOK && !sub.Empty() {
				return nil, errorf("OBX", 5, s.Line, "value is not a valid %s (%s) while OBX-4 holds one: OBX-4 (observation sub-ID) looks missing, so the value and the fields after it sit one place right", vt, why)
			}
			return nil, errorf("OBX", 5, s.Line, "value is not a valid %s (%s)", vt, why)
		}
		out = append(out, v)
	}
	return out, nil
}

func typedValue(rep Repetition, vt string) (Value, bool, string) {
	switch vt {
	case "NM":
		if len(rep) > 1 {
			return Value{}, false, "NM has components"
		}
		t := rep.Comp(1)
		n, ok := number(t)
		if !ok {
			return Value{}, false, "not a number"
		}
		return Value{Text: t, Number: n}, true, ""
	case "SN":
		return structuredNumber(rep)
	case "CWE", "CE":
		c := codedOf(rep)
		if c.Code == "" && c.Text == "" && c.AltCode == "" && c.AltText == "" {
			return Value{}, false, "coded value has neither code nor text"
		}
		return Value{Code: c}, true, ""
	default: // ST, TX, FT
		if len(rep) > 1 {
			// A component separator in text means the sender did not
			// escape it; the text would be cut.
			return Value{}, false, "text value holds an unescaped component separator"
		}
		return Value{Text: rep.Comp(1)}, true, ""
	}
}

func structuredNumber(rep Repetition) (Value, bool, string) {
	if len(rep) > 4 {
		return Value{}, false, "SN has more than 4 components"
	}
	v := Value{Text: strings.Join(flatten(rep), "^"), Comparator: rep.Comp(1), Separator: rep.Comp(3)}
	switch v.Comparator {
	case "", "<", ">", "<=", ">=", "=", "<>":
	default:
		return Value{}, false, "SN comparator is not one of < > <= >= = <>"
	}
	switch v.Separator {
	case "", "-", "+", "/", ".", ":":
	default:
		return Value{}, false, "SN separator/suffix is not one of - + / . :"
	}
	n1, ok := number(rep.Comp(2))
	if !ok {
		return Value{}, false, "SN first number is not a number"
	}
	v.Number = n1
	if t := rep.Comp(4); t != "" {
		n2, ok := number(t)
		if !ok {
			return Value{}, false, "SN second number is not a number"
		}
		if v.Separator == "" {
			return Value{}, false, "SN second number without a separator"
		}
		v.Number2, v.HasNumber2 = n2, true
	} else if v.Separator != "" && v.Separator != "+" {
		// "+" alone is the suffix of "greater than" (as in 100+); the
		// others join two numbers.
		return Value{}, false, "SN separator without a second number"
	}
	return v, true, ""
}

func flatten(rep Repetition) []string {
	out := make([]string, len(rep))
	for i := range rep {
		out[i] = rep.Comp(i + 1)
	}
	return out
}

// number reads an HL7 NM: an optional sign, digits and at most one decimal
// point, optionally padded with spaces. Exponents, NaN and Inf are not NM.
func number(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	t := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	if t == "" || t == "." {
		return 0, false
	}
	dots := 0
	for i := 0; i < len(t); i++ {
		switch {
		case t[i] == '.':
			dots++
		case t[i] < '0' || t[i] > '9':
			return 0, false
		}
	}
	if dots > 1 {
		return 0, false
	}
	n, err := strconv.ParseFloat(s, 64)
	return n, err == nil
}

func spm(s *Segment) (Specimen, error) {
	sp := Specimen{
		SetID: s.Field(1).Value(),
		Type:  codedOf(s.Field(4).Rep(0)),
	}
	// SPM-2 is an EIP whose first component (placer) is an EI carried in
	// subcomponents.
	id := s.Field(2).Rep(0)
	sp.ID = EI{ID: id.Sub(1, 1), NamespaceID: id.Sub(1, 2), UniversalID: id.Sub(1, 3), UniversalIDType: id.Sub(1, 4)}
	var err error
	if sp.CollectionTime, err = timeField(s, 17); err != nil {
		return sp, err
	}
	if sp.ReceivedTime, err = timeField(s, 18); err != nil {
		return sp, err
	}
	return sp, nil
}

func nte(s *Segment, d Delimiters) (Note, error) {
	n := Note{SetID: s.Field(1).Value(), Source: s.Field(2).Value(), Type: s.Field(4).Comp(1)}
	f, err := splitField(s.Field(3).Raw, d, true)
	if err != nil {
		return n, errorf("NTE", 3, s.Line, "%v", err)
	}
	for _, rep := range f.Reps {
		n.Comment = append(n.Comment, rep.Comp(1))
	}
	return n, nil
}

func eiOf(r Repetition) EI {
	return EI{ID: r.Comp(1), NamespaceID: r.Comp(2), UniversalID: r.Comp(3), UniversalIDType: r.Comp(4)}
}

func codedOf(r Repetition) Coded {
	return Coded{
		Code: r.Comp(1), Text: r.Comp(2), System: r.Comp(3),
		AltCode: r.Comp(4), AltText: r.Comp(5), AltSystem: r.Comp(6),
	}
}
