// Package totp computes and checks time-based one-time passwords as RFC
// 6238 defines them, with the parameters every authenticator app assumes:
// HMAC-SHA-1, six digits, 30-second steps. It does no I/O and keeps no
// state; remembering which step a user last spent is the caller's job.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Period is the length of one step. Authenticator apps ignore any other
// value often enough that changing it would lock users out.
const Period = 30 * time.Second

// Digits is the length of a code.
const Digits = 6

// Skew is how many steps either side of now a code may come from: one
// covers a phone clock a little off and a code typed as it rolls over.
const Skew = 1

// SecretBytes is the size of a generated secret: 160 bits, the HMAC-SHA-1
// block size RFC 4226 recommends.
const SecretBytes = 20

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a random secret, base32 without padding as
// authenticator apps expect it.
func NewSecret() (string, error) {
	var b [SecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("totp: random secret: %w", err)
	}
	return b32.EncodeToString(b[:]), nil
}

// EncodeSecret turns raw key bytes into the base32 form Code accepts.
func EncodeSecret(raw []byte) string { return b32.EncodeToString(raw) }

func decode(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.ReplaceAll(secret, " ", ""))
	key, err := b32.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(key) == 0 {
		return nil, errors.New("totp: secret is not base32")
	}
	return key, nil
}

// Step is the counter of the step holding t.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// CodeAt returns the code of one step.
func CodeAt(secret string, step int64) (string, error) {
	key, err := decode(secret)
	if err != nil {
		return "", err
	}
	return hotp(key, step), nil
}

// Code returns the code valid at t.
func Code(secret string, t time.Time) (string, error) { return CodeAt(secret, Step(t)) }

// hotp is RFC 4226's HOTP with dynamic truncation.
func hotp(key []byte, counter int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", Digits, bin%1_000_000)
}

// Match reports the step within Skew of t whose code is code, preferring
// the latest, so that the caller can refuse a step already spent.
func Match(secret, code string, t time.Time) (int64, bool, error) {
	key, err := decode(secret)
	if err != nil {
		return 0, false, err
	}
	if len(code) != Digits {
		return 0, false, nil
	}
	now := Step(t)
	for step := now + Skew; step >= now-Skew; step-- {
		// Constant time, so the comparison says nothing about how
		// close a guess came.
		if subtle.ConstantTimeCompare([]byte(hotp(key, step)), []byte(code)) == 1 {
			return step, true, nil
		}
	}
	return 0, false, nil
}

// URI is the otpauth:// provisioning URI that authenticator apps read
// from a QR code: issuer names the service, account the user within it.
func URI(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(Digits))
	v.Set("period", fmt.Sprint(int(Period/time.Second)))
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	return "otpauth://totp/" + label + "?" + v.Encode()
}
