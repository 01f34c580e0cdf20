package labpdf

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
	"golang.org/x/text/unicode/norm"
)

// The report is set in the Go fonts (Go Regular and Go Bold, BSD licensed,
// shipped inside golang.org/x/image), embedded into each PDF as a subset
// through fpdf's UTF-8 TrueType support. fpdf's built-in core fonts only
// speak a single-byte code page, and none of those holds both the Turkish
// letters (ğ ş ı İ) and ≤ ≥; the Go fonts cover WGL4, which holds all of
// them along with µ and the em dash.
const fontFamily = "Go"

// replacement stands in for a character the fonts cannot draw, so a stray
// emoji or CJK character in a name shows as "?" instead of an invisible
// .notdef box.
const replacement = '?'

var (
	coverageOnce sync.Once
	coverage     func(rune) bool
)

// drawable reports whether both embedded fonts have a glyph for r.
func drawable(r rune) bool {
	coverageOnce.Do(func() {
		regular, errR := sfnt.Parse(goregular.TTF)
		bold, errB := sfnt.Parse(gobold.TTF)
		if errR != nil || errB != nil {
			// Cannot happen with the fonts the module ships; fall back to
			// ASCII so text still renders.
			coverage = func(r rune) bool { return r < utf8.RuneSelf }
			return
		}
		var buf sfnt.Buffer
		// A glyph with no advance (a combining mark) would make fpdf's
		// line breaking misbehave, so it counts as missing.
		has := func(f *sfnt.Font, r rune) bool {
			i, err := f.GlyphIndex(&buf, r)
			if err != nil || i == 0 {
				return false
			}
			adv, err := f.GlyphAdvance(&buf, i, fixed.I(1000), font.HintingNone)
			return err == nil && adv > 0
		}
		// Precompute the Basic Multilingual Plane once: fpdf keeps
		// widths only for it, and a table keeps the check lock-free.
		table := make([]bool, 0x10000)
		for r := rune(0x20); r < 0x10000; r++ {
			table[r] = has(regular, r) && has(bold, r)
		}
		coverage = func(r rune) bool {
			return r >= 0 && int(r) < len(table) && table[r]
		}
	})
	return coverage(r)
}

// clean makes s safe to hand to fpdf: composed (NFC, so a decomposed
// "s" + combining cedilla becomes the single ş the font has), invalid UTF-8
// and characters without a glyph replaced, tabs turned into spaces, and
// other control characters dropped. Line breaks are kept only when
// multiline is set; otherwise they become spaces.
func clean(s string, multiline bool) string {
	if s == "" {
		return ""
	}
	s = norm.NFC.String(strings.ToValidUTF8(s, string(replacement)))
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r':
			if multiline {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r):
			// dropped
		case unicode.IsSpace(r):
			// No-break and other odd spaces: the font's plain space keeps
			// wrapping predictable.
			b.WriteByte(' ')
		case drawable(r):
			b.WriteRune(r)
		case unicode.Is(unicode.Mn, r):
			// A combining mark NFC could not fold into its letter (such
			// as the dot above left by lowercasing İ as "i̇"): the base
			// letter alone reads better than a "?" after it.
		default:
			b.WriteRune(replacement)
		}
	}
	return b.String()
}
