package slots

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func mustDate(t *testing.T, s string) Date {
	t.Helper()
	d, err := ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func clock(t *testing.T, s string) Clock {
	t.Helper()
	c, err := ParseClock(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rule(t *testing.T, day time.Weekday, start, end string) Rule {
	t.Helper()
	return Rule{Weekday: day, Start: clock(t, start), End: clock(t, end)}
}

// starts renders slot starts as RFC 3339 strings and checks each slot is in
// UTC and lasts d.
func starts(t *testing.T, got []Slot, d time.Duration) []string {
	t.Helper()
	var out []string
	for _, s := range got {
		if s.Start.Location() != time.UTC || s.End.Location() != time.UTC {
			t.Errorf("slot %v is not in UTC", s)
		}
		if s.End.Sub(s.Start) != d {
			t.Errorf("slot %v lasts %v, want %v", s, s.End.Sub(s.Start), d)
		}
		out = append(out, s.Start.Format(time.RFC3339))
	}
	return out
}

// base returns an hour-long-visit request for dates [from, to) whose Now is
// long before them, so notice and horizon play no part unless a test says.
func base(t *testing.T, loc *time.Location, from, to string, rules ...Rule) Request {
	return Request{
		Location: loc,
		Rules:    rules,
		Duration: time.Hour,
		Now:      at(t, "2025-01-01T00:00:00Z"),
		From:     mustDate(t, from),
		To:       mustDate(t, to),
	}
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Clock
		wantErr bool
	}{
		{name: "morning", in: "09:30", want: 570},
		{name: "midnight", in: "00:00", want: 0},
		{name: "end of day", in: "24:00", want: 1440},
		{name: "past end of day", in: "24:01", wantErr: true},
		{name: "hour 25", in: "25:00", wantErr: true},
		{name: "minute 60", in: "10:60", wantErr: true},
		{name: "short", in: "9:3", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "seconds", in: "09:30:00", wantErr: true},
		{name: "sign", in: "-1:00", wantErr: true},
		{name: "separator", in: "09.30", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClock(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseClock(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err == nil && got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestDate(t *testing.T) {
	if _, err := ParseDate("2026-02-30"); err == nil {
		t.Error("ParseDate accepted 2026-02-30")
	}
	if _, err := ParseDate("2026-3-8"); err == nil {
		t.Error("ParseDate accepted 2026-3-8")
	}
	d := mustDate(t, "2026-12-31")
	if got := d.AddDays(1).String(); got != "2027-01-01" {
		t.Errorf("AddDays(1) = %s", got)
	}
	if got := d.AddDays(-365).String(); got != "2025-12-31" {
		t.Errorf("AddDays(-365) = %s", got)
	}
	if d.Weekday() != time.Thursday || !d.AddDays(-1).Before(d) || d.Before(d) {
		t.Errorf("Weekday or Before wrong for %s", d)
	}
	ist := mustLoc(t, "Europe/Istanbul")
	if got := d.In(ist, EndOfDay); !got.Equal(at(t, "2027-01-01T00:00:00+03:00")) {
		t.Errorf("24:00 = %v, want next day's midnight", got)
	}
	if got := DateOf(at(t, "2026-03-02T23:30:00-05:00")); got.String() != "2026-03-02" {
		t.Errorf("DateOf uses UTC, not t's location: %s", got)
	}
}

func TestFreeTimeZones(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	berlin := mustLoc(t, "Europe/Berlin")
	ist := mustLoc(t, "Europe/Istanbul")
	tests := []struct {
		name     string
		req      Request
		duration time.Duration
		want     []string
	}{
		{
			name: "new york spring forward afternoon is EDT",
			req:  base(t, ny, "2026-03-08", "2026-03-09", rule(t, time.Sunday, "13:00", "18:00")),
			want: []string{"2026-03-08T17:00:00Z", "2026-03-08T18:00:00Z", "2026-03-08T19:00:00Z", "2026-03-08T20:00:00Z", "2026-03-08T21:00:00Z"},
		},
		{
			name: "new york fall back afternoon is EST",
			req:  base(t, ny, "2026-11-01", "2026-11-02", rule(t, time.Sunday, "13:00", "18:00")),
			want: []string{"2026-11-01T18:00:00Z", "2026-11-01T19:00:00Z", "2026-11-01T20:00:00Z", "2026-11-01T21:00:00Z", "2026-11-01T22:00:00Z"},
		},
		{
			// 02:00 never happens; the window opens when clocks resume at
			// 03:00 EDT (07:00Z) and keeps its 04:00 EDT end.
			name:     "new york window starting in the spring forward gap",
			req:      base(t, ny, "2026-03-08", "2026-03-09", rule(t, time.Sunday, "02:00", "04:00")),
			duration: 30 * time.Minute,
			want:     []string{"2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"},
		},
		{
			// 01:00 is the first (EDT) one, 03:00 is EST: three real hours.
			name: "new york window starting in the repeated hour",
			req:  base(t, ny, "2026-11-01", "2026-11-02", rule(t, time.Sunday, "01:00", "03:00")),
			want: []string{"2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"},
		},
		{
			name: "istanbul summer is +03",
			req:  base(t, ist, "2026-07-15", "2026-07-16", rule(t, time.Wednesday, "09:00", "12:00")),
			want: []string{"2026-07-15T06:00:00Z", "2026-07-15T07:00:00Z", "2026-07-15T08:00:00Z"},
		},
		{
			name: "istanbul winter is +03 too",
			req:  base(t, ist, "2026-01-14", "2026-01-15", rule(t, time.Wednesday, "09:00", "12:00")),
			want: []string{"2026-01-14T06:00:00Z", "2026-01-14T07:00:00Z", "2026-01-14T08:00:00Z"},
		},
		{
			name: "berlin across spring forward",
			req: base(t, berlin, "2026-03-28", "2026-03-30",
				rule(t, time.Saturday, "09:00", "11:00"), rule(t, time.Sunday, "09:00", "11:00")),
			want: []string{"2026-03-28T08:00:00Z", "2026-03-28T09:00:00Z", "2026-03-29T07:00:00Z", "2026-03-29T08:00:00Z"},
		},
		{
			name: "berlin across fall back",
			req: base(t, berlin, "2026-10-24", "2026-10-26",
				rule(t, time.Saturday, "09:00", "11:00"), rule(t, time.Sunday, "09:00", "11:00")),
			want: []string{"2026-10-24T07:00:00Z", "2026-10-24T08:00:00Z", "2026-10-25T08:00:00Z", "2026-10-25T09:00:00Z"},
		},
		{
			name: "berlin window starting in the spring forward gap",
			req:  base(t, berlin, "2026-03-29", "2026-03-30", rule(t, time.Sunday, "02:00", "04:00")),
			want: []string{"2026-03-29T01:00:00Z"},
		},
		{
			// time.Date alone would read 02:30 as 03:30, leaving no window.
			name:     "berlin window starting inside the spring forward gap",
			req:      base(t, berlin, "2026-03-29", "2026-03-30", rule(t, time.Sunday, "02:30", "04:00")),
			duration: 30 * time.Minute,
			want:     []string{"2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"},
		},
		{
			// time.Date alone picks the second 02:00 in Berlin; the rule
			// must mean the first, as it does in New York.
			name: "berlin window starting in the repeated hour",
			req:  base(t, berlin, "2026-10-25", "2026-10-26", rule(t, time.Sunday, "02:00", "03:00")),
			want: []string{"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.duration != 0 {
				tt.req.Duration = tt.duration
			}
			got, err := Free(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if s := starts(t, got, tt.req.Duration); !slices.Equal(s, tt.want) {
				t.Errorf("starts = %v\nwant     %v", s, tt.want)
			}
		})
	}
}

func TestFreeMidnight(t *testing.T) {
	ist := mustLoc(t, "Europe/Istanbul") // +03:00, so local midnight is 21:00Z
	night := rule(t, time.Monday, "20:00", "02:00")
	tests := []struct {
		name     string
		req      Request
		duration time.Duration
		want     []string
	}{
		{
			name: "window ending at 24:00",
			req:  base(t, ist, "2026-03-02", "2026-03-04", rule(t, time.Monday, "22:00", "24:00")),
			want: []string{"2026-03-02T19:00:00Z", "2026-03-02T20:00:00Z"},
		},
		{
			name: "window crossing midnight belongs to its start date",
			req:  base(t, ist, "2026-03-02", "2026-03-04", night),
			want: []string{"2026-03-02T17:00:00Z", "2026-03-02T18:00:00Z", "2026-03-02T19:00:00Z",
				"2026-03-02T20:00:00Z", "2026-03-02T21:00:00Z", "2026-03-02T22:00:00Z"},
		},
		{
			name: "from cuts through the night",
			req:  base(t, ist, "2026-03-03", "2026-03-04", night),
			want: []string{"2026-03-02T21:00:00Z", "2026-03-02T22:00:00Z"},
		},
		{
			name: "to cuts through the night",
			req:  base(t, ist, "2026-03-02", "2026-03-03", night),
			want: []string{"2026-03-02T17:00:00Z", "2026-03-02T18:00:00Z", "2026-03-02T19:00:00Z", "2026-03-02T20:00:00Z"},
		},
		{
			name:     "visit spanning midnight",
			req:      base(t, ist, "2026-03-02", "2026-03-04", night),
			duration: 90 * time.Minute,
			want:     []string{"2026-03-02T17:00:00Z", "2026-03-02T18:30:00Z", "2026-03-02T20:00:00Z", "2026-03-02T21:30:00Z"},
		},
		{
			name:     "visit spanning midnight starts the day before from",
			req:      base(t, ist, "2026-03-03", "2026-03-04", night),
			duration: 90 * time.Minute,
			want:     []string{"2026-03-02T21:30:00Z"},
		},
		{
			// A 24-hour on-call window from Monday 01:00, whose start a
			// Sunday break trims to 01:30; its 45-minute grid reaches
			// Tuesday 00:00, not the 00:15 an untrimmed grid would give.
			name: "break from two days back moves the grid of a window reaching into from",
			req: func() Request {
				brk := rule(t, time.Sunday, "23:00", "01:30")
				brk.Break = true
				return base(t, ist, "2026-03-03", "2026-03-04", rule(t, time.Monday, "01:00", "01:00"), brk)
			}(),
			duration: 45 * time.Minute,
			want:     []string{"2026-03-02T21:00:00Z"},
		},
		{
			name: "rule on the weekday before the range only",
			req:  base(t, ist, "2026-03-03", "2026-03-04", rule(t, time.Monday, "09:00", "17:00")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.duration != 0 {
				tt.req.Duration = tt.duration
			}
			got, err := Free(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if s := starts(t, got, tt.req.Duration); !slices.Equal(s, tt.want) {
				t.Errorf("starts = %v\nwant     %v", s, tt.want)
			}
		})
	}
}

func TestFreeExceptions(t *testing.T) {
	// All on Monday 2026-03-02 in UTC so the wanted instants read as the rules.
	mon := func(rules ...Rule) Request { return base(t, time.UTC, "2026-03-02", "2026-03-03", rules...) }
	morning := rule(t, time.Monday, "09:00", "12:00")
	iv := func(from, to string) Interval {
		return Interval{at(t, "2026-03-02T"+from+":00Z"), at(t, "2026-03-02T"+to+":00Z")}
	}
	lunch := rule(t, time.Monday, "11:00", "11:30")
	lunch.Break = true
	tests := []struct {
		name string
		req  Request
		edit func(*Request)
		want []string // times of day on 2026-03-02, UTC
	}{
		{name: "single window holds exactly one visit", req: mon(rule(t, time.Monday, "09:00", "10:00")), want: []string{"09:00"}},
		{name: "window shorter than a visit", req: mon(rule(t, time.Monday, "09:00", "09:45"))},
		{name: "no rule that weekday", req: mon(rule(t, time.Tuesday, "09:00", "12:00"))},
		{name: "plain morning", req: mon(morning), want: []string{"09:00", "10:00", "11:00"}},
		{
			name: "break splits the window and restarts the grid",
			req:  mon(rule(t, time.Monday, "09:00", "13:00"), lunch),
			want: []string{"09:00", "10:00", "11:30"},
		},
		{
			name: "overlapping rules merge into one grid",
			req:  mon(rule(t, time.Monday, "09:00", "11:00"), rule(t, time.Monday, "10:00", "12:00")),
			edit: func(r *Request) { r.Duration = 90 * time.Minute },
			want: []string{"09:00", "10:30"},
		},
		{
			name: "time off drops slots but keeps the grid",
			req:  mon(morning),
			edit: func(r *Request) { r.TimeOff = []Interval{iv("10:15", "10:45")} },
			want: []string{"09:00", "11:00"},
		},
		{
			name: "extra hours on a day without rules",
			req:  mon(),
			edit: func(r *Request) { r.Extra = []Interval{iv("14:00", "16:00")} },
			want: []string{"14:00", "15:00"},
		},
		{
			name: "extra hours next to a rule extend its window",
			req:  mon(rule(t, time.Monday, "09:00", "10:00")),
			edit: func(r *Request) {
				r.Duration = 45 * time.Minute
				r.Extra = []Interval{iv("10:00", "11:00")}
			},
			want: []string{"09:00", "09:45"},
		},
		{
			name: "busy range touching a slot leaves it free",
			req:  mon(morning),
			edit: func(r *Request) { r.Busy = []Interval{iv("10:00", "11:00")} },
			want: []string{"09:00", "11:00"},
		},
		{
			name: "buffer after reaching a busy range drops the slot",
			req:  mon(morning),
			edit: func(r *Request) {
				r.Busy = []Interval{iv("10:00", "11:00")}
				r.BufferAfter = 15 * time.Minute
			},
			want: []string{"11:00"},
		},
		{
			name: "buffer before reaching a busy range drops the slot",
			req:  mon(morning),
			edit: func(r *Request) {
				r.Busy = []Interval{iv("10:00", "11:00")}
				r.BufferBefore = 15 * time.Minute
			},
			want: []string{"09:00"},
		},
		{
			name: "min notice",
			req:  mon(morning),
			edit: func(r *Request) {
				r.Now = at(t, "2026-03-02T08:30:00Z")
				r.MinNotice = time.Hour
			},
			want: []string{"10:00", "11:00"},
		},
		{
			name: "start exactly at the notice is allowed",
			req:  mon(morning),
			edit: func(r *Request) {
				r.Now = at(t, "2026-03-02T09:00:00Z")
			},
			want: []string{"09:00", "10:00", "11:00"},
		},
		{
			name: "horizon excludes a start exactly at its end",
			req:  mon(morning),
			edit: func(r *Request) {
				r.Now = at(t, "2026-03-02T08:00:00Z")
				r.Horizon = 2 * time.Hour
			},
			want: []string{"09:00"},
		},
		{
			name: "step smaller than duration",
			req:  mon(rule(t, time.Monday, "09:00", "11:00")),
			edit: func(r *Request) { r.Step = 30 * time.Minute },
			want: []string{"09:00", "09:30", "10:00"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.edit != nil {
				tt.edit(&tt.req)
			}
			got, err := Free(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, "2026-03-02T"+w+":00Z")
			}
			if s := starts(t, got, tt.req.Duration); !slices.Equal(s, want) {
				t.Errorf("starts = %v\nwant     %v", s, want)
			}
		})
	}
}

func TestFreeValidity(t *testing.T) {
	r := rule(t, time.Monday, "09:00", "10:00")
	r.ValidFrom = mustDate(t, "2026-03-09")
	r.ValidUntil = mustDate(t, "2026-03-16")
	req := base(t, time.UTC, "2026-03-02", "2026-03-24", r) // Mondays 2, 9, 16, 23
	got, err := Free(req)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-03-09T09:00:00Z", "2026-03-16T09:00:00Z"}
	if s := starts(t, got, time.Hour); !slices.Equal(s, want) {
		t.Errorf("starts = %v, want %v", s, want)
	}
}

func TestFreeInvalid(t *testing.T) {
	ok := func() Request {
		return base(t, time.UTC, "2026-03-02", "2026-03-09", rule(t, time.Monday, "09:00", "12:00"))
	}
	tests := []struct {
		name string
		edit func(*Request)
		want error
	}{
		{name: "valid", edit: func(r *Request) {}},
		{name: "empty range", edit: func(r *Request) { r.To = r.From }},
		{name: "longest range", edit: func(r *Request) { r.To = r.From.AddDays(MaxDays) }},
		{name: "range too long", edit: func(r *Request) { r.To = r.From.AddDays(MaxDays + 1) }, want: ErrInvalid},
		{name: "reversed range", edit: func(r *Request) { r.To = r.From.AddDays(-1) }, want: ErrInvalid},
		{name: "nil location", edit: func(r *Request) { r.Location = nil }, want: ErrInvalid},
		{name: "zero duration", edit: func(r *Request) { r.Duration = 0 }, want: ErrInvalid},
		{name: "negative duration", edit: func(r *Request) { r.Duration = -time.Hour }, want: ErrInvalid},
		{name: "negative step", edit: func(r *Request) { r.Step = -time.Minute }, want: ErrInvalid},
		{name: "sub-minute step", edit: func(r *Request) { r.Step = time.Second }, want: ErrInvalid},
		{name: "negative buffer", edit: func(r *Request) { r.BufferAfter = -time.Minute }, want: ErrInvalid},
		{name: "rule past 24:00", edit: func(r *Request) { r.Rules[0].End = 1441 }, want: ErrInvalid},
		{name: "rule starting at 24:00", edit: func(r *Request) { r.Rules[0].Start = EndOfDay }, want: ErrInvalid},
		{name: "bad weekday", edit: func(r *Request) { r.Rules[0].Weekday = 7 }, want: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok()
			tt.edit(&r)
			_, err := Free(r)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Free error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	// Monday 2026-03-02 in New York is EST: 09:00 local is 14:00Z.
	ok := func() Request {
		r := base(t, ny, "2026-03-02", "2026-03-03", rule(t, time.Monday, "09:00", "12:00"))
		r.Busy = []Interval{{at(t, "2026-03-02T16:00:00Z"), at(t, "2026-03-02T17:00:00Z")}}
		return r
	}
	tests := []struct {
		name  string
		edit  func(*Request)
		start string
		want  error
	}{
		{name: "free slot", start: "2026-03-02T14:00:00Z"},
		{name: "free slot given in local time", start: "2026-03-02T10:00:00-05:00"},
		{name: "free slot outside from and to", start: "2026-03-09T14:00:00Z"},
		{name: "other weekday", start: "2026-03-03T14:00:00Z", want: ErrOffHours},
		{name: "before the window", start: "2026-03-02T13:00:00Z", want: ErrOffHours},
		{name: "visit runs past the window", start: "2026-03-02T16:30:00Z", want: ErrOffHours},
		{name: "off the grid", start: "2026-03-02T14:15:00Z", want: ErrOffGrid},
		{name: "busy", start: "2026-03-02T16:00:00Z", want: ErrBusy},
		{
			name:  "buffer reaches busy",
			edit:  func(r *Request) { r.BufferAfter = 5 * time.Minute },
			start: "2026-03-02T15:00:00Z",
			want:  ErrBusy,
		},
		{
			name: "time off",
			edit: func(r *Request) {
				r.TimeOff = []Interval{{at(t, "2026-03-02T14:30:00Z"), at(t, "2026-03-02T14:31:00Z")}}
			},
			start: "2026-03-02T14:00:00Z",
			want:  ErrBusy,
		},
		{
			name:  "in the past",
			edit:  func(r *Request) { r.Now = at(t, "2026-03-02T14:01:00Z") },
			start: "2026-03-02T14:00:00Z",
			want:  ErrTooSoon,
		},
		{
			name: "inside min notice",
			edit: func(r *Request) {
				r.Now = at(t, "2026-03-02T13:30:00Z")
				r.MinNotice = time.Hour
			},
			start: "2026-03-02T14:00:00Z",
			want:  ErrTooSoon,
		},
		{
			name: "beyond horizon",
			edit: func(r *Request) {
				r.Now = at(t, "2026-03-02T13:00:00Z")
				r.Horizon = time.Hour
			},
			start: "2026-03-02T14:00:00Z",
			want:  ErrTooFar,
		},
		{name: "invalid request", edit: func(r *Request) { r.Duration = 0 }, start: "2026-03-02T14:00:00Z", want: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok()
			if tt.edit != nil {
				tt.edit(&r)
			}
			err := Check(r, at(t, tt.start))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Check(%s) = %v, want %v", tt.start, err, tt.want)
			}
		})
	}
}

// TestCheckAgreesWithFree walks every five minutes of each request's range
// and wants Check to accept exactly the starts Free returns.
func TestCheckAgreesWithFree(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	berlin := mustLoc(t, "Europe/Berlin")
	ist := mustLoc(t, "Europe/Istanbul")
	brk := rule(t, time.Sunday, "15:00", "15:20")
	brk.Break = true
	nightBreak := rule(t, time.Monday, "23:40", "00:10")
	nightBreak.Break = true
	tests := []struct {
		name string
		req  Request
	}{
		{
			name: "new york spring forward week with busy, buffers, notice and horizon",
			req: func() Request {
				r := base(t, ny, "2026-03-07", "2026-03-11",
					rule(t, time.Sunday, "13:00", "18:00"), rule(t, time.Sunday, "02:00", "04:00"),
					brk, rule(t, time.Monday, "20:00", "02:00"), rule(t, time.Tuesday, "08:00", "12:30"))
				r.Duration, r.Step = time.Hour, 45*time.Minute
				r.BufferBefore, r.BufferAfter = 10*time.Minute, 5*time.Minute
				r.Busy = []Interval{{at(t, "2026-03-08T19:00:00Z"), at(t, "2026-03-08T19:30:00Z")}}
				r.Now, r.MinNotice, r.Horizon = at(t, "2026-03-07T12:00:00Z"), 24*time.Hour, 72*time.Hour
				return r
			}(),
		},
		{
			name: "istanbul night shift with extra hours and time off",
			req: func() Request {
				r := base(t, ist, "2026-03-02", "2026-03-05",
					rule(t, time.Monday, "20:00", "02:00"), nightBreak, rule(t, time.Wednesday, "09:00", "10:00"))
				r.Duration = 30 * time.Minute
				r.Extra = []Interval{{at(t, "2026-03-04T07:00:00Z"), at(t, "2026-03-04T08:10:00Z")}}
				r.TimeOff = []Interval{{at(t, "2026-03-02T18:10:00Z"), at(t, "2026-03-02T18:20:00Z")}}
				return r
			}(),
		},
		{
			name: "berlin fall back",
			req: base(t, berlin, "2026-10-24", "2026-10-27",
				rule(t, time.Sunday, "00:00", "04:00"), rule(t, time.Saturday, "22:00", "24:00"), rule(t, time.Monday, "08:00", "09:00")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Free(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				t.Fatal("scenario has no slots to compare")
			}
			free := map[time.Time]bool{}
			for i, s := range got {
				if i > 0 && !got[i-1].Start.Before(s.Start) {
					t.Errorf("slots %v and %v are out of order or repeated", got[i-1].Start, s.Start)
				}
				free[s.Start] = true
			}
			lo, hi := tt.req.From.In(tt.req.Location, 0), tt.req.To.In(tt.req.Location, 0)
			for s := lo; s.Before(hi); s = s.Add(5 * time.Minute) {
				err := Check(tt.req, s)
				if (err == nil) != free[s.UTC()] {
					t.Errorf("at %v: Check = %v, in Free = %v", s.UTC(), err, free[s.UTC()])
				}
			}
		})
	}
}
