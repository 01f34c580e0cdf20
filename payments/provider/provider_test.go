package provider_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carebook/carebook/payments/provider"
)

// stripeMockURL is the base URL of the stripe-mock that TestMain starts.
// Every Stripe call in these tests goes there or to a local httptest
// server; the recording transport refuses any other host.
var stripeMockURL string

const stripeMockInstall = "go install github.com/stripe/stripe-mock@v0.203.0"

func TestMain(m *testing.M) {
	base, stop, err := startStripeMock()
	if err != nil {
		fmt.Fprintf(os.Stderr, "payments/provider tests: %v\n", err)
		os.Exit(1)
	}
	stripeMockURL = base
	code := m.Run()
	stop()
	os.Exit(code)
}

// startStripeMock runs $(go env GOPATH)/bin/stripe-mock with both listeners
// on 127.0.0.1 and ports chosen by the system, and reads the HTTP address
// back from its first lines of output. Asking for port 0 avoids the race of
// picking a free port first and hoping it stays free.
func startStripeMock() (baseURL string, stop func(), err error) {
	bin, err := stripeMockPath()
	if err != nil {
		return "", nil, err
	}

	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s: %w", bin, err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}

	// stripe-mock prints a line per request; keep reading to the end so
	// that it never blocks on a full pipe.
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				select {
				case addr <- strings.TrimSpace(a):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()

	select {
	case a := <-addr:
		host, _, err := net.SplitHostPort(a)
		if err != nil || host != "127.0.0.1" {
			stop()
			return "", nil, fmt.Errorf("stripe-mock listens on %q, want 127.0.0.1", a)
		}
		if err := waitForTCP(a, 10*time.Second); err != nil {
			stop()
			return "", nil, err
		}
		return "http://" + a, stop, nil
	case <-time.After(30 * time.Second):
		stop()
		return "", nil, errors.New("stripe-mock did not report its HTTP address within 30s")
	}
}

func stripeMockPath() (string, error) {
	gopath := os.Getenv("GOPATH")
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopath = strings.TrimSpace(string(out))
	}
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	gopath = filepath.SplitList(gopath)[0]
	bin := filepath.Join(gopath, "bin", "stripe-mock")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("stripe-mock not found at %s; install it with `%s`", bin, stripeMockInstall)
	}
	return bin, nil
}

func waitForTCP(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stripe-mock at %s not reachable: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sent is one request as it left the client.
type sent struct {
	Method string
	Path   string
	Header http.Header
	Form   url.Values // body of a POST, query of a GET
}

// recorder is an http.RoundTripper that notes every request and refuses
// any that is not aimed at the loopback address.
type recorder struct {
	mu   sync.Mutex
	reqs []sent
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if h := req.URL.Hostname(); h != "127.0.0.1" {
		return nil, fmt.Errorf("test transport: refusing a request to %q", h)
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	form := req.URL.Query()
	if len(body) > 0 {
		f, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		form = f
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, sent{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Form: form})
	r.mu.Unlock()

	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	return http.DefaultTransport.RoundTrip(out)
}

func (r *recorder) sent() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.reqs...)
}

// newStripe returns a provider aimed at backend (stripe-mock or a local
// fake) and the recorder that sees its requests.
func newStripe(t *testing.T, backend string) (*provider.Stripe, *recorder) {
	t.Helper()
	return newStripeWithKey(t, backend, "sk_test_carebook")
}

func newStripeWithKey(t *testing.T, backend, key string) (*provider.Stripe, *recorder) {
	t.Helper()
	if !strings.HasPrefix(backend, "http://127.0.0.1:") {
		t.Fatalf("tests must use a local backend, got %q", backend)
	}
	rec := &recorder{}
	p, err := provider.NewStripe(provider.StripeConfig{
		SecretKey:  key,
		BackendURL: backend,
		HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatalf("NewStripe: %v", err)
	}
	return p, rec
}

// only returns the single request a call made.
func only(t *testing.T, rec *recorder) sent {
	t.Helper()
	reqs := rec.sent()
	if len(reqs) != 1 {
		t.Fatalf("made %d requests, want 1: %+v", len(reqs), reqs)
	}
	return reqs[0]
}

func checkForm(t *testing.T, got url.Values, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("sent %s = %q, want %q", k, got.Get(k), v)
		}
	}
}

var refs = provider.Refs{TenantID: "ten_1", PaymentID: "pay_1", AppointmentID: "apt_1"}

