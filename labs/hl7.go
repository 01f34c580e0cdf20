package labs

import (
	"fmt"
	"strings"
	"time"

	"github.com/carebook/carebook/hl7"
)

// ParseHL7 reads raw as an HL7 v2 ORU^R01 with hl7.ParseORU and maps it with
// FromORUIn. A message the parser rejects comes back with the parser's
// *hl7.ParseError unchanged and is never mapped; a message that parses but
// cannot be mapped gives an *InvalidError.
func ParseHL7(raw []byte, loc *time.Location) (Message, error) {
	o, err := hl7.ParseORU(raw)
	if err != nil {
		return Message{}, err
	}
	return FromORUIn(o, loc)
}

// FromORU maps a parsed ORU^R01 into the model, reading every time sent
// without a UTC offset as UTC. A lab whose clock is local should be read
// with FromORUIn and the lab's zone instead.
func FromORU(o hl7.ORU) (Message, error) { return FromORUIn(o, time.UTC) }

// FromORUIn maps a parsed ORU^R01 into the model. HL7 v2 times may omit the
// UTC offset; such a time is the sender's wall clock, so it is read in loc
// (the zone the lab connection is configured with; nil means UTC). Times
// that carry an offset keep their instant. Every time in the result is in
// UTC.
//
// The mapping, field by field:
//
//   - Message: ID is MSH-10, SentAt MSH-7, SendingFacility MSH-4's universal
//     ID (as urn:oid:<id> when its type is ISO), else its namespace ID.
//   - Patient: one Identifier per PID-3 repetition, System the assigning
//     authority (urn:oid:<universal id> when its type is ISO, else its
//     namespace ID, else its universal ID as given), Type PID-3.5; name from
//     PID-5; BirthDate from PID-7 only when it reaches the day; Sex PID-8
//     as sent (HL7 table 0001).
//   - Report, one per order (OBR): Key is the filler order number as
//     <namespace or universal id>|<id>, else the placer order number the
//     same way; Status from OBR-25 (see reportStatusHL7); Code from OBR-4;
//     EffectiveAt OBR-7; IssuedAt OBR-22; OrderingProvider from OBR-16,
//     else ORC-12; Notes from the order's NTEs; Specimens from SPM.
//   - Observation, one per OBX: Key <OBX-1>, or <OBX-1>.<OBX-4> when a sub
//     ID is sent; Code OBX-3; the value by OBX-2 (NM quantity, SN quantity,
//     range or ratio, CWE/CE coded, ST/TX/FT text with repetitions as
//     lines); Unit OBX-6 code, else its text; ReferenceRange OBX-7 with its
//     bounds (ParseReferenceRange); Flags OBX-8; Status OBX-11;
//     EffectiveAt OBX-14, else the report's; Notes from its NTEs.
//
// A coding system LN becomes http://loinc.org; other systems are kept as
// sent.
//
// It returns an *InvalidError when an order has no key (neither filler nor
// placer number: a report that cannot be keyed could never be corrected),
// when a result status is missing or not one Carebook maps, when an OBX
// has no set ID or repeats another's key within its order, and when a
// value cannot be carried faithfully (an SN "<>" comparator, an SN
// separator other than a range or ratio, a repeated numeric or coded
// value).
//
// Not mapped: NTEs after MSH or PID (no place in the model), NTEs after
// SPM, OBR-8 (end of the observation period), OBX-5 of types other than
// the parser's.
func FromORUIn(o hl7.ORU, loc *time.Location) (Message, error) {
	if loc == nil {
		loc = time.UTC
	}
	if o.Message == nil {
		return Message{}, invalidf("ORU holds no parsed message")
	}
	m := o.Message
	mp := oruMapper{loc: loc, controlID: m.ControlID}
	msg := Message{
		Format:          FormatHL7v2,
		ID:              m.ControlID,
		SendingFacility: FacilityKey(m.SendingFacility),
		SentAt:          mp.instant(m.Time),
		Patient:         patientHL7(o.Patient),
	}
	if msg.ID == "" {
		return Message{}, invalidf("MSH-10 (segment 1): message control ID is empty")
	}
	groups := groupOrders(m)
	if len(groups) != len(o.Orders) {
		return Message{}, invalidf("ORU orders do not match the message's ORC/OBR segments")
	}
	for i, ord := range o.Orders {
		r, err := mp.report(ord, groups[i], i+1)
		if err != nil {
			return Message{}, err
		}
		msg.Reports = append(msg.Reports, r)
	}
	return msg, nil
}

type oruMapper struct {
	loc       *time.Location
	controlID string
}

// orderSegments are the segments of one ORDER_OBSERVATION group, found the
// way hl7.ReadORU groups them, for the fields hl7.Order does not carry
// (OBR-16, ORC-12) and for segment numbers in errors.
type orderSegments struct {
	orc, obr *hl7.Segment
	obx      []*hl7.Segment
}

