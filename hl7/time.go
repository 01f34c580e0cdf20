package hl7

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DateTime is an HL7 DTM/TS value: YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ].
type DateTime struct {
	// Raw is the value as sent; empty when the field was empty.
	Raw string
	// Time is the instant. Without an offset in the message it is read as
	// UTC and HasZone is false: the caller must apply the sender's zone.
	Time    time.Time
	HasZone bool
	// Digits is how many date-time digits were sent (4 = year only,
	// 8 = day, 12 = minute, 14 = second), so a day is not mistaken for
	// midnight.
	Digits int
}

// IsZero reports whether no time was sent.
func (t DateTime) IsZero() bool { return t.Raw == "" }

// ParseDateTime reads an HL7 date/time value.
func ParseDateTime(s string) (DateTime, error) {
	dt := DateTime{Raw: s}
	if s == "" {
		return dt, nil
	}
	body, zone := s, ""
	if i := strings.IndexAny(s, "+-"); i >= 0 {
		body, zone = s[:i], s[i:]
	}
	frac := ""
	if i := strings.IndexByte(body, '.'); i >= 0 {
		body, frac = body[:i], body[i+1:]
		if len(body) != 14 || frac == "" || len(frac) > 4 || !digits(frac) {
			return dt, fmt.Errorf("fraction of a second needs all 14 date-time digits and 1 to 4 digits")
		}
	}
	switch len(body) {
	case 4, 6, 8, 10, 12, 14:
	default:
		return dt, fmt.Errorf("date/time has %d digits, want 4, 6, 8, 10, 12 or 14", len(body))
	}
	if !digits(body) {
		return dt, fmt.Errorf("date/time holds a non-digit")
	}
	dt.Digits = len(body)
	full := body + "00000101000000"[len(body):]
	num := func(a, b int) int { v, _ := strconv.Atoi(full[a:b]); return v }
	y, mo, d, h, mi, se := num(0, 4), num(4, 6), num(6, 8), num(8, 10), num(10, 12), num(12, 14)
	if len(body) <= 4 {
		mo = 1
	}
	if len(body) <= 6 {
		d = 1
	}
	ns := 0
	if frac != "" {
		f, _ := strconv.Atoi((frac + "000000000")[:9])
		ns = f
	}
	loc := time.UTC
	if zone != "" {
		if len(zone) != 5 || !digits(zone[1:]) {
			return dt, fmt.Errorf("time zone offset must be +HHMM or -HHMM")
		}
		zh, _ := strconv.Atoi(zone[1:3])
		zm, _ := strconv.Atoi(zone[3:5])
		if zh > 14 || zm > 59 {
			return dt, fmt.Errorf("time zone offset out of range")
		}
		off := zh*3600 + zm*60
		if zone[0] == '-' {
			off = -off
		}
		loc = time.FixedZone(zone, off)
		dt.HasZone = true
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, ns, loc)
	if t.Year() != y || int(t.Month()) != mo || t.Day() != d || t.Hour() != h || t.Minute() != mi || t.Second() != se {
		return dt, fmt.Errorf("date/time is not a calendar date and time")
	}
	dt.Time = t
	return dt, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// timeField reads the first component of field n of s as a DateTime.
func timeField(s *Segment, n int) (DateTime, error) {
	v := s.Field(n).Comp(1)
	t, err := ParseDateTime(v)
	if err != nil {
		return DateTime{}, errorf(s.Name, n, s.Line, "%v", err)
	}
	return t, nil
}