var refsForm = map[string]string{
	"metadata[tenantID]":      "ten_1",
	"metadata[paymentID]":     "pay_1",
	"metadata[appointmentID]": "apt_1",
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestStripeEnsureCustomer(t *testing.T) {
	tests := []struct {
		name       string
		req        provider.CustomerRequest
		want       string // exact ID, or a prefix ending in "_"
		wantMethod string
		wantPath   string
		wantForm   map[string]string
	}{
		{
			name:       "new customer carries only IDs",
			req:        provider.CustomerRequest{IdempotencyKey: "customer:ten_1:pat_1", TenantID: "ten_1", PatientID: "pat_1"},
			want:       "cus_",
			wantMethod: http.MethodPost,
			wantPath:   "/v1/customers",
			wantForm:   map[string]string{"metadata[tenantID]": "ten_1", "metadata[patientID]": "pat_1"},
		},
		{
			name:       "known customer is read, not created",
			req:        provider.CustomerRequest{IdempotencyKey: "customer:ten_1:pat_1", CustomerID: "cus_known", TenantID: "ten_1", PatientID: "pat_1"},
			want:       "cus_known",
			wantMethod: http.MethodGet,
			wantPath:   "/v1/customers/cus_known",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rec := newStripe(t, stripeMockURL)
			got, err := p.EnsureCustomer(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("EnsureCustomer: %v", err)
			}
			if strings.HasSuffix(tt.want, "_") && !strings.HasPrefix(got, tt.want) ||
				!strings.HasSuffix(tt.want, "_") && got != tt.want {
				t.Errorf("customer = %q, want %q", got, tt.want)
			}
			r := only(t, rec)
			if r.Method != tt.wantMethod || r.Path != tt.wantPath {
				t.Errorf("sent %s %s, want %s %s", r.Method, r.Path, tt.wantMethod, tt.wantPath)
			}
			if tt.wantMethod == http.MethodPost {
				if k := r.Header.Get("Idempotency-Key"); k != tt.req.IdempotencyKey {
					t.Errorf("Idempotency-Key = %q, want %q", k, tt.req.IdempotencyKey)
				}
				checkForm(t, r.Form, tt.wantForm)
				// Nothing but IDs: no name, e-mail, phone or description.
				for k := range r.Form {
					if _, ok := tt.wantForm[k]; !ok {
						t.Errorf("sent unexpected field %s", k)
					}
				}
			}
		})
	}
}

func TestStripeCreateIntent(t *testing.T) {
	tests := []struct {
		name     string
		req      provider.IntentRequest
		wantForm map[string]string
		wantNot  []string
	}{
		{
			name: "hold saved for a no-show fee",
			req: provider.IntentRequest{
				IdempotencyKey:    "payment:pay_1:intent",
				AmountMinor:       45000,
				Currency:          "TRY",
				CustomerID:        "cus_1",
				SaveForOffSession: true,
				Refs:              refs,
			},
			wantForm: merge(refsForm, map[string]string{
				"amount":                  "45000",
				"currency":                "try",
				"capture_method":          "manual",
				"payment_method_types[0]": "card",
				"customer":                "cus_1",
				"setup_future_usage":      "off_session",
			}),
		},
		{
			name: "hold without a customer",
			req: provider.IntentRequest{
				IdempotencyKey: "payment:pay_2:intent",
				AmountMinor:    1999,
				Currency:       "eur",
				Refs:           refs,
			},
			wantForm: merge(refsForm, map[string]string{
				"amount":                  "1999",
				"currency":                "eur",
				"capture_method":          "manual",
				"payment_method_types[0]": "card",
			}),
			wantNot: []string{"customer", "setup_future_usage", "confirm", "off_session"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rec := newStripe(t, stripeMockURL)
			got, err := p.CreateIntent(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("CreateIntent: %v", err)
			}
			r := only(t, rec)
			if r.Method != http.MethodPost || r.Path != "/v1/payment_intents" {
				t.Errorf("sent %s %s", r.Method, r.Path)
			}
			if k := r.Header.Get("Idempotency-Key"); k != tt.req.IdempotencyKey {
				t.Errorf("Idempotency-Key = %q, want %q", k, tt.req.IdempotencyKey)
			}
			checkForm(t, r.Form, tt.wantForm)
			for _, k := range tt.wantNot {
				if r.Form.Has(k) {
					t.Errorf("sent %s, want it absent", k)
				}
			}

			// stripe-mock echoes amount, currency, capture method and
			// customer from the request; the rest is its fixture.
			if !strings.HasPrefix(got.ID, "pi_") {
				t.Errorf("ID = %q, want pi_...", got.ID)
			}
			if got.ClientSecret == "" {
				t.Error("ClientSecret is empty")
			}
			if got.CaptureMethod != "manual" {
				t.Errorf("CaptureMethod = %q, want manual", got.CaptureMethod)
			}
			if got.AmountMinor != tt.req.AmountMinor {
				t.Errorf("AmountMinor = %d, want %d", got.AmountMinor, tt.req.AmountMinor)
			}
			if want := strings.ToUpper(tt.req.Currency); got.Currency != want {
				t.Errorf("Currency = %q, want %q", got.Currency, want)
			}
			if got.CustomerID != tt.req.CustomerID {
				t.Errorf("CustomerID = %q, want %q", got.CustomerID, tt.req.CustomerID)
			}
			if got.Status == "" || got.Created.IsZero() {
				t.Errorf("Status %q, Created %v: want both set", got.Status, got.Created)
			}
		})
	}
}

