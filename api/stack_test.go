package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
	"gorm.io/gorm"

	"github.com/carebook/carebook/activities"
	"github.com/carebook/carebook/api"
	"github.com/carebook/carebook/intake"
	"github.com/carebook/carebook/keyring"
	"github.com/carebook/carebook/mail"
	"github.com/carebook/carebook/mail/mailpit"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/models/modelstest"
	"github.com/carebook/carebook/objstore"
	"github.com/carebook/carebook/objstore/versitygw"
	"github.com/carebook/carebook/payments/accounts"
	"github.com/carebook/carebook/payments/provider/stripemock"
	"github.com/carebook/carebook/reqid"
	"github.com/carebook/carebook/totp"
	"github.com/carebook/carebook/workers"
	"github.com/carebook/carebook/workflows"
)

// stack is the whole product in one test: a fresh database seeded with two
// tenants, an in-process Temporal server with the appointment worker, the
// local Redis, and the api on an httptest server.
type stack struct {
	t        *testing.T
	Server   *api.Server
	TS       *temporaltest.TestServer
	Worker   worker.Worker
	Deps     workers.Deps
	URL      string
	Admin    *gorm.DB // owner connection: bypasses RLS, for assertions
	App      *gorm.DB
	Temporal client.Client
	Demo     demo.Network // tenant "demo"
	Other    demo.Network // tenant "harbor"
	Store    *objstore.Store
	Intake   *intake.Intake
	Keys     *keyring.Keyring
	// Redis and RedisPrefix are the api's and the worker's.
	Redis       *redis.Client
	RedisPrefix string
}

