package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/carebook/carebook/models/demo"
	"github.com/carebook/carebook/totp"
)

// mfaClock pins the server's clock, so that a test picks the TOTP step
// each code belongs to and moves past the challenge token's life.
type mfaClock struct{ now time.Time }

func (st *stack) pinClock() *mfaClock {
	c := &mfaClock{now: time.Now()}
	st.Server.Now = func() time.Time { return c.now }
	st.t.Cleanup(func() { st.Server.Now = time.Now })
	return c
}

func (c *mfaClock) nextStep() { c.now = c.now.Add(totp.Period) }

func (st *stack) password(tenant, email string) response {
	st.t.Helper()
	return st.do("POST", "/v1/auth/login", "", map[string]string{"tenant": tenant, "email": email, "password": demo.Password})
}

// wrongCode is a code that is not secret's at t nor either side of it.
func wrongCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	for n := 0; ; n++ {
		c := fmt.Sprintf("%06d", n)
		if _, ok, _ := totp.Match(secret, c, at); !ok {
			return c
		}
	}
}

func mustCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.Code(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMFARequiredForStaffRoles: a correct password alone gives no tokens
// to a doctor, staff member, billing clerk or admin, enrolled or not; a
// patient without MFA gets tokens at once.
func TestMFARequiredForStaffRoles(t *testing.T) {
	st := newStack(t)
	tests := []struct {
		name  string
		email string
		want  string
	}{
		{name: "doctor", email: "doctor1@demo.carebook.test", want: "mfa_required"},
		{name: "staff", email: "staff.istanbul@demo.carebook.test", want: "mfa_required"},
		{name: "billing", email: "billing@demo.carebook.test", want: "mfa_required"},
		{name: "admin", email: "admin@demo.carebook.test", want: "mfa_required"},
		{name: "doctor not enrolled", email: "doctor2@demo.carebook.test", want: "mfa_enrolment_required"},
		{name: "staff not enrolled", email: "staff.newyork@demo.carebook.test", want: "mfa_enrolment_required"},
		{name: "billing not enrolled", email: "billing@harbor.carebook.test", want: "mfa_enrolment_required"},
		{name: "admin not enrolled", email: "admin@harbor.carebook.test", want: "mfa_enrolment_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "mfa_enrolment_required" {
				if err := st.Admin.Exec("DELETE FROM user_mfa WHERE user_id = ?", st.userID(tt.email)).Error; err != nil {
					t.Fatal(err)
				}
			}
			tenant := strings.TrimSuffix(strings.SplitN(tt.email, "@", 2)[1], ".carebook.test")
			r := st.password(tenant, tt.email)
			if r.Status != http.StatusAccepted || r.str("status") != tt.want || r.Body["access_token"] != nil || r.Body["refresh_token"] != nil {
				t.Fatalf("login: %d %s, want 202 %s and no tokens", r.Status, r.Raw, tt.want)
			}
			if !strings.HasPrefix(r.str("mfa_token"), "mfa_") || r.Body["expires_in"] != float64(300) {
				t.Fatalf("mfa token: %s", r.Raw)
			}
		})
	}
	r := st.password("demo", "ayse@demo.carebook.test")
	if r.Status != http.StatusOK || r.str("access_token") == "" || r.str("refresh_token") == "" {
		t.Fatalf("patient without MFA: %d %s", r.Status, r.Raw)
	}
}