func TestStripeGetIntent(t *testing.T) {
	p, rec := newStripe(t, stripeMockURL)
	got, err := p.GetIntent(context.Background(), "pi_carebook1")
	if err != nil {
		t.Fatalf("GetIntent: %v", err)
	}
	if got.ID != "pi_carebook1" {
		t.Errorf("ID = %q, want pi_carebook1", got.ID)
	}
	r := only(t, rec)
	if r.Method != http.MethodGet || r.Path != "/v1/payment_intents/pi_carebook1" {
		t.Errorf("sent %s %s", r.Method, r.Path)
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		t.Errorf("a read sent Idempotency-Key %q", k)
	}
}

func TestStripeCapture(t *testing.T) {
	tests := []struct {
		name       string
		amount     int64
		wantAmount string // "" means the field is not sent
	}{
		{name: "full", amount: 0, wantAmount: ""},
		{name: "partial", amount: 1500, wantAmount: "1500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rec := newStripe(t, stripeMockURL)
			got, err := p.Capture(context.Background(), "pi_cap", tt.amount, "payment:pay_1:capture")
			if err != nil {
				t.Fatalf("Capture: %v", err)
			}
			if got.ID != "pi_cap" {
				t.Errorf("ID = %q, want pi_cap", got.ID)
			}
			r := only(t, rec)
			if r.Method != http.MethodPost || r.Path != "/v1/payment_intents/pi_cap/capture" {
				t.Errorf("sent %s %s", r.Method, r.Path)
			}
			if k := r.Header.Get("Idempotency-Key"); k != "payment:pay_1:capture" {
				t.Errorf("Idempotency-Key = %q", k)
			}
			if r.Form.Has("amount_to_capture") != (tt.wantAmount != "") || r.Form.Get("amount_to_capture") != tt.wantAmount {
				t.Errorf("amount_to_capture = %q (present %t), want %q",
					r.Form.Get("amount_to_capture"), r.Form.Has("amount_to_capture"), tt.wantAmount)
			}
		})
	}
}

func TestStripeCancelIntent(t *testing.T) {
	p, rec := newStripe(t, stripeMockURL)
	got, err := p.CancelIntent(context.Background(), "pi_void", "payment:pay_1:cancel")
	if err != nil {
		t.Fatalf("CancelIntent: %v", err)
	}
	if got.ID != "pi_void" {
		t.Errorf("ID = %q, want pi_void", got.ID)
	}
	r := only(t, rec)
	if r.Method != http.MethodPost || r.Path != "/v1/payment_intents/pi_void/cancel" {
		t.Errorf("sent %s %s", r.Method, r.Path)
	}
	if k := r.Header.Get("Idempotency-Key"); k != "payment:pay_1:cancel" {
		t.Errorf("Idempotency-Key = %q", k)
	}
}

func TestStripeRefund(t *testing.T) {
	tests := []struct {
		name     string
		req      provider.RefundRequest
		wantForm map[string]string
		wantNot  []string
	}{
		{
			name: "partial with reason",
			req: provider.RefundRequest{
				IdempotencyKey:  "payment:pay_1:refund:1",
				PaymentIntentID: "pi_paid",
				AmountMinor:     2500,
				Reason:          provider.ReasonRequestedByCustomer,
				Refs:            refs,
			},
			wantForm: merge(refsForm, map[string]string{
				"payment_intent": "pi_paid",
				"amount":         "2500",
				"reason":         "requested_by_customer",
			}),
		},
		{
			name: "full without reason",
			req: provider.RefundRequest{
				IdempotencyKey:  "payment:pay_1:refund:2",
				PaymentIntentID: "pi_paid",
				Refs:            refs,
			},
			wantForm: merge(refsForm, map[string]string{"payment_intent": "pi_paid"}),
			wantNot:  []string{"amount", "reason"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rec := newStripe(t, stripeMockURL)
			got, err := p.Refund(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Refund: %v", err)
			}
			r := only(t, rec)
			if r.Method != http.MethodPost || r.Path != "/v1/refunds" {
				t.Errorf("sent %s %s", r.Method, r.Path)
			}
			if k := r.Header.Get("Idempotency-Key"); k != tt.req.IdempotencyKey {
				t.Errorf("Idempotency-Key = %q, want %q", k, tt.req.IdempotencyKey)
			}
			checkForm(t, r.Form, tt.wantForm)
			for _, k := range tt.wantNot {
				if r.Form.Has(k) {
					t.Errorf("sent %s, want it absent", k)
				}
			}
			if !strings.HasPrefix(got.ID, "re_") || got.Status == "" || got.Currency == "" {
				t.Errorf("refund = %+v, want an re_ ID, a status and a currency", got)
			}
			if got.PaymentIntentID != "pi_paid" {
				t.Errorf("PaymentIntentID = %q, want pi_paid", got.PaymentIntentID)
			}
			if tt.req.AmountMinor > 0 && got.AmountMinor != tt.req.AmountMinor {
				t.Errorf("AmountMinor = %d, want %d", got.AmountMinor, tt.req.AmountMinor)
			}
		})
	}
}

