// Package passwords holds Carebook's rules for choosing a password: a
// length between a floor and a ceiling, not the account's e-mail address,
// and not a password that attackers try first: one from a list embedded in
// the binary (the most common leaked passwords that pass the length floor,
// and common words, product and tenant names dressed with digits and
// symbols), or, when configured, from a file of SHA-1 hashes in the
// format Have I Been Pwned publishes (see LoadHIBP).
//
// The rules follow NIST SP 800-63B section 3.1.1.2: no composition rules
// (a required digit or symbol only teaches "Password1!"), a check against
// known-compromised values, and room for long passphrases.
package passwords

import (
	"bufio"
	"crypto/sha1"
	_ "embed"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Reason says why a password was refused.
type Reason string

// The reasons a password is refused.
const (
	TooShort  Reason = "too-short"
	TooLong   Reason = "too-long"
	LikeEmail Reason = "like-email"
	Breached  Reason = "breached"
)

// Refusal is a refused password. It never holds the password.
type Refusal struct {
	Reason Reason
}

func (r *Refusal) Error() string { return "password refused: " + string(r.Reason) }

// Policy is the set of rules. The zero value checks length (10..128) and
// the embedded lists.
type Policy struct {
	// Min and Max bound the length in characters (Unicode code points);
	// zero means 10 and 128. The ceiling keeps hashing cheap and still
	// leaves room for any passphrase a person types.
	Min, Max int
	// Hashes, when not nil, is a list of breached passwords' SHA-1s.
	Hashes *HashList
}

// Check returns nil when password may be used by the account with the
// given e-mail address, or a *Refusal. names are words specific to where
// the password is used (the tenant's slug and name): a password built on
// one of them is as guessable as one built on "password".
func (p *Policy) Check(password, email string, names ...string) error {
	minLen, maxLen := p.Min, p.Max
	if minLen == 0 {
		minLen = 10
	}
	if maxLen == 0 {
		maxLen = 128
	}
	n := utf8.RuneCountInString(password)
	if n < minLen {
		return &Refusal{TooShort}
	}
	if n > maxLen {
		return &Refusal{TooLong}
	}
	if likeEmail(password, email) {
		return &Refusal{LikeEmail}
	}
	if guessable(password, names) {
		return &Refusal{Breached}
	}
	if p.Hashes != nil && p.Hashes.Contains(sha1.Sum([]byte(password))) {
		return &Refusal{Breached}
	}
	return nil
}

// likeEmail reports whether password is the address or its local part,
// alone or with digits and symbols around it.
func likeEmail(password, email string) bool {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return false
	}
	pw := strings.ToLower(password)
	local, _, _ := strings.Cut(email, "@")
	if pw == email || pw == local {
		return true
	}
	c := core(pw)
	return len(c) >= 3 && (c == core(local) || c == fold(core(local)))
}

//go:embed common.txt
var commonText string

//go:embed words.txt
var wordsText string

var common, words = readList(commonText), readList(wordsText)

func readList(text string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out[strings.ToLower(line)] = true
	}
	return out
}

// guessable reports whether password is on the embedded list, is a common
// word or one of names with only digits and symbols around it, or is a
// run of one character, a short unit repeated, or a keyboard sequence.
func guessable(password string, names []string) bool {
	pw := strings.ToLower(password)
	if common[pw] {
		return true
	}
	c := core(pw)
	if c == "" {
		// No letters: dates, phone and ID numbers, PINs repeated are
		// enumerated first; fewer than 13 digits is within reach of
		// trying them all.
		digits := strings.Map(func(r rune) rune {
			if unicode.IsDigit(r) {
				return r
			}
			return -1
		}, pw)
		return len(digits) < 13 || repeated(digits) || sequence(digits)
	}
	if words[c] || words[fold(c)] {
		return true
	}
	for _, n := range names {
		n = squash(strings.ToLower(n))
		if len(n) >= 3 && (c == n || fold(c) == n || squash(c) == n) {
			return true
		}
	}
	return repeated(pw) || sequence(pw)
}

// core strips the digits, symbols and spaces around s's letters:
// "P@ssw0rd123!" is "p@ssw0rd", "1905galatasaray" is "galatasaray". '@' and
// '$' stay, as they stand for letters; a string without letters has no
// core.
func core(s string) string {
	c := strings.TrimFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && r != '@' && r != '$' })
	if strings.IndexFunc(c, unicode.IsLetter) < 0 {
		return ""
	}
	return c
}

// leet undoes the usual substitutions of digits and symbols for letters,
// and folds Turkish letters to the ASCII ones people type without them.
var leet = strings.NewReplacer(
	"0", "o", "1", "i", "3", "e", "4", "a", "@", "a", "$", "s", "5", "s", "7", "t", "!", "i",
	"ş", "s", "ı", "i", "ğ", "g", "ü", "u", "ö", "o", "ç", "c", "\u0307", "",
)

func fold(s string) string { return leet.Replace(s) }

// squash drops everything but letters and digits: "Anatolia & Hudson
// Health" is "anatoliahudsonhealth".
func squash(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, fold(s))
}

// repeated reports whether s is one unit of up to four characters over
// and over ("aaaaaaaaaa", "abcabcabcabc", "12121212121").
func repeated(s string) bool {
	r := []rune(s)
	for unit := 1; unit <= 4 && unit < len(r); unit++ {
		ok := true
		for i := unit; i < len(r); i++ {
			if r[i] != r[i-unit] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// sequence reports whether every character of s follows the one before in
// the alphabet, the digits (0 after 9 too) or a keyboard row, going one
// way ("abcdefghijk", "9876543210", "qwertyuiop[]").
func sequence(s string) bool {
	for _, line := range []string{
		"abcdefghijklmnopqrstuvwxyz", "01234567890", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./",
	} {
		if strings.Contains(line, s) || strings.Contains(reverse(line), s) {
			return true
		}
	}
	return false
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
