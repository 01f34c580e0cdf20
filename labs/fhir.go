// FHIR R4 lab results: what ParseFHIR reads.
//
// Handled:
//
//   - A Bundle of type collection, transaction, message, batch or searchset
//     holding one or more DiagnosticReports, or a lone DiagnosticReport whose
//     Observations are contained in it. Every other R4 resource type may sit
//     in the bundle and is ignored unless a report points at it (Patient,
//     Specimen, ServiceRequest are read when referenced).
//   - References by fullUrl, by Type/id (relative), and #id to contained
//     resources. DiagnosticReport.result and Observation.hasMember must
//     resolve within the message.
//   - The patient: a Patient resource in the message (identifiers, name,
//     birth date, gender); else the subject reference's identifier (a
//     logical reference); else, for a literal reference to a Patient on the
//     sender's server (such as Patient/example under an absolute fullUrl
//     base), the absolute URL as an identifier with system urn:ietf:rfc:3986.
//     Every subject in the message must name that same patient.
//   - DiagnosticReport: identifier (the report key), status, code,
//     effectiveDateTime or effectivePeriod.start, issued, result, specimen,
//     basedOn (a ServiceRequest's identifier as the placer number),
//     conclusion.
//   - Observation: status, code, effective[x] (dateTime, instant,
//     Period.start), valueQuantity (value, comparator, code or unit),
//     valueCodeableConcept (first coding, text), valueString, valueInteger,
//     valueRange (an open range becomes a quantity with >= or <=),
//     valueRatio (a ratio such as a titer), dataAbsentReason, interpretation
//     (every coding's code becomes a flag), referenceRange (low, high, text),
//     note, hasMember (flattened after its group, depth first).
//
// Not handled, and refused with an *InvalidError rather than dropped:
//
//   - Bundle types document, history, transaction-response and
//     batch-response.
//   - valueBoolean, valueTime, valueDateTime, valuePeriod, valueSampledData
//     and Observation.component.
//   - The comparator "ad" (R5 only; R4 has < <= >= >).
//   - DiagnosticReport and Observation status "unknown": a result whose
//     status is unknown cannot be released.
//   - An interpretation with text but no coding.
//   - modifierExtension anywhere: it changes the meaning of what holds it,
//     and Carebook knows no modifier extension.
//   - JSON objects that repeat a key: readers disagree on which copy wins,
//     so such a message could mean one thing to the lab and another here.
//   - An Observation in the message that no report reaches: it would be
//     lost.
//   - More than one Patient resource, or subjects naming different patients.
//
// Not handled and ignored: Bundle.entry.request (a transaction is read as a
// collection), extensions, narrative, performer, the ordering provider
// (ServiceRequest.requester), DiagnosticReport.presentedForm, media and
// imagingStudy, Observation.issued, effectiveTiming, derivedFrom,
// specimen references that do not resolve, FHIR XML.

package labs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseFHIR reads a FHIR R4 JSON body, a Bundle or a lone DiagnosticReport,
// into the model; the file comment above lists what it reads and what it
// refuses. Message.ID is the Bundle's id, else the id of its only
// DiagnosticReport (or of the lone DiagnosticReport). A Report's Key is its
// first identifier as <system>|<value>, else DiagnosticReport/<id>; an
// Observation's Key is its id. Observations come in the report's result
// order, each followed by its hasMember members (depth first), and appear
// once per report however often they are referenced. Date-only times are
// read as midnight UTC.
//
// Every error is an *InvalidError naming the element path, as in
// Bundle.entry[3].resource.valueQuantity.comparator, and no value.
//
// The resources are read into the minimal structs below rather than the
// generated models of github.com/samply/golang-fhir-models (v0.3.2 was
// evaluated): its enum types decode a JSON string by trimming quotes
// instead of unescaping it, so "\u003c=" (a valid spelling of "<=", and
// the one encoding/json writes, including when that package marshals its
// own Quantity) is refused; its error messages quote the offending value;
// a missing status decodes as the first code ("registered"); and it
// silently drops elements it does not know, such as an unsupported
// value[x]. Each of those needed a raw pass over the JSON anyway, and the
// few elements read here are simpler to check with structs of our own.
func ParseFHIR(body []byte) (Message, error) {
	if !utf8.Valid(body) {
		return Message{}, invalidf("body is not UTF-8")
	}
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := checkJSON(body, func(rel string) string { return rootName(body) + rel }); err != nil {
		return Message{}, err
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return Message{}, invalidf("resourceType: wrong JSON type")
	}
	p := &fhirParser{byURL: map[string]*resource{}, byTypeID: map[string]*resource{}}
	switch head.ResourceType {
	case "Bundle":
		return p.bundle(body)
	case "DiagnosticReport":
		return p.lone(body)
	case "":
		return Message{}, invalidf("resourceType is missing")
	}
	if r4ResourceTypes[head.ResourceType] {
		return Message{}, invalidf("resourceType: a body must be a Bundle or a DiagnosticReport")
	}
	return Message{}, invalidf("resourceType is not an R4 resource type")
}

// rootName names the top of an element path: the body's resourceType when
// it is one ParseFHIR reads, else "resource".
func rootName(body []byte) string {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if json.Unmarshal(body, &head) == nil && (head.ResourceType == "Bundle" || head.ResourceType == "DiagnosticReport") {
		return head.ResourceType
	}
	return "resource"
}

// checkJSON reads body token by token: it must be one JSON object, no
// object may repeat a key, and no element may be a modifierExtension.
// where turns a path relative to the root (".entry[2].resource") into the
// path for a reason.
func checkJSON(body []byte, where func(rel string) string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return jsonSyntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return invalidf("body is not a JSON object")
	}
	if err := walkObject(dec, "", where); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return jsonSyntax(err)
		}
		return invalidf("body holds more than one JSON value")
	}
	return nil
}

func jsonSyntax(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return invalidf("body is not valid JSON (syntax error at byte %d)", se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return invalidf("body is not valid JSON (it ends early)")
	}
	return invalidf("body is not valid JSON")
}

