package labs

import "fmt"

// InvalidError is returned for a message that cannot be mapped into the
// model with confidence: a required element missing, a code Carebook does
// not know, a reference that leads nowhere. Reason names the place at
// fault (an HL7 segment and field such as "OBR-25 (segment 5)", or a FHIR
// element path such as "Bundle.entry[3].resource.valueQuantity.comparator")
// and never quotes a value from the message, so the error is safe to log
// and to send back to the lab.
type InvalidError struct {
	Reason string
}

// Error implements error.
func (e *InvalidError) Error() string { return "labs: " + e.Reason }

func invalidf(format string, args ...any) *InvalidError {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}
