package labs

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/carebook/carebook/hl7"
)

// Decode reads a raw message in its format into the model. Its errors are
// either a rejection (Rejection says so and gives the reason for the lab)
// or a bug.
func Decode(format Format, raw []byte) (Message, error) {
	switch format {
	case FormatHL7v2:
		o, err := hl7.ParseORU(raw)
		if err != nil {
			return Message{}, err
		}
		return FromORU(o)
	case FormatFHIR:
		return ParseFHIR(raw)
	}
	return Message{}, fmt.Errorf("labs: unknown format %q", format)
}

// Rejection reports whether err means the message cannot be trusted, and
// if so the reason: it names the segment and field, or the FHIR element
// path, and never quotes a value, so it is safe to store, log and send
// back to the lab.
func Rejection(err error) (string, bool) {
	var pe *hl7.ParseError
	if errors.As(err, &pe) {
		return pe.Reason, true
	}
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Reason, true
	}
	return "", false
}

// FHIRResourceID reads the top-level id of a FHIR resource that ParseFHIR
// refused, so that the refusal can still be recorded once per resource; ""
// when there is none.
func FHIRResourceID(raw []byte) string {
	var top struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &top) != nil {
		return ""
	}
	return top.ID
}
