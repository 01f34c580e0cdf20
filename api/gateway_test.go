package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/carebook/carebook/api"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/models/modelstest"
	"github.com/carebook/carebook/reqid"
)

// TestSecurityHeadersAndCORS: every answer carries the security headers;
// the listed app origin may call from a browser (preflight 204 with what
// it may send), any other origin gets no CORS headers and its preflight is
// refused.
func TestSecurityHeadersAndCORS(t *testing.T) {
	srv := &api.Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CORSOrigins: []string{"https://app.carebook.test"}}
	h, err := srv.Router()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	do := func(method, path string, headers ...string) *http.Response {
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, path := range []string{"/v1/openapi.yaml", "/v1/no-such-route"} {
		r := do("GET", path)
		for name, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store",
			"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'", "Referrer-Policy": "no-referrer",
			// Plain HTTP: no HSTS (TestHealthAnswersHEADAndHSTSOnlyOverTLS).
			"Strict-Transport-Security": "",
		} {
			if got := r.Header.Get(name); got != want {
				t.Errorf("%s %s: %s = %q, want %q", path, r.Status, name, got, want)
			}
		}
	}
	pre := do("OPTIONS", "/v1/appointments", "Origin", "https://app.carebook.test", "Access-Control-Request-Method", "POST")
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "https://app.carebook.test" ||
		pre.Header.Get("Access-Control-Allow-Headers") == "" {
		t.Fatalf("preflight from the app: %d %v", pre.StatusCode, pre.Header)
	}
	if r := do("GET", "/v1/openapi.yaml", "Origin", "https://app.carebook.test"); r.Header.Get("Access-Control-Allow-Origin") != "https://app.carebook.test" {
		t.Fatalf("simple request from the app: %v", r.Header)
	}
	evil := do("OPTIONS", "/v1/appointments", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if evil.StatusCode != http.StatusForbidden || evil.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", evil.StatusCode, evil.Header)
	}
	if r := do("GET", "/v1/openapi.yaml", "Origin", "https://evil.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("another origin got CORS headers: %v", r.Header)
	}
}

// TestUserRateLimitRefusesAndRecovers: past a user's allowance every route
// answers 429 with Retry-After; the allowance refills and requests pass
// again; another user is not affected meanwhile.
func TestUserRateLimitRefusesAndRecovers(t *testing.T) {
	st := newStack(t)
	john := st.login("demo", "john@demo.carebook.test")
	ayse := st.login("demo", "ayse@demo.carebook.test")
	// One request refills every 5 s: far longer than four requests take
	// on a loaded machine, and short enough to watch the recovery.
	st.Server.UserRate = api.Rate{N: 3, Per: 15 * time.Second}
	for i := 0; i < 3; i++ {
		if r := st.do("GET", "/v1/me", john, nil); r.Status != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, r.Status)
		}
	}
	r := st.do("GET", "/v1/appointments", john, nil)
	if r.Status != http.StatusTooManyRequests || r.problemType() != "too-many-requests" {
		t.Fatalf("past the allowance: %d %s", r.Status, r.Raw)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 5 {
		t.Fatalf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	if r := st.do("GET", "/v1/me", ayse, nil); r.Status != http.StatusOK {
		t.Fatalf("another user: %d", r.Status)
	}
	eventually(t, "the allowance to refill", func() bool {
		return st.do("GET", "/v1/me", john, nil).Status == http.StatusOK
	})
}

// TestAccountLockout: five failed logins lock the account, even against
// the right password, with Retry-After; the lock ends and a good login
// clears the count. An e-mail without an account locks the same way, so a
// lockout tells nobody whether an account exists.
func TestAccountLockout(t *testing.T) {
	st := newStack(t)
	st.Server.LockoutPeriod = time.Second
	st.Server.LoginLimit = 1000 // the per-address limit is not under test here
	login := func(email, password string) response {
		return st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": email, "password": password})
	}
	for _, email := range []string{"john@demo.carebook.test", "no-such-person@demo.carebook.test"} {
		for i := 0; i < 5; i++ {
			if r := login(email, "wrong-password-123"); r.Status != http.StatusUnauthorized {
				t.Fatalf("%s failure %d: %d %s", email, i+1, r.Status, r.Raw)
			}
		}
		r := login(email, demo.Password)
		if r.Status != http.StatusTooManyRequests || r.problemType() != "account-locked" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s after five failures: %d %s", email, r.Status, r.Raw)
		}
	}
	// Another account is not locked by them.
	if r := login("ayse@demo.carebook.test", demo.Password); r.Status != http.StatusOK {
		t.Fatalf("another account: %d", r.Status)
	}
	eventually(t, "the lock to end", func() bool { return login("john@demo.carebook.test", demo.Password).Status == http.StatusOK })
	// The good login cleared the count: one failure does not lock again.
	login("john@demo.carebook.test", "wrong-password-123")
	if r := login("john@demo.carebook.test", demo.Password); r.Status != http.StatusOK {
		t.Fatalf("after a cleared count: %d %s", r.Status, r.Raw)
	}
	if n, _ := st.Server.Redis.Keys(t.Context(), st.Server.RedisPrefix+"*").Result(); len(n) > 0 {
		for _, k := range n {
			if strings.Contains(k, "@") {
				t.Fatalf("Redis key holds an e-mail: %s", k)
			}
		}
	}
}