func TestStripeChargeOffSession(t *testing.T) {
	p, rec := newStripe(t, stripeMockURL)
	req := provider.OffSessionRequest{
		IdempotencyKey:  "payment:pay_1:noshow",
		CustomerID:      "cus_1",
		PaymentMethodID: "pm_1",
		AmountMinor:     15000,
		Currency:        "TRY",
		Refs:            refs,
	}
	got, err := p.ChargeOffSession(context.Background(), req)
	if err != nil {
		t.Fatalf("ChargeOffSession: %v", err)
	}
	r := only(t, rec)
	if r.Method != http.MethodPost || r.Path != "/v1/payment_intents" {
		t.Errorf("sent %s %s", r.Method, r.Path)
	}
	if k := r.Header.Get("Idempotency-Key"); k != req.IdempotencyKey {
		t.Errorf("Idempotency-Key = %q", k)
	}
	checkForm(t, r.Form, merge(refsForm, map[string]string{
		"amount":                  "15000",
		"currency":                "try",
		"customer":                "cus_1",
		"payment_method":          "pm_1",
		"confirm":                 "true",
		"off_session":             "true",
		"capture_method":          "automatic",
		"payment_method_types[0]": "card",
	}))
	if !strings.HasPrefix(got.ID, "pi_") || got.CustomerID != "cus_1" || got.PaymentMethodID != "pm_1" {
		t.Errorf("intent = %+v, want pi_ ID on cus_1 with pm_1", got)
	}
}

func TestStripeLists(t *testing.T) {
	from := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 1)
	wantQuery := map[string]string{
		"created[gte]": fmt.Sprint(from.Unix()),
		"created[lt]":  fmt.Sprint(to.Unix()),
		"limit":        "100",
	}

	t.Run("balance transactions", func(t *testing.T) {
		p, rec := newStripe(t, stripeMockURL)
		got, err := p.BalanceTransactions(context.Background(), from, to)
		if err != nil {
			t.Fatalf("BalanceTransactions: %v", err)
		}
		r := only(t, rec)
		if r.Method != http.MethodGet || r.Path != "/v1/balance_transactions" {
			t.Errorf("sent %s %s", r.Method, r.Path)
		}
		checkForm(t, r.Form, wantQuery)
		if len(got) == 0 {
			t.Fatal("no balance transactions")
		}
		bt := got[0]
		if !strings.HasPrefix(bt.ID, "txn_") || bt.Type == "" || bt.Currency == "" || bt.SourceID == "" || bt.Created.IsZero() {
			t.Errorf("balance transaction = %+v, want ID, type, currency, source and created", bt)
		}
		if bt.NetMinor != bt.AmountMinor-bt.FeeMinor {
			t.Errorf("net %d != amount %d - fee %d", bt.NetMinor, bt.AmountMinor, bt.FeeMinor)
		}
	})

	t.Run("payouts", func(t *testing.T) {
		p, rec := newStripe(t, stripeMockURL)
		got, err := p.Payouts(context.Background(), from, to)
		if err != nil {
			t.Fatalf("Payouts: %v", err)
		}
		r := only(t, rec)
		if r.Method != http.MethodGet || r.Path != "/v1/payouts" {
			t.Errorf("sent %s %s", r.Method, r.Path)
		}
		checkForm(t, r.Form, wantQuery)
		if len(got) == 0 {
			t.Fatal("no payouts")
		}
		po := got[0]
		if !strings.HasPrefix(po.ID, "po_") || po.Status == "" || po.Currency == "" ||
			!strings.HasPrefix(po.BalanceTransactionID, "txn_") || po.ArrivalDate.IsZero() {
			t.Errorf("payout = %+v, want ID, status, currency, balance transaction and arrival", po)
		}
	})
}

