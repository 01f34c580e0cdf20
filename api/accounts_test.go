package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carebook/carebook/mail/mailpit"
	"github.com/carebook/carebook/models/demo"
)

// tokenInLink is how the account mails carry their secret: in the link's
// fragment (and once more as a code).
var tokenInLink = regexp.MustCompile(`https://app\.carebook\.test/[a-z-]+#token=([A-Za-z0-9_-]{43})`)

// mailsTo waits until the package's Mailpit holds n messages to addr and
// returns them, newest first, with their text.
func mailsTo(t *testing.T, addr string, n int) []mailpit.Message {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := mailbox.Search(ctx, `to:"`+addr+`"`)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) >= n {
			out := make([]mailpit.Message, len(list))
			for i, s := range list {
				if out[i], err = mailbox.Message(ctx, s.ID); err != nil {
					t.Fatal(err)
				}
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails to %s, want %d", len(list), addr, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tokenOf reads the token from an account mail, checking that the link and
// the code carry the same one.
func tokenOf(t *testing.T, m mailpit.Message) string {
	t.Helper()
	found := tokenInLink.FindAllStringSubmatch(m.Text, -1)
	if len(found) != 2 || found[0][1] != found[1][1] {
		t.Fatalf("want the same link in English and Turkish, got %q", m.Text)
	}
	if !strings.Contains(m.Text, "code in the app: "+found[0][1]) {
		t.Fatalf("no code in %q", m.Text)
	}
	return found[0][1]
}

func uniqueAddress(prefix string) string {
	return prefix + "-" + uuid.NewString()[:8] + "@example.test"
}

// withClock runs fn with the api's clock moved by d.
func (st *stack) withClock(d time.Duration, fn func()) {
	st.Server.Now = func() time.Time { return time.Now().Add(d) }
	defer func() { st.Server.Now = time.Now }()
	fn()
}

// TestEmailVerificationWorksOnceAndExpires: sign-up mails a link whose
// token verifies the address once; a used, expired, unknown or malformed
// token gets one answer; only the token's hash is stored; the mail holds
// no patient data; a verified user cannot ask for another link and the
// demo users are seeded verified.
func TestEmailVerificationWorksOnceAndExpires(t *testing.T) {
	st := newStack(t)
	// signup signs up and then logs in: sign-up answers no tokens.
	signup := func(email string) response {
		r := st.do("POST", "/v1/auth/signup", "", map[string]string{"tenant": "demo", "email": email,
			"password": "velvet otter lantern 7", "given_name": "Zümrüt", "family_name": "Karakaya"})
		if r.Status != http.StatusAccepted || r.str("access_token") != "" {
			t.Fatalf("signup: %d %s", r.Status, r.Raw)
		}
		l := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": email, "password": "velvet otter lantern 7"})
		if l.Status != http.StatusOK {
			t.Fatalf("login after signup: %d %s", l.Status, l.Raw)
		}
		return l
	}
	verify := func(token string) response {
		return st.do("POST", "/v1/auth/verify-email", "", map[string]string{"token": token})
	}
	me := func(token string) bool {
		r := st.do("GET", "/v1/me", token, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("me: %d %s", r.Status, r.Raw)
		}
		v, ok := r.Body["email_verified"].(bool)
		if !ok {
			t.Fatalf("me has no email_verified: %s", r.Raw)
		}
		return v
	}

	addr := uniqueAddress("verify")
	s := signup(addr)
	if me(s.str("access_token")) {
		t.Fatal("a new account is verified before its link is opened")
	}
	mails := mailsTo(t, addr, 1)
	m := mails[0]
	if !strings.Contains(m.Subject, "Confirm your e-mail address") || !strings.Contains(m.Text, "Anatolia") && !strings.Contains(m.Text, "Demo Health") {
		t.Errorf("subject %q, text %q", m.Subject, m.Text)
	}
	for _, private := range []string{"Zümrüt", "Karakaya", "velvet"} {
		if strings.Contains(m.Text, private) || strings.Contains(m.Subject, private) {
			t.Errorf("the mail carries %q", private)
		}
	}
	token := tokenOf(t, m)
	sum := sha256.Sum256([]byte(token))
	if n := st.count("SELECT count(*) FROM account_tokens WHERE token_hash = decode(?, 'hex') AND purpose = 'verify-email' AND used_at IS NULL", hex.EncodeToString(sum[:])); n != 1 {
		t.Fatalf("%d unused tokens with the secret's hash", n)
	}
	if n := st.count("SELECT count(*) FROM account_tokens WHERE position(convert_to(?, 'UTF8') in token_hash) > 0", token); n != 0 {
		t.Fatal("the secret itself is stored")
	}

	if r := verify(token); r.Status != http.StatusNoContent {
		t.Fatalf("verify: %d %s", r.Status, r.Raw)
	}
	if !me(s.str("access_token")) {
		t.Fatal("not verified after the link")
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'email-verified'"); n != 1 {
		t.Errorf("%d email-verified audit events", n)
	}
	if r := st.do("POST", "/v1/me/verification-email", s.str("access_token"), nil); r.Status != http.StatusConflict || r.problemType() != "already-verified" {
		t.Errorf("resend when verified: %d %s", r.Status, r.Raw)
	}

	// A second account's link, opened a day and a minute later by the
	// server's clock, has expired; a resent link works.
	addr2 := uniqueAddress("expire")
	s2 := signup(addr2)
	late := tokenOf(t, mailsTo(t, addr2, 1)[0])
	refusals := map[string]string{"used": token, "unknown": "A" + token[1:], "malformed": "not-a-token"}
	st.withClock(verifyTTL+time.Minute, func() {
		refusals["expired"] = late
		for name, tok := range refusals {
			if r := verify(tok); r.Status != http.StatusUnprocessableEntity || r.problemType() != "invalid-token" {
				t.Errorf("%s token: %d %s", name, r.Status, r.Raw)
			}
		}
	})
	if me(s2.str("access_token")) {
		t.Fatal("an expired link verified the address")
	}
	if r := st.do("POST", "/v1/me/verification-email", s2.str("access_token"), nil); r.Status != http.StatusAccepted {
		t.Fatalf("resend: %d %s", r.Status, r.Raw)
	}
	fresh := mailsTo(t, addr2, 2)
	if r := verify(tokenOf(t, fresh[0])); r.Status != http.StatusNoContent {
		t.Fatalf("resent link: %d %s", r.Status, r.Raw)
	}
	if !me(s2.str("access_token")) {
		t.Fatal("the resent link did not verify")
	}

	if !me(st.login("demo", "ayse@demo.carebook.test")) {
		t.Error("demo users are seeded unverified")
	}
}

// verifyTTL mirrors the api's: a verification link works for 24 hours.
const verifyTTL = 24 * time.Hour

// TestPasswordResetAnswersAlikeAndEndsSessions: a reset for an unknown
// address or tenant answers exactly as one for a real account and mails
// nothing; the mailed token refuses weak passwords without being spent,
// then sets the password once, ends every session and access token, and
// clears the lockout; it expires after 30 minutes by the server's clock.
func TestPasswordResetAnswersAlikeAndEndsSessions(t *testing.T) {
	st := newStack(t)
	// Every request here comes from one address; the per-address limit
	// of resets is not what this test is about.
	st.Server.ResetLimit = 100
	const email = "paul@demo.carebook.test"
	login := func(password string) response {
		return st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": email, "password": password})
	}
	session := login(demo.Password)
	if session.Status != http.StatusOK {
		t.Fatalf("login: %d %s", session.Status, session.Raw)
	}
	for range 5 {
		login("not the password at all")
	}
	if r := login(demo.Password); r.Status != http.StatusTooManyRequests || r.problemType() != "account-locked" {
		t.Fatalf("after five failures: %d %s", r.Status, r.Raw)
	}

	reset := func(tenant, addr string) response {
		return st.do("POST", "/v1/auth/password-reset", "", map[string]string{"tenant": tenant, "email": addr})
	}
	nobody := "nobody-" + uuid.NewString()[:8] + "@demo.carebook.test"
	unknown, noTenant, known := reset("demo", nobody), reset("no-such-tenant", email), reset("demo", email)
	for name, r := range map[string]response{"unknown address": unknown, "unknown tenant": noTenant, "account": known} {
		if r.Status != http.StatusAccepted || string(r.Raw) != string(known.Raw) {
			t.Errorf("%s: %d %s, want 202 %s", name, r.Status, r.Raw, known.Raw)
		}
	}
	token := tokenOf(t, mailsTo(t, email, 1)[0])
	if list, err := mailbox.Search(context.Background(), `to:"`+nobody+`"`); err != nil || len(list) != 0 {
		t.Fatalf("mail to an address without an account: %d %v", len(list), err)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'password-reset-requested'"); n != 1 {
		t.Errorf("%d reset requests audited", n)
	}

	hashBefore := st.passwordHash(email)
	confirm := func(tok, password string) response {
		return st.do("POST", "/v1/auth/password-reset/confirm", "", map[string]string{"token": tok, "password": password})
	}
	refused := []struct {
		name, password, want string
	}{
		{"short", "kısa şifr", "weak-password"},
		{"too long", strings.Repeat("long passphrase ", 9), "weak-password"},
		{"the address", email, "password-is-email"},
		{"common", "1q2w3e4r5t6y", "breached-password"},
		{"a word and a year", "Password2026!", "breached-password"},
		{"the tenant", "demo-1234567", "breached-password"},
	}
	for _, tt := range refused {
		if r := confirm(token, tt.password); r.Status != http.StatusUnprocessableEntity || r.problemType() != tt.want {
			t.Errorf("%s: %d %s, want %s", tt.name, r.Status, r.Raw, tt.want)
		}
	}
	if st.passwordHash(email) != hashBefore {
		t.Fatal("a refused password changed the hash")
	}

	const newPassword = "violet kettle harbour 93"
	if r := confirm(token, newPassword); r.Status != http.StatusNoContent {
		t.Fatalf("confirm: %d %s", r.Status, r.Raw)
	}
	if r := confirm(token, "another good passphrase 4"); r.Status != http.StatusUnprocessableEntity || r.problemType() != "invalid-token" {
		t.Errorf("the token again: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": session.str("refresh_token")}); r.Status != http.StatusUnauthorized || r.problemType() != "session-ended" {
		t.Errorf("a refresh token from before the reset: %d %s", r.Status, r.Raw)
	}
	if r := st.do("GET", "/v1/me", session.str("access_token"), nil); r.Status != http.StatusUnauthorized {
		t.Errorf("an access token from before the reset: %d", r.Status)
	}
	if r := login(demo.Password); r.Status != http.StatusUnauthorized {
		t.Errorf("the old password: %d %s", r.Status, r.Raw)
	}
	if r := login(newPassword); r.Status != http.StatusOK {
		t.Errorf("the new password (the lockout cleared): %d %s", r.Status, r.Raw)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'password-reset'"); n != 1 {
		t.Errorf("%d resets audited", n)
	}

	// A second link, used 31 minutes later by the server's clock.
	if r := reset("demo", email); r.Status != http.StatusAccepted {
		t.Fatalf("reset: %d", r.Status)
	}
	late := tokenOf(t, mailsTo(t, email, 2)[0])
	st.withClock(31*time.Minute, func() {
		if r := confirm(late, "yet another passphrase 5"); r.Status != http.StatusUnprocessableEntity || r.problemType() != "invalid-token" {
			t.Errorf("an expired token: %d %s", r.Status, r.Raw)
		}
	})
	if r := login(newPassword); r.Status != http.StatusOK {
		t.Errorf("an expired token changed the password: %d", r.Status)
	}
}

// passwordHash reads a demo user's stored hash through the owner
// connection.
func (st *stack) passwordHash(email string) string {
	st.t.Helper()
	var h string
	if err := st.Admin.Raw("SELECT password_hash FROM users WHERE email = ?", email).Scan(&h).Error; err != nil {
		st.t.Fatal(err)
	}
	return h
}

// TestPasswordChangeAndRules: a signed-in change needs the current
// password, applies the rules (nothing changes when they refuse), ends the
// user's other sessions and answers a new one; sign-up applies the same
// rules.
func TestPasswordChangeAndRules(t *testing.T) {
	st := newStack(t)
	const email = "philip@demo.carebook.test"
	login := func(password string) response {
		return st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": email, "password": password})
	}
	mine, other := login(demo.Password), login(demo.Password)
	change := func(current, next string) response {
		return st.do("POST", "/v1/me/password", mine.str("access_token"), map[string]string{"current_password": current, "new_password": next})
	}
	before := st.passwordHash(email)
	refused := []struct {
		name, current, next, want string
	}{
		{"wrong current password", "not the password", "a perfectly fine passphrase", "wrong-password"},
		{"short", demo.Password, "short", "weak-password"},
		{"the local part", demo.Password, "philip", "weak-password"},
		{"the local part, long enough", demo.Password, "Philip1980!", "password-is-email"},
		{"the address", demo.Password, email, "password-is-email"},
		{"common", demo.Password, "qwertyuiop", "breached-password"},
		{"the product", demo.Password, "Carebook2026!", "breached-password"},
	}
	for _, tt := range refused {
		if r := change(tt.current, tt.next); r.Status != http.StatusUnprocessableEntity || r.problemType() != tt.want {
			t.Errorf("%s: %d %s, want %s", tt.name, r.Status, r.Raw, tt.want)
		}
	}
	if st.passwordHash(email) != before {
		t.Fatal("a refused change changed the hash")
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'password-change-failed'"); n != 1 {
		t.Errorf("%d failed changes audited", n)
	}

	const next = "granite swallow meadow 61"
	r := change(demo.Password, next)
	if r.Status != http.StatusOK || r.str("access_token") == "" || r.str("refresh_token") == "" {
		t.Fatalf("change: %d %s", r.Status, r.Raw)
	}
	if me := st.do("GET", "/v1/me", r.str("access_token"), nil); me.Status != http.StatusOK {
		t.Errorf("the new access token: %d", me.Status)
	}
	if rr := st.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": r.str("refresh_token")}); rr.Status != http.StatusOK {
		t.Errorf("the new session: %d %s", rr.Status, rr.Raw)
	}
	if rr := st.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": other.str("refresh_token")}); rr.Status != http.StatusUnauthorized {
		t.Errorf("the other session after the change: %d", rr.Status)
	}
	if me := st.do("GET", "/v1/me", other.str("access_token"), nil); me.Status != http.StatusUnauthorized {
		t.Errorf("an access token from before the change: %d", me.Status)
	}
	if l := login(next); l.Status != http.StatusOK {
		t.Errorf("login with the new password: %d", l.Status)
	}
	if l := login(demo.Password); l.Status != http.StatusUnauthorized {
		t.Errorf("login with the old password: %d", l.Status)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'password-changed'"); n != 1 {
		t.Errorf("%d changes audited", n)
	}

	for _, tt := range []struct{ name, password, want string }{
		{"breached", "Galatasaray1905", "breached-password"},
		{"the address", "sign.up.rules@example.test", "password-is-email"},
	} {
		s := st.do("POST", "/v1/auth/signup", "", map[string]string{"tenant": "demo", "email": "sign.up.rules@example.test",
			"password": tt.password, "given_name": "A", "family_name": "B"})
		if s.Status != http.StatusUnprocessableEntity || s.problemType() != tt.want {
			t.Errorf("signup %s: %d %s, want %s", tt.name, s.Status, s.Raw, tt.want)
		}
	}
	if n := st.count("SELECT count(*) FROM users WHERE email = 'sign.up.rules@example.test'"); n != 0 {
		t.Error("a refused sign-up created a user")
	}
}