// walkObject reads the members of an object whose '{' was read.
func walkObject(dec *json.Decoder, path string, where func(string) string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonSyntax(err)
		}
		key, ok := tok.(string)
		if !ok {
			return invalidf("body is not valid JSON")
		}
		child := path + "." + elementName(key)
		if seen[key] {
			return invalidf("%s: the key appears twice in one object", where(child))
		}
		seen[key] = true
		if miscased(key) {
			return invalidf("%s: the key differs only in case from a FHIR element name", where(child))
		}
		if key == "modifierExtension" {
			return invalidf("%s: modifier extensions are not supported", where(child))
		}
		if err := walkValue(dec, child, where); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return jsonSyntax(err)
	}
	return nil
}

func walkValue(dec *json.Decoder, path string, where func(string) string) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonSyntax(err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return walkObject(dec, path, where)
	case '[':
		for i := 0; dec.More(); i++ {
			if err := walkValue(dec, fmt.Sprintf("%s[%d]", path, i), where); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return jsonSyntax(err)
		}
	}
	return nil
}

// readNames are the JSON names of every struct field ParseFHIR reads.
var readNames = func() map[string]bool {
	names := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == reflect.TypeFor[json.RawMessage]() {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && !names[name] {
				names[name] = true
				walk(f.Type)
			}
		}
	}
	for _, v := range []any{resourceHead{}, fhirBundle{}, fhirDiagnosticReport{}, fhirObservation{}, fhirPatient{}, fhirSpecimen{}, fhirServiceRequest{}} {
		walk(reflect.TypeOf(v))
	}
	return names
}()

// miscased reports whether key is not one of readNames but encoding/json,
// which matches names without regard to case (Unicode folding included),
// would read it as one. FHIR names are case-sensitive: such a key is an
// unknown element to any other reader, or a second copy of one it knows.
func miscased(key string) bool {
	if readNames[key] {
		return false
	}
	for name := range readNames {
		if strings.EqualFold(key, name) {
			return true
		}
	}
	return false
}

// elementName is a JSON key as it may appear in a reason: FHIR element
// names are short identifiers; any other key is not repeated, since a key
// is text from the message.
func elementName(key string) string {
	if key == "" || len(key) > 64 {
		return "<key>"
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '_' || isLetter(c) || (i > 0 && c >= '0' && c <= '9')) {
			return "<key>"
		}
	}
	return key
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// resource is one resource of the message: a bundle entry's, a contained
// one, or the lone DiagnosticReport.
type resource struct {
	path    string // element path, as in Bundle.entry[3].resource
	fullURL string
	typ, id string
	raw     json.RawMessage
	// container is the resource holding this contained one; nil at the
	// top.
	container *resource
	contained map[string]*resource // by "#id"
}

// top is the resource a contained one sits in, or r itself.
func (r *resource) top() *resource {
	if r.container != nil {
		return r.container
	}
	return r
}

type fhirParser struct {
	all      []*resource // in document order, contained after their container
	byURL    map[string]*resource
	byTypeID map[string]*resource
	patients int
	// reached marks the Observations some report reaches.
	reached map[*resource]bool
	// subjectKeys identify the message's patient once a subject was read:
	// two subjects name the same patient when their keys meet.
	subjectKeys map[string]bool
	patient     Patient
}

type fhirBundle struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Timestamp string            `json:"timestamp"`
	Entry     []fhirBundleEntry `json:"entry"`
}

type fhirBundleEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
}

// resourceHead is what every resource is first read as.
type resourceHead struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Contained    []json.RawMessage `json:"contained"`
}

// bundleTypes are the Bundle types read. A document needs its Composition
// read, a history may hold several versions of one resource, and the
// response types answer requests rather than report results.
var bundleTypes = map[string]bool{
	"collection": true, "transaction": true, "message": true, "batch": true, "searchset": true,
}

func (p *fhirParser) bundle(body []byte) (Message, error) {
	var b fhirBundle
	if err := json.Unmarshal(body, &b); err != nil {
		return Message{}, decodeError("Bundle", err)
	}
	switch {
	case b.Type == "":
		return Message{}, invalidf("Bundle.type is missing")
	case !bundleTypes[b.Type]:
		return Message{}, invalidf("Bundle.type is not one Carebook reads (collection, transaction, message, batch, searchset)")
	}
	msg := Message{Format: FormatFHIR, ID: b.ID}
	if b.Timestamp != "" {
		t, err := fhirInstant(b.Timestamp, "Bundle.timestamp")
		if err != nil {
			return Message{}, err
		}
		msg.SentAt = t
	}
	for i, e := range b.Entry {
		path := fmt.Sprintf("Bundle.entry[%d].resource", i)
		if len(e.Resource) == 0 || string(e.Resource) == "null" {
			continue
		}
		if _, err := p.add(e.Resource, path, e.FullURL, nil); err != nil {
			return Message{}, err
		}
	}
	var reports []*resource
	for _, r := range p.all {
		if r.typ == "DiagnosticReport" && r.container == nil {
			reports = append(reports, r)
		}
	}
	if len(reports) == 0 {
		return Message{}, invalidf("Bundle.entry: the bundle holds no DiagnosticReport")
	}
	if msg.ID == "" {
		if len(reports) != 1 || reports[0].id == "" {
			return Message{}, invalidf("Bundle.id is missing, and the bundle does not hold exactly one DiagnosticReport with an id")
		}
		msg.ID = reports[0].id
	}
	return p.finish(msg, reports)
}

func (p *fhirParser) lone(body []byte) (Message, error) {
	r, err := p.add(body, "DiagnosticReport", "", nil)
	if err != nil {
		return Message{}, err
	}
	if r.id == "" {
		return Message{}, invalidf("DiagnosticReport.id is missing")
	}
	return p.finish(Message{Format: FormatFHIR, ID: r.id}, []*resource{r})
}

