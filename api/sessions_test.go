package api_test

import (
	"net/http"
	"testing"

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