// fakeStripe is a local stand-in for Stripe for what stripe-mock cannot
// produce: declines, chosen error statuses and several pages.
func fakeStripe(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestStripeListsFollowPages(t *testing.T) {
	pages := map[string]string{
		"/v1/balance_transactions|": `{"object":"list","has_more":true,"data":[
			{"id":"txn_1","object":"balance_transaction","amount":1000,"fee":59,"net":941,"currency":"try","type":"charge","source":"ch_1"},
			{"id":"txn_2","object":"balance_transaction","amount":-500,"fee":0,"net":-500,"currency":"try","type":"refund","source":"re_1"}]}`,
		"/v1/balance_transactions|txn_2": `{"object":"list","has_more":false,"data":[
			{"id":"txn_3","object":"balance_transaction","amount":-441,"fee":0,"net":-441,"currency":"try","type":"payout","source":"po_1"}]}`,
		"/v1/payouts|": `{"object":"list","has_more":true,"data":[
			{"id":"po_1","object":"payout","amount":441,"currency":"try","status":"paid","balance_transaction":"txn_3"}]}`,
		"/v1/payouts|po_1": `{"object":"list","has_more":false,"data":[
			{"id":"po_2","object":"payout","amount":900,"currency":"try","status":"in_transit","balance_transaction":"txn_9"}]}`,
	}
	backend := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path+"|"+r.URL.Query().Get("starting_after")]
		if !ok {
			http.Error(w, `{"error":{"type":"invalid_request_error","code":"resource_missing"}}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	})
	from := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 1)

	tests := []struct {
		name string
		list func(p *provider.Stripe) ([]string, error)
		want []string
	}{
		{
			name: "balance transactions",
			list: func(p *provider.Stripe) ([]string, error) {
				bts, err := p.BalanceTransactions(context.Background(), from, to)
				var ids []string
				for _, bt := range bts {
					ids = append(ids, bt.ID+">"+bt.SourceID)
				}
				return ids, err
			},
			want: []string{"txn_1>ch_1", "txn_2>re_1", "txn_3>po_1"},
		},
		{
			name: "payouts",
			list: func(p *provider.Stripe) ([]string, error) {
				pos, err := p.Payouts(context.Background(), from, to)
				var ids []string
				for _, po := range pos {
					ids = append(ids, po.ID+">"+po.BalanceTransactionID)
				}
				return ids, err
			},
			want: []string{"po_1>txn_3", "po_2>txn_9"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rec := newStripe(t, backend)
			got, err := tt.list(p)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if n := len(rec.sent()); n != 2 {
				t.Errorf("made %d requests, want 2 pages", n)
			}
		})
	}
}

// mutation is one call that changes something, made with a given key.
type mutation struct {
	name string
	call func(ctx context.Context, p provider.Provider, key string) error
}

var mutations = []mutation{
	{"EnsureCustomer", func(ctx context.Context, p provider.Provider, key string) error {
		_, err := p.EnsureCustomer(ctx, provider.CustomerRequest{IdempotencyKey: key, TenantID: "ten_1", PatientID: "pat_1"})
		return err
	}},
	{"CreateIntent", func(ctx context.Context, p provider.Provider, key string) error {
		_, err := p.CreateIntent(ctx, provider.IntentRequest{IdempotencyKey: key, AmountMinor: 100, Currency: "TRY", Refs: refs})
		return err
	}},
	{"Capture", func(ctx context.Context, p provider.Provider, key string) error {
		_, err := p.Capture(ctx, "pi_1", 0, key)
		return err
	}},
	{"CancelIntent", func(ctx context.Context, p provider.Provider, key string) error {
		_, err := p.CancelIntent(ctx, "pi_1", key)
		return err
	}},
	{"Refund", func(ctx context.Context, p provider.Provider, key string) error {
		_, err := p.Refund(ctx, provider.RefundRequest{IdempotencyKey: key, PaymentIntentID: "pi_1", Refs: refs})
		return err
	}},
	{"ChargeOffSession", func(ctx context.Context, p provider.Provider, key string) error {
		_, err := p.ChargeOffSession(ctx, provider.OffSessionRequest{
			IdempotencyKey: key, CustomerID: "cus_1", PaymentMethodID: "pm_1", AmountMinor: 100, Currency: "TRY", Refs: refs,
		})
		return err
	}},
}

func TestStripeSendsIdempotencyKey(t *testing.T) {
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			p, rec := newStripe(t, stripeMockURL)
			key := "payment:pay_1:" + strings.ToLower(m.name)
			if err := m.call(context.Background(), p, key); err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
			r := only(t, rec)
			if got := r.Header.Values("Idempotency-Key"); len(got) != 1 || got[0] != key {
				t.Errorf("Idempotency-Key = %q, want [%q]", got, key)
			}
		})
	}
}

func TestRefusesBadKeyBeforeAnyRequest(t *testing.T) {
	keys := []struct {
		name string
		key  string
	}{
		{name: "empty", key: ""},
		{name: "blank", key: "   "},
		{name: "padded", key: " payment:pay_1:capture"},
		{name: "too long", key: strings.Repeat("k", 256)},
	}
	for _, m := range mutations {
		for _, k := range keys {
			t.Run(m.name+"/"+k.name, func(t *testing.T) {
				p, rec := newStripe(t, stripeMockURL)
				err := m.call(context.Background(), p, k.key)
				if !errors.Is(err, provider.ErrInvalidRequest) {
					t.Fatalf("err = %v, want ErrInvalidRequest", err)
				}
				if provider.Retryable(err) {
					t.Error("a refused key is retryable")
				}
				if n := len(rec.sent()); n != 0 {
					t.Errorf("made %d requests, want none", n)
				}
			})
		}
	}
}

func TestStripeMockErrors(t *testing.T) {
	tests := []struct {
		name       string
		key        string
		call       func(p *provider.Stripe) error
		wantKind   error
		wantStatus int
		wantType   string
	}{
		{
			// stripe-mock checks enums against Stripe's OpenAPI spec.
			name: "refund reason outside Stripe's list",
			key:  "sk_test_carebook",
			call: func(p *provider.Stripe) error {
				_, err := p.Refund(context.Background(), provider.RefundRequest{
					IdempotencyKey: "payment:pay_1:refund:1", PaymentIntentID: "pi_1", Reason: "changed_mind", Refs: refs,
				})
				return err
			},
			wantKind:   provider.ErrInvalidRequest,
			wantStatus: http.StatusBadRequest,
			wantType:   "invalid_request_error",
		},
		{
			// stripe-mock wants something shaped like sk_test_...
			name: "key that is not a test key",
			key:  "not_a_key_4242",
			call: func(p *provider.Stripe) error {
				_, err := p.GetIntent(context.Background(), "pi_1")
				return err
			},
			wantKind:   provider.ErrAuth,
			wantStatus: http.StatusUnauthorized,
			wantType:   "invalid_request_error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newStripeWithKey(t, stripeMockURL, tt.key)
			err := tt.call(p)
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			if provider.Retryable(err) {
				t.Error("Retryable = true, want false")
			}
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err is %T, want *provider.Error", err)
			}
			if pe.HTTPStatus != tt.wantStatus || pe.Type != tt.wantType || pe.Provider != provider.NameStripe {
				t.Errorf("error = %+v, want status %d, type %s", pe, tt.wantStatus, tt.wantType)
			}
			// stripe-mock's message quotes the Authorization header; it
			// must not reach our error text.
			if strings.Contains(err.Error(), tt.key) || strings.Contains(err.Error(), "Authorization") {
				t.Errorf("error text leaks the request: %q", err)
			}
		})
	}
}

func TestStripeErrorMapping(t *testing.T) {
	const leak = "jane.doe@example.com"
	tests := []struct {
		name          string
		status        int
		body          string
		wantKind      error // nil when a decline is expected
		wantDeclined  provider.ErrDeclined
		wantRetryable bool
	}{
		{
			name:   "card declined for insufficient funds",
			status: http.StatusPaymentRequired,
			body: `{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds",
				"message":"Your card has insufficient funds. ` + leak + `","payment_intent":{"id":"pi_failed","object":"payment_intent","status":"requires_payment_method"}}}`,
			wantDeclined: provider.ErrDeclined{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentIntentID: "pi_failed"},
		},
		{
			name:         "bank wants the patient to authenticate",
			status:       http.StatusPaymentRequired,
			body:         `{"error":{"type":"card_error","code":"authentication_required","decline_code":"authentication_required","message":"` + leak + `"}}`,
			wantDeclined: provider.ErrDeclined{Code: "authentication_required", DeclineCode: "authentication_required"},
		},
		{
			name:     "unknown object",
			status:   http.StatusNotFound,
			body:     `{"error":{"type":"invalid_request_error","code":"resource_missing","param":"intent","message":"No such payment_intent: ` + leak + `"}}`,
			wantKind: provider.ErrInvalidRequest,
		},
		{
			name:     "wrong state",
			status:   http.StatusBadRequest,
			body:     `{"error":{"type":"invalid_request_error","code":"payment_intent_unexpected_state","message":"` + leak + `"}}`,
			wantKind: provider.ErrInvalidRequest,
		},
		{
			name:     "key reused with other parameters",
			status:   http.StatusBadRequest,
			body:     `{"error":{"type":"idempotency_error","message":"` + leak + `"}}`,
			wantKind: provider.ErrIdempotencyConflict,
		},
		{
			name:          "key in use by a concurrent request",
			status:        http.StatusConflict,
			body:          `{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use","message":"` + leak + `"}}`,
			wantKind:      provider.ErrUnavailable,
			wantRetryable: true,
		},
		{
			name:     "revoked key",
			status:   http.StatusUnauthorized,
			body:     `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****"}}`,
			wantKind: provider.ErrAuth,
		},
		{
			name:     "restricted key without permission",
			status:   http.StatusForbidden,
			body:     `{"error":{"type":"invalid_request_error","message":"` + leak + `"}}`,
			wantKind: provider.ErrAuth,
		},
		{
			name:          "rate limited",
			status:        http.StatusTooManyRequests,
			body:          `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"` + leak + `"}}`,
			wantKind:      provider.ErrUnavailable,
			wantRetryable: true,
		},
		{
			name:          "server error",
			status:        http.StatusInternalServerError,
			body:          `{"error":{"type":"api_error","message":"` + leak + `"}}`,
			wantKind:      provider.ErrUnavailable,
			wantRetryable: true,
		},
		{
			name:          "proxy page instead of JSON",
			status:        http.StatusBadGateway,
			body:          `<html><body>bad gateway ` + leak + `</body></html>`,
			wantKind:      provider.ErrUnavailable,
			wantRetryable: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Request-Id", "req_carebook")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			p, _ := newStripe(t, backend)
			_, err := p.ChargeOffSession(context.Background(), provider.OffSessionRequest{
				IdempotencyKey: "payment:pay_1:noshow", CustomerID: "cus_1", PaymentMethodID: "pm_1",
				AmountMinor: 15000, Currency: "TRY", Refs: refs,
			})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantKind == nil {
				var d provider.ErrDeclined
				if !errors.As(err, &d) {
					t.Fatalf("err = %v, want ErrDeclined", err)
				}
				if d != tt.wantDeclined {
					t.Errorf("declined = %+v, want %+v", d, tt.wantDeclined)
				}
			} else if !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			if got := provider.Retryable(err); got != tt.wantRetryable {
				t.Errorf("Retryable = %t, want %t (err %v)", got, tt.wantRetryable, err)
			}
			if strings.Contains(err.Error(), leak) || strings.Contains(err.Error(), "sk_test") {
				t.Errorf("error text leaks Stripe's message: %q", err)
			}
			if tt.status == http.StatusBadGateway {
				return // no Stripe error to read status or request ID from
			}
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.HTTPStatus != tt.status {
				t.Errorf("err = %#v, want *provider.Error with HTTPStatus %d", err, tt.status)
			}
			if !strings.Contains(err.Error(), "req_carebook") {
				t.Errorf("error text lacks the request ID: %q", err)
			}
		})
	}
}

