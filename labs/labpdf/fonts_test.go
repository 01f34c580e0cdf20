package labpdf

import "testing"

func TestFontsDrawTurkishAndSymbols(t *testing.T) {
	// Every character the report needs beyond ASCII, in both weights.
	for _, r := range "ğĞşŞıİçÇöÖüÜâîûµ≤≥±×°–—·…^" {
		if !drawable(r) {
			t.Errorf("the embedded fonts have no glyph for %q (%U)", r, r)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		multiline bool
		want      string
	}{
		{name: "turkish kept", in: "Işıl İnceçöz Göğüş", want: "Işıl İnceçöz Göğüş"},
		{name: "decomposed composed", in: "s\u0327eker", want: "şeker"},
		{name: "stray combining dot dropped", in: "i\u0307\u0307", want: "i"},
		{name: "missing glyphs replaced", in: "a😀中b", want: "a??b"},
		{name: "invalid utf-8 replaced", in: "a\xffb", want: "a?b"},
		{name: "controls dropped", in: "a\x00\x07b", want: "ab"},
		{name: "tab and odd spaces", in: "a\tb\u00a0c", want: "a b c"},
		{name: "newlines on one line", in: "a\r\nb\nc", want: "a b c"},
		{name: "newlines kept", in: "a\r\nb\rc", multiline: true, want: "a\nb\nc"},
		{name: "empty", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clean(tt.in, tt.multiline); got != tt.want {
				t.Errorf("clean(%q, %v) = %q, want %q", tt.in, tt.multiline, got, tt.want)
			}
		})
	}
}

func TestRowValue(t *testing.T) {
	tests := []struct {
		name string
		row  Row
		want string
	}{
		{name: "plain", row: Row{Value: "7.2"}, want: "7.2"},
		{name: "less or equal", row: Row{Comparator: "<=", Value: "0.5"}, want: "≤ 0.5"},
		{name: "greater or equal", row: Row{Comparator: ">=", Value: "126"}, want: "≥ 126"},
		{name: "less", row: Row{Comparator: "<", Value: "0.1"}, want: "< 0.1"},
		{name: "greater", row: Row{Comparator: " > ", Value: " 1000 "}, want: "> 1000"},
		{name: "comparator alone", row: Row{Comparator: "<"}, want: "<"},
		{name: "text", row: Row{Value: "Negatif"}, want: "Negatif"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rowValue(tt.row); got != tt.want {
				t.Errorf("rowValue(%+v) = %q, want %q", tt.row, got, tt.want)
			}
		})
	}
}
