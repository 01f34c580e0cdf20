package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// The operations the load phase measures, in the order they are printed.
const (
	opSlots  = "slots"
	opBook   = "book"
	opCancel = "cancel"
	opList   = "list"
)

var opNames = []string{opSlots, opBook, opCancel, opList}

const (
	// hotPoolSize is how many slots every client shares. Small on purpose:
	// with a few slots and many clients, several clients aim at the same
	// slot within the same few milliseconds, which is the race the booking
	// path has to settle.
	hotPoolSize = 4
	// windowDays is how many days one slot search covers; two days keep
	// the answer small, as a booking screen would.
	windowDays = 2
	// spreadDays is how far ahead a search window may start. The demo's
	// rules run 31 days from seeding and its video visits may be booked 30
	// days ahead; windows start from tomorrow (clear of every minimum
	// notice) up to three weeks on, so bookings spread over the calendar
	// instead of exhausting one week after a few runs.
	spreadDays = 21
	// maxFailures bounds how many surprising answers are kept for the
	// report; the counts cover the rest.
	maxFailures = 12
)

// loadConfig says how the load phase runs.
type loadConfig struct {
	clients  int
	duration time.Duration
	bookings int // booking attempts in all; 0 means until duration ends

	hotShare          float64 // bookings aimed at the shared pool
	cancelShare       float64 // successful bookings followed by a cancel
	listShare         float64 // journeys that end by listing
	practitionerShare float64 // slot fetches per practitioner, not by search
}

// loadResult is what the load phase measured, merged over the clients.
type loadResult struct {
	// window is the measured window: -duration, or less when -bookings
	// ended the run sooner. elapsed runs on until the last journey begun
	// in the window has finished.
	window   time.Duration
	elapsed  time.Duration
	ops      map[string]*opStats
	attempts int // booking requests sent
	booked   int // 201s
	// bookedInWindow counts the 201s that came within the window; the
	// bookings rate is that over the window, the same rule as the
	// ceilings' rates.
	bookedInWindow int
	hotPicks       int // bookings aimed at the shared pool
	hotWon         int // of those, 201s
	// cancelled counts 200s to cancels; the unknown counts are requests
	// whose outcome the bench cannot know (5xx or no answer), which the
	// database check allows for.
	cancelled      int
	unknownBooks   int
	unknownCancels int
	failures       []failure
	clients        []*loadClient // kept for cleanup
}

// failure is an answer worth showing in full: a 5xx, no answer at all, or
// a status the operation should never give.
type failure struct {
	op        string
	request   string
	status    int
	requestID string
	body      string
	err       error
}

// failureLog keeps the first maxFailures failures of all clients.
type failureLog struct {
	mu   sync.Mutex
	list []failure
}

func (l *failureLog) add(f failure) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.list) < maxFailures {
		l.list = append(l.list, f)
	}
}

// hotPool is the small set of slots that all clients share so that some
// bookings collide. Clients feed it from their slot searches and drop a
// slot once an answer shows it is gone.
type hotPool struct {
	mu    sync.Mutex
	slots []slot
}

// add puts s in the pool if there is room and it is not there yet.
func (p *hotPool) add(s slot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.slots) >= hotPoolSize {
		return
	}
	for _, x := range p.slots {
		if x.key() == s.key() {
			return
		}
	}
	p.slots = append(p.slots, s)
}

// pick returns a random slot of the pool.
func (p *hotPool) pick(r *rand.Rand) (slot, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.slots) == 0 {
		return slot{}, false
	}
	return p.slots[r.IntN(len(p.slots))], true
}

// remove drops the slot with key k.
func (p *hotPool) remove(k string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.slots {
		if x.key() == k {
			p.slots = append(p.slots[:i], p.slots[i+1:]...)
			return
		}
	}
}

// budget hands out booking attempts when -bookings caps them.
type budget struct {
	limit int64
	used  atomic.Int64
}

func (b *budget) take() bool {
	return b.limit <= 0 || b.used.Add(1) <= b.limit
}