// groupOrders mirrors hl7.ReadORU: an ORC always opens an order, an OBR
// opens one unless it completes an order opened by an ORC, and OBX
// segments belong to the order open when they appear.
func groupOrders(m *hl7.Message) []orderSegments {
	var out []orderSegments
	for i := range m.Segments {
		s := &m.Segments[i]
		switch s.Name {
		case "ORC":
			out = append(out, orderSegments{orc: s})
		case "OBR":
			if len(out) == 0 || out[len(out)-1].obr != nil {
				out = append(out, orderSegments{})
			}
			out[len(out)-1].obr = s
		case "OBX":
			if len(out) > 0 {
				out[len(out)-1].obx = append(out[len(out)-1].obx, s)
			}
		}
	}
	return out
}

// at names a field of a segment as the hl7 package does in its reasons.
func at(s *hl7.Segment, field int) string {
	return fmt.Sprintf("%s-%d (segment %d)", s.Name, field, s.Line)
}

func (mp oruMapper) report(ord hl7.Order, segs orderSegments, n int) (Report, error) {
	if segs.obr == nil {
		return Report{}, invalidf("ORC (segment %d): order has no OBR", segs.orc.Line)
	}
	obr := segs.obr
	if len(segs.obx) != len(ord.Observations) {
		return Report{}, invalidf("OBR (segment %d): observations do not match the order's OBX segments", obr.Line)
	}
	key, ok := eiKey(ord.FillerOrderNumber)
	if !ok {
		key, ok = eiKey(ord.PlacerOrderNumber)
	}
	if !ok {
		// Without an order number the report can only be named by the
		// message that carries it: it is filed, but a later message
		// cannot correct it (it files a report of its own).
		key = messageKey(mp.controlID, n)
	}
	st, ok := reportStatusHL7(ord.ResultStatus)
	if !ok {
		if ord.ResultStatus == "" {
			return Report{}, invalidf("%s: result status is missing", at(obr, 25))
		}
		return Report{}, invalidf("%s: result status is not one Carebook maps (F C P A R O I S X)", at(obr, 25))
	}
	r := Report{
		Key:          key,
		PlacerNumber: ord.PlacerOrderNumber.ID,
		FillerNumber: ord.FillerOrderNumber.ID,
		Code:         codeHL7(ord.ServiceID),
		Status:       st,
		EffectiveAt:  mp.instant(ord.ObservationTime),
		IssuedAt:     mp.instant(ord.ResultsReported),
	}
	r.OrderingProvider = providerHL7(obr.Field(16))
	if r.OrderingProvider.Value == "" && segs.orc != nil {
		r.OrderingProvider = providerHL7(segs.orc.Field(12))
	}
	r.Notes = notesHL7(ord.Notes)
	for _, sp := range ord.Specimens {
		r.Specimens = append(r.Specimens, Specimen{
			ID:          sp.ID.ID,
			Type:        codeHL7(sp.Type),
			CollectedAt: mp.instant(sp.CollectionTime),
		})
	}
	seen := map[string]bool{}
	for i, ob := range ord.Observations {
		o, err := mp.observation(ob, segs.obx[i], r.EffectiveAt)
		if err != nil {
			return Report{}, err
		}
		if seen[o.Key] {
			return Report{}, invalidf("%s: set ID and sub ID repeat those of an earlier OBX in the order", at(segs.obx[i], 1))
		}
		seen[o.Key] = true
		r.Observations = append(r.Observations, o)
	}
	return r, nil
}

// reportStatusHL7 maps OBR-25 (HL7 table 0123) to a report status:
//
//	F final                       final
//	C correction                  corrected
//	P preliminary                 preliminary
//	A some, not all, results      preliminary (FHIR's "partial", which
//	                              Carebook does not distinguish)
//	R results stored, unverified  preliminary: not yet verified
//	O, I, S order received, specimen in lab, procedure scheduled:
//	                              registered (no results yet)
//	X cancelled                   cancelled
//
// Y (no order on record) and Z (no record of the patient) answer queries
// and carry no results; they, and any other code, are not mapped.
func reportStatusHL7(code string) (Status, bool) {
	switch code {
	case "F":
		return StatusFinal, true
	case "C":
		return StatusCorrected, true
	case "P", "A", "R":
		return StatusPreliminary, true
	case "O", "I", "S":
		return StatusRegistered, true
	case "X":
		return StatusCancelled, true
	}
	return "", false
}