func (p *fhirParser) finish(msg Message, reports []*resource) (Message, error) {
	var patient *resource
	for _, r := range p.all {
		if r.typ != "Patient" {
			continue
		}
		if patient != nil {
			return Message{}, invalidf("%s: the message holds more than one Patient", r.path)
		}
		patient = r
	}
	p.reached = map[*resource]bool{}
	for _, r := range reports {
		rep, err := p.report(r)
		if err != nil {
			return Message{}, err
		}
		msg.Reports = append(msg.Reports, rep)
	}
	for _, r := range p.all {
		if r.typ == "Observation" && !p.reached[r] {
			return Message{}, invalidf("%s: Observation is not reached from any DiagnosticReport.result or hasMember, so it would be lost", r.path)
		}
	}
	if patient != nil {
		// A Patient sent along must be the one the reports are about; its
		// resource then gives the name and birth date too.
		keys, pat, err := patientKeys(patient)
		if err != nil {
			return Message{}, err
		}
		if !meets(p.subjectKeys, keys) {
			return Message{}, invalidf("%s: the Patient in the message is not the reports' subject", patient.path)
		}
		p.patient = pat
	}
	msg.Patient = p.patient
	return msg, nil
}

// add indexes one resource and those it contains.
func (p *fhirParser) add(raw json.RawMessage, path, fullURL string, container *resource) (*resource, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return nil, invalidf("%s: not a JSON object", path)
	}
	var h resourceHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, decodeError(path, err)
	}
	switch {
	case h.ResourceType == "":
		return nil, invalidf("%s.resourceType is missing", path)
	case !r4ResourceTypes[h.ResourceType]:
		return nil, invalidf("%s.resourceType is not an R4 resource type", path)
	}
	r := &resource{path: path, fullURL: fullURL, typ: h.ResourceType, id: h.ID, raw: raw, container: container}
	p.all = append(p.all, r)
	if h.ResourceType == "Patient" {
		p.patients++
	}
	if container == nil {
		if fullURL != "" {
			if p.byURL[fullURL] != nil {
				return nil, invalidf("%s: fullUrl repeats that of %s", path, p.byURL[fullURL].path)
			}
			p.byURL[fullURL] = r
		}
		if h.ID != "" {
			k := h.ResourceType + "/" + h.ID
			if p.byTypeID[k] != nil {
				return nil, invalidf("%s: type and id repeat those of %s", path, p.byTypeID[k].path)
			}
			p.byTypeID[k] = r
		}
	} else if len(h.Contained) > 0 {
		return nil, invalidf("%s.contained: a contained resource may not contain others", path)
	}
	for i, c := range h.Contained {
		cpath := fmt.Sprintf("%s.contained[%d]", path, i)
		cr, err := p.add(c, cpath, "", r)
		if err != nil {
			return nil, err
		}
		if cr.id == "" {
			return nil, invalidf("%s.id is missing: a contained resource needs an id to be referenced", cpath)
		}
		if r.contained == nil {
			r.contained = map[string]*resource{}
		}
		if r.contained["#"+cr.id] != nil {
			return nil, invalidf("%s.id repeats that of another contained resource", cpath)
		}
		r.contained["#"+cr.id] = cr
	}
	return r, nil
}

// resolve finds the resource a reference from r points at within the
// message, or nil.
func (p *fhirParser) resolve(r *resource, ref string) *resource {
	if strings.HasPrefix(ref, "#") {
		return r.top().contained[ref]
	}
	if t := p.byURL[ref]; t != nil {
		return t
	}
	if isRelativeRef(ref) {
		return p.byTypeID[ref]
	}
	return nil
}

// isRelativeRef reports whether ref has the form Type/id.
func isRelativeRef(ref string) bool {
	typ, id, ok := strings.Cut(ref, "/")
	return ok && id != "" && !strings.Contains(id, "/") && r4ResourceTypes[typ]
}

// decodeError turns an encoding/json error into a reason with the element
// path, without the value.
func decodeError(path string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return invalidf("%s.%s: wrong JSON type", path, safePath(te.Field))
	}
	return invalidf("%s: cannot be read", path)
}

// safePath keeps a dotted path of element names from our own structs.
func safePath(p string) string {
	parts := strings.Split(p, ".")
	for i, s := range parts {
		parts[i] = elementName(s)
	}
	return strings.Join(parts, ".")
}

type fhirCoding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

type fhirCodeableConcept struct {
	Coding []fhirCoding `json:"coding"`
	Text   string       `json:"text"`
}

// empty reports whether the concept carries neither a code nor text.
func (c *fhirCodeableConcept) empty() bool {
	if c == nil {
		return true
	}
	if c.Text != "" {
		return false
	}
	for _, cd := range c.Coding {
		if cd.Code != "" {
			return false
		}
	}
	return true
}

// code is the concept's first coding with a code, its display falling back
// to the concept's text; a text-only concept has only Display.
func (c *fhirCodeableConcept) code() Code {
	if c == nil {
		return Code{}
	}
	for _, cd := range c.Coding {
		if cd.Code != "" {
			out := Code{System: cd.System, Code: cd.Code, Display: cd.Display}
			if out.Display == "" {
				out.Display = c.Text
			}
			return out
		}
	}
	return Code{Display: c.Text}
}

type fhirIdentifier struct {
	System string               `json:"system"`
	Value  string               `json:"value"`
	Type   *fhirCodeableConcept `json:"type"`
}

func (id fhirIdentifier) model() Identifier {
	out := Identifier{System: id.System, Value: id.Value}
	if id.Type != nil {
		out.Type = id.Type.code().Code
	}
	return out
}

type fhirReference struct {
	Reference  string          `json:"reference"`
	Type       string          `json:"type"`
	Identifier *fhirIdentifier `json:"identifier"`
}

type fhirPeriod struct {
	Start string `json:"start"`
}

type fhirQuantity struct {
	Value      json.RawMessage `json:"value"`
	Comparator *string         `json:"comparator"`
	Unit       string          `json:"unit"`
	Code       string          `json:"code"`
}

// unit is the coded unit, else the unit text, as for HL7 OBX-6.
func (q *fhirQuantity) unit() string {
	if q.Code != "" {
		return q.Code
	}
	return q.Unit
}

type fhirRange struct {
	Low  *fhirQuantity `json:"low"`
	High *fhirQuantity `json:"high"`
}

type fhirRatio struct {
	Numerator   *fhirQuantity `json:"numerator"`
	Denominator *fhirQuantity `json:"denominator"`
}

