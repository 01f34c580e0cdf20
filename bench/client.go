package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/carebook/carebook/models/demo"
)

// problemBase prefixes every problem type the API sends; the bench prints
// the short name after it.
const problemBase = "https://carebook.dev/problems/"

// requestTimeout bounds one request. The API waits up to 20 s on a
// workflow before answering 503, so anything past this is a hang, not a
// slow answer.
const requestTimeout = 30 * time.Second

// apiClient sends requests to the Carebook API and tags each with an
// X-Request-ID of its own, so a surprising answer can be found in the
// server's log by that ID.
type apiClient struct {
	base  string
	http  *http.Client
	runID string
	seq   atomic.Int64
}

func newAPIClient(base, runID string, conns int) *apiClient {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Every client keeps its connection alive; the default of two idle
	// connections per host would make most requests dial anew.
	t.MaxIdleConns = 2 * conns
	t.MaxIdleConnsPerHost = 2 * conns
	return &apiClient{
		base:  strings.TrimRight(base, "/"),
		http:  &http.Client{Transport: t, Timeout: requestTimeout},
		runID: runID,
	}
}

// answer is one HTTP exchange as the bench records it.
type answer struct {
	status    int // 0 when no answer came
	body      []byte
	requestID string
	elapsed   time.Duration
	err       error // transport error, when status is 0
}

// problem returns the short problem type of an error answer, or "".
func (a answer) problem() string {
	if a.status < 300 || len(a.body) == 0 {
		return ""
	}
	var p struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(a.body, &p) != nil {
		return ""
	}
	return strings.TrimPrefix(p.Type, problemBase)
}

// do sends one request with an optional JSON body and extra headers and
// reads the whole answer; elapsed covers both.
func (c *apiClient) do(ctx context.Context, method, path, token string, body any, header map[string]string) answer {
	a := answer{requestID: fmt.Sprintf("bench-%s-%d", c.runID, c.seq.Add(1))}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.err = err
			return a
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		a.err = err
		return a
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-Request-ID", a.requestID)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		a.elapsed, a.err = time.Since(start), err
		return a
	}
	a.body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	a.elapsed = time.Since(start)
	if err != nil {
		a.err = err
		return a
	}
	a.status = resp.StatusCode
	return a
}

