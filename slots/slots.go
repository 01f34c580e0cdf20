// Package slots computes the bookable appointment starts of one practitioner
// from weekly rules, exceptions and existing bookings.
//
// It is pure: no I/O and no reading of the system clock (the caller passes
// Now), so the same Request always gives the same answer and workflow code
// can call it without breaking determinism.
//
// Rules are written in wall-clock time of the facility's zone and follow its
// daylight-saving changes. Two kinds of wall time need a choice, and this
// package makes the same one in every zone (time.Date alone does not: New
// York and Berlin come out differently):
//
//   - A wall time inside a spring-forward gap never happens; it is read as
//     the instant the clocks resume. A 02:00–04:00 window on the night New
//     York skips 02:00–03:00 is therefore one hour long, 03:00–04:00 EDT.
//   - A wall time repeated by a fall-back change is read as its first
//     occurrence, so a 01:00–03:00 window on that night is three hours long.
//
// Availability that runs unbroken across more than one midnight (24-hour
// rules on consecutive days) is laid on a grid from the first window Free
// expands, so with a Step that does not divide a day its grid can depend on
// From, and Check grids it as Free would for the single date of the start.
package slots

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// The errors of Free and Check. Callers tell them apart with errors.Is, and
// each maps to one message the client can act on.
var (
	// ErrInvalid is wrapped, with the reason, for a Request that cannot be
	// evaluated: a caller bug or bad input, never a busy calendar.
	ErrInvalid = errors.New("slots: invalid request")
	// ErrOffHours means no availability window holds the whole visit.
	ErrOffHours = errors.New("slots: start is outside the practitioner's hours")
	// ErrOffGrid means the visit fits the hours but does not start on a
	// Step from its window's start.
	ErrOffGrid = errors.New("slots: start is not on the slot grid")
	// ErrTooSoon means start is before Now + MinNotice.
	ErrTooSoon = errors.New("slots: start is in the past or inside the minimum notice")
	// ErrTooFar means start is at or after Now + Horizon.
	ErrTooFar = errors.New("slots: start is beyond the booking horizon")
	// ErrBusy means the visit hits time off or its blocked range hits a
	// booking.
	ErrBusy = errors.New("slots: start overlaps another appointment or time off")
)

// MaxDays is the longest From–To range Free accepts: a quarter of a year
// covers any calendar view, and the bound keeps one request from making the
// server expand years of rules.
const MaxDays = 92

// Clock is a wall-clock time of day in minutes since midnight, 0 to 1440.
// 1440 is 24:00 so that a window can end at midnight without wrapping.
type Clock int

// EndOfDay is 24:00.
const EndOfDay Clock = 24 * 60

// ParseClock parses "HH:MM", two digits each, from "00:00" to "24:00".
func ParseClock(s string) (Clock, error) {
	h, okH := twoDigits(s, 0)
	m, okM := twoDigits(s, 3)
	c := Clock(h*60 + m)
	if len(s) != 5 || s[2] != ':' || !okH || !okM || m > 59 || c > EndOfDay {
		return 0, fmt.Errorf("slots: clock %q is not HH:MM between 00:00 and 24:00", s)
	}
	return c, nil
}

// twoDigits reads the decimal number in s[i:i+2].
func twoDigits(s string, i int) (int, bool) {
	if len(s) < i+2 || s[i] < '0' || s[i] > '9' || s[i+1] < '0' || s[i+1] > '9' {
		return 0, false
	}
	return int(s[i]-'0')*10 + int(s[i+1]-'0'), true
}

// String formats c as "HH:MM".
func (c Clock) String() string {
	return fmt.Sprintf("%02d:%02d", c/60, c%60)
}

// Date is a civil date with no zone attached; rules and request ranges are
// in the facility's dates, which an instant alone cannot name.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("slots: date %q is not YYYY-MM-DD: %w", s, err)
	}
	return DateOf(t), nil
}