type fhirReferenceRange struct {
	Low  *fhirQuantity `json:"low"`
	High *fhirQuantity `json:"high"`
	Text string        `json:"text"`
}

type fhirAnnotation struct {
	Text string `json:"text"`
}

type fhirDiagnosticReport struct {
	Identifier        []fhirIdentifier     `json:"identifier"`
	BasedOn           []fhirReference      `json:"basedOn"`
	Status            string               `json:"status"`
	Code              *fhirCodeableConcept `json:"code"`
	Subject           *fhirReference       `json:"subject"`
	EffectiveDateTime string               `json:"effectiveDateTime"`
	EffectivePeriod   *fhirPeriod          `json:"effectivePeriod"`
	Issued            string               `json:"issued"`
	Specimen          []fhirReference      `json:"specimen"`
	Result            []fhirReference      `json:"result"`
	Conclusion        string               `json:"conclusion"`
}

type fhirObservation struct {
	Status               string                `json:"status"`
	Code                 *fhirCodeableConcept  `json:"code"`
	Subject              *fhirReference        `json:"subject"`
	EffectiveDateTime    string                `json:"effectiveDateTime"`
	EffectiveInstant     string                `json:"effectiveInstant"`
	EffectivePeriod      *fhirPeriod           `json:"effectivePeriod"`
	ValueQuantity        *fhirQuantity         `json:"valueQuantity"`
	ValueCodeableConcept *fhirCodeableConcept  `json:"valueCodeableConcept"`
	ValueString          *string               `json:"valueString"`
	ValueInteger         json.RawMessage       `json:"valueInteger"`
	ValueRange           *fhirRange            `json:"valueRange"`
	ValueRatio           *fhirRatio            `json:"valueRatio"`
	DataAbsentReason     *fhirCodeableConcept  `json:"dataAbsentReason"`
	Interpretation       []fhirCodeableConcept `json:"interpretation"`
	Note                 []fhirAnnotation      `json:"note"`
	ReferenceRange       []fhirReferenceRange  `json:"referenceRange"`
	HasMember            []fhirReference       `json:"hasMember"`
	Component            json.RawMessage       `json:"component"`
}

type fhirPatient struct {
	Identifier []fhirIdentifier `json:"identifier"`
	Name       []struct {
		Use    string   `json:"use"`
		Family string   `json:"family"`
		Given  []string `json:"given"`
	} `json:"name"`
	Gender    string `json:"gender"`
	BirthDate string `json:"birthDate"`
}

type fhirSpecimen struct {
	AccessionIdentifier *fhirIdentifier      `json:"accessionIdentifier"`
	Identifier          []fhirIdentifier     `json:"identifier"`
	Type                *fhirCodeableConcept `json:"type"`
	Collection          *struct {
		CollectedDateTime string      `json:"collectedDateTime"`
		CollectedPeriod   *fhirPeriod `json:"collectedPeriod"`
	} `json:"collection"`
}

type fhirServiceRequest struct {
	Identifier []fhirIdentifier `json:"identifier"`
}

// reportStatusFHIR maps an R4 DiagnosticReport.status. partial becomes
// preliminary and appended amended, the statuses Carebook distinguishes;
// unknown is refused.
var reportStatusFHIR = map[string]Status{
	"registered":       StatusRegistered,
	"partial":          StatusPreliminary,
	"preliminary":      StatusPreliminary,
	"final":            StatusFinal,
	"amended":          StatusAmended,
	"corrected":        StatusCorrected,
	"appended":         StatusAmended,
	"cancelled":        StatusCancelled,
	"entered-in-error": StatusError,
}

// observationStatusFHIR maps an R4 Observation.status; unknown is refused.
var observationStatusFHIR = map[string]Status{
	"registered":       StatusRegistered,
	"preliminary":      StatusPreliminary,
	"final":            StatusFinal,
	"amended":          StatusAmended,
	"corrected":        StatusCorrected,
	"cancelled":        StatusCancelled,
	"entered-in-error": StatusError,
}

func (p *fhirParser) report(r *resource) (Report, error) {
	var dr fhirDiagnosticReport
	if err := json.Unmarshal(r.raw, &dr); err != nil {
		return Report{}, decodeError(r.path, err)
	}
	st, err := status(dr.Status, reportStatusFHIR, r.path)
	if err != nil {
		return Report{}, err
	}
	if dr.Code.empty() {
		return Report{}, invalidf("%s.code is missing: it needs a coding with a code, or text", r.path)
	}
	if dr.Subject == nil {
		return Report{}, invalidf("%s.subject is missing: a report must name its patient", r.path)
	}
	if err := p.subject(r, dr.Subject, r.path+".subject"); err != nil {
		return Report{}, err
	}
	rep := Report{Code: dr.Code.code(), Status: st, Conclusion: dr.Conclusion}
	for _, id := range dr.Identifier {
		if id.Value != "" {
			rep.Key = id.System + "|" + id.Value
			rep.FillerNumber = id.Value
			break
		}
	}
	if rep.Key == "" {
		if r.id == "" {
			return Report{}, invalidf("%s: neither identifier nor id, so the report could never be corrected", r.path)
		}
		rep.Key = "DiagnosticReport/" + r.id
	}
	switch {
	case dr.EffectiveDateTime != "":
		rep.EffectiveAt, err = fhirDateTime(dr.EffectiveDateTime, r.path+".effectiveDateTime")
	case dr.EffectivePeriod != nil && dr.EffectivePeriod.Start != "":
		rep.EffectiveAt, err = fhirDateTime(dr.EffectivePeriod.Start, r.path+".effectivePeriod.start")
	}
	if err != nil {
		return Report{}, err
	}
	if dr.Issued != "" {
		if rep.IssuedAt, err = fhirInstant(dr.Issued, r.path+".issued"); err != nil {
			return Report{}, err
		}
	}
	for _, b := range dr.BasedOn {
		if t := p.resolve(r, b.Reference); t != nil && t.typ == "ServiceRequest" {
			var sr fhirServiceRequest
			if err := json.Unmarshal(t.raw, &sr); err != nil {
				return Report{}, decodeError(t.path, err)
			}
			for _, id := range sr.Identifier {
				if id.Value != "" {
					rep.PlacerNumber = id.Value
					break
				}
			}
			break
		}
	}
	for i, s := range dr.Specimen {
		sp, err := p.specimen(r, s, fmt.Sprintf("%s.specimen[%d]", r.path, i))
		if err != nil {
			return Report{}, err
		}
		if sp != nil {
			rep.Specimens = append(rep.Specimens, *sp)
		}
	}
	w := &reportWalk{p: p, rep: &rep, inReport: map[*resource]bool{}, onPath: map[*resource]bool{}, keys: map[string]bool{}}
	for i, ref := range dr.Result {
		path := fmt.Sprintf("%s.result[%d].reference", r.path, i)
		t, err := p.target(r, ref, path)
		if err != nil {
			return Report{}, err
		}
		if _, err := w.observation(t, path); err != nil {
			return Report{}, err
		}
	}
	return rep, nil
}