// TestSignupAnswersAlikeAndMailsTheOwner: a sign-up with an address that
// already has an account answers exactly as one that creates an account
// (202, the same body, no tokens) and changes nothing of the account; the
// new address gets its verification link; the owner of the taken one is
// told by mail that someone tried, with a reset link that works, and the
// mail carries neither the account's names nor what the sign-up sent.
// Each attempt is audited.
func TestSignupAnswersAlikeAndMailsTheOwner(t *testing.T) {
	st := newStack(t)
	signup := func(email, password, given string) response {
		return st.do("POST", "/v1/auth/signup", "", map[string]string{"tenant": "demo", "email": email,
			"password": password, "given_name": given, "family_name": "Karakaya"})
	}
	addr := uniqueAddress("alike")
	first := signup(addr, "velvet otter lantern 7", "Zümrüt")
	if first.Status != http.StatusAccepted || first.str("access_token") != "" || first.str("refresh_token") != "" {
		t.Fatalf("first signup: %d %s", first.Status, first.Raw)
	}
	if m := mailsTo(t, addr, 1)[0]; !strings.Contains(m.Subject, "Confirm your e-mail address") {
		t.Fatalf("first mail: %q", m.Subject)
	}
	hashBefore := st.passwordHash(addr)

	// The same address again, in other case, with another password and
	// name: the same answer, byte for byte.
	again := signup(strings.ToUpper(addr), "marble heron quietly 3", "Mallory")
	if again.Status != first.Status || string(again.Raw) != string(first.Raw) ||
		again.Header.Get("Content-Type") != first.Header.Get("Content-Type") {
		t.Fatalf("signup of a taken address: %d %s, want %d %s", again.Status, again.Raw, first.Status, first.Raw)
	}
	mails := mailsTo(t, addr, 2)
	notice := mails[0]
	if !strings.Contains(notice.Subject, "Your account") || !strings.Contains(notice.Text, "already has one") {
		t.Fatalf("notice: %q %q", notice.Subject, notice.Text)
	}
	for _, private := range []string{"Zümrüt", "Mallory", "Karakaya", "velvet", "marble"} {
		if strings.Contains(notice.Text, private) || strings.Contains(notice.Subject, private) {
			t.Errorf("the notice carries %q", private)
		}
	}
	if st.passwordHash(addr) != hashBefore {
		t.Fatal("a sign-up of a taken address changed the password")
	}
	if n := st.count("SELECT count(*) FROM patients WHERE given_name = 'Mallory'"); n != 0 {
		t.Errorf("%d patients made by the second sign-up", n)
	}
	if n := st.count("SELECT count(*) FROM users WHERE lower(email) = lower(?)", addr); n != 1 {
		t.Errorf("%d users with the address", n)
	}
	if r := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": addr, "password": "marble heron quietly 3"}); r.Status != http.StatusUnauthorized {
		t.Errorf("login with the second sign-up's password: %d", r.Status)
	}
	for action, want := range map[string]int64{"signup": 1, "signup-attempt": 1} {
		if n := st.count("SELECT count(*) FROM audit_events WHERE action = ?", action); n != want {
			t.Errorf("%d %s audit events, want %d", n, action, want)
		}
	}

	// The notice's link is a password reset that works.
	const newPassword = "copper finch meadow 41"
	if r := st.do("POST", "/v1/auth/password-reset/confirm", "", map[string]string{"token": tokenOf(t, notice), "password": newPassword}); r.Status != http.StatusNoContent {
		t.Fatalf("reset from the notice: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "email": addr, "password": newPassword}); r.Status != http.StatusOK {
		t.Fatalf("login after the reset: %d %s", r.Status, r.Raw)
	}

	// A demo account's address: the same answer again.
	if r := signup("john@demo.carebook.test", "marble heron quietly 3", "Mallory"); r.Status != first.Status || string(r.Raw) != string(first.Raw) {
		t.Errorf("signup with a demo patient's address: %d %s", r.Status, r.Raw)
	}
}