func TestStripeTransportFailuresAreRetryable(t *testing.T) {
	// A server that is gone: the port was just released.
	srv := httptest.NewServer(http.NotFoundHandler())
	gone := srv.URL
	srv.Close()

	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		backend string
		ctx     context.Context
		wantIs  error
	}{
		{name: "connection refused", backend: gone, ctx: context.Background()},
		{name: "context canceled", backend: stripeMockURL, ctx: canceled, wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newStripe(t, tt.backend)
			_, err := p.Capture(tt.ctx, "pi_1", 0, "payment:pay_1:capture")
			if !errors.Is(err, provider.ErrUnavailable) || !provider.Retryable(err) {
				t.Fatalf("err = %v, want retryable ErrUnavailable", err)
			}
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Errorf("err = %v, want the transport error kept as its cause", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.wantIs)
			}
		})
	}
}

func TestStripeEnsureCustomerChecksKnownCustomer(t *testing.T) {
	tests := []struct {
		name     string
		get      string // the customer Stripe returns for cus_old
		want     string
		wantErr  error
		wantKeys []string // Idempotency-Key of each POST
	}{
		{
			name:     "deleted customer is replaced under a derived key",
			get:      `{"id":"cus_old","object":"customer","deleted":true}`,
			want:     "cus_new",
			wantKeys: []string{"customer:ten_1:pat_1:replaces:cus_old"},
		},
		{
			name:    "customer of another patient is refused",
			get:     `{"id":"cus_old","object":"customer","metadata":{"patientID":"pat_2"}}`,
			wantErr: provider.ErrInvalidRequest,
		},
		{
			name: "customer made outside Carebook is kept",
			get:  `{"id":"cus_old","object":"customer","metadata":{}}`,
			want: "cus_old",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch {
				case r.Method == http.MethodGet && r.URL.Path == "/v1/customers/cus_old":
					io.WriteString(w, tt.get)
				case r.Method == http.MethodPost && r.URL.Path == "/v1/customers":
					io.WriteString(w, `{"id":"cus_new","object":"customer"}`)
				default:
					http.NotFound(w, r)
				}
			})
			p, rec := newStripe(t, backend)
			got, err := p.EnsureCustomer(context.Background(), provider.CustomerRequest{
				IdempotencyKey: "customer:ten_1:pat_1", CustomerID: "cus_old", TenantID: "ten_1", PatientID: "pat_1",
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("customer = %q, want %q", got, tt.want)
			}
			var keys []string
			for _, r := range rec.sent() {
				if r.Method == http.MethodPost {
					keys = append(keys, r.Header.Get("Idempotency-Key"))
				}
			}
			if strings.Join(keys, ",") != strings.Join(tt.wantKeys, ",") {
				t.Errorf("POST keys = %q, want %q", keys, tt.wantKeys)
			}
		})
	}
}