// loadClient is one simulated patient. It runs journeys one after another:
// search free slots, book one, sometimes cancel one of its bookings,
// sometimes list its appointments. Its counters are its own, so it records
// without locks.
type loadClient struct {
	id       int
	api      *apiClient
	pat      patient
	offers   []offer
	cfg      loadConfig
	pool     *hotPool
	budget   *budget
	failures *failureLog
	rng      *rand.Rand

	deadline time.Time
	ops      map[string]*opStats
	owned    []string // IDs of its appointments still booked

	attempts, booked, bookedInWindow, hotPicks, hotWon, cancelled int
	unknownBooks, unknownCancels                                  int
}

// runLoad runs one client per patient until the duration ends or the
// booking budget is spent, and merges what they saw. A journey that has
// begun is finished, so no request is cut off by the deadline; the elapsed
// time includes that tail.
func runLoad(ctx context.Context, api *apiClient, cfg loadConfig, patients []patient, offers []offer) loadResult {
	pool := &hotPool{}
	b := &budget{limit: int64(cfg.bookings)}
	failures := &failureLog{}
	seed := uint64(time.Now().UnixNano())
	start := time.Now()
	clients := make([]*loadClient, len(patients))
	for i, p := range patients {
		clients[i] = &loadClient{
			id: i, api: api, pat: p, offers: offers, cfg: cfg,
			pool: pool, budget: b, failures: failures,
			rng:      rand.New(rand.NewPCG(seed, uint64(i))),
			deadline: start.Add(cfg.duration),
			ops:      map[string]*opStats{},
		}
	}

	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.run(ctx) })
	}
	wg.Wait()

	elapsed := time.Since(start)
	res := loadResult{window: min(cfg.duration, elapsed), elapsed: elapsed, ops: map[string]*opStats{}, clients: clients}
	for _, name := range opNames {
		res.ops[name] = newOpStats()
	}
	for _, c := range clients {
		for name, s := range c.ops {
			res.ops[name].merge(s)
		}
		res.attempts += c.attempts
		res.booked += c.booked
		res.bookedInWindow += c.bookedInWindow
		res.hotPicks += c.hotPicks
		res.hotWon += c.hotWon
		res.cancelled += c.cancelled
		res.unknownBooks += c.unknownBooks
		res.unknownCancels += c.unknownCancels
	}
	res.failures = failures.list
	return res
}

func (c *loadClient) run(ctx context.Context) {
	for ctx.Err() == nil && time.Now().Before(c.deadline) {
		o := &c.offers[c.rng.IntN(len(c.offers))]
		free := c.fetchSlots(ctx, o)
		s, hot, ok := c.choose(free)
		if !ok {
			continue
		}
		if !c.budget.take() {
			return
		}
		if c.book(ctx, s, hot) && c.rng.Float64() < c.cfg.cancelShare {
			c.cancelOne(ctx, "bench", true)
		}
		if c.rng.Float64() < c.cfg.listShare {
			c.list(ctx)
		}
	}
}

// record counts an answer under op and keeps it for the report when it is
// a failure.
func (c *loadClient) record(op, request string, a answer, expected ...int) {
	s, ok := c.ops[op]
	if !ok {
		s = newOpStats()
		c.ops[op] = s
	}
	s.add(a.elapsed, a.status, a.problem())
	for _, want := range expected {
		if a.status == want {
			return
		}
	}
	c.failures.add(failure{op: op, request: request, status: a.status, requestID: a.requestID,
		body: strings.TrimSpace(string(a.body)), err: a.err})
}