// TestPatientEnrolsMFAAndMustPassIt: a patient enrols from a signed-in
// session, must then answer a code at every login, cannot replay one,
// uses each recovery code once, and turns MFA off with a code.
func TestPatientEnrolsMFAAndMustPassIt(t *testing.T) {
	st := newStack(t)
	clock := st.pinClock()
	const email = "john@demo.carebook.test"
	token := st.login("demo", email)

	start := st.do("POST", "/v1/auth/mfa/totp", token, map[string]any{})
	secret := start.str("secret")
	if start.Status != http.StatusOK || secret == "" || !strings.HasPrefix(start.str("otpauth_uri"), "otpauth://totp/Carebook:") {
		t.Fatalf("start: %d %s", start.Status, start.Raw)
	}
	if r := st.do("POST", "/v1/auth/mfa/totp/confirm", token, map[string]string{"code": wrongCode(t, secret, clock.now)}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "mfa-invalid-code" {
		t.Fatalf("confirm with a wrong code: %d %s", r.Status, r.Raw)
	}
	confirm := st.do("POST", "/v1/auth/mfa/totp/confirm", token, map[string]string{"code": mustCode(t, secret, clock.now)})
	codes, _ := confirm.Body["recovery_codes"].([]any)
	if confirm.Status != http.StatusOK || len(codes) != 10 {
		t.Fatalf("confirm: %d %s", confirm.Status, confirm.Raw)
	}
	if n := st.count("SELECT count(*) FROM mfa_recovery_codes WHERE user_id = ? AND code_hash = ?", st.userID(email), codes[0]); n != 0 {
		t.Fatal("a recovery code is stored as it was shown")
	}
	if n := st.count("SELECT count(*) FROM user_mfa WHERE user_id = ? AND position(convert_to(?, 'UTF8') in totp_secret_enc) > 0", st.userID(email), secret); n != 0 {
		t.Fatal("the TOTP secret is stored in the clear")
	}

	// The password alone no longer signs in.
	challenge := func() string {
		t.Helper()
		r := st.password("demo", email)
		if r.Status != http.StatusAccepted || r.str("status") != "mfa_required" || r.Body["access_token"] != nil {
			t.Fatalf("login after enrolling: %d %s", r.Status, r.Raw)
		}
		return r.str("mfa_token")
	}
	verify := func(mfaToken, key, value string) response {
		return st.do("POST", "/v1/auth/mfa/verify", "", map[string]string{"mfa_token": mfaToken, key: value})
	}
	// The code that confirmed the enrolment is spent: a replay.
	ch := challenge()
	if r := verify(ch, "code", mustCode(t, secret, clock.now)); r.Status != http.StatusUnauthorized || r.problemType() != "mfa-invalid-code" {
		t.Fatalf("replayed code: %d %s", r.Status, r.Raw)
	}
	clock.nextStep()
	code := mustCode(t, secret, clock.now)
	if r := verify(ch, "code", code); r.Status != http.StatusOK || r.str("access_token") == "" || r.str("refresh_token") == "" {
		t.Fatalf("current code: %d %s", r.Status, r.Raw)
	}
	// Once spent, the code is refused on the next login too.
	if r := verify(challenge(), "code", code); r.Status != http.StatusUnauthorized || r.problemType() != "mfa-invalid-code" {
		t.Fatalf("code replayed on a new login: %d %s", r.Status, r.Raw)
	}

	// A recovery code works once, in any case and without its dashes.
	rc := codes[3].(string)
	if r := verify(challenge(), "recovery_code", strings.ToUpper(strings.ReplaceAll(rc, "-", ""))); r.Status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("recovery code: %d %s", r.Status, r.Raw)
	}
	if r := verify(challenge(), "recovery_code", rc); r.Status != http.StatusUnauthorized || r.problemType() != "mfa-invalid-code" {
		t.Fatalf("recovery code again: %d %s", r.Status, r.Raw)
	}
	status := st.do("GET", "/v1/auth/mfa", token, nil)
	if status.Body["enrolled"] != true || status.Body["required"] != false || status.Body["recovery_codes_left"] != float64(9) {
		t.Fatalf("status: %s", status.Raw)
	}

	// Regenerating replaces every code.
	clock.nextStep()
	regen := st.do("POST", "/v1/auth/mfa/recovery-codes", token, map[string]string{"code": mustCode(t, secret, clock.now)})
	fresh, _ := regen.Body["recovery_codes"].([]any)
	if regen.Status != http.StatusOK || len(fresh) != 10 {
		t.Fatalf("regenerate: %d %s", regen.Status, regen.Raw)
	}
	if r := verify(challenge(), "recovery_code", codes[5].(string)); r.Status != http.StatusUnauthorized {
		t.Fatalf("an old recovery code after regenerating: %d %s", r.Status, r.Raw)
	}

	// Turning MFA off takes a current code; then the password suffices.
	if r := st.do("POST", "/v1/auth/mfa/disable", token, map[string]string{"code": wrongCode(t, secret, clock.now)}); r.Status != http.StatusUnprocessableEntity || r.problemType() != "mfa-invalid-code" {
		t.Fatalf("disable with a wrong code: %d %s", r.Status, r.Raw)
	}
	clock.nextStep()
	if r := st.do("POST", "/v1/auth/mfa/disable", token, map[string]string{"code": mustCode(t, secret, clock.now)}); r.Status != http.StatusNoContent {
		t.Fatalf("disable: %d %s", r.Status, r.Raw)
	}
	if r := st.password("demo", email); r.Status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("login after disabling: %d %s", r.Status, r.Raw)
	}
	user := st.userID(email)
	for _, action := range []string{"mfa-enrolled", "mfa-failed", "mfa-recovery-code-used", "mfa-recovery-codes-replaced", "mfa-disabled"} {
		if n := st.count("SELECT count(*) FROM audit_events WHERE action = ? AND actor_user = ?", action, user); n < 1 {
			t.Errorf("no %s audit event", action)
		}
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'login' AND actor_user = ? AND reason = 'mfa: recovery code'", user); n != 1 {
		t.Errorf("%d logins by recovery code audited, want 1", n)
	}
}