func TestStripeValidatesBeforeSending(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		call      func(p *provider.Stripe) error
		wantParam string
	}{
		{"intent without amount", func(p *provider.Stripe) error {
			_, err := p.CreateIntent(ctx, provider.IntentRequest{IdempotencyKey: "k", Currency: "TRY", Refs: refs})
			return err
		}, "AmountMinor"},
		{"intent with a bad currency", func(p *provider.Stripe) error {
			_, err := p.CreateIntent(ctx, provider.IntentRequest{IdempotencyKey: "k", AmountMinor: 1, Currency: "TL", Refs: refs})
			return err
		}, "Currency"},
		{"saving a card without a customer", func(p *provider.Stripe) error {
			_, err := p.CreateIntent(ctx, provider.IntentRequest{IdempotencyKey: "k", AmountMinor: 1, Currency: "TRY", SaveForOffSession: true, Refs: refs})
			return err
		}, "CustomerID"},
		{"intent without a payment ID", func(p *provider.Stripe) error {
			_, err := p.CreateIntent(ctx, provider.IntentRequest{IdempotencyKey: "k", AmountMinor: 1, Currency: "TRY", Refs: provider.Refs{TenantID: "ten_1"}})
			return err
		}, "Refs.PaymentID"},
		{"negative capture", func(p *provider.Stripe) error {
			_, err := p.Capture(ctx, "pi_1", -1, "k")
			return err
		}, "amountMinor"},
		{"refund without an intent", func(p *provider.Stripe) error {
			_, err := p.Refund(ctx, provider.RefundRequest{IdempotencyKey: "k", Refs: refs})
			return err
		}, "PaymentIntentID"},
		{"off-session charge without a card", func(p *provider.Stripe) error {
			_, err := p.ChargeOffSession(ctx, provider.OffSessionRequest{IdempotencyKey: "k", CustomerID: "cus_1", AmountMinor: 1, Currency: "TRY", Refs: refs})
			return err
		}, "PaymentMethodID"},
		{"empty range", func(p *provider.Stripe) error {
			now := time.Now()
			_, err := p.BalanceTransactions(ctx, now, now)
			return err
		}, "from"},
		{"intent without an ID", func(p *provider.Stripe) error {
			_, err := p.GetIntent(ctx, "")
			return err
		}, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rec := newStripe(t, stripeMockURL)
			err := tt.call(p)
			var pe *provider.Error
			if !errors.As(err, &pe) || !errors.Is(err, provider.ErrInvalidRequest) {
				t.Fatalf("err = %v, want ErrInvalidRequest", err)
			}
			if pe.Param != tt.wantParam {
				t.Errorf("Param = %q, want %q", pe.Param, tt.wantParam)
			}
			if n := len(rec.sent()); n != 0 {
				t.Errorf("made %d requests, want none", n)
			}
		})
	}
}

