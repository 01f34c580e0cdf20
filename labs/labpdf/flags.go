package labpdf

import "strings"

// Severity is how a row is marked on the page.
type Severity int

// The severities, least urgent first.
const (
	// Normal rows carry no marker.
	Normal Severity = iota
	// Abnormal rows are set in bold with a "!" in the marker column.
	Abnormal
	// Critical rows are set in bold with "!!" in the marker column, and
	// in dark red where colour prints.
	Critical
)

// flagWords are the words shown for interpretation codes: HL7 v2 table
// 0078, which FHIR's v3 ObservationInterpretation shares. A code not listed
// is shown as sent.
var flagWords = map[string]string{
	"N":   "Normal",
	"H":   "High",
	"L":   "Low",
	"HH":  "Critical high",
	"LL":  "Critical low",
	"A":   "Abnormal",
	"AA":  "Critical abnormal",
	"HU":  "Very high",
	"H>":  "Very high",
	"LU":  "Very low",
	"L<":  "Very low",
	">":   "Above measurable range",
	"<":   "Below measurable range",
	"U":   "Significant rise",
	"D":   "Significant fall",
	"B":   "Better",
	"W":   "Worse",
	"POS": "Positive",
	"NEG": "Negative",
	"DET": "Detected",
	"ND":  "Not detected",
	"IND": "Indeterminate",
	"E":   "Equivocal",
	"RR":  "Reactive",
	"WR":  "Weakly reactive",
	"NR":  "Non-reactive",
	"S":   "Susceptible",
	"R":   "Resistant",
	"I":   "Intermediate",
	"MS":  "Moderately susceptible",
	"VS":  "Very susceptible",
	"SDD": "Susceptible, dose dependent",
	"EX":  "Outside threshold",
	"HX":  "Above high threshold",
	"LX":  "Below low threshold",
	"CAR": "Carrier",
}

// FlagWord is the word shown for an interpretation code: "High" for H,
// "Critical low" for LL, and so on. A code it does not know comes back as
// sent, trimmed; a blank code comes back empty.
func FlagWord(code string) string {
	code = strings.TrimSpace(code)
	if w, ok := flagWords[code]; ok {
		return w
	}
	return code
}

// FlagSeverity is how urgent a row with these interpretation codes is. It
// applies the same rule as labs.Observation.Severity, so the patient's PDF
// marks the results the doctor was alerted to: HH, LL, AA, "<" and ">" are
// critical; any other code but N is abnormal. Codes are trimmed of spaces
// first, so " HH" is critical here too.
func FlagSeverity(codes []string) Severity {
	worst := Normal
	for _, c := range codes {
		switch strings.TrimSpace(c) {
		case "HH", "LL", "AA", "<", ">":
			return Critical
		case "", "N":
		default:
			worst = Abnormal
		}
	}
	return worst
}

// flagText joins the words for codes, skipping blanks and repeats.
func flagText(codes []string) string {
	var words []string
	for _, c := range codes {
		w := FlagWord(c)
		if w == "" {
			continue
		}
		dup := false
		for _, have := range words {
			if have == w {
				dup = true
				break
			}
		}
		if !dup {
			words = append(words, w)
		}
	}
	return strings.Join(words, ", ")
}

// marker is what the marker column shows for a severity.
func (s Severity) marker() string {
	switch s {
	case Critical:
		return "!!"
	case Abnormal:
		return "!"
	}
	return ""
}
