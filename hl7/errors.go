package hl7

import "fmt"

// ParseError is returned for a message the parser will not read. It never
// quotes values from the message, so it is safe to log; Reason is written
// for the sending lab, naming the segment and field at fault.
type ParseError struct {
	// Segment is the segment name, such as "OBX"; empty when the segment
	// name itself is unreadable.
	Segment string
	// Field is the 1-based field number, or 0 when the whole segment (or
	// message) is at fault.
	Field int
	// Line is the 1-based position of the segment in the message, or 0.
	Line int
	// Reason explains the rejection and starts with the segment and field,
	// as in "OBX-5 (segment 6): ...".
	Reason string
}

// Error implements error.
func (e *ParseError) Error() string { return "hl7: " + e.Reason }

func errorf(seg string, field, line int, format string, args ...any) *ParseError {
	where := seg
	if where == "" {
		where = "segment"
	}
	if field > 0 {
		where = fmt.Sprintf("%s-%d", where, field)
	}
	if line > 0 {
		where = fmt.Sprintf("%s (segment %d)", where, line)
	}
	return &ParseError{
		Segment: seg,
		Field:   field,
		Line:    line,
		Reason:  where + ": " + fmt.Sprintf(format, args...),
	}
}

// escapeError is the cause of an escape failure before the caller places
// it at a segment and field.
type escapeError struct{ msg string }

func (e *escapeError) Error() string { return e.msg }