// DateOf returns the civil date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// String formats d as "YYYY-MM-DD".
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// utc is d's midnight in UTC, where every day is 24 hours long, so date
// arithmetic on it never meets a DST change.
func (d Date) utc() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

// AddDays returns the date n days after d (before, if n is negative).
func (d Date) AddDays(n int) Date {
	return DateOf(d.utc().AddDate(0, 0, n))
}

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday {
	return d.utc().Weekday()
}

// Before reports whether d is earlier than o.
func (d Date) Before(o Date) bool {
	return d.utc().Before(o.utc())
}

// IsZero reports whether d is the zero Date, which Rule uses for "unbounded".
func (d Date) IsZero() bool {
	return d == Date{}
}

// In returns the instant at wall clock c on d in loc; 24:00 is the next
// day's 00:00. A time in a spring-forward gap becomes the instant the clocks
// resume, and a repeated fall-back time its first occurrence (see the
// package documentation).
func (d Date) In(loc *time.Location, c Clock) time.Time {
	t := time.Date(d.Year, d.Month, d.Day, 0, int(c), 0, 0, loc)
	// The wall time we asked for, read as if it were UTC, so it can be
	// compared with t's wall time and shifted by a candidate offset.
	want := time.Date(d.Year, d.Month, d.Day, 0, int(c), 0, 0, time.UTC)
	start, end := t.ZoneBounds()
	if !start.IsZero() {
		// If the zone period before t also shows this wall time, t is the
		// second occurrence of a fall-back hour: take the earlier one.
		_, off := start.Add(-time.Second).Zone()
		if first := want.Add(-time.Duration(off) * time.Second); first.Before(start) {
			return first
		}
	}
	got := wallAsUTC(t)
	switch {
	case got.Equal(want):
		return t
	case got.After(want): // in the gap, and time.Date moved forward past it
		return start
	default: // in the gap, and time.Date moved back before it
		return end
	}
}