// observationStatusHL7 maps OBX-11 (HL7 table 0085) to an observation
// status:
//
//	F final, U final without resending          final
//	C correction                                corrected
//	P preliminary, R not verified, S partial    preliminary
//	I specimen in lab, O order detail only      registered
//	X cannot be obtained, N not asked           cancelled
//	D delete the prior result, W wrong result   entered-in-error
func observationStatusHL7(code string) (Status, bool) {
	switch code {
	case "F", "U":
		return StatusFinal, true
	case "C":
		return StatusCorrected, true
	case "P", "R", "S":
		return StatusPreliminary, true
	case "I", "O":
		return StatusRegistered, true
	case "X", "N":
		return StatusCancelled, true
	case "D", "W":
		return StatusError, true
	}
	return "", false
}

func (mp oruMapper) observation(ob hl7.Observation, seg *hl7.Segment, reportTime time.Time) (Observation, error) {
	if ob.SetID == "" {
		return Observation{}, invalidf("%s: set ID is empty, so the observation cannot be keyed", at(seg, 1))
	}
	key := ob.SetID
	if ob.SubID != "" {
		key += "." + ob.SubID
	}
	st, ok := observationStatusHL7(ob.ResultStatus)
	if !ok {
		return Observation{}, invalidf("%s: result status is not one Carebook maps (F U C P R S I O X N D W)", at(seg, 11))
	}
	o := Observation{
		Key:            key,
		Code:           codeHL7(ob.Identifier),
		Status:         st,
		Unit:           ob.Units.Code,
		ReferenceRange: ob.ReferenceRange,
		Flags:          ob.AbnormalFlags,
		EffectiveAt:    mp.instant(ob.ObservationTime),
		Notes:          notesHL7(ob.Notes),
	}
	if o.Unit == "" {
		o.Unit = ob.Units.Text
	}
	if o.EffectiveAt.IsZero() {
		o.EffectiveAt = reportTime
	}
	o.Low, o.High = ParseReferenceRange(o.ReferenceRange, o.Unit)
	if err := valueHL7(&o, ob, seg); err != nil {
		return Observation{}, err
	}
	return o, nil
}

// valueHL7 sets the value fields of o from OBX-2 and OBX-5.
func valueHL7(o *Observation, ob hl7.Observation, seg *hl7.Segment) error {
	vals := ob.Values
	if len(vals) == 0 {
		o.Kind = ValueNone
		return nil
	}
	switch ob.ValueType {
	case "ST", "TX", "FT":
		lines := make([]string, len(vals))
		for i, v := range vals {
			lines[i] = v.Text
		}
		o.Kind = ValueText
		o.Text = strings.Join(lines, "\n")
		return nil
	}
	if len(vals) > 1 {
		return invalidf("%s: a %s value repeats; one value per OBX is supported", at(seg, 5), ob.ValueType)
	}
	v := vals[0]
	switch ob.ValueType {
	case "NM":
		o.Kind = ValueQuantity
		o.Number = v.Number
		o.Text = strings.TrimSpace(v.Text)
		return nil
	case "CWE", "CE":
		o.Kind = ValueCoded
		o.Coded = codeHL7(v.Code)
		o.Text = o.Coded.Display
		return nil
	case "SN":
		return structuredNumberHL7(o, v, seg)
	}
	return invalidf("%s: value type is not one Carebook maps", at(seg, 2))
}

// structuredNumberHL7 maps an SN value: a number with an optional
// comparator is a quantity; two numbers joined by "-" a range, by "/" or
// ":" a ratio (a titer such as 1:128); a number with the suffix "+" (a
// grade such as 2+) text. The comparator "<>" and the separator "." have
// no place in the model and are refused.
func structuredNumberHL7(o *Observation, v hl7.Value, seg *hl7.Segment) error {
	// The parser joins the components as sent with "^"; none of them can
	// hold a "^" once validated, so splitting recovers the numbers as the
	// lab wrote them.
	comps := strings.Split(v.Text, "^")
	for len(comps) < 4 {
		comps = append(comps, "")
	}
	n1, n2 := strings.TrimSpace(comps[1]), strings.TrimSpace(comps[3])
	cmp := v.Comparator
	if cmp == "=" {
		cmp = ""
	}
	switch {
	case cmp == "<>":
		return invalidf("%s: SN comparator <> (not equal) is not supported", at(seg, 5))
	case v.HasNumber2 && cmp != "":
		return invalidf("%s: SN holds both a comparator and a second number", at(seg, 5))
	case v.HasNumber2 && v.Separator == "-":
		o.Kind = ValueRange
		o.Number, o.Number2 = v.Number, v.Number2
		o.Text = n1 + "-" + n2
	case v.HasNumber2 && (v.Separator == "/" || v.Separator == ":"):
		o.Kind = ValueRatio
		o.Number, o.Number2 = v.Number, v.Number2
		o.Text = n1 + v.Separator + n2
	case v.HasNumber2:
		return invalidf("%s: SN separator is not one Carebook maps (- / :)", at(seg, 5))
	case v.Separator == "+":
		if cmp != "" {
			return invalidf("%s: SN holds both a comparator and the suffix +", at(seg, 5))
		}
		o.Kind = ValueText
		o.Number = v.Number
		o.Text = n1 + "+"
	default:
		o.Kind = ValueQuantity
		o.Number = v.Number
		o.Comparator = cmp
		o.Text = cmp + n1
	}
	return nil
}