// target resolves a result or hasMember reference, which must lead to an
// Observation within the message.
func (p *fhirParser) target(from *resource, ref fhirReference, path string) (*resource, error) {
	if ref.Reference == "" {
		return nil, invalidf("%s is missing: results must be literal references within the message", path)
	}
	t := p.resolve(from, ref.Reference)
	if t == nil {
		return nil, invalidf("%s does not resolve within the message", path)
	}
	if t.typ != "Observation" {
		return nil, invalidf("%s leads to a resource that is not an Observation", path)
	}
	return t, nil
}

// reportWalk flattens one report's observations.
type reportWalk struct {
	p        *fhirParser
	rep      *Report
	inReport map[*resource]bool
	onPath   map[*resource]bool
	keys     map[string]bool
}

// observation adds r and then its members, and returns r's key.
func (w *reportWalk) observation(r *resource, refPath string) (string, error) {
	if w.onPath[r] {
		return "", invalidf("%s leads back to an Observation that holds it as a member", refPath)
	}
	key := r.id
	if key == "" {
		key = r.fullURL
	}
	if w.inReport[r] {
		return key, nil
	}
	w.inReport[r] = true
	w.p.reached[r] = true
	o, fo, err := w.p.observation(r, w.rep.EffectiveAt)
	if err != nil {
		return "", err
	}
	if w.keys[key] {
		return "", invalidf("%s: the Observation's id repeats that of another in the same report", r.path)
	}
	w.keys[key] = true
	o.Key = key
	w.rep.Observations = append(w.rep.Observations, o)
	at := len(w.rep.Observations) - 1
	w.onPath[r] = true
	var members []string
	for i, ref := range fo.HasMember {
		path := fmt.Sprintf("%s.hasMember[%d].reference", r.path, i)
		t, err := w.p.target(r, ref, path)
		if err != nil {
			return "", err
		}
		k, err := w.observation(t, path)
		if err != nil {
			return "", err
		}
		members = append(members, k)
	}
	delete(w.onPath, r)
	w.rep.Observations[at].Members = members
	return key, nil
}

// supportedValues are the value[x] elements read; knownValues the other R4
// ones, refused by name.
var (
	supportedValues = []string{"valueQuantity", "valueCodeableConcept", "valueString", "valueInteger", "valueRange", "valueRatio"}
	knownValues     = []string{"valueBoolean", "valueTime", "valueDateTime", "valuePeriod", "valueSampledData"}
)

func (p *fhirParser) observation(r *resource, reportTime time.Time) (Observation, fhirObservation, error) {
	var fo fhirObservation
	if err := json.Unmarshal(r.raw, &fo); err != nil {
		return Observation{}, fo, decodeError(r.path, err)
	}
	st, err := status(fo.Status, observationStatusFHIR, r.path)
	if err != nil {
		return Observation{}, fo, err
	}
	if fo.Code.empty() {
		return Observation{}, fo, invalidf("%s.code is missing: it needs a coding with a code, or text", r.path)
	}
	if fo.Subject != nil {
		if err := p.subject(r, fo.Subject, r.path+".subject"); err != nil {
			return Observation{}, fo, err
		}
	}
	if c := bytes.TrimSpace(fo.Component); len(c) > 0 && string(c) != "null" && string(c) != "[]" {
		return Observation{}, fo, invalidf("%s.component is not supported", r.path)
	}
	if err := checkValueX(r); err != nil {
		return Observation{}, fo, err
	}
	o := Observation{Code: fo.Code.code(), Status: st}
	switch {
	case fo.EffectiveDateTime != "":
		o.EffectiveAt, err = fhirDateTime(fo.EffectiveDateTime, r.path+".effectiveDateTime")
	case fo.EffectiveInstant != "":
		o.EffectiveAt, err = fhirInstant(fo.EffectiveInstant, r.path+".effectiveInstant")
	case fo.EffectivePeriod != nil && fo.EffectivePeriod.Start != "":
		o.EffectiveAt, err = fhirDateTime(fo.EffectivePeriod.Start, r.path+".effectivePeriod.start")
	default:
		o.EffectiveAt = reportTime
	}
	if err != nil {
		return Observation{}, fo, err
	}
	if err := valueFHIR(&o, &fo, r.path); err != nil {
		return Observation{}, fo, err
	}
	seen := map[string]bool{}
	for i, cc := range fo.Interpretation {
		n := 0
		for _, cd := range cc.Coding {
			if cd.Code == "" {
				continue
			}
			n++
			if !seen[cd.Code] {
				seen[cd.Code] = true
				o.Flags = append(o.Flags, cd.Code)
			}
		}
		if n == 0 {
			return Observation{}, fo, invalidf("%s.interpretation[%d] has no coding with a code", r.path, i)
		}
	}
	for _, n := range fo.Note {
		if n.Text != "" {
			o.Notes = append(o.Notes, n.Text)
		}
	}
	if err := referenceRangeFHIR(&o, fo.ReferenceRange, r.path); err != nil {
		return Observation{}, fo, err
	}
	return o, fo, nil
}

