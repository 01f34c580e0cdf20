package api_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testIdP is a tenant's identity provider for the tests: discovery, keys,
// an authorize endpoint that signs in whoever the test says, and a token
// endpoint that checks the client, the redirect and PKCE. A hospital's
// real provider cannot run here; this one speaks the same protocol.
type testIdP struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey
	secret string

	mu sync.Mutex
	// Who signs in next, and how.
	subject, email string
	verified       bool
	amr            []string
	// badNonce and foreignKey make the next ID token wrong.
	badNonce, foreignKey bool
	// verifiedAsString sends email_verified as "true"/"false".
	verifiedAsString bool
	codes            map[string]idpCode
}

type idpCode struct {
	nonce, challenge, redirect string
}

func newTestIdP(t *testing.T) *testIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &testIdP{t: t, key: key, secret: "idp-client-secret-9d1f", codes: map[string]idpCode{}, verified: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": p.srv.URL, "authorization_endpoint": p.srv.URL + "/authorize", "token_endpoint": p.srv.URL + "/token",
			"jwks_uri": p.srv.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		pub := key.PublicKey
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "carebook-demo" || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") == "" || q.Get("nonce") == "" || !strings.Contains(q.Get("scope"), "openid") {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		code := "code-" + q.Get("state")[:8]
		p.mu.Lock()
		p.codes[code] = idpCode{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		p.mu.Lock()
		c, found := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if id != "carebook-demo" || secret != p.secret || !found || c.redirect != r.PostFormValue("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": p.idToken(c.nonce)})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// signInAs sets who the provider signs in next.
func (p *testIdP) signInAs(subject, email string, verified bool, amr ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subject, p.email, p.verified, p.amr = subject, email, verified, amr
	p.badNonce, p.foreignKey, p.verifiedAsString = false, false, false
}

func (p *testIdP) idToken(nonce string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.badNonce {
		nonce = "another-nonce"
	}
	now := time.Now()
	claims := jwt.MapClaims{"iss": p.srv.URL, "sub": p.subject, "aud": "carebook-demo", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": nonce, "email": p.email, "email_verified": p.verified}
	if p.verifiedAsString {
		claims["email_verified"] = fmt.Sprint(p.verified)
	}
	if p.amr != nil {
		claims["amr"] = p.amr
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "k1"
	key := p.key
	if p.foreignKey {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			p.t.Fatal(err)
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// browser follows no redirects: each hop is checked by the test.
var browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, u string) *http.Response {
	t.Helper()
	res, err := browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// ssoRound walks a browser through start, provider and callback, and
// answers where the api finally sent it.
func (st *stack) ssoRound(t *testing.T, tenant string) *url.URL {
	t.Helper()
	start := get(t, st.URL+"/v1/auth/oidc/start?tenant="+tenant+"&return_to="+url.QueryEscape("https://app.carebook.test/sso"))
	if start.StatusCode != http.StatusFound {
		t.Fatalf("start: %d", start.StatusCode)
	}
	atIdP := get(t, start.Header.Get("Location"))
	if atIdP.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d", atIdP.StatusCode)
	}
	cb := atIdP.Header.Get("Location")
	if !strings.HasPrefix(cb, st.URL+"/v1/auth/oidc/callback?") {
		t.Fatalf("provider sent the browser to %s", cb)
	}
	back := get(t, cb)
	if back.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d", back.StatusCode)
	}
	to, err := url.Parse(back.Header.Get("Location"))
	if err != nil || to.Host != "app.carebook.test" || to.Path != "/sso" {
		t.Fatalf("callback sent the browser to %s", back.Header.Get("Location"))
	}
	// Replaying the callback finds its state spent.
	if again := st.do("GET", strings.TrimPrefix(cb, st.URL), "", nil); again.Status != http.StatusBadRequest || again.problemType() != "invalid-oidc-state" {
		t.Fatalf("replayed callback: %d %s", again.Status, again.Raw)
	}
	return to
}

func fragment(u *url.URL, key string) string {
	v, _ := url.ParseQuery(u.Fragment)
	return v.Get(key)
}

func (st *stack) configureIdP(t *testing.T, admin string, idp *testIdP, trustMFA bool, domains ...string) {
	t.Helper()
	if domains == nil {
		domains = []string{}
	}
	r := st.do("PUT", "/v1/admin/identity-provider", admin, map[string]any{"issuer": idp.srv.URL, "client_id": "carebook-demo",
		"client_secret": idp.secret, "email_domains": domains, "trust_idp_mfa": trustMFA})
	if r.Status != http.StatusOK {
		t.Fatalf("configure provider: %d %s", r.Status, r.Raw)
	}
}

// TestSingleSignOnThroughTheTenantsProvider signs people in through the
// tenant's OpenID Connect provider: linked by verified e-mail on the first
// sign-in and by subject after; codes and states single use; MFA still
// asked of the roles that need it unless the tenant trusts the provider's.
func TestSingleSignOnThroughTheTenantsProvider(t *testing.T) {
	st := newStack(t)
	// Many sign-ins from one address; the limit is not what this tests.
	st.Server.LoginLimit = 1000
	idp := newTestIdP(t)
	admin := st.login("demo", "admin@demo.carebook.test")
	harborAdmin := st.login("harbor", "admin@harbor.carebook.test")

	if r := st.do("GET", "/v1/admin/identity-provider", admin, nil); r.Status != http.StatusNotFound {
		t.Fatalf("no provider yet: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/auth/oidc/start?tenant=demo&return_to="+url.QueryEscape("https://app.carebook.test/sso"), "", nil); r.Status != http.StatusNotFound {
		t.Fatalf("start without a provider: %d %s", r.Status, r.Raw)
	}
	st.configureIdP(t, admin, idp, false, "demo.carebook.test")
	got := st.do("GET", "/v1/admin/identity-provider", admin, nil)
	if got.Status != http.StatusOK || got.str("issuer") != idp.srv.URL || got.str("redirect_uri") != st.URL+"/v1/auth/oidc/callback" ||
		strings.Contains(string(got.Raw), idp.secret) {
		t.Fatalf("provider read back: %d %s", got.Status, got.Raw)
	}
	var sealed []byte
	if err := st.Admin.Raw(`SELECT client_secret_enc FROM identity_providers WHERE tenant_id = ?`, st.Demo.Tenant.ID).Row().Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if len(sealed) == 0 || bytes.Contains(sealed, []byte(idp.secret)) {
		t.Fatalf("client secret stored as %q", sealed)
	}

	// A patient's first sign-in links her account by its verified e-mail.
	idp.signInAs("idp-sub-ayse", "Ayse@demo.carebook.test", true)
	to := st.ssoRound(t, "demo")
	code := fragment(to, "login_code")
	if code == "" || to.RawQuery != "" {
		t.Fatalf("return URL %s: want only a login code in the fragment", to)
	}
	tok := st.do("POST", "/v1/auth/oidc/token", "", map[string]string{"code": code})
	if tok.Status != http.StatusOK || tok.str("access_token") == "" || tok.str("refresh_token") == "" {
		t.Fatalf("token: %d %s", tok.Status, tok.Raw)
	}
	if me := st.do("GET", "/v1/me", tok.str("access_token"), nil); me.str("email") != "ayse@demo.carebook.test" {
		t.Fatalf("signed in as %s", me.Raw)
	}
	if again := st.do("POST", "/v1/auth/oidc/token", "", map[string]string{"code": code}); again.Status != http.StatusUnauthorized {
		t.Fatalf("login code used twice: %d %s", again.Status, again.Raw)
	}
	if n := st.count(`SELECT count(*) FROM audit_events WHERE action = 'login' AND reason = 'oidc' AND actor_user = (SELECT id FROM users WHERE email = 'ayse@demo.carebook.test')`); n != 1 {
		t.Fatalf("%d oidc login events", n)
	}

	// Some providers send email_verified as a string: it counts the same.
	idp.signInAs("idp-sub-john", "john@demo.carebook.test", true)
	idp.mu.Lock()
	idp.verifiedAsString = true
	idp.mu.Unlock()
	tok = st.do("POST", "/v1/auth/oidc/token", "", map[string]string{"code": fragment(st.ssoRound(t, "demo"), "login_code")})
	if me := st.do("GET", "/v1/me", tok.str("access_token"), nil); me.str("email") != "john@demo.carebook.test" {
		t.Fatalf("email_verified \"true\": %d %s", tok.Status, tok.Raw)
	}

	// Later the subject alone decides, whatever e-mail the provider sends.
	idp.signInAs("idp-sub-ayse", "ayse.new@elsewhere.test", false)
	tok = st.do("POST", "/v1/auth/oidc/token", "", map[string]string{"code": fragment(st.ssoRound(t, "demo"), "login_code")})
	if me := st.do("GET", "/v1/me", tok.str("access_token"), nil); me.str("email") != "ayse@demo.carebook.test" {
		t.Fatalf("linked subject signed in as %s", me.Raw)
	}

	// No account is found, and none is made, for: an unverified e-mail, a
	// domain outside the allowed ones, another tenant's address, and a
	// second subject claiming an account that is already linked.
	users := st.count(`SELECT count(*) FROM users`)
	for _, c := range []struct{ sub, email string }{
		{"idp-sub-x1", "john@demo.carebook.test"}, // unverified below
		{"idp-sub-x2", "john@elsewhere.test"},
		{"idp-sub-x3", "ayse@harbor.carebook.test"},
		{"idp-sub-x4", "ayse@demo.carebook.test"},
	} {
		idp.signInAs(c.sub, c.email, c.sub != "idp-sub-x1")
		to := st.ssoRound(t, "demo")
		if fragment(to, "error") != "no-account" || fragment(to, "login_code") != "" {
			t.Errorf("%s <%s>: sent to %s, want #error=no-account", c.sub, c.email, to)
		}
	}
	if n := st.count(`SELECT count(*) FROM users`); n != users {
		t.Errorf("sign-ins made %d accounts", n-users)
	}
	if n := st.count(`SELECT count(*) FROM audit_events WHERE action = 'login-failed' AND reason LIKE 'oidc: no account%'`); n != 4 {
		t.Errorf("%d failed oidc sign-ins audited, want 4", n)
	}

	// A token that does not verify, or answers another sign-in's nonce,
	// signs nobody in.
	idp.signInAs("idp-sub-ayse", "ayse@demo.carebook.test", true)
	idp.foreignKey = true
	if to := st.ssoRound(t, "demo"); fragment(to, "error") != "sso-failed" {
		t.Errorf("token signed by another key: sent to %s", to)
	}
	idp.signInAs("idp-sub-ayse", "ayse@demo.carebook.test", true)
	idp.badNonce = true
	if to := st.ssoRound(t, "demo"); fragment(to, "error") != "sso-failed" {
		t.Errorf("token for another nonce: sent to %s", to)
	}

	// A doctor (MFA required) still meets Carebook's second step...
	idp.signInAs("idp-sub-doc1", "doctor1@demo.carebook.test", true, "pwd", "mfa")
	r := st.do("POST", "/v1/auth/oidc/token", "", map[string]string{"code": fragment(st.ssoRound(t, "demo"), "login_code")})
	if r.Status != http.StatusAccepted || r.str("status") != "mfa_required" || r.str("access_token") != "" {
		t.Fatalf("doctor without trusted provider MFA: %d %s", r.Status, r.Raw)
	}
	// ...unless the tenant trusts the provider's, and the token says one
	// was used.
	st.configureIdP(t, admin, idp, true, "demo.carebook.test")
	r = st.do("POST", "/v1/auth/oidc/token", "", map[string]string{"code": fragment(st.ssoRound(t, "demo"), "login_code")})
	if r.Status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("doctor with the provider's MFA: %d %s", r.Status, r.Raw)
	}
	idp.signInAs("idp-sub-doc1", "doctor1@demo.carebook.test", true, "pwd")
	r = st.do("POST", "/v1/auth/oidc/token", "", map[string]string{"code": fragment(st.ssoRound(t, "demo"), "login_code")})
	if r.Status != http.StatusAccepted {
		t.Fatalf("doctor with a password only at the provider: %d %s", r.Status, r.Raw)
	}

	// Another tenant has no provider; demo's does not serve it.
	if r := st.do("GET", "/v1/auth/oidc/start?tenant=harbor&return_to="+url.QueryEscape("https://app.carebook.test/sso"), "", nil); r.Status != http.StatusNotFound {
		t.Fatalf("harbor start: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/admin/identity-provider", harborAdmin, nil); r.Status != http.StatusNotFound {
		t.Fatalf("harbor reads a provider: %d %s", r.Status, r.Raw)
	}

	// Removing the provider ends single sign-on and its links.
	if r := st.do("DELETE", "/v1/admin/identity-provider", admin, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	if n := st.count(`SELECT count(*) FROM user_identities`); n != 0 {
		t.Fatalf("%d links left", n)
	}
}

// TestSingleSignOnRefusesBadInput: a return address off the apps'
// origins, an issuer that is not https (or not there), and unknown or
// missing states and codes are refused and change nothing.
func TestSingleSignOnRefusesBadInput(t *testing.T) {
	st := newStack(t)
	idp := newTestIdP(t)
	admin := st.login("demo", "admin@demo.carebook.test")
	for _, c := range []struct {
		name   string
		body   map[string]any
		status int
		typ    string
	}{
		{"plain http issuer", map[string]any{"issuer": "http://idp.example.com", "client_id": "c", "client_secret": "s"}, 422, "invalid-issuer"},
		{"issuer with a query", map[string]any{"issuer": idp.srv.URL + "?x=1", "client_id": "c", "client_secret": "s"}, 422, "invalid-issuer"},
		{"nothing there", map[string]any{"issuer": "http://127.0.0.1:1", "client_id": "c", "client_secret": "s"}, 422, "issuer-unreachable"},
		{"issuer of another name", map[string]any{"issuer": strings.Replace(idp.srv.URL, "127.0.0.1", "localhost", 1), "client_id": "c", "client_secret": "s"}, 422, "issuer-unreachable"},
		{"bad domain", map[string]any{"issuer": idp.srv.URL, "client_id": "c", "client_secret": "s", "email_domains": []string{"not a domain"}}, 422, "invalid-email-domain"},
		{"no secret for a new provider", map[string]any{"issuer": idp.srv.URL, "client_id": "c"}, 422, "client-secret-required"},
	} {
		r := st.do("PUT", "/v1/admin/identity-provider", admin, c.body)
		if r.Status != c.status || r.problemType() != c.typ {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.Status, r.Raw, c.status, c.typ)
		}
	}
	if n := st.count(`SELECT count(*) FROM identity_providers`); n != 0 {
		t.Fatalf("bad input saved %d providers", n)
	}
	st.configureIdP(t, admin, idp, false)
	// Another client ID must bring its own secret; the same one may be
	// updated without it, and keeps the sealed secret.
	if r := st.do("PUT", "/v1/admin/identity-provider", admin, map[string]any{"issuer": idp.srv.URL, "client_id": "another-client"}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "client-secret-required" {
		t.Errorf("new client ID without its secret: %d %s", r.Status, r.Raw)
	}
	var sealedBefore, sealedAfter []byte
	_ = st.Admin.Raw(`SELECT client_secret_enc FROM identity_providers`).Row().Scan(&sealedBefore)
	if r := st.do("PUT", "/v1/admin/identity-provider", admin, map[string]any{"issuer": idp.srv.URL, "client_id": "carebook-demo", "email_domains": []string{"demo.carebook.test"}}); r.Status != http.StatusOK {
		t.Errorf("update without the secret: %d %s", r.Status, r.Raw)
	}
	if err := st.Admin.Raw(`SELECT client_secret_enc FROM identity_providers`).Row().Scan(&sealedAfter); err != nil || !bytes.Equal(sealedBefore, sealedAfter) || len(sealedAfter) == 0 {
		t.Errorf("the sealed secret changed on an update without one: %v", err)
	}
	for _, c := range []struct {
		name, path string
		status     int
		typ        string
	}{
		{"return to another site", "/v1/auth/oidc/start?tenant=demo&return_to=" + url.QueryEscape("https://evil.example/sso"), 400, "invalid-return-to"},
		{"return to nowhere", "/v1/auth/oidc/start?tenant=demo", 400, "invalid-return-to"},
		{"unknown tenant", "/v1/auth/oidc/start?tenant=nowhere&return_to=" + url.QueryEscape("https://app.carebook.test/sso"), 404, "not-found"},
		{"unknown state", "/v1/auth/oidc/callback?code=x&state=forged", 400, "invalid-oidc-state"},
		{"no state", "/v1/auth/oidc/callback?code=x", 400, "invalid-oidc-state"},
	} {
		r := st.do("GET", c.path, "", nil)
		if r.Status != c.status || r.problemType() != c.typ {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.Status, r.Raw, c.status, c.typ)
		}
	}
	for _, body := range []any{map[string]string{"code": "oc_forged"}, map[string]string{}, `{"code":`} {
		r := st.do("POST", "/v1/auth/oidc/token", "", body)
		if r.Status != http.StatusUnauthorized && r.Status != http.StatusBadRequest {
			t.Errorf("token %v: %d %s", body, r.Status, r.Raw)
		}
	}
	// The provider refusing (the user cancelled) comes back as its code.
	start := get(t, st.URL+"/v1/auth/oidc/start?tenant=demo&return_to="+url.QueryEscape("https://app.carebook.test/sso"))
	state := mustURL(t, start.Header.Get("Location")).Query().Get("state")
	back := get(t, st.URL+"/v1/auth/oidc/callback?error=access_denied&error_description=Ay%C5%9Fe+cancelled&state="+url.QueryEscape(state))
	if loc := mustURL(t, back.Header.Get("Location")); fragment(loc, "error") != "access_denied" || strings.Contains(loc.String(), "cancelled") {
		t.Fatalf("provider refusal sent the browser to %s", loc)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