// testAuditKey keys the audit chain in the api and the worker.
var testAuditKey = []byte("api-test-audit-key-api-test-key!")

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	db := modelstest.New(t)
	admin, err := models.Open(db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	app, err := models.Open(db.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st := &stack{t: t, Admin: admin, App: app}
	kek, err := keyring.NewLocalKEK(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	// A rotation waits out the other processes' caches; a test has one
	// process, whose cache the rotation itself updates.
	st.Keys = &keyring.Keyring{DB: app, KEK: kek, ActiveTTL: 50 * time.Millisecond}
	// The demo staff's TOTP secrets are sealed as the api opens them.
	secrets := api.KeyringSecrets{Keys: st.Keys}
	if st.Demo, err = demo.Seed(ctx, admin, demo.Options{Slug: "demo", Name: "Demo Health", Now: now, HashPassword: api.HashPassword, Keys: st.Keys, SealSecret: secrets.Seal}); err != nil {
		t.Fatal(err)
	}
	if st.Other, err = demo.Seed(ctx, admin, demo.Options{Slug: "harbor", Name: "Harbor Health", Now: now, HashPassword: api.HashPassword, Keys: st.Keys, SealSecret: secrets.Seal}); err != nil {
		t.Fatal(err)
	}

	accts := &accounts.Accounts{DB: app, Keys: st.Keys, StripeURL: stripeMockURL}
	// Tenant demo pays through Stripe (the local stripe-mock); harbor at
	// the desk.
	if err := accts.Save(ctx, app, st.Demo.Tenant.ID, accounts.Settings{Provider: "stripe", SecretKey: "sk_test_123", WebhookSecret: testWebhookSecret}); err != nil {
		t.Fatal(err)
	}

	st.Store = newTestStore(t)

	// The clients carry request IDs into workflows, as cmd/carebook's do.
	ts := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseClientOptions(client.Options{
		ContextPropagators: []workflow.ContextPropagator{reqid.Propagator()},
		Interceptors:       []interceptor.ClientInterceptor{reqid.Interceptor()},
	}))
	// Each stack gets its own task queue name on its own server, so the
	// worker only ever sees this test's database.
	st.TS = ts
	st.Deps = workers.Deps{
		Appointments: &activities.Appointments{DB: app},
		Payments:     &activities.Payments{DB: app, Accounts: accts},
		Settlement:   &activities.Settlement{DB: app, Providers: accts, Store: st.Store},
		Labs:         &activities.Labs{DB: app, Store: st.Store, RenderPDF: activities.RenderReportPDF, Keys: st.Keys},
		Keys:         &activities.Keys{Keys: st.Keys},
	}

	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis is not reachable at 127.0.0.1:6379 (start it: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no): %v", err)
	}
	t.Cleanup(func() { rdb.Close() })
	var prefix [6]byte
	_, _ = rand.Read(prefix[:])
	st.Redis, st.RedisPrefix = rdb, "carebook-test-"+hex.EncodeToString(prefix[:])+":"
	// The shared Redis keeps nothing of a finished test (rate-limit keys
	// expire on their own).
	t.Cleanup(func() {
		iter := rdb.Scan(context.Background(), 0, st.RedisPrefix+"*", 500).Iterator()
		for iter.Next(context.Background()) {
			rdb.Del(context.Background(), iter.Val())
		}
	})
	st.Deps.DSR = &activities.DSR{DB: app, Store: st.Store, Redis: rdb, RedisPrefix: st.RedisPrefix, AuditKey: testAuditKey, Keys: st.Keys}
	st.Worker = st.startWorker(st.Deps)
	st.Temporal = ts.GetDefaultClient()
	st.Intake = &intake.Intake{DB: app, Store: st.Store, Temporal: st.Temporal}

	tokens, err := api.NewTokens([]byte("test-signing-key-test-signing-key!!"), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &api.Server{
		DB: app, Redis: rdb, Temporal: st.Temporal, Tokens: tokens, Accounts: accts, Keys: st.Keys, Store: st.Store, Intake: st.Intake,
		AuditKey:    testAuditKey,
		Logger:      slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		RedisPrefix: st.RedisPrefix,
		Namespace:   ts.GetDefaultNamespace(), TemporalUIURL: "http://127.0.0.1:8233",
	}
	srv.Secrets = secrets
	srv.Mailer = &mail.SMTP{Addr: mailbox.SMTPAddr, From: "no-reply@carebook.test"}
	srv.AppURL = "https://app.carebook.test"
	h, err := srv.Router()
	if err != nil {
		t.Fatal(err)
	}
	st.Server = srv
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	st.URL = hs.URL
	// Identity providers send browsers back to the api where it listens.
	srv.PublicURL = hs.URL
	return st
}

// startWorker starts a worker with deps on the stack's Temporal server.
func (st *stack) startWorker(deps workers.Deps) worker.Worker {
	return st.TS.NewWorker(workflows.AppointmentTaskQueue, func(r worker.Registry) { workers.Register(r, deps) })
}

// testWebhookSecret is tenant demo's Stripe endpoint secret in tests.
const testWebhookSecret = "whsec_carebook_test"

// stripeMockURL is the stripe-mock that TestMain starts for the package.
var stripeMockURL string

// gateway is the S3 gateway (versitygw) that TestMain starts for the
// package; each stack gets its own bucket on it.
var gateway *versitygw.Server

// mailbox is the Mailpit that TestMain starts for the package: every
// stack's account mails land in it (tests search it by recipient).
var mailbox *mailpit.Server

func TestMain(m *testing.M) {
	mock, err := stripemock.Start(context.Background())
	if err != nil {
		println("api tests need stripe-mock:", err.Error())
		os.Exit(1)
	}
	stripeMockURL = mock.URL
	dir, err := os.MkdirTemp("", "carebook-api-s3-")
	if err != nil {
		println(err.Error())
		os.Exit(1)
	}
	gateway, err = versitygw.Start(context.Background(), dir)
	if err != nil {
		println("api tests need versitygw:", err.Error())
		mock.Stop()
		os.Exit(1)
	}
	mailDir, err := os.MkdirTemp("", "carebook-api-mail-")
	if err != nil {
		println(err.Error())
		os.Exit(1)
	}
	mailbox, err = mailpit.Start(context.Background(), mailDir, mailpit.Options{})
	if err != nil {
		println("api tests need mailpit:", err.Error())
		mock.Stop()
		gateway.Stop()
		os.Exit(1)
	}
	code := m.Run()
	mailbox.Stop()
	os.RemoveAll(mailDir)
	mock.Stop()
	gateway.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newTestStore is an object store on the package's gateway with a bucket of
// the test's own.
func newTestStore(t *testing.T) *objstore.Store {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	store, err := objstore.New(objstore.Config{Endpoint: gateway.Endpoint, Region: gateway.Region, Bucket: "t-" + hex.EncodeToString(b[:]),
		AccessKey: gateway.AccessKey, SecretKey: gateway.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (r response) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// problemType is the short type of a problem document.
func (r response) problemType() string {
	const base = "https://carebook.dev/problems/"
	t := r.str("type")
	if len(t) > len(base) {
		return t[len(base):]
	}
	return t
}

func (r response) items() []map[string]any {
	raw, _ := r.Body["items"].([]any)
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i], _ = x.(map[string]any)
	}
	return out
}

// do sends a request; body is JSON-encoded unless it is a string or
// []byte, which go as they are.
func (st *stack) do(method, path, token string, body any, headers ...string) response {
	st.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			st.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, st.URL+path, rd)
	if err != nil {
		st.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.Body)
	return out
}

// login returns an access token for a seeded account, answering the MFA
// challenge of the roles that have one.
func (st *stack) login(tenant, email string) string {
	st.t.Helper()
	r := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": tenant, "email": email, "password": demo.Password})
	if r.Status == http.StatusAccepted && r.str("status") == "mfa_required" {
		r = st.do("POST", "/v1/auth/mfa/verify", "", map[string]string{"mfa_token": r.str("mfa_token"), "code": st.totpCode(tenant, email)})
	}
	if r.Status != http.StatusOK {
		st.t.Fatalf("login %s: %d %s", email, r.Status, r.Raw)
	}
	return r.str("access_token")
}

// totpCode is a code of a seeded account's demo TOTP secret, for a step
// the account has not spent. Tests log one account in more often than a
// person with one phone could (the server takes each step once, and only
// the steps around now), so once those are spent the replay guard is
// reset through the owner connection.
func (st *stack) totpCode(tenant, email string) string {
	st.t.Helper()
	var last int64
	q := "SELECT m.last_step FROM user_mfa m JOIN users u ON u.id = m.user_id JOIN tenants t ON t.id = u.tenant_id WHERE t.slug = ? AND u.email = ?"
	if err := st.Admin.Raw(q, tenant, email).Scan(&last).Error; err != nil {
		st.t.Fatal(err)
	}
	now := totp.Step(st.Server.Now())
	step := max(now, last+1)
	if step > now+totp.Skew {
		err := st.Admin.Exec("UPDATE user_mfa SET last_step = 0 WHERE user_id = (SELECT u.id FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.slug = ? AND u.email = ?)",
			tenant, email).Error
		if err != nil {
			st.t.Fatal(err)
		}
		step = now
	}
	code, err := totp.CodeAt(demo.TOTPSecretFor(tenant, email), step)
	if err != nil {
		st.t.Fatal(err)
	}
	return code
}

// freeSlots lists free slots of a practitioner for a type from tomorrow on.
func (st *stack) freeSlots(token string, practitioner, typ uuid.UUID) []map[string]any {
	st.t.Helper()
	from := time.Now().AddDate(0, 0, 1).Format(time.DateOnly)
	to := time.Now().AddDate(0, 0, 15).Format(time.DateOnly)
	r := st.do("GET", "/v1/practitioners/"+practitioner.String()+"/slots?appointment_type_id="+typ.String()+"&from="+from+"&to="+to, token, nil)
	if r.Status != http.StatusOK {
		st.t.Fatalf("slots: %d %s", r.Status, r.Raw)
	}
	return r.items()
}

// count counts rows through the owner connection, across tenants.
func (st *stack) count(sql string, args ...any) int64 {
	st.t.Helper()
	var n int64
	if err := st.Admin.Raw(sql, args...).Scan(&n).Error; err != nil {
		st.t.Fatal(err)
	}
	return n
}

// Demo fixtures, by index in demo's lists: practitioner 2 is the Istanbul
// family doctor, type 0 the family visit (20 min, free, no buffers).
func (st *stack) familyDoctor() (uuid.UUID, uuid.UUID) {
	return st.Demo.Practitioners[2].ID, st.Demo.Types[0].ID
}

// testLog sends the api's log lines to the test's log, shown on failure.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