// checkValueX refuses a value[x] Carebook does not read, and more than one.
func checkValueX(r *resource) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(r.raw, &keys); err != nil {
		return decodeError(r.path, err)
	}
	n := 0
	for k, v := range keys {
		if !strings.HasPrefix(k, "value") || string(bytes.TrimSpace(v)) == "null" {
			continue
		}
		switch {
		case contains(supportedValues, k):
			n++
		case contains(knownValues, k):
			return invalidf("%s.%s is not supported (supported: %s)", r.path, k, strings.Join(supportedValues, ", "))
		default:
			return invalidf("%s: an element value[x] of an unknown type (supported: %s)", r.path, strings.Join(supportedValues, ", "))
		}
	}
	if n > 1 {
		return invalidf("%s holds more than one value[x]", r.path)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// valueFHIR sets the value fields of o from the Observation's value[x].
func valueFHIR(o *Observation, fo *fhirObservation, path string) error {
	switch {
	case fo.ValueQuantity != nil:
		q := fo.ValueQuantity
		qp := path + ".valueQuantity"
		text, n, err := decimal(q.Value, qp+".value")
		if err != nil {
			return err
		}
		cmp, err := comparator(q.Comparator, qp+".comparator")
		if err != nil {
			return err
		}
		o.Kind, o.Number, o.Comparator, o.Unit = ValueQuantity, n, cmp, q.unit()
		o.Text = cmp + text
	case fo.ValueCodeableConcept != nil:
		cc := fo.ValueCodeableConcept
		if cc.empty() {
			return invalidf("%s.valueCodeableConcept has neither a coding with a code nor text", path)
		}
		o.Kind, o.Coded = ValueCoded, cc.code()
		o.Text = cc.Text
		if o.Text == "" {
			o.Text = o.Coded.Display
		}
	case fo.ValueString != nil:
		o.Kind, o.Text = ValueText, *fo.ValueString
	case len(fo.ValueInteger) > 0 && string(bytes.TrimSpace(fo.ValueInteger)) != "null":
		ip := path + ".valueInteger"
		text, n, err := decimal(fo.ValueInteger, ip)
		if err != nil {
			return err
		}
		if _, err := strconv.ParseInt(text, 10, 32); err != nil {
			return invalidf("%s is not a 32-bit integer", ip)
		}
		o.Kind, o.Number, o.Text = ValueQuantity, n, text
	case fo.ValueRange != nil:
		return rangeFHIR(o, fo.ValueRange, path+".valueRange")
	case fo.ValueRatio != nil:
		return ratioFHIR(o, fo.ValueRatio, path+".valueRatio")
	default:
		o.Kind = ValueNone
		if fo.DataAbsentReason != nil {
			o.Text = fo.DataAbsentReason.code().Label()
		}
	}
	return nil
}

// rangeFHIR maps valueRange: both bounds give a range; one bound a
// quantity with >= or <=, which says the same.
func rangeFHIR(o *Observation, rg *fhirRange, path string) error {
	var low, high *simple
	var err error
	if low, err = simpleQuantity(rg.Low, path+".low"); err != nil {
		return err
	}
	if high, err = simpleQuantity(rg.High, path+".high"); err != nil {
		return err
	}
	switch {
	case low != nil && high != nil:
		if low.unit != high.unit && low.unit != "" && high.unit != "" {
			return invalidf("%s: low and high are in different units", path)
		}
		o.Kind, o.Number, o.Number2 = ValueRange, low.n, high.n
		o.Unit = low.unit
		if o.Unit == "" {
			o.Unit = high.unit
		}
		o.Text = low.text + "-" + high.text
	case low != nil:
		o.Kind, o.Number, o.Comparator, o.Unit, o.Text = ValueQuantity, low.n, ">=", low.unit, ">="+low.text
	case high != nil:
		o.Kind, o.Number, o.Comparator, o.Unit, o.Text = ValueQuantity, high.n, "<=", high.unit, "<="+high.text
	default:
		return invalidf("%s has neither low nor high value", path)
	}
	return nil
}

// ratioFHIR maps valueRatio: numerator to denominator, such as 1:128.
func ratioFHIR(o *Observation, ra *fhirRatio, path string) error {
	if ra.Numerator == nil || ra.Denominator == nil {
		return invalidf("%s needs both numerator and denominator", path)
	}
	nt, n, err := decimal(ra.Numerator.Value, path+".numerator.value")
	if err != nil {
		return err
	}
	dt, d, err := decimal(ra.Denominator.Value, path+".denominator.value")
	if err != nil {
		return err
	}
	if d == 0 {
		return invalidf("%s.denominator.value is zero", path)
	}
	cmp, err := comparator(ra.Numerator.Comparator, path+".numerator.comparator")
	if err != nil {
		return err
	}
	if ra.Denominator.Comparator != nil {
		return invalidf("%s.denominator.comparator is not supported", path)
	}
	o.Kind, o.Number, o.Number2, o.Comparator = ValueRatio, n, d, cmp
	o.Unit = ra.Numerator.unit()
	if du := ra.Denominator.unit(); du != "" && du != "1" {
		o.Unit += "/" + du
	}
	o.Text = cmp + nt + ":" + dt
	return nil
}

// simple is a SimpleQuantity read: a number with its unit and no
// comparator.
type simple struct {
	text string
	n    float64
	unit string
}

func simpleQuantity(q *fhirQuantity, path string) (*simple, error) {
	if q == nil || len(q.Value) == 0 || string(q.Value) == "null" {
		return nil, nil
	}
	if q.Comparator != nil {
		return nil, invalidf("%s.comparator is not allowed in a simple quantity", path)
	}
	text, n, err := decimal(q.Value, path+".value")
	if err != nil {
		return nil, err
	}
	return &simple{text: text, n: n, unit: q.unit()}, nil
}

// referenceRangeFHIR sets the range. One range gives its text (or one
// written from low and high) and its bounds; several (by age, sex...) give
// their texts joined with "; " and no bounds, since which applies is not
// for intake to decide.
func referenceRangeFHIR(o *Observation, rr []fhirReferenceRange, path string) error {
	var texts []string
	for i, r := range rr {
		rp := fmt.Sprintf("%s.referenceRange[%d]", path, i)
		low, err := simpleQuantity(r.Low, rp+".low")
		if err != nil {
			return err
		}
		high, err := simpleQuantity(r.High, rp+".high")
		if err != nil {
			return err
		}
		text := r.Text
		if text == "" {
			switch {
			case low != nil && high != nil:
				text = low.text + "-" + high.text
			case low != nil:
				text = ">=" + low.text
			case high != nil:
				text = "<=" + high.text
			}
		}
		if len(rr) == 1 {
			switch {
			case low != nil || high != nil:
				if low != nil {
					o.Low = &low.n
				}
				if high != nil {
					o.High = &high.n
				}
			default:
				o.Low, o.High = ParseReferenceRange(text, o.Unit)
			}
		}
		if text != "" {
			texts = append(texts, text)
		}
	}
	o.ReferenceRange = strings.Join(texts, "; ")
	return nil
}

// decimal reads a JSON number as FHIR requires decimals to be sent: a
// number, not a string. It returns the number as sent.
func decimal(raw json.RawMessage, path string) (string, float64, error) {
	t := string(bytes.TrimSpace(raw))
	if t == "" || t == "null" {
		return "", 0, invalidf("%s is missing", path)
	}
	if t[0] != '-' && (t[0] < '0' || t[0] > '9') {
		return "", 0, invalidf("%s is not a JSON number", path)
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return "", 0, invalidf("%s is not a finite number", path)
	}
	return t, n, nil
}

// comparator checks a Quantity.comparator against R4's codes. R5 adds "ad"
// (sufficient to achieve a total), which is no bound on a lab value and
// not R4.
func comparator(c *string, path string) (string, error) {
	if c == nil {
		return "", nil
	}
	switch *c {
	case "<", "<=", ">=", ">":
		return *c, nil
	}
	return "", invalidf("%s is not one of < <= >= >", path)
}

func status(code string, codes map[string]Status, path string) (Status, error) {
	if code == "" {
		return "", invalidf("%s.status is missing", path)
	}
	if code == "unknown" {
		return "", invalidf("%s.status unknown is not accepted: a result is released by its status", path)
	}
	st, ok := codes[code]
	if !ok {
		return "", invalidf("%s.status is not an R4 status code", path)
	}
	return st, nil
}

// subject reads a subject reference and checks that it names the same
// patient as every earlier one.
func (p *fhirParser) subject(from *resource, ref *fhirReference, path string) error {
	keys, pat, err := p.patientOf(from, ref, path)
	if err != nil {
		return err
	}
	if p.subjectKeys == nil {
		p.subjectKeys, p.patient = map[string]bool{}, pat
	} else if !meets(p.subjectKeys, keys) {
		return invalidf("%s names a different patient from the first subject: one patient per message", path)
	}
	for _, k := range keys {
		p.subjectKeys[k] = true
	}
	return nil
}

func meets(set map[string]bool, keys []string) bool {
	for _, k := range keys {
		if set[k] {
			return true
		}
	}
	return false
}

// uriSystem is FHIR's identifier system for a value that is itself a URI.
const uriSystem = "urn:ietf:rfc:3986"

// patientOf identifies the patient a subject reference names. It returns
// keys for that patient (its resource, identifiers, URL): two references
// whose keys meet name the same patient.
func (p *fhirParser) patientOf(from *resource, ref *fhirReference, path string) ([]string, Patient, error) {
	if ref.Reference != "" {
		if t := p.resolve(from, ref.Reference); t != nil {
			if t.typ != "Patient" {
				return nil, Patient{}, invalidf("%s.reference leads to a resource that is not a Patient", path)
			}
			return patientKeys(t)
		}
	}
	if id := ref.Identifier; id != nil && id.Value != "" {
		return []string{identifierKey(id.System, id.Value)}, Patient{Identifiers: []Identifier{id.model()}}, nil
	}
	if ref.Reference == "" {
		return nil, Patient{}, invalidf("%s has neither a reference nor an identifier", path)
	}
	if ref.Type != "" && ref.Type != "Patient" {
		return nil, Patient{}, invalidf("%s.type is not Patient", path)
	}
	abs, ok := absoluteReference(from.top().fullURL, ref.Reference)
	if !ok {
		return nil, Patient{}, invalidf("%s.reference does not resolve within the message, has no absolute base, and the reference carries no identifier", path)
	}
	if !strings.Contains(abs, "/Patient/") {
		return nil, Patient{}, invalidf("%s.reference does not lead to a Patient", path)
	}
	return []string{identifierKey(uriSystem, abs)}, Patient{Identifiers: []Identifier{{System: uriSystem, Value: abs}}}, nil
}

func identifierKey(system, value string) string { return system + "|" + value }

// patientKeys reads a Patient resource of the message with its keys.
func patientKeys(r *resource) ([]string, Patient, error) {
	pat, err := patientFHIR(r)
	if err != nil {
		return nil, Patient{}, err
	}
	keys := []string{"resource\x00" + r.path}
	for _, id := range pat.Identifiers {
		keys = append(keys, identifierKey(id.System, id.Value))
	}
	if abs, ok := absoluteReference("", r.fullURL); ok {
		keys = append(keys, identifierKey(uriSystem, abs))
	}
	return keys, pat, nil
}

// absoluteReference makes ref absolute: as it is when it is an http(s)
// URL, or against the base of fullURL (the part before its Type/id) when
// ref is relative.
func absoluteReference(fullURL, ref string) (string, bool) {
	if strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
		return ref, true
	}
	if !isRelativeRef(ref) {
		return "", false
	}
	if !strings.HasPrefix(fullURL, "http://") && !strings.HasPrefix(fullURL, "https://") {
		return "", false
	}
	i := strings.LastIndexByte(fullURL, '/')
	if i < 0 {
		return "", false
	}
	j := strings.LastIndexByte(fullURL[:i], '/')
	if j < len("https://") || !r4ResourceTypes[fullURL[j+1:i]] {
		return "", false
	}
	return fullURL[:j+1] + ref, true
}

