package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// outcome is the bucket an answer is counted in. The buckets are the ones
// that mean something different for a booking: 2xx done, 409 refused
// because of someone else (expected under contention), 422 refused as not a
// slot (a bench or clock problem), 5xx a server bug or overload.
type outcome int

const (
	outOK       outcome = iota // 2xx: 200 for reads and cancel, 201 for book
	out409                     // conflict: slot taken, patient busy
	out422                     // not a bookable slot
	out5xx                     // server error
	outOther                   // any other status (400, 401, 404, 429...)
	outNoAnswer                // no HTTP answer: connection error or timeout
	numOutcomes
)

// classify buckets an HTTP status; status 0 means there was no answer.
func classify(status int) outcome {
	switch {
	case status == 0:
		return outNoAnswer
	case status >= 200 && status < 300:
		return outOK
	case status == 409:
		return out409
	case status == 422:
		return out422
	case status >= 500:
		return out5xx
	}
	return outOther
}

// opStats is what one client saw of one operation. Each client keeps its
// own, so recording takes no lock; they are merged after the run.
type opStats struct {
	lat      []time.Duration
	outcomes [numOutcomes]int
	problems map[string]int // problem type of every non-2xx answer
}

func newOpStats() *opStats { return &opStats{problems: map[string]int{}} }

// add records one request: its latency, its bucket and, for a refusal, the
// problem type the server gave.
func (s *opStats) add(d time.Duration, status int, problem string) {
	s.lat = append(s.lat, d)
	o := classify(status)
	s.outcomes[o]++
	if o != outOK {
		if problem == "" {
			problem = fmt.Sprintf("status %d", status)
		}
		s.problems[problem]++
	}
}

func (s *opStats) merge(o *opStats) {
	s.lat = append(s.lat, o.lat...)
	for i, n := range o.outcomes {
		s.outcomes[i] += n
	}
	for k, n := range o.problems {
		s.problems[k] += n
	}
}

// latencies is a latency distribution reduced to the figures we print.
type latencies struct {
	n                  int
	p50, p95, p99, max time.Duration
}

// summarize sorts a copy of lat and reads its percentiles.
func summarize(lat []time.Duration) latencies {
	s := slices.Clone(lat)
	slices.Sort(s)
	l := latencies{n: len(s), p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99)}
	if len(s) > 0 {
		l.max = s[len(s)-1]
	}
	return l
}

// percentile returns the nearest-rank percentile p of sorted, or zero for
// an empty slice. Nearest rank never invents a latency nobody saw.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// ms formats a latency in milliseconds with one decimal, which is as fine
// as a loopback HTTP round trip is worth reading.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// perSecond is n over elapsed, or zero when nothing elapsed.
func perSecond(n int, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(n) / elapsed.Seconds()
}

// printOps writes one row per operation, in the order given.
func printOps(w io.Writer, names []string, ops map[string]*opStats, elapsed time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tops/s\tp50\tp95\tp99\t2xx\t409\t422\t5xx\tother\tno answer\t")
	for _, name := range names {
		s, ok := ops[name]
		if !ok {
			s = newOpStats()
		}
		l := summarize(s.lat)
		o := s.outcomes
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n",
			name, l.n, perSecond(l.n, elapsed), ms(l.p50), ms(l.p95), ms(l.p99),
			o[outOK], o[out409], o[out422], o[out5xx], o[outOther], o[outNoAnswer])
	}
	tw.Flush()
}

// problemList renders problem counts as "type n, type n", most frequent
// first, or "none".
func problemList(problems map[string]int) string {
	if len(problems) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(problems))
	for k := range problems {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if problems[a] != problems[b] {
			return problems[b] - problems[a]
		}
		if a < b {
			return -1
		}
		return 1
	})
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", k, problems[k])
	}
	return out
}