// A booking's request ID is on the workflow it started (its memo, for the
// Temporal UI) and reaches the workflow's activities, so one ID finds every
// log line the request caused.
func TestRequestIDFollowsTheBookingIntoItsWorkflow(t *testing.T) {
	st := newStack(t)
	token := st.login("demo", "ayse@demo.carebook.test")
	doctor, typ := st.familyDoctor()
	free := st.freeSlots(token, doctor, typ)
	if len(free) == 0 {
		t.Fatal("no free slots")
	}
	const id = "support-ticket-4711"
	booked := st.do("POST", "/v1/appointments", token,
		map[string]any{"practitioner_id": doctor, "appointment_type_id": typ, "start": free[0]["start"]},
		"Idempotency-Key", "reqid-1", "X-Request-ID", id)
	if booked.Status != http.StatusCreated || booked.Header.Get("X-Request-ID") != id {
		t.Fatalf("book: %d, X-Request-ID %q: %s", booked.Status, booked.Header.Get("X-Request-ID"), booked.Raw)
	}
	desc, err := st.Temporal.DescribeWorkflowExecution(context.Background(), booked.str("workflow_id"), "")
	if err != nil {
		t.Fatal(err)
	}
	var memo string
	p, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[reqid.MemoKey]
	if !ok {
		t.Fatal("the booking's workflow has no request ID in its memo")
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p, &memo); err != nil || memo != id {
		t.Fatalf("memo request ID %q (%v), want %q", memo, err, id)
	}

	// A forged ID (text posing as another log attribute) is replaced.
	forged := st.do("GET", "/v1/me", token, nil, "X-Request-ID", "abcdefgh level=ERROR")
	if got := forged.Header.Get("X-Request-ID"); got == "" || strings.ContainsAny(got, "\n =") {
		t.Fatalf("forged request ID answered as %q", got)
	}
}

// TestHealthAnswersHEADAndHSTSOnlyOverTLS: probes that ask with HEAD get
// the health answer's status without a body; other methods are still
// refused; Strict-Transport-Security goes only on answers over TLS.
func TestHealthAnswersHEADAndHSTSOnlyOverTLS(t *testing.T) {
	db := modelstest.New(t)
	app, err := models.Open(db.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	srv := &api.Server{DB: app, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h, err := srv.Router()
	if err != nil {
		t.Fatal(err)
	}
	plain := httptest.NewServer(h)
	defer plain.Close()
	secure := httptest.NewTLSServer(h)
	defer secure.Close()
	const hsts = "max-age=63072000; includeSubDomains"
	tests := []struct {
		name     string
		client   *http.Client
		url      string
		method   string
		want     int
		wantBody bool
		wantHSTS string
	}{
		{"GET over http", plain.Client(), plain.URL, "GET", http.StatusOK, true, ""},
		{"HEAD over http", plain.Client(), plain.URL, "HEAD", http.StatusOK, false, ""},
		{"DELETE over http", plain.Client(), plain.URL, "DELETE", http.StatusMethodNotAllowed, true, ""},
		{"GET over https", secure.Client(), secure.URL, "GET", http.StatusOK, true, hsts},
		{"HEAD over https", secure.Client(), secure.URL, "HEAD", http.StatusOK, false, hsts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.url+"/healthz", nil)
			resp, err := tt.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, body, tt.want)
			}
			if got := len(body) > 0; got != tt.wantBody {
				t.Errorf("body %q, want one: %v", body, tt.wantBody)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != tt.wantHSTS {
				t.Errorf("Strict-Transport-Security = %q, want %q", got, tt.wantHSTS)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
		})
	}
}
