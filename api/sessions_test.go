package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/carebook/carebook/api"
	"github.com/carebook/carebook/models"
	"github.com/carebook/carebook/models/demo"
)

// TestSessionsRotateAndRevoke: a login opens a session; each refresh
// retires the refresh token it used; using a retired one ends the whole
// session; logout ends one session and "log out everywhere" ends all of
// them and the access tokens issued before it.
func TestSessionsRotateAndRevoke(t *testing.T) {
	st := newStack(t)
	login := func() response {
		r := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": "john@demo.carebook.test", "password": demo.Password})
		if r.Status != http.StatusOK || r.str("refresh_token") == "" {
			t.Fatalf("login: %d %s", r.Status, r.Raw)
		}
		return r
	}
	refresh := func(token string) response {
		return st.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": token})
	}

	first := login()
	r1 := refresh(first.str("refresh_token"))
	if r1.Status != http.StatusOK || r1.str("refresh_token") == first.str("refresh_token") || r1.str("access_token") == "" {
		t.Fatalf("refresh: %d %s", r1.Status, r1.Raw)
	}
	if me := st.do("GET", "/v1/me", r1.str("access_token"), nil); me.Status != http.StatusOK || me.str("email") != "john@demo.carebook.test" {
		t.Fatalf("me with the refreshed token: %d %s", me.Status, me.Raw)
	}
	r2 := refresh(r1.str("refresh_token"))
	if r2.Status != http.StatusOK {
		t.Fatalf("second refresh: %d", r2.Status)
	}
	// The first refresh token again: a copy is in use, the family ends,
	// and the newest token of the family no longer works either.
	if r := refresh(first.str("refresh_token")); r.Status != http.StatusUnauthorized || r.problemType() != "session-ended" {
		t.Fatalf("reused refresh token: %d %s", r.Status, r.Raw)
	}
	if r := refresh(r2.str("refresh_token")); r.Status != http.StatusUnauthorized {
		t.Fatalf("the family's newest token after a reuse: %d", r.Status)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'refresh-reused'"); n != 1 {
		t.Fatalf("reuse audit events = %d", n)
	}

	// Logout ends that session only.
	a, b := login(), login()
	if r := st.do("POST", "/v1/auth/logout", a.str("access_token"), map[string]string{"refresh_token": a.str("refresh_token")}); r.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.Status, r.Raw)
	}
	if r := refresh(a.str("refresh_token")); r.Status != http.StatusUnauthorized {
		t.Fatalf("refresh after logout: %d", r.Status)
	}
	if r := refresh(b.str("refresh_token")); r.Status != http.StatusOK {
		t.Fatalf("the other session after logout: %d", r.Status)
	}
	// Another user cannot end John's session with his refresh token.
	c := login()
	ayse := st.login("demo", "ayse@demo.carebook.test")
	st.do("POST", "/v1/auth/logout", ayse, map[string]string{"refresh_token": c.str("refresh_token")})
	if r := refresh(c.str("refresh_token")); r.Status != http.StatusOK {
		t.Fatalf("someone else's logout ended the session: %d", r.Status)
	}

	// Everywhere: every session and every access token issued so far.
	d := login()
	if r := st.do("POST", "/v1/auth/logout-all", d.str("access_token"), nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout-all: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/me", d.str("access_token"), nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("an access token from before logout-all: %d", r.Status)
	}
	if r := refresh(d.str("refresh_token")); r.Status != http.StatusUnauthorized {
		t.Fatalf("a session from before logout-all: %d", r.Status)
	}
	if r := st.do("GET", "/v1/me", login().str("access_token"), nil); r.Status != http.StatusOK {
		t.Fatalf("a login after logout-all: %d", r.Status)
	}
	if r := st.do("GET", "/v1/me", ayse, nil); r.Status != http.StatusOK {
		t.Fatalf("another user after John's logout-all: %d", r.Status)
	}
	// A session the user's list no longer names (the list expired while
	// the session lived on by refreshing) still ends.
	e := login()
	if err := st.Server.Redis.Del(t.Context(), st.Server.RedisPrefix+"user-sessions:"+st.userID("john@demo.carebook.test")).Err(); err != nil {
		t.Fatal(err)
	}
	e2 := refresh(e.str("refresh_token"))
	if e2.Status != http.StatusOK {
		t.Fatalf("refresh: %d", e2.Status)
	}
	if err := st.Server.Redis.Del(t.Context(), st.Server.RedisPrefix+"user-sessions:"+st.userID("john@demo.carebook.test")).Err(); err != nil {
		t.Fatal(err)
	}
	if r := st.do("POST", "/v1/auth/logout-all", e2.str("access_token"), nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout-all: %d", r.Status)
	}
	if r := refresh(e2.str("refresh_token")); r.Status != http.StatusUnauthorized {
		t.Fatalf("a session missing from the list survived logout-all: %d", r.Status)
	}
	for _, bad := range []string{"", "x", "0123456789abcdef0123456789abcdef.nope"} {
		if r := refresh(bad); r.Status == http.StatusOK {
			t.Fatalf("refresh with %q: %d", bad, r.Status)
		}
	}
}