// fetchSlots asks for the free slots of o over a random window, by
// specialty search or, part of the time, of one practitioner.
func (c *loadClient) fetchSlots(ctx context.Context, o *offer) []slot {
	y, m, d := time.Now().In(o.zone).Date()
	from := time.Date(y, m, d+1+c.rng.IntN(spreadDays), 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, windowDays)
	path := "/v1/slots?" + slotsQuery(o, from, to, true)
	if c.rng.Float64() < c.cfg.practitionerShare {
		p := o.practitioners[c.rng.IntN(len(o.practitioners))]
		path = "/v1/practitioners/" + p + "/slots?" + slotsQuery(o, from, to, false)
	}
	a := c.api.do(ctx, http.MethodGet, path, c.pat.token, nil, nil)
	c.record(opSlots, "GET "+path, a, http.StatusOK)
	if a.status != http.StatusOK {
		return nil
	}
	var body struct {
		Items []struct {
			Start          string `json:"start"`
			PractitionerID string `json:"practitioner_id"`
			FacilityID     string `json:"facility_id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(a.body, &body); err != nil {
		return nil
	}
	out := make([]slot, len(body.Items))
	for i, it := range body.Items {
		out[i] = slot{offer: o, practitionerID: it.PractitionerID, facilityID: it.FacilityID, start: it.Start}
	}
	return out
}

// choose picks the slot to book: from the shared pool part of the time,
// otherwise one of the slots just listed. Every search also offers one of
// its slots to the pool, which keeps the pool fresh as slots get taken.
func (c *loadClient) choose(free []slot) (s slot, hot, ok bool) {
	if len(free) > 0 {
		c.pool.add(free[c.rng.IntN(len(free))])
	}
	if c.rng.Float64() < c.cfg.hotShare {
		if s, ok := c.pool.pick(c.rng); ok {
			return s, true, true
		}
	}
	if len(free) == 0 {
		return slot{}, false, false
	}
	return free[c.rng.IntN(len(free))], false, true
}

// book sends one booking with a fresh Idempotency-Key and reports whether
// it was booked.
func (c *loadClient) book(ctx context.Context, s slot, hot bool) bool {
	c.attempts++
	if hot {
		c.hotPicks++
	}
	body := map[string]string{
		"practitioner_id":     s.practitionerID,
		"facility_id":         s.facilityID,
		"appointment_type_id": s.offer.typeID,
		"start":               s.start,
	}
	a := c.api.do(ctx, http.MethodPost, "/v1/appointments", c.pat.token, body,
		map[string]string{"Idempotency-Key": uuid.NewString()})
	request := fmt.Sprintf("POST /v1/appointments %s %s at %s", s.offer.typeCode, s.practitionerID, s.start)
	c.record(opBook, request, a, http.StatusCreated, http.StatusConflict)

	switch {
	case a.status == http.StatusCreated:
		var appt struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(a.body, &appt) == nil && appt.ID != "" {
			c.owned = append(c.owned, appt.ID)
		}
		c.booked++
		if time.Now().Before(c.deadline) {
			c.bookedInWindow++
		}
		if hot {
			c.hotWon++
		}
		c.pool.remove(s.key())
		return true
	case a.status == http.StatusConflict && a.problem() == "slot-taken":
		c.pool.remove(s.key())
	case a.status == 0 || a.status >= 500:
		c.unknownBooks++
	}
	return false
}

// cancelOne cancels a random one of the client's bookings and reports
// whether the API said it did. counted says whether the request belongs in
// the measurements (the cleanup's do not).
func (c *loadClient) cancelOne(ctx context.Context, reason string, counted bool) bool {
	if len(c.owned) == 0 {
		return false
	}
	i := c.rng.IntN(len(c.owned))
	id := c.owned[i]
	c.owned[i] = c.owned[len(c.owned)-1]
	c.owned = c.owned[:len(c.owned)-1]

	path := "/v1/appointments/" + id + "/cancel"
	a := c.api.do(ctx, http.MethodPost, path, c.pat.token, map[string]string{"reason": reason}, nil)
	if !counted {
		return a.status == http.StatusOK
	}
	c.record(opCancel, "POST "+path, a, http.StatusOK)
	switch {
	case a.status == http.StatusOK:
		c.cancelled++
	case a.status == 0 || a.status >= 500:
		// It may have been cancelled or not; the cleanup tries again.
		c.unknownCancels++
		c.owned = append(c.owned, id)
	}
	return a.status == http.StatusOK
}

// list reads the client's own appointments.
func (c *loadClient) list(ctx context.Context) {
	a := c.api.do(ctx, http.MethodGet, "/v1/appointments", c.pat.token, nil, nil)
	c.record(opList, "GET /v1/appointments", a, http.StatusOK)
}

// cleanup cancels every booking the load left booked, so repeated runs do
// not fill the demo calendar, and returns how many there were and how many
// the API cancelled. It runs after the load and the database check, and is
// not measured. Each booking is tried once.
func cleanup(ctx context.Context, clients []*loadClient) (left, cancelled int) {
	var wg sync.WaitGroup
	var n atomic.Int64
	for _, c := range clients {
		left += len(c.owned)
		wg.Go(func() {
			for len(c.owned) > 0 && ctx.Err() == nil {
				if c.cancelOne(ctx, "bench cleanup", false) {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return left, int(n.Load())
}