// TestMFATokenIsNoAccessToken: challenge and enrolment tokens are refused
// as bearer tokens on every other route, by the other MFA step, once
// spent, and after five minutes on the server's clock.
func TestMFATokenIsNoAccessToken(t *testing.T) {
	st := newStack(t)
	clock := st.pinClock()
	const doctor = "doctor3@demo.carebook.test"
	ch := st.password("demo", doctor).str("mfa_token")
	const admin = "admin@harbor.carebook.test"
	if err := st.Admin.Exec("DELETE FROM user_mfa WHERE user_id = ?", st.userID(admin)).Error; err != nil {
		t.Fatal(err)
	}
	enrol := st.password("harbor", admin).str("mfa_token")
	if ch == "" || enrol == "" {
		t.Fatal("no MFA tokens")
	}
	for _, tok := range []string{ch, enrol} {
		for _, route := range [][2]string{{"GET", "/v1/me"}, {"GET", "/v1/auth/mfa"}, {"GET", "/v1/appointments"}, {"GET", "/v1/audit-events"}, {"POST", "/v1/auth/logout-all"}} {
			if r := st.do(route[0], route[1], tok, nil); r.Status != http.StatusUnauthorized || r.problemType() != "unauthorized" {
				t.Errorf("%s %s with an MFA token: %d %s", route[0], route[1], r.Status, r.Raw)
			}
		}
	}
	if r := st.do("POST", "/v1/auth/mfa/enrol", "", map[string]string{"mfa_token": ch}); r.Status != http.StatusUnauthorized || r.problemType() != "mfa-token-invalid" {
		t.Fatalf("challenge token on enrol: %d %s", r.Status, r.Raw)
	}
	code := mustCode(t, demo.TOTPSecretFor("harbor", admin), clock.now)
	if r := st.do("POST", "/v1/auth/mfa/verify", "", map[string]string{"mfa_token": enrol, "code": code}); r.Status != http.StatusUnauthorized || r.problemType() != "mfa-token-invalid" {
		t.Fatalf("enrolment token on verify: %d %s", r.Status, r.Raw)
	}
	// Spent: one login per token.
	secret := demo.TOTPSecretFor("demo", doctor)
	if r := st.do("POST", "/v1/auth/mfa/verify", "", map[string]string{"mfa_token": ch, "code": mustCode(t, secret, clock.now)}); r.Status != http.StatusOK {
		t.Fatalf("verify: %d %s", r.Status, r.Raw)
	}
	clock.nextStep()
	if r := st.do("POST", "/v1/auth/mfa/verify", "", map[string]string{"mfa_token": ch, "code": mustCode(t, secret, clock.now)}); r.Status != http.StatusUnauthorized || r.problemType() != "mfa-token-invalid" {
		t.Fatalf("spent token: %d %s", r.Status, r.Raw)
	}
	// Expired on the server's clock, with a code right for that time.
	ch = st.password("demo", doctor).str("mfa_token")
	clock.now = clock.now.Add(5*time.Minute + time.Second)
	if r := st.do("POST", "/v1/auth/mfa/verify", "", map[string]string{"mfa_token": ch, "code": mustCode(t, secret, clock.now)}); r.Status != http.StatusUnauthorized || r.problemType() != "mfa-token-invalid" {
		t.Fatalf("expired token: %d %s", r.Status, r.Raw)
	}
	if r := st.do("POST", "/v1/auth/mfa/enrol", "", map[string]string{"mfa_token": enrol}); r.Status != http.StatusUnauthorized || r.problemType() != "mfa-token-invalid" {
		t.Fatalf("expired enrolment token: %d %s", r.Status, r.Raw)
	}
}