// genders maps FHIR administrative gender to HL7 table 0001.
var genders = map[string]string{"male": "M", "female": "F", "other": "O", "unknown": "U"}

func patientFHIR(r *resource) (Patient, error) {
	var fp fhirPatient
	if err := json.Unmarshal(r.raw, &fp); err != nil {
		return Patient{}, decodeError(r.path, err)
	}
	var pat Patient
	for _, id := range fp.Identifier {
		if id.Value != "" {
			pat.Identifiers = append(pat.Identifiers, id.model())
		}
	}
	if len(pat.Identifiers) == 0 {
		if abs, ok := absoluteReference("", r.fullURL); ok {
			pat.Identifiers = []Identifier{{System: uriSystem, Value: abs}}
		} else {
			return Patient{}, invalidf("%s.identifier is missing: the patient cannot be matched", r.path)
		}
	}
	for i, n := range fp.Name {
		if i == 0 || n.Use == "official" {
			pat.Family = n.Family
			pat.Given = ""
			if len(n.Given) > 0 {
				pat.Given = n.Given[0]
			}
			if n.Use == "official" {
				break
			}
		}
	}
	if g, ok := genders[fp.Gender]; ok {
		pat.Sex = g
	}
	if len(fp.BirthDate) == len(time.DateOnly) {
		if _, err := time.Parse(time.DateOnly, fp.BirthDate); err == nil {
			pat.BirthDate = fp.BirthDate
		}
	}
	return pat, nil
}