// getJSON reads a setup resource into out and fails on anything but 200.
func (c *apiClient) getJSON(ctx context.Context, path, token string, out any) error {
	a := c.do(ctx, http.MethodGet, path, token, nil, nil)
	if a.status != http.StatusOK {
		return unexpected("GET "+path, a)
	}
	if err := json.Unmarshal(a.body, out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// unexpected describes an answer that setup cannot go on from.
func unexpected(what string, a answer) error {
	if a.err != nil {
		return fmt.Errorf("%s: %w", what, a.err)
	}
	return fmt.Errorf("%s: status %d (request %s): %s", what, a.status, a.requestID, bytes.TrimSpace(a.body))
}

// patient is one signed-up bench patient and its access token.
type patient struct {
	email     string
	token     string
	patientID string
}

// signup creates the bench patient number i of this run in tenant and
// returns it logged in. Each client gets its own patient so that the
// per-patient overlap constraint refuses only bookings a client makes
// against itself, never against another client.
//
// Sign-up answers no tokens (it answers alike whether or not the address
// is taken), so the patient then logs in. Login is throttled per client
// address in Redis (20 a minute), a budget the bench may share with other
// stacks on this machine that use the same Redis: a 429 waits and tries
// again.
func (c *apiClient) signup(ctx context.Context, tenant string, i int) (patient, error) {
	p := patient{email: fmt.Sprintf("bench-%s-%d@bench.carebook.test", c.runID, i)}
	a := c.do(ctx, http.MethodPost, "/v1/auth/signup", "", map[string]string{
		"tenant":      tenant,
		"email":       p.email,
		"password":    demo.Password,
		"given_name":  "Bench",
		"family_name": fmt.Sprintf("Client %d", i),
	}, nil)
	if a.status != http.StatusAccepted {
		return p, unexpected("sign up "+p.email, a)
	}
	for {
		a = c.do(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{
			"tenant":   tenant,
			"email":    p.email,
			"password": demo.Password,
		}, nil)
		if a.status != http.StatusTooManyRequests {
			break
		}
		select {
		case <-ctx.Done():
			return p, fmt.Errorf("log in %s: %w", p.email, ctx.Err())
		case <-time.After(loginRetryWait):
		}
	}
	if a.status != http.StatusOK {
		return p, unexpected("log in "+p.email, a)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		User        struct {
			PatientID string `json:"patient_id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(a.body, &tok); err != nil {
		return p, fmt.Errorf("log in %s: decode: %w", p.email, err)
	}
	p.token, p.patientID = tok.AccessToken, tok.User.PatientID
	return p, nil
}

// loginRetryWait is how long a throttled login waits: the limit is per
// minute, so a few seconds lets some of it refill without spinning.
const loginRetryWait = 3 * time.Second

// offer is one bookable combination the bench draws from: an appointment
// type of a specialty at a facility, and the practitioners who give it
// there.
type offer struct {
	specialty     string // the specialty's code
	facilityID    string
	typeID        string
	typeCode      string
	zone          *time.Location // the facility's, for the from/to dates
	practitioners []string
}

// loadOffers reads the tenant's catalogue and pairs every appointment type
// that belongs to a specialty with every facility where someone practises
// that specialty.
func (c *apiClient) loadOffers(ctx context.Context, token string) ([]offer, error) {
	var facilities struct {
		Items []struct {
			ID       string `json:"id"`
			TimeZone string `json:"time_zone"`
		} `json:"items"`
	}
	var specialties struct {
		Items []struct {
			ID   string `json:"id"`
			Code string `json:"code"`
		} `json:"items"`
	}
	var types struct {
		Items []struct {
			ID          string `json:"id"`
			Code        string `json:"code"`
			SpecialtyID string `json:"specialty_id"`
		} `json:"items"`
	}
	var practitioners struct {
		Items []struct {
			ID    string `json:"id"`
			Roles []struct {
				FacilityID  string `json:"facility_id"`
				SpecialtyID string `json:"specialty_id"`
			} `json:"roles"`
		} `json:"items"`
	}
	for path, out := range map[string]any{
		"/v1/facilities":        &facilities,
		"/v1/specialties":       &specialties,
		"/v1/appointment-types": &types,
		"/v1/practitioners":     &practitioners,
	} {
		if err := c.getJSON(ctx, path, token, out); err != nil {
			return nil, err
		}
	}
	codes := map[string]string{}
	for _, s := range specialties.Items {
		codes[s.ID] = s.Code
	}
	var offers []offer
	for _, t := range types.Items {
		if t.SpecialtyID == "" {
			continue // a type for any specialty has no /v1/slots search
		}
		for _, f := range facilities.Items {
			o := offer{specialty: codes[t.SpecialtyID], facilityID: f.ID, typeID: t.ID, typeCode: t.Code}
			var err error
			if o.zone, err = time.LoadLocation(f.TimeZone); err != nil {
				o.zone = time.UTC
			}
			for _, p := range practitioners.Items {
				for _, r := range p.Roles {
					if r.FacilityID == f.ID && r.SpecialtyID == t.SpecialtyID {
						o.practitioners = append(o.practitioners, p.ID)
						break
					}
				}
			}
			if len(o.practitioners) > 0 && o.specialty != "" {
				offers = append(offers, o)
			}
		}
	}
	if len(offers) == 0 {
		return nil, fmt.Errorf("the tenant offers nothing to book: no appointment type with a practitioner of its specialty")
	}
	return offers, nil
}

// slot is a free slot as the API listed it. start is kept as the API's
// own text so the booking names exactly the instant that was offered.
type slot struct {
	offer          *offer
	practitionerID string
	facilityID     string
	start          string
}

// key identifies a slot for the shared pool.
func (s slot) key() string { return s.practitionerID + "@" + s.start }

// slotsQuery builds the query of a slot search over dates [from, to).
func slotsQuery(o *offer, from, to time.Time, withSpecialty bool) string {
	q := url.Values{}
	if withSpecialty {
		q.Set("specialty", o.specialty)
	}
	q.Set("facility_id", o.facilityID)
	q.Set("appointment_type_id", o.typeID)
	q.Set("from", from.Format(time.DateOnly))
	q.Set("to", to.Format(time.DateOnly))
	return q.Encode()
}
