package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carebook/carebook/hl7"
	"github.com/carebook/carebook/labs"
	"github.com/carebook/carebook/mllp"
)

// The lab messages the load sends are the shared NIST and Cerner samples:
// the demo network has a partner routed by each one's sending facility and
// the patient each one names, so both file without staff.
var labSamples = []string{
	"nist_oru_r01_2.5.1_case3_corrected_lead.hl7",
	"cerner_oru_r01_2.5.1_culture_abnormal.hl7",
}

const (
	// ackTimeout bounds one message's wait for its ACK. Intake answers
	// once the message is stored, recorded and its workflow started, a
	// few database and Temporal calls; past this it is a hang.
	ackTimeout = 30 * time.Second
	// dialTimeout bounds connecting one client.
	dialTimeout = 10 * time.Second
	// maxAckTexts bounds how many distinct AE/AR reasons are kept for the
	// report; the counts cover the rest.
	maxAckTexts = 8
	// idSlot marks where a template takes the message's ID. NUL never
	// appears in an HL7 v2 message, and newLabTemplate refuses one that
	// holds it.
	idSlot = "\x00"
)

// labTemplate is a sample message cut where the bench puts each message's
// ID: MSH-10, so that intake records every message anew, and the first
// component of OBR-3 (the filler order number), so that every message is a
// report of its own rather than one more version of the sample's report.
type labTemplate struct {
	name  string
	size  int
	parts [][]byte // the message is parts joined by the ID
}