// wallAsUTC returns t's wall clock reading as a UTC instant.
func wallAsUTC(t time.Time) time.Time {
	y, m, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, m, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// Rule is a weekly availability window, or a break, in the facility's zone.
// If End <= Start the window runs past midnight into the next day (20:00–02:00),
// so Start == End is a full 24 hours. End may be 24:00. ValidFrom and
// ValidUntil bound the dates the rule applies on, inclusive; a zero Date
// leaves that side unbounded. A window that crosses midnight belongs to the
// date it starts on, for Weekday and for the validity dates.
type Rule struct {
	Weekday               time.Weekday
	Start, End            Clock
	Break                 bool // removes time from the windows instead of adding it
	ValidFrom, ValidUntil Date
}

// appliesOn reports whether the rule opens a window on date d.
func (r Rule) appliesOn(d Date) bool {
	return d.Weekday() == r.Weekday &&
		(r.ValidFrom.IsZero() || !d.Before(r.ValidFrom)) &&
		(r.ValidUntil.IsZero() || !r.ValidUntil.Before(d))
}

// on returns the rule's window on date d.
func (r Rule) on(loc *time.Location, d Date) Interval {
	endDay := d
	if r.End <= r.Start {
		endDay = d.AddDays(1)
	}
	return Interval{d.In(loc, r.Start), endDay.In(loc, r.End)}
}

// Interval is the half-open instant range [Start, End).
type Interval struct{ Start, End time.Time }

// Overlaps reports whether i and o share an instant. Ranges that only touch
// do not overlap, and an empty range overlaps nothing.
func (i Interval) Overlaps(o Interval) bool {
	return i.Start.Before(i.End) && o.Start.Before(o.End) &&
		i.Start.Before(o.End) && o.Start.Before(i.End)
}

// Request is everything needed to compute one practitioner's free slots.
type Request struct {
	Location *time.Location // facility's IANA zone
	Rules    []Rule
	TimeOff  []Interval // exceptions that remove time (vacation, sick day)
	Extra    []Interval // exceptions that add availability (extra hours)
	Busy     []Interval // blocked ranges of active appointments, buffers included
	Duration time.Duration
	// Step is the grid: slots start at a window's start plus a multiple of
	// Step. Zero means Duration.
	Step                      time.Duration
	BufferBefore, BufferAfter time.Duration
	MinNotice                 time.Duration // earliest start is Now + MinNotice
	Horizon                   time.Duration // start must be before Now + Horizon; 0 is unlimited
	Now                       time.Time
	From, To                  Date // facility-local dates; From inclusive, To exclusive
}

// Slot is one bookable start and the end of its visit, in UTC.
type Slot struct{ Start, End time.Time }

// Blocked returns the range a visit starting at start keeps from other
// bookings: the visit widened by the buffers on each side.
func (r Request) Blocked(start time.Time) Interval {
	return Interval{start.Add(-r.BufferBefore), start.Add(r.Duration + r.BufferAfter)}
}

// step returns the grid spacing.
func (r Request) step() time.Duration {
	if r.Step == 0 {
		return r.Duration
	}
	return r.Step
}

// validate rejects requests that would make no sense or, with a tiny grid,
// make Free loop for a very long time.
func (r Request) validate() error {
	switch {
	case r.Location == nil:
		return fmt.Errorf("%w: no location", ErrInvalid)
	case r.Duration < time.Minute:
		return fmt.Errorf("%w: duration %v is under a minute", ErrInvalid, r.Duration)
	case r.Step < 0 || (r.Step > 0 && r.Step < time.Minute):
		return fmt.Errorf("%w: step %v is negative or under a minute", ErrInvalid, r.Step)
	case r.BufferBefore < 0 || r.BufferAfter < 0 || r.MinNotice < 0 || r.Horizon < 0:
		return fmt.Errorf("%w: negative buffer, notice or horizon", ErrInvalid)
	}
	for _, rule := range r.Rules {
		if rule.Weekday < time.Sunday || rule.Weekday > time.Saturday ||
			rule.Start < 0 || rule.Start >= EndOfDay || rule.End < 0 || rule.End > EndOfDay {
			return fmt.Errorf("%w: rule %v %v–%v is out of range", ErrInvalid, rule.Weekday, rule.Start, rule.End)
		}
	}
	return nil
}

// Free returns every free slot that starts on the facility-local dates
// [From, To), sorted by Start, without duplicates. It returns an error
// wrapping ErrInvalid for a bad request or a range over MaxDays.
func Free(r Request) ([]Slot, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	if r.To.Before(r.From) || r.From.AddDays(MaxDays).Before(r.To) {
		return nil, fmt.Errorf("%w: range %v to %v is reversed or over %d days", ErrInvalid, r.From, r.To, MaxDays)
	}
	lo, hi := r.From.In(r.Location, 0), r.To.In(r.Location, 0)
	step := r.step()
	timeOff, busy := merge(r.TimeOff), merge(r.Busy)
	var out []Slot
	// The day before From is expanded too: its rules may cross midnight.
	for _, w := range r.windows(r.From.AddDays(-1), r.To) {
		s := w.Start
		if s.Before(lo) {
			// Jump to the first grid point at or after lo rather than
			// walking a long Extra interval one step at a time.
			s = s.Add((lo.Sub(s) + step - 1) / step * step)
		}
		for ; s.Before(hi) && !s.Add(r.Duration).After(w.End); s = s.Add(step) {
			if r.timing(s) == nil && !r.conflicts(s, timeOff, busy) {
				out = append(out, Slot{s.UTC(), s.Add(r.Duration).UTC()})
			}
		}
	}
	return out, nil
}

// Check reports whether start is exactly one of the free slots of r, looking
// at the windows of start's own facility-local date and the day before,
// whatever From and To say. It returns nil or, tested in this order,
// ErrInvalid (wrapped), ErrTooSoon, ErrTooFar, ErrOffHours, ErrOffGrid or
// ErrBusy.
func Check(r Request, start time.Time) error {
	if err := r.validate(); err != nil {
		return err
	}
	if err := r.timing(start); err != nil {
		return err
	}
	day := DateOf(start.In(r.Location))
	ws := r.windows(day.AddDays(-1), day.AddDays(1))
	i := firstEndingAfter(ws, start)
	if i == len(ws) || start.Before(ws[i].Start) || start.Add(r.Duration).After(ws[i].End) {
		return ErrOffHours
	}
	if start.Sub(ws[i].Start)%r.step() != 0 {
		return ErrOffGrid
	}
	if r.conflicts(start, merge(r.TimeOff), merge(r.Busy)) {
		return ErrBusy
	}
	return nil
}

// timing checks start against the minimum notice and the horizon.
func (r Request) timing(start time.Time) error {
	if start.Before(r.Now.Add(r.MinNotice)) {
		return ErrTooSoon
	}
	if r.Horizon > 0 && !start.Before(r.Now.Add(r.Horizon)) {
		return ErrTooFar
	}
	return nil
}

// conflicts reports whether the visit at start hits time off, or its
// blocked range hits a booking. Both lists must be merged.
func (r Request) conflicts(start time.Time, timeOff, busy []Interval) bool {
	return overlapsAny(timeOff, Interval{start, start.Add(r.Duration)}) ||
		overlapsAny(busy, r.Blocked(start))
}

// windows returns the availability from rules that start on the dates
// [from, to), minus breaks, plus every Extra interval, as sorted disjoint
// runs. Runs that touch are joined, so a visit may span an extra hour and
// the regular hours next to it.
func (r Request) windows(from, to Date) []Interval {
	// Breaks start a day earlier: one crossing midnight can cut into from.
	open := r.expand(from, to, false)
	open = subtract(open, r.expand(from.AddDays(-1), to, true))
	return merge(append(open, r.Extra...))
}

// expand returns the windows of the rules with Break == breaks on the dates
// [from, to).
func (r Request) expand(from, to Date, breaks bool) []Interval {
	var out []Interval
	for d := from; d.Before(to); d = d.AddDays(1) {
		for _, rule := range r.Rules {
			if rule.Break == breaks && rule.appliesOn(d) {
				out = append(out, rule.on(r.Location, d))
			}
		}
	}
	return out
}

// subtract returns the parts of ws that no cut covers.
func subtract(ws, cuts []Interval) []Interval {
	for _, c := range cuts {
		var kept []Interval
		for _, w := range ws {
			if !w.Overlaps(c) {
				kept = append(kept, w)
				continue
			}
			if w.Start.Before(c.Start) {
				kept = append(kept, Interval{w.Start, c.Start})
			}
			if c.End.Before(w.End) {
				kept = append(kept, Interval{c.End, w.End})
			}
		}
		ws = kept
	}
	return ws
}

// merge returns in sorted by start with empty ranges dropped and
// overlapping or touching ranges joined.
func merge(in []Interval) []Interval {
	sorted := slices.Clone(in)
	slices.SortFunc(sorted, func(a, b Interval) int { return a.Start.Compare(b.Start) })
	var out []Interval
	for _, w := range sorted {
		if !w.Start.Before(w.End) {
			continue
		}
		if n := len(out); n > 0 && !w.Start.After(out[n-1].End) {
			if w.End.After(out[n-1].End) {
				out[n-1].End = w.End
			}
			continue
		}
		out = append(out, w)
	}
	return out
}

// firstEndingAfter returns the index of the first of the merged intervals
// that ends after t, or len(set). Merged intervals end in increasing order,
// so a binary search finds it.
func firstEndingAfter(set []Interval, t time.Time) int {
	return sort.Search(len(set), func(i int) bool { return set[i].End.After(t) })
}

// overlapsAny reports whether x overlaps one of the merged intervals.
func overlapsAny(set []Interval, x Interval) bool {
	i := firstEndingAfter(set, x.Start)
	return i < len(set) && set[i].Overlaps(x)
}
