package objstore

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// maxKeyBytes is S3's limit on an object key.
const maxKeyBytes = 1024

// maxKindBytes keeps a kind a short label; a long one is a mistake.
const maxKindBytes = 128

// kindPattern is one or more slash-separated segments of lowercase letters
// and digits, with single dashes inside a segment.
var kindPattern = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*(?:/[a-z0-9]+(?:-[a-z0-9]+)*)*$`)

// TenantPrefix is the prefix of every key that belongs to tenant, with its
// trailing slash: "tenants/<tenant uuid>/".
func TenantPrefix(tenant uuid.UUID) string {
	return "tenants/" + tenant.String() + "/"
}

func checkTenant(tenant uuid.UUID) error {
	if tenant == uuid.Nil {
		return fmt.Errorf("%w: nil tenant", ErrInvalid)
	}
	return nil
}

func checkKind(kind string) error {
	if len(kind) > maxKindBytes || !kindPattern.MatchString(kind) {
		return fmt.Errorf("%w: kind must be slash-separated segments of lowercase letters, digits and dashes", ErrInvalid)
	}
	return nil
}

// parseKey checks that key belongs to tenant and is well formed, and splits
// it into its kind and its name (the last segment). Invalid keys are not
// echoed in the error: they may come from a request.
func parseKey(tenant uuid.UUID, key string) (kind, name string, err error) {
	if err := checkTenant(tenant); err != nil {
		return "", "", err
	}
	rest, ok := strings.CutPrefix(key, TenantPrefix(tenant))
	if !ok {
		return "", "", ErrForeignKey
	}
	if len(key) > maxKeyBytes {
		return "", "", fmt.Errorf("%w: key longer than %d bytes", ErrInvalid, maxKeyBytes)
	}
	if !utf8.ValidString(rest) {
		return "", "", fmt.Errorf("%w: key is not UTF-8", ErrInvalid)
	}
	for _, r := range rest {
		if !unicode.IsPrint(r) {
			return "", "", fmt.Errorf("%w: key has a non-printable character", ErrInvalid)
		}
	}
	segs := strings.Split(rest, "/")
	for _, s := range segs {
		switch s {
		case "":
			return "", "", fmt.Errorf("%w: key has an empty segment", ErrInvalid)
		case ".", "..":
			return "", "", fmt.Errorf("%w: key has a dot segment", ErrInvalid)
		}
	}
	if len(segs) < 2 {
		return "", "", fmt.Errorf("%w: key needs a kind and a name after the tenant prefix", ErrInvalid)
	}
	kind = strings.Join(segs[:len(segs)-1], "/")
	if err := checkKind(kind); err != nil {
		return "", "", err
	}
	return kind, segs[len(segs)-1], nil
}

// isContentAddress reports whether name has the form Put gives objects:
// the lowercase hex SHA-256 of their bytes.
func isContentAddress(name string) bool {
	if len(name) != 64 || strings.ToLower(name) != name {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// downloadName makes name safe for a Content-Disposition filename: no path,
// no quotes or control characters, at most 120 characters. An empty result
// becomes "download".
func downloadName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	n := 0
	for _, r := range name {
		if n == 120 {
			break
		}
		switch {
		case r == utf8.RuneError, !unicode.IsPrint(r), r == '"', r == ';', r == '%':
			r = '_'
		}
		b.WriteRune(r)
		n++
	}
	out := strings.Trim(strings.TrimSpace(b.String()), ".")
	if out == "" {
		return "download"
	}
	return out
}

// contentDisposition is an attachment header for name: a plain ASCII
// filename for every browser, and the UTF-8 one (RFC 6266, RFC 8187) when
// the name is not ASCII, e.g. a Turkish file name.
func contentDisposition(name string) string {
	name = downloadName(name)
	ascii := make([]byte, 0, len(name))
	isASCII := true
	for _, r := range name {
		if r < 0x80 {
			ascii = append(ascii, byte(r))
		} else {
			ascii = append(ascii, '_')
			isASCII = false
		}
	}
	h := `attachment; filename="` + string(ascii) + `"`
	if !isASCII {
		h += "; filename*=UTF-8''" + pctEncode(name)
	}
	return h
}

// pctEncode encodes s as an RFC 8187 value: attr-char stays, every other
// byte becomes %XX.
func pctEncode(s string) string {
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)) || strings.IndexByte("!#$&+-.^_`|~", c) >= 0) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&0xf])
	}
	return b.String()
}