// TestAccessTokensEndWithTheirSession: an access token names its session
// and works only while the session is open. A logout ends that session's
// access tokens at once; a reused refresh token ends every access token
// of its family; the user's other sessions keep working; a token that
// names no session is refused.
func TestAccessTokensEndWithTheirSession(t *testing.T) {
	st := newStack(t)
	login := func() response {
		r := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": "john@demo.carebook.test", "password": demo.Password})
		if r.Status != http.StatusOK {
			t.Fatalf("login: %d %s", r.Status, r.Raw)
		}
		return r
	}
	me := func(token string) response { return st.do("GET", "/v1/me", token, nil) }
	refresh := func(token string) response {
		return st.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": token})
	}
	wantEnded := func(what, token string) {
		t.Helper()
		if r := me(token); r.Status != http.StatusUnauthorized || r.problemType() != "session-ended" {
			t.Errorf("%s: %d %s, want 401 session-ended", what, r.Status, r.Raw)
		}
	}
	wantWorks := func(what, token string) {
		t.Helper()
		if r := me(token); r.Status != http.StatusOK {
			t.Errorf("%s: %d %s, want 200", what, r.Status, r.Raw)
		}
	}

	// Logout: that session's access token stops at once, another
	// session of the same user goes on.
	a, b := login(), login()
	wantWorks("before logout", a.str("access_token"))
	if r := st.do("POST", "/v1/auth/logout", a.str("access_token"), map[string]string{"refresh_token": a.str("refresh_token")}); r.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.Status, r.Raw)
	}
	wantEnded("the logged-out session's access token", a.str("access_token"))
	wantWorks("another session after logout", b.str("access_token"))

	// Logging out another of one's sessions with this session's token
	// ends that one, not this one.
	c := login()
	if r := st.do("POST", "/v1/auth/logout", b.str("access_token"), map[string]string{"refresh_token": c.str("refresh_token")}); r.Status != http.StatusNoContent {
		t.Fatalf("logout of another session: %d %s", r.Status, r.Raw)
	}
	wantEnded("the session logged out from elsewhere", c.str("access_token"))
	wantWorks("the session that logged it out", b.str("access_token"))

	// With the access token alone, its own session ends.
	e := login()
	if r := st.do("POST", "/v1/auth/logout", e.str("access_token"), nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout without a body: %d %s", r.Status, r.Raw)
	}
	wantEnded("the session logged out by its access token", e.str("access_token"))
	if r := refresh(e.str("refresh_token")); r.Status != http.StatusUnauthorized {
		t.Errorf("its refresh token after the logout: %d %s", r.Status, r.Raw)
	}
	wantWorks("another session after a bodiless logout", b.str("access_token"))
	f := login()
	if r := st.do("POST", "/v1/auth/logout", f.str("access_token"), map[string]string{}); r.Status != http.StatusNoContent {
		t.Fatalf("logout with an empty body: %d %s", r.Status, r.Raw)
	}
	wantEnded("the session logged out with an empty body", f.str("access_token"))

	// A reused refresh token: every access token of the family stops,
	// the first and the refreshed one alike; the other session goes on.
	d := login()
	d1 := refresh(d.str("refresh_token"))
	if d1.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", d1.Status, d1.Raw)
	}
	wantWorks("the refreshed token", d1.str("access_token"))
	if r := refresh(d.str("refresh_token")); r.Status != http.StatusUnauthorized {
		t.Fatalf("reused refresh token: %d %s", r.Status, r.Raw)
	}
	wantEnded("the family's first access token after a reuse", d.str("access_token"))
	wantEnded("the family's newest access token after a reuse", d1.str("access_token"))
	wantWorks("another session after a reuse", b.str("access_token"))

	// A token without a session (one this server would never issue) is
	// refused, even correctly signed.
	tokens, err := api.NewTokens([]byte("test-signing-key-test-signing-key!!"), nil)
	if err != nil {
		t.Fatal(err)
	}
	john := uuid.MustParse(st.userID("john@demo.carebook.test"))
	bare, _, err := tokens.Issue(api.Principal{UserID: john, TenantID: st.Demo.Tenant.ID, Role: models.RolePatient})
	if err != nil {
		t.Fatal(err)
	}
	wantEnded("a token naming no session", bare)
	named, _, err := tokens.Issue(api.Principal{UserID: john, TenantID: st.Demo.Tenant.ID, Role: models.RolePatient, SessionID: strings.Repeat("ab", 16)})
	if err != nil {
		t.Fatal(err)
	}
	wantEnded("a token naming a session that never was", named)
}
