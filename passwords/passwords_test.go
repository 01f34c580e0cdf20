package passwords

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	hibp := strings.Join([]string{
		strings.ToUpper(hex.EncodeToString(sliceOf(sha1.Sum([]byte("only in the file 42"))))) + ":17",
	}, "\n")
	list, err := ReadHIBP(strings.NewReader(hibp))
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{Hashes: list}
	const email = "ayse.ozturk@example.test"
	names := []string{"demo", "Anatolia & Hudson Health"}
	tests := []struct {
		name     string
		password string
		want     Reason // "" is accepted
	}{
		{"nine characters", "abcXYZ!9q", TooShort},
		{"ten characters of a passphrase", "kedi uyur!", ""},
		{"129 characters", long(129), TooLong},
		{"128 characters", long(128), ""},
		{"multi-byte characters count once", "çğıöşüÇĞİÖ", ""},
		{"the address", "Ayse.Ozturk@example.test", LikeEmail},
		{"the local part", "ayse.ozturk", LikeEmail},
		{"the local part with a year", "ayse.ozturk1985", LikeEmail},
		{"common", "1q2w3e4r5t", Breached},
		{"common in capitals", "QWERTYUIOP", Breached},
		{"a word with digits", "Password2024!", Breached},
		{"substitutions", "P@ssw0rd123", Breached},
		{"a club with its year", "1905Galatasaray", Breached},
		{"a season", "Summer2026!", Breached},
		{"the product", "Carebook2026", Breached},
		{"the tenant's slug", "demo12345678", Breached},
		{"the tenant's name", "AnatoliaHudsonHealth1", Breached},
		{"a date", "19.05.1985", Breached},
		{"a phone number", "5551234567", Breached},
		{"thirteen digits with symbols", "4815-1623-4291-7", ""},
		{"one character", "zzzzzzzzzzzz", Breached},
		{"a short unit repeated", "abcabcabcabc", Breached},
		{"the alphabet", "abcdefghijklm", Breached},
		{"a keyboard row backwards", "poiuytrewq", Breached},
		{"in the HIBP file", "only in the file 42", Breached},
		{"a sentence", "my cat sleeps on the piano", ""},
		{"random", "tX9#vLq2Wm", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(tt.password, email, names...)
			var r *Refusal
			got := Reason("")
			if errors.As(err, &r) {
				got = r.Reason
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Check(%q) = %q, want %q", tt.password, got, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), tt.password) {
				t.Errorf("the error names the password")
			}
		})
	}
}

// long is a passphrase of n characters that repeats no short unit.
func long(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(string(rune('a'+i%26)) + string(rune('0'+i%7)) + " ")
	}
	return b.String()[:n]
}

func sliceOf(b [20]byte) []byte { return b[:] }

// TestLoadHIBP reads a file in HIBP's format, unsorted, in either case,
// with and without counts, and finds exactly its passwords; a malformed
// line fails the load naming the line.
func TestLoadHIBP(t *testing.T) {
	dir := t.TempDir()
	in := []string{"correct horse battery staple", "Tr0ub4dor&3", "hunter2hunter2"}
	var lines []string
	for i, pw := range in {
		h := hex.EncodeToString(sliceOf(sha1.Sum([]byte(pw))))
		if i%2 == 0 {
			h = strings.ToUpper(h) + ":" + "123"
		}
		lines = append([]string{h}, lines...)
	}
	good := filepath.Join(dir, "good.txt")
	if err := os.WriteFile(good, []byte(strings.Join(lines, "\r\n")+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := LoadHIBP(good)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != len(in) {
		t.Errorf("Len = %d, want %d", l.Len(), len(in))
	}
	for _, pw := range in {
		if !l.Contains(sha1.Sum([]byte(pw))) {
			t.Errorf("%q not found", pw)
		}
	}
	for _, pw := range []string{"correct horse battery stapler", "", "tr0ub4dor&3"} {
		if l.Contains(sha1.Sum([]byte(pw))) {
			t.Errorf("%q found", pw)
		}
	}

	tests := []struct {
		name, body, want string
	}{
		{"short hash", "ABCDEF:1\n", "line 1"},
		{"not hex", strings.Repeat("Z", 40) + ":1\n", "line 1"},
		{"bad count", strings.Repeat("A", 40) + ":1\n" + strings.Repeat("B", 40) + ":x\n", "line 2: count"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadHIBP(path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
	if _, err := LoadHIBP(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loaded")
	}
}
