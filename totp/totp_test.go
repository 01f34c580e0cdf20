package totp

import (
	"strings"
	"testing"
	"time"
)

// rfcSecret is RFC 6238 appendix B's SHA-1 key, "12345678901234567890".
var rfcSecret = EncodeSecret([]byte("12345678901234567890"))

// TestCodeMatchesRFC6238Vectors: the appendix B vectors, cut to six digits
// (the last six of the eight printed there).
func TestCodeMatchesRFC6238Vectors(t *testing.T) {
	tests := []struct {
		name string
		unix int64
		want string
	}{
		{name: "59", unix: 59, want: "287082"},
		{name: "1111111109", unix: 1111111109, want: "081804"},
		{name: "1111111111", unix: 1111111111, want: "050471"},
		{name: "1234567890", unix: 1234567890, want: "005924"},
		{name: "2000000000", unix: 2000000000, want: "279037"},
		{name: "20000000000", unix: 20000000000, want: "353130"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Code(rfcSecret, time.Unix(tt.unix, 0))
			if err != nil || got != tt.want {
				t.Fatalf("Code = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestMatchAcceptsOneStepEitherSide(t *testing.T) {
	now := time.Unix(1234567890, 0)
	tests := []struct {
		name   string
		offset time.Duration
		want   bool
	}{
		{name: "previous step", offset: -Period, want: true},
		{name: "this step", offset: 0, want: true},
		{name: "next step", offset: Period, want: true},
		{name: "two steps back", offset: -2 * Period, want: false},
		{name: "two steps ahead", offset: 2 * Period, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _ := Code(rfcSecret, now.Add(tt.offset))
			step, ok, err := Match(rfcSecret, code, now)
			if err != nil || ok != tt.want {
				t.Fatalf("Match = %d, %v, %v; want %v", step, ok, err, tt.want)
			}
			if ok && step != Step(now.Add(tt.offset)) {
				t.Fatalf("step = %d, want %d", step, Step(now.Add(tt.offset)))
			}
		})
	}
	if _, ok, _ := Match(rfcSecret, "12345", now); ok {
		t.Fatal("a five-digit code matched")
	}
	if _, _, err := Match("not base32!", "123456", now); err == nil {
		t.Fatal("a malformed secret was accepted")
	}
}

func TestNewSecretIsRandomBase32(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b || len(a) != 32 {
		t.Fatalf("secrets %q and %q", a, b)
	}
	if _, err := Code(a, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestURI(t *testing.T) {
	u := URI("Carebook demo", "doctor1@demo.carebook.test", "JBSWY3DPEHPK3PXP")
	for _, want := range []string{"otpauth://totp/Carebook%20demo:doctor1@demo.carebook.test?", "secret=JBSWY3DPEHPK3PXP", "issuer=Carebook+demo", "digits=6", "period=30"} {
		if !strings.Contains(u, want) {
			t.Fatalf("URI %q lacks %q", u, want)
		}
	}
}
