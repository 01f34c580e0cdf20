package labs

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/carebook/carebook/hl7"
)

// Decode reads a raw message in its format into the model. Its errors are
// either a rejection (Rejection says so and gives the reason for the lab)
// or a bug.
func Decode(format Format, raw []byte) (Message, error) {
	var m Message
	var err error
	switch format {
	case FormatHL7v2:
		var o hl7.ORU
		if o, err = hl7.ParseORU(raw); err != nil {
			return Message{}, err
		}
		m, err = FromORU(o)
	case FormatFHIR:
		m, err = ParseFHIR(raw)
	default:
		return Message{}, fmt.Errorf("labs: unknown format %q", format)
	}
	if err != nil {
		return Message{}, err
	}
	if where := badText(reflect.ValueOf(m), "message"); where != "" {
		return Message{}, invalidf("%s: text is not UTF-8 or holds a NUL character (a character set other than UTF-8 or ASCII in MSH-18, or a \\X..\\ escape of such bytes); Carebook stores text as UTF-8 only", where)
	}
	return m, nil
}

// badText finds the first string in v that is not valid UTF-8 or holds NUL
// (which no database column can store), and names its place in the model
// (such as "message.Reports[0].Observations[2].Text"); "" when all text is
// sound.
func badText(v reflect.Value, path string) string {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return path
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if w := badText(v.Field(i), path+"."+v.Type().Field(i).Name); w != "" {
				return w
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if w := badText(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); w != "" {
				return w
			}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			return badText(v.Elem(), path)
		}
	}
	return ""
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
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	if json.Unmarshal(raw, &top) != nil {
		return ""
	}
	// Only what intake takes is recorded: another resource type is not a
	// lab message and does not use up an ID.
	if top.ResourceType != "Bundle" && top.ResourceType != "DiagnosticReport" {
		return ""
	}
	return top.ID
}
