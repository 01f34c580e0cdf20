package labs

import (
	"strconv"
	"strings"
)

// ParseReferenceRange reads the numeric bounds of a reference range written
// as text, as in HL7 OBX-7 or FHIR referenceRange.text. It understands
//
//	a-b, a - b   low a, high b (a must not exceed b)
//	<b, <=b      high b
//	>a, >=a      low a
//
// with optional spaces after a comparator and an optional trailing unit
// equal to unit (compared without regard to case, after a space), since a
// range written in the value's own unit bounds that value. Any other text
// around the numbers, a different unit, or a range it cannot read gives no
// bounds: a range read wrongly would mark results normal or abnormal
// wrongly, while no bounds leaves the range text for a person to read.
//
// Whether a bound is inclusive is not kept: the lab's own flags (OBX-8,
// interpretation) say whether a result is abnormal, and Low and High only
// serve to draw the range.
func ParseReferenceRange(text, unit string) (low, high *float64) {
	s := strings.TrimSpace(text)
	if u := strings.TrimSpace(unit); u != "" && len(s) > len(u) {
		tail := s[len(s)-len(u):]
		before := s[len(s)-len(u)-1]
		if strings.EqualFold(tail, u) && (before == ' ' || before == '\t') {
			s = strings.TrimSpace(s[:len(s)-len(u)])
		}
	}
	if s == "" {
		return nil, nil
	}
	for _, op := range []string{"<=", ">=", "<", ">"} {
		if rest, ok := strings.CutPrefix(s, op); ok {
			n, ok := rangeNumber(strings.TrimSpace(rest))
			if !ok {
				return nil, nil
			}
			if op[0] == '<' {
				return nil, &n
			}
			return &n, nil
		}
	}
	a, rest, ok := leadingNumber(s)
	if !ok {
		return nil, nil
	}
	rest = strings.TrimSpace(rest)
	rest, ok = strings.CutPrefix(rest, "-")
	if !ok {
		return nil, nil
	}
	b, ok := rangeNumber(strings.TrimSpace(rest))
	if !ok || a > b {
		return nil, nil
	}
	return &a, &b
}

// leadingNumber reads a number at the start of s: an optional sign, then
// digits with at most one decimal point. It returns the rest of s.
func leadingNumber(s string) (float64, string, bool) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits, dots := 0, 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			dots++
			if dots > 1 {
				return 0, "", false
			}
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		digits++
	}
	if digits == 0 {
		return 0, "", false
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, "", false
	}
	return n, s[i:], true
}

// rangeNumber reads s as exactly one number.
func rangeNumber(s string) (float64, bool) {
	n, rest, ok := leadingNumber(s)
	return n, ok && rest == ""
}