// specimen maps a DiagnosticReport.specimen that resolves within the
// message; one that does not is skipped.
func (p *fhirParser) specimen(from *resource, ref fhirReference, path string) (*Specimen, error) {
	t := p.resolve(from, ref.Reference)
	if t == nil || t.typ != "Specimen" {
		return nil, nil
	}
	var fs fhirSpecimen
	if err := json.Unmarshal(t.raw, &fs); err != nil {
		return nil, decodeError(t.path, err)
	}
	sp := &Specimen{ID: t.id, Type: fs.Type.code()}
	if fs.AccessionIdentifier != nil && fs.AccessionIdentifier.Value != "" {
		sp.ID = fs.AccessionIdentifier.Value
	} else if len(fs.Identifier) > 0 && fs.Identifier[0].Value != "" {
		sp.ID = fs.Identifier[0].Value
	}
	if c := fs.Collection; c != nil {
		var err error
		switch {
		case c.CollectedDateTime != "":
			sp.CollectedAt, err = fhirDateTime(c.CollectedDateTime, t.path+".collection.collectedDateTime")
		case c.CollectedPeriod != nil && c.CollectedPeriod.Start != "":
			sp.CollectedAt, err = fhirDateTime(c.CollectedPeriod.Start, t.path+".collection.collectedPeriod.start")
		}
		if err != nil {
			return nil, err
		}
	}
	return sp, nil
}

// fhirDateTime reads an R4 dateTime: YYYY, YYYY-MM, YYYY-MM-DD (read as
// the start of that period, UTC), or a date and time with seconds and a
// zone, which R4 requires once a time is given.
func fhirDateTime(s, path string) (time.Time, error) {
	for _, layout := range []string{"2006", "2006-01", time.DateOnly} {
		if len(s) == len(layout) {
			t, err := time.Parse(layout, s)
			if err != nil {
				return time.Time{}, invalidf("%s is not a FHIR dateTime", path)
			}
			return t, nil
		}
	}
	return fhirInstant(s, path)
}

// fhirInstant reads an R4 instant: a date and time with a zone.
func fhirInstant(s, path string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !strings.Contains(s, "T") {
		return time.Time{}, invalidf("%s is not a date and time with a zone", path)
	}
	return t.UTC(), nil
}

// r4ResourceTypes are the resource types of FHIR R4 (4.0.1).
var r4ResourceTypes = func() map[string]bool {
	names := strings.Fields(`
		Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment
		AppointmentResponse AuditEvent Basic Binary BiologicallyDerivedProduct
		BodyStructure Bundle CapabilityStatement CarePlan CareTeam CatalogEntry
		ChargeItem ChargeItemDefinition Claim ClaimResponse ClinicalImpression
		CodeSystem Communication CommunicationRequest CompartmentDefinition
		Composition ConceptMap Condition Consent Contract Coverage
		CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue
		Device DeviceDefinition DeviceMetric DeviceRequest DeviceUseStatement
		DiagnosticReport DocumentManifest DocumentReference
		EffectEvidenceSynthesis Encounter Endpoint EnrollmentRequest
		EnrollmentResponse EpisodeOfCare EventDefinition Evidence
		EvidenceVariable ExampleScenario ExplanationOfBenefit
		FamilyMemberHistory Flag Goal GraphDefinition Group GuidanceResponse
		HealthcareService ImagingStudy Immunization ImmunizationEvaluation
		ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice
		Library Linkage List Location Measure MeasureReport Media Medication
		MedicationAdministration MedicationDispense MedicationKnowledge
		MedicationRequest MedicationStatement MedicinalProduct
		MedicinalProductAuthorization MedicinalProductContraindication
		MedicinalProductIndication MedicinalProductIngredient
		MedicinalProductInteraction MedicinalProductManufactured
		MedicinalProductPackaged MedicinalProductPharmaceutical
		MedicinalProductUndesirableEffect MessageDefinition MessageHeader
		MolecularSequence NamingSystem NutritionOrder Observation
		ObservationDefinition OperationDefinition OperationOutcome Organization
		OrganizationAffiliation Parameters Patient PaymentNotice
		PaymentReconciliation Person PlanDefinition Practitioner
		PractitionerRole Procedure Provenance Questionnaire
		QuestionnaireResponse RelatedPerson RequestGroup ResearchDefinition
		ResearchElementDefinition ResearchStudy ResearchSubject RiskAssessment
		RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest Slot
		Specimen SpecimenDefinition StructureDefinition StructureMap
		Subscription Substance SubstanceNucleicAcid SubstancePolymer
		SubstanceProtein SubstanceReferenceInformation SubstanceSourceMaterial
		SubstanceSpecification SupplyDelivery SupplyRequest Task
		TerminologyCapabilities TestReport TestScript ValueSet
		VerificationResult VisionPrescription`)
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}()