func TestNewStripe(t *testing.T) {
	tests := []struct {
		name    string
		cfg     provider.StripeConfig
		wantErr bool
	}{
		{name: "stripe-mock", cfg: provider.StripeConfig{SecretKey: "sk_test_1", BackendURL: stripeMockURL}},
		{name: "no key", cfg: provider.StripeConfig{BackendURL: stripeMockURL}, wantErr: true},
		{name: "URL without scheme", cfg: provider.StripeConfig{SecretKey: "sk_test_1", BackendURL: "127.0.0.1:12111"}, wantErr: true},
		{name: "URL of another scheme", cfg: provider.StripeConfig{SecretKey: "sk_test_1", BackendURL: "ftp://127.0.0.1"}, wantErr: true},
		{name: "negative retries", cfg: provider.StripeConfig{SecretKey: "sk_test_1", BackendURL: stripeMockURL, MaxNetworkRetries: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := provider.NewStripe(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			if err == nil && p.Name() != provider.NameStripe {
				t.Errorf("Name = %q", p.Name())
			}
		})
	}
}

func TestStripeConfigStringHidesKey(t *testing.T) {
	cfg := provider.StripeConfig{SecretKey: "sk_test_supersecret", BackendURL: stripeMockURL}
	for _, s := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, "supersecret") {
			t.Errorf("%q shows the key", s)
		}
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "unknown error", err: errors.New("boom"), want: true},
		{name: "unavailable", err: &provider.Error{Provider: "stripe", Op: "x", Kind: provider.ErrUnavailable}, want: true},
		{name: "invalid request", err: &provider.Error{Provider: "stripe", Op: "x", Kind: provider.ErrInvalidRequest}, want: false},
		{name: "wrapped invalid request", err: fmt.Errorf("activity: %w", provider.ErrInvalidRequest), want: false},
		{name: "idempotency conflict", err: provider.ErrIdempotencyConflict, want: false},
		{name: "auth", err: provider.ErrAuth, want: false},
		{name: "bare decline", err: provider.ErrDeclined{Code: "card_declined"}, want: false},
		{name: "wrapped decline", err: &provider.Error{Provider: "stripe", Op: "x", Kind: provider.ErrDeclined{Code: "expired_card"}}, want: false},
		{name: "context deadline", err: context.DeadlineExceeded, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := provider.Retryable(tt.err); got != tt.want {
				t.Errorf("Retryable(%v) = %t, want %t", tt.err, got, tt.want)
			}
		})
	}
}