// instant converts an HL7 time to an instant in UTC; a time sent without
// an offset is read in mp.loc.
func (mp oruMapper) instant(dt hl7.DateTime) time.Time {
	if dt.IsZero() {
		return time.Time{}
	}
	if dt.HasZone {
		return dt.Time.UTC()
	}
	t := dt.Time
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), mp.loc).UTC()
}

func patientHL7(p hl7.Patient) Patient {
	out := Patient{
		Family: p.Name.Family,
		Given:  p.Name.Given,
		Sex:    p.Sex,
	}
	// A birth date is a calendar day, not an instant: it is read as sent,
	// in no zone.
	if !p.BirthDate.IsZero() && p.BirthDate.Digits >= 8 {
		out.BirthDate = p.BirthDate.Time.Format(time.DateOnly)
	}
	for _, id := range p.Identifiers {
		out.Identifiers = append(out.Identifiers, Identifier{
			System: authoritySystem(id.AssigningAuthority),
			Value:  id.ID,
			Type:   id.IdentifierType,
		})
	}
	return out
}

// authoritySystem names an assigning authority as an identifier system:
// urn:oid:<universal id> when the universal ID is an ISO OID, else the
// namespace ID, else the universal ID as given.
func authoritySystem(hd hl7.HD) string {
	switch {
	case hd.UniversalID != "" && hd.UniversalIDType == "ISO":
		return "urn:oid:" + hd.UniversalID
	case hd.NamespaceID != "":
		return hd.NamespaceID
	}
	return hd.UniversalID
}

// FacilityKey names a facility (MSH-4, MSH-6) as Message.SendingFacility
// and lab partners' MLLP routes write it: its universal ID ("urn:oid:<id>"
// when it is an ISO OID), else its namespace ID.
func FacilityKey(hd hl7.HD) string {
	switch {
	case hd.UniversalID != "" && strings.EqualFold(hd.UniversalIDType, "ISO"):
		return "urn:oid:" + hd.UniversalID
	case hd.UniversalID != "":
		return hd.UniversalID
	}
	return hd.NamespaceID
}

// messageKey names the n-th order of a message that gave it no order
// number. The "message:" prefix cannot collide with an order number's key,
// whose authority comes before a "|".
func messageKey(controlID string, n int) string {
	return fmt.Sprintf("message:%s#%d", controlID, n)
}

// eiKey is an order number as <namespace or universal id>|<id>.
func eiKey(ei hl7.EI) (string, bool) {
	if ei.ID == "" {
		return "", false
	}
	auth := ei.NamespaceID
	if auth == "" {
		auth = ei.UniversalID
	}
	return auth + "|" + ei.ID, true
}

// providerHL7 reads the first repetition of an XCN field (OBR-16, ORC-12):
// the ID in component 1, its assigning authority in component 9, the
// identifier type in component 13.
func providerHL7(f hl7.Field) Identifier {
	r := f.Rep(0)
	if r.Comp(1) == "" {
		return Identifier{}
	}
	hd := hl7.HD{NamespaceID: r.Sub(9, 1), UniversalID: r.Sub(9, 2), UniversalIDType: r.Sub(9, 3)}
	return Identifier{System: authoritySystem(hd), Value: r.Comp(1), Type: r.Comp(13)}
}

// codeHL7 maps a CE/CWE. When the first triplet is empty the alternate is
// used.
func codeHL7(c hl7.Coded) Code {
	if c.Code == "" && c.Text == "" && (c.AltCode != "" || c.AltText != "") {
		return Code{System: systemHL7(c.AltSystem), Code: c.AltCode, Display: c.AltText}
	}
	return Code{System: systemHL7(c.System), Code: c.Code, Display: c.Text}
}

// systemHL7 names a coding system: LN (HL7 table 0396) is LOINC's URI;
// any other is kept as sent.
func systemHL7(s string) string {
	if s == "LN" {
		return "http://loinc.org"
	}
	return s
}

// notesHL7 turns NTE segments into notes, one per NTE, its NTE-3
// repetitions as lines.
func notesHL7(ns []hl7.Note) []string {
	var out []string
	for _, n := range ns {
		out = append(out, strings.Join(n.Comment, "\n"))
	}
	return out
}