// loadLabTemplates reads the samples from dir and checks that each, under
// a bench ID, decodes with that ID as its control ID and filler number.
func loadLabTemplates(dir string) ([]labTemplate, error) {
	var ts []labTemplate
	for _, name := range labSamples {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read the shared sample (set CAREBOOK_SHARED_CASES or -cases): %w", err)
		}
		t, err := newLabTemplate(name, raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := t.check("BENCH-check-0-0"); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// newLabTemplate cuts raw at MSH-10 and at OBR-3.1 of every order, keeping
// every other byte (segment terminators included) as it is.
func newLabTemplate(name string, raw []byte) (labTemplate, error) {
	if len(raw) < 8 || !bytes.HasPrefix(raw, []byte("MSH")) {
		return labTemplate{}, errors.New("does not start with an MSH segment")
	}
	if bytes.Contains(raw, []byte(idSlot)) {
		return labTemplate{}, errors.New("holds a NUL byte")
	}
	fs, cs := []byte{raw[3]}, []byte{raw[4]}
	var out []byte
	orders := 0
	for rest := raw; len(rest) > 0; {
		end := bytes.IndexAny(rest, "\r\n")
		if end < 0 {
			end = len(rest)
		}
		next := end
		for next < len(rest) && (rest[next] == '\r' || rest[next] == '\n') {
			next++
		}
		seg, term := rest[:end], rest[end:next]
		rest = rest[next:]

		fields := bytes.Split(seg, fs)
		switch string(fields[0]) {
		case "MSH":
			// fields[1] is MSH-2, so MSH-n is fields[n-1].
			if len(fields) < 10 {
				return labTemplate{}, errors.New("MSH has no MSH-10")
			}
			fields[9] = []byte(idSlot)
		case "OBR":
			if len(fields) < 4 {
				return labTemplate{}, errors.New("OBR has no OBR-3")
			}
			comps := bytes.Split(fields[3], cs)
			comps[0] = []byte(idSlot)
			fields[3] = bytes.Join(comps, cs)
			orders++
		}
		out = append(out, bytes.Join(fields, fs)...)
		out = append(out, term...)
	}
	if orders == 0 {
		return labTemplate{}, errors.New("has no OBR segment")
	}
	return labTemplate{name: name, size: len(raw), parts: bytes.Split(out, []byte(idSlot))}, nil
}

// build is the message with id in its place.
func (t labTemplate) build(id string) []byte {
	return bytes.Join(t.parts, []byte(id))
}

// check decodes the message built with id, as intake will, and confirms
// the ID landed where it should.
func (t labTemplate) check(id string) error {
	msg, err := labs.Decode(labs.FormatHL7v2, t.build(id))
	if err != nil {
		return fmt.Errorf("does not decode with a bench ID: %w", err)
	}
	if msg.ID != id {
		return errors.New("the bench ID is not the message's control ID")
	}
	for _, r := range msg.Reports {
		if r.FillerNumber != id {
			return errors.New("the bench ID is not every order's filler number")
		}
	}
	return nil
}

// mllpLoad is what one timed run of MLLP senders saw, merged over the
// clients.
type mllpLoad struct {
	start   time.Time     // the first send
	window  time.Duration // the measured window
	elapsed time.Duration // until the last ACK came
	sent    int           // messages written
	codes   map[string]int
	// texts counts "code: MSA-3" of the first maxAckTexts distinct AE and
	// AR reasons. Intake's reasons name fields, never values.
	texts    map[string]int
	noAck    int // sends that got no usable ACK; the client dialled again
	firstErr error
	lat      latencies // ACK latency of every ACK, whatever its code
	// aaInWindow counts the AA ACKs that came within the window; rates
	// are that over the window, as the booking bench's are.
	aaInWindow int
	// acked is when the AA of each message ID came, for the lag from the
	// lab's answer to filed.
	acked map[string]time.Time
	// perSecond is AA ACKs in each whole second of the window.
	perSecond []int
}

// aa is the number of messages acknowledged AA.
func (l mllpLoad) aa() int { return l.codes[string(hl7.AckAccept)] }

// aaRate is AA ACKs per second of the window.
func (l mllpLoad) aaRate() float64 { return perSecond(l.aaInWindow, l.window) }

// senderTally is one client's record; each client keeps its own, so
// recording takes no lock.
type senderTally struct {
	sent, noAck int
	firstErr    error
	codes       map[string]int
	texts       map[string]int
	lat         []time.Duration
	aaAt        []time.Time // when each AA ACK came
	aaIDs       []string    // the message ID of each
}

// runMLLP has clients senders each hold one connection to addr and send
// messages built from templates, one at a time, each after the previous
// one's ACK, for d. Message IDs are "<prefix>-<client>-<n>". Connections
// are opened before the clock starts. A send that fails ends its
// connection (an unanswered message makes the next ACK ambiguous) and the
// client dials again.
func runMLLP(ctx context.Context, addr string, clients int, d time.Duration, templates []labTemplate, prefix string) (mllpLoad, error) {
	conns := make([]*mllp.Client, clients)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	dial := func() (*mllp.Client, error) {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		return mllp.Dial(dctx, addr)
	}
	for i := range conns {
		var err error
		if conns[i], err = dial(); err != nil {
			return mllpLoad{}, fmt.Errorf("connect to %s: %w", addr, err)
		}
	}

	tallies := make([]senderTally, clients)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range tallies {
		wg.Go(func() {
			t := &tallies[i]
			t.codes, t.texts = map[string]int{}, map[string]int{}
			fail := func(err error) bool {
				t.noAck++
				if t.firstErr == nil {
					t.firstErr = err
				}
				conns[i].Close()
				c, derr := dial()
				if derr != nil {
					conns[i] = nil
					return false
				}
				conns[i] = c
				return true
			}
			for n := 0; ctx.Err() == nil && time.Now().Before(deadline); n++ {
				id := prefix + "-" + strconv.Itoa(i) + "-" + strconv.Itoa(n)
				msg := templates[(i+n)%len(templates)].build(id)
				t0 := time.Now()
				sctx, cancel := context.WithTimeout(ctx, ackTimeout)
				ack, err := conns[i].Send(sctx, msg)
				cancel()
				done := time.Now()
				t.sent++
				var code, text string
				if err == nil {
					code, text, err = readACK(ack, id)
				}
				if err != nil {
					if !fail(err) {
						return
					}
					continue
				}
				t.lat = append(t.lat, done.Sub(t0))
				t.codes[code]++
				if code == string(hl7.AckAccept) {
					t.aaAt = append(t.aaAt, done)
					t.aaIDs = append(t.aaIDs, id)
				} else if k := code + ": " + text; t.texts[k] > 0 || len(t.texts) < maxAckTexts {
					t.texts[k]++
				}
			}
		})
	}
	wg.Wait()

	l := mllpLoad{start: start, window: d, elapsed: time.Since(start), codes: map[string]int{}, texts: map[string]int{},
		perSecond: make([]int, int(d/time.Second)), acked: map[string]time.Time{}}
	var lat []time.Duration
	for _, t := range tallies {
		l.sent += t.sent
		l.noAck += t.noAck
		if l.firstErr == nil {
			l.firstErr = t.firstErr
		}
		for k, n := range t.codes {
			l.codes[k] += n
		}
		for k, n := range t.texts {
			if l.texts[k] > 0 || len(l.texts) < maxAckTexts {
				l.texts[k] += n
			}
		}
		lat = append(lat, t.lat...)
		for j, at := range t.aaAt {
			l.acked[t.aaIDs[j]] = at
			if !at.Before(deadline) {
				continue
			}
			l.aaInWindow++
			if s := int(at.Sub(start) / time.Second); s < len(l.perSecond) {
				l.perSecond[s]++
			}
		}
	}
	l.lat = summarize(lat)
	return l, nil
}

// readACK reads MSA-1 and MSA-3 of an acknowledgment, and makes sure it
// answers the message sent (MSA-2).
func readACK(ack []byte, id string) (code, text string, err error) {
	m, err := hl7.Parse(ack)
	if err != nil {
		return "", "", fmt.Errorf("unreadable ACK: %w", err)
	}
	msa := m.Segment("MSA")
	if msa == nil {
		return "", "", errors.New("ACK without MSA")
	}
	if msa.Field(2).Value() != id {
		return "", "", errors.New("ACK answers another message")
	}
	return msa.Field(1).Value(), msa.Field(3).Value(), nil
}

// ackOnlyServer is the ceiling's receiver: an mllp.Server in this process
// whose handler parses each message and builds its AA, and does nothing
// else. Clients reach it over loopback TCP as they reach Carebook's, so the
// difference is what intake does between reading a message and answering.
type ackOnlyServer struct {
	srv  *mllp.Server
	addr string
	done chan error
}

func startACKOnlyServer() (*ackOnlyServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the ceiling: %w", err)
	}
	var seq atomic.Int64
	s := &ackOnlyServer{
		srv: &mllp.Server{
			// Carebook logs a line per message; this one logs nothing, so
			// the ceiling is the bare round trip.
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Handler: func(_ context.Context, _ mllp.ConnInfo, msg []byte) []byte {
				a := hl7.Ack{Code: hl7.AckAccept, ControlID: "CEIL" + strconv.FormatInt(seq.Add(1), 10), Time: time.Now()}
				m, err := hl7.Parse(msg)
				if err != nil {
					a.Code, a.Cause = hl7.AckReject, err
					return hl7.NewACKRaw(msg, a)
				}
				return hl7.NewACK(m, a)
			},
		},
		addr: ln.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

func (s *ackOnlyServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "bench: stop the ceiling server: %v\n", err)
	}
	<-s.done
}

// mllpCeiling measures round trips against the ACK-only server with the
// same clients, messages and window rule as the load.
func mllpCeiling(ctx context.Context, clients int, d time.Duration, templates []labTemplate, prefix string) (mllpLoad, error) {
	s, err := startACKOnlyServer()
	if err != nil {
		return mllpLoad{}, err
	}
	defer s.stop()
	return runMLLP(ctx, s.addr, clients, d, templates, prefix)
}

// median of counts, or zero for none.
func median(counts []int) float64 {
	if len(counts) == 0 {
		return 0
	}
	s := slices.Clone(counts)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return float64(s[mid])
	}
	return float64(s[mid-1]+s[mid]) / 2
}