// TestWrongMFACodesLockTheAccount: wrong codes count toward the lockout
// of the password; once locked, even the right code is refused.
func TestWrongMFACodesLockTheAccount(t *testing.T) {
	st := newStack(t)
	clock := st.pinClock()
	const email = "doctor4@demo.carebook.test"
	secret := demo.TOTPSecretFor("demo", email)
	ch := st.password("demo", email).str("mfa_token")
	for i := 0; i < 5; i++ {
		r := st.do("POST", "/v1/auth/mfa/verify", "", map[string]string{"mfa_token": ch, "code": wrongCode(t, secret, clock.now)})
		if r.Status != http.StatusUnauthorized || r.problemType() != "mfa-invalid-code" {
			t.Fatalf("wrong code %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	r := st.do("POST", "/v1/auth/mfa/verify", "", map[string]string{"mfa_token": ch, "code": mustCode(t, secret, clock.now)})
	if r.Status != http.StatusTooManyRequests || r.problemType() != "account-locked" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("right code after five wrong ones: %d %s", r.Status, r.Raw)
	}
	if r := st.password("demo", email); r.Status != http.StatusTooManyRequests || r.problemType() != "account-locked" {
		t.Fatalf("password after five wrong codes: %d %s", r.Status, r.Raw)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'mfa-failed' AND actor_user = ?", st.userID(email)); n != 5 {
		t.Fatalf("%d failed codes audited, want 5", n)
	}
}

// TestMFAEnrolmentTokenFlow: a billing clerk without MFA enrols with the
// enrolment token, a code computed from the secret handed out, and gets
// the recovery codes and working tokens; the next login is challenged.
func TestMFAEnrolmentTokenFlow(t *testing.T) {
	st := newStack(t)
	clock := st.pinClock()
	const email = "billing@demo.carebook.test"
	if err := st.Admin.Exec("DELETE FROM user_mfa WHERE user_id = ?", st.userID(email)).Error; err != nil {
		t.Fatal(err)
	}
	login := st.password("demo", email)
	tok := login.str("mfa_token")
	if login.Status != http.StatusAccepted || login.str("status") != "mfa_enrolment_required" {
		t.Fatalf("login: %d %s", login.Status, login.Raw)
	}
	if r := st.do("POST", "/v1/auth/mfa/enrol/confirm", "", map[string]string{"mfa_token": tok, "code": "123456"}); r.Status != http.StatusConflict || r.problemType() != "mfa-no-pending-enrolment" {
		t.Fatalf("confirm before starting: %d %s", r.Status, r.Raw)
	}
	setup := st.do("POST", "/v1/auth/mfa/enrol", "", map[string]string{"mfa_token": tok})
	secret := setup.str("secret")
	if setup.Status != http.StatusOK || secret == "" || !strings.Contains(setup.str("otpauth_uri"), "secret="+secret) || setup.Body["digits"] != float64(6) {
		t.Fatalf("enrol: %d %s", setup.Status, setup.Raw)
	}
	if r := st.do("POST", "/v1/auth/mfa/enrol/confirm", "", map[string]string{"mfa_token": tok, "code": wrongCode(t, secret, clock.now)}); r.Status != http.StatusUnauthorized || r.problemType() != "mfa-invalid-code" {
		t.Fatalf("confirm with a wrong code: %d %s", r.Status, r.Raw)
	}
	done := st.do("POST", "/v1/auth/mfa/enrol/confirm", "", map[string]string{"mfa_token": tok, "code": mustCode(t, secret, clock.now)})
	codes, _ := done.Body["recovery_codes"].([]any)
	if done.Status != http.StatusOK || done.str("access_token") == "" || done.str("refresh_token") == "" || len(codes) != 10 {
		t.Fatalf("confirm: %d %s", done.Status, done.Raw)
	}
	seen := map[any]bool{}
	for _, c := range codes {
		if s, _ := c.(string); len(s) != 19 || seen[c] {
			t.Fatalf("recovery codes: %v", codes)
		}
		seen[c] = true
	}
	if r := st.do("GET", "/v1/payments", done.str("access_token"), nil); r.Status != http.StatusOK {
		t.Fatalf("payments with the new token: %d %s", r.Status, r.Raw)
	}
	ref := st.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": done.str("refresh_token")})
	if ref.Status != http.StatusOK || ref.str("access_token") == "" {
		t.Fatalf("refresh: %d %s", ref.Status, ref.Raw)
	}
	if r := st.do("POST", "/v1/auth/mfa/enrol", "", map[string]string{"mfa_token": tok}); r.Status != http.StatusUnauthorized || r.problemType() != "mfa-token-invalid" {
		t.Fatalf("spent enrolment token: %d %s", r.Status, r.Raw)
	}
	if n := st.count("SELECT count(*) FROM audit_events WHERE action = 'mfa-enrolled' AND actor_user = ?", st.userID(email)); n != 1 {
		t.Fatalf("%d enrolments audited", n)
	}
	next := st.password("demo", email)
	if next.Status != http.StatusAccepted || next.str("status") != "mfa_required" {
		t.Fatalf("next login: %d %s", next.Status, next.Raw)
	}
	clock.nextStep()
	r := st.do("POST", "/v1/auth/mfa/verify", "", map[string]string{"mfa_token": next.str("mfa_token"), "code": mustCode(t, secret, clock.now)})
	if r.Status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("verify with the enrolled secret: %d %s", r.Status, r.Raw)
	}
}
