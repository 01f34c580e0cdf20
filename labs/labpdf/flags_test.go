package labpdf

import "testing"

func TestFlagWord(t *testing.T) {
	tests := []struct {
		name string
		code string
		want string
	}{
		{name: "high", code: "H", want: "High"},
		{name: "low", code: "L", want: "Low"},
		{name: "critical high", code: "HH", want: "Critical high"},
		{name: "critical low", code: "LL", want: "Critical low"},
		{name: "abnormal", code: "A", want: "Abnormal"},
		{name: "critical abnormal", code: "AA", want: "Critical abnormal"},
		{name: "off scale high", code: ">", want: "Above measurable range"},
		{name: "normal", code: "N", want: "Normal"},
		{name: "padded", code: " H ", want: "High"},
		{name: "unknown kept as sent", code: "ZZ", want: "ZZ"},
		{name: "blank", code: "  ", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FlagWord(tt.code); got != tt.want {
				t.Errorf("FlagWord(%q) = %q, want %q", tt.code, got, tt.want)
			}
		})
	}
}

func TestFlagSeverity(t *testing.T) {
	tests := []struct {
		name  string
		codes []string
		want  Severity
	}{
		{name: "none", codes: nil, want: Normal},
		{name: "normal and blank", codes: []string{"N", ""}, want: Normal},
		{name: "high", codes: []string{"H"}, want: Abnormal},
		{name: "unknown code", codes: []string{"ZZ"}, want: Abnormal},
		{name: "critical high", codes: []string{"HH"}, want: Critical},
		{name: "critical low", codes: []string{"LL"}, want: Critical},
		{name: "critical abnormal", codes: []string{"AA"}, want: Critical},
		{name: "below scale", codes: []string{"<"}, want: Critical},
		{name: "above scale", codes: []string{">"}, want: Critical},
		{name: "worst wins", codes: []string{"H", "N", "LL"}, want: Critical},
		{name: "padded critical", codes: []string{" HH"}, want: Critical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FlagSeverity(tt.codes); got != tt.want {
				t.Errorf("FlagSeverity(%q) = %d, want %d", tt.codes, got, tt.want)
			}
		})
	}
}

func TestFlagText(t *testing.T) {
	tests := []struct {
		name  string
		codes []string
		want  string
	}{
		{name: "one", codes: []string{"HH"}, want: "Critical high"},
		{name: "several", codes: []string{"H", "A"}, want: "High, Abnormal"},
		{name: "repeats and blanks", codes: []string{"H", "", "H"}, want: "High"},
		{name: "synonyms once", codes: []string{"HU", "H>"}, want: "Very high"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := flagText(tt.codes); got != tt.want {
				t.Errorf("flagText(%q) = %q, want %q", tt.codes, got, tt.want)
			}
		})
	}
}
