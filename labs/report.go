// Package labs is the lab result model shared by every way a result can
// arrive: HL7 v2 ORU^R01 messages and FHIR R4 DiagnosticReports both become
// a Message with Reports and Observations here, and everything after intake
// (matching, filing, rendering, release) reads only this model. The package
// does no I/O.
package labs

import "time"

// Format is the wire format a message arrived in.
type Format string

// The formats.
const (
	FormatHL7v2 Format = "hl7v2"
	FormatFHIR  Format = "fhir"
)

// Message is one received message: a patient and the reports about them.
type Message struct {
	Format Format
	// ID is the sender's identifier for the message: MSH-10 for HL7 v2,
	// the Bundle's (or the lone DiagnosticReport's) id for FHIR. Resends
	// carry the same ID.
	ID string
	// SendingFacility names the lab: MSH-4's universal ID (as
	// urn:oid:<id> when its type is ISO), else its namespace ID; empty for
	// FHIR.
	SendingFacility string
	SentAt          time.Time // zero when not sent
	Patient         Patient
	Reports         []Report
}

// Patient is what the message says about whom the results are for. Only
// Identifiers are used to match; names and birth date are shown to staff
// working the unmatched queue.
type Patient struct {
	Identifiers []Identifier
	Family      string
	Given       string
	BirthDate   string // YYYY-MM-DD, or "" when absent or partial
	// Sex is an HL7 table 0001 code: M, F, O, U... as sent in PID-8; FHIR
	// gender male, female, other and unknown become M, F, O and U.
	Sex string
}

// Identifier is a patient identifier with the system that assigned it.
// System is a URI-like string: an OID as "urn:oid:2.16...", a FHIR system
// URI, or an HL7 namespace ID as sent; empty when the sender named none.
type Identifier struct {
	System string
	Value  string
	Type   string // such as MR; "" when not given
}

// Status is a report or observation status, in FHIR's codes.
type Status string

// The statuses Carebook distinguishes.
const (
	StatusRegistered  Status = "registered"
	StatusPreliminary Status = "preliminary"
	StatusFinal       Status = "final"
	StatusCorrected   Status = "corrected"
	StatusCancelled   Status = "cancelled"
	StatusAmended     Status = "amended"
	StatusError       Status = "entered-in-error"
)

// Code is a coded concept: a code in a system, with display text.
type Code struct {
	System  string
	Code    string
	Display string
}

// Label is the best text to show for the code.
func (c Code) Label() string {
	if c.Display != "" {
		return c.Display
	}
	return c.Code
}

// Report is one ordered test or panel with its results: an HL7 ORDER
// group (OBR) or a FHIR DiagnosticReport.
type Report struct {
	// Key identifies the report across corrections: the filler order
	// number with its namespace for HL7 (else the placer's), the
	// DiagnosticReport's identifier or id for FHIR. A later message with
	// the same Key supersedes the earlier report.
	Key          string
	PlacerNumber string
	FillerNumber string
	Code         Code
	Status       Status
	EffectiveAt  time.Time // collection or observation time; zero if absent
	IssuedAt     time.Time // when reported; zero if absent
	// OrderingProvider identifies the ordering doctor as the sender knows
	// them (an ID, with its system); empty when not sent.
	OrderingProvider Identifier
	Observations     []Observation
	Specimens        []Specimen
	Notes            []string
	Conclusion       string
}

// ValueKind says which fields of an Observation's value are set.
type ValueKind string

// The value kinds.
const (
	ValueQuantity ValueKind = "quantity" // Number (and Comparator, Unit)
	ValueRange    ValueKind = "range"    // Number to Number2 (HL7 SN with a separator)
	ValueRatio    ValueKind = "ratio"    // Number to Number2 as a ratio, such as a 1:128 titer
	ValueCoded    ValueKind = "coded"    // Coded
	ValueText     ValueKind = "text"     // Text
	// ValueNone is an observation without a value: a grouping observation
	// with members, or one whose result is only its Flags (a susceptibility
	// reported as S, I or R) or a reason the value is absent (in Text).
	ValueNone ValueKind = "none"
)

// Observation is one result value.
type Observation struct {
	// Key is unique within the report: the FHIR Observation id, or the
	// HL7 OBX set ID with its sub ID.
	Key    string
	Code   Code
	Status Status
	Kind   ValueKind
	// Text is the value as text for ValueText, and as sent for numbers,
	// comparator included ("25", "<=2", "1-5", "1:128"); for ValueCoded it
	// is the sender's own text for the code.
	Text       string
	Number     float64
	Number2    float64
	Comparator string // "", "<", "<=", ">", ">="
	Unit       string
	Coded      Code
	// ReferenceRange is the range as the lab wrote it; Low and High are
	// its bounds when it has numeric ones.
	ReferenceRange string
	Low, High      *float64
	// Flags are the interpretation codes as sent (HL7 table 0078, which
	// FHIR's v3 ObservationInterpretation shares): H, L, HH, LL, A, AA, N...
	Flags       []string
	EffectiveAt time.Time
	Notes       []string
	// Members are the keys of observations grouped under this one
	// (FHIR hasMember).
	Members []string
}

// Specimen is a specimen the results were measured on.
type Specimen struct {
	ID          string
	Type        Code
	CollectedAt time.Time
}

// Severity is how urgently the ordering doctor should hear of a result.
type Severity string

// The severities, least urgent first.
const (
	SeverityNormal   Severity = "normal"
	SeverityAbnormal Severity = "abnormal"
	SeverityCritical Severity = "critical"
)

// Severity reads the observation's flags: HH, LL, AA, "<" and ">" (off
// scale) are critical; any other flag but N is abnormal. That includes the
// susceptibility codes S, I and R of a culture's antibiotic panel: R and I
// rightly, S (susceptible) only because the rule is kept simple and on the
// side of showing more.
func (o Observation) Severity() Severity {
	worst := SeverityNormal
	for _, f := range o.Flags {
		switch f {
		case "HH", "LL", "AA", "<", ">":
			return SeverityCritical
		case "", "N":
		default:
			worst = SeverityAbnormal
		}
	}
	return worst
}

// Severity is the worst severity of the report's observations.
func (r Report) Severity() Severity {
	worst := SeverityNormal
	for _, o := range r.Observations {
		switch o.Severity() {
		case SeverityCritical:
			return SeverityCritical
		case SeverityAbnormal:
			worst = SeverityAbnormal
		}
	}
	return worst
}
