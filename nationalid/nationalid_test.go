package nationalid

import "testing"

func TestValid(t *testing.T) {
	tests := []struct {
		name, system, value string
		want                bool
	}{
		{"demo T.C. Kimlik No", SystemTCKimlik, "10000000146", true},
		{"T.C. Kimlik No, alternative OID, spaced", SystemTCKimlikAlt, "100 000 001 46", true},
		{"T.C. Kimlik No, tenth digit wrong", SystemTCKimlik, "10000000156", false},
		{"T.C. Kimlik No, eleventh digit wrong", SystemTCKimlik, "10000000147", false},
		{"T.C. Kimlik No, leading zero", SystemTCKimlik, "01000000146", false},
		{"T.C. Kimlik No, too short", SystemTCKimlik, "1000000014", false},
		{"T.C. Kimlik No, letters", SystemTCKimlik, "1000000014A", false},
		{"demo SSN", SystemUSSSN, "765894312", true},
		{"SSN with dashes, URI system", SystemUSSSNURI, "765-89-4312", true},
		{"SSN area 000", SystemUSSSN, "000894312", false},
		{"SSN area 666", SystemUSSSN, "666894312", false},
		{"SSN area 9xx", SystemUSSSN, "965894312", false},
		{"SSN group 00", SystemUSSSN, "765004312", false},
		{"SSN serial 0000", SystemUSSSN, "765890000", false},
		{"SSN too long", SystemUSSSN, "7658943120", false},
		{"SSN of the Woolworth sample card", SystemUSSSN, "078-05-1120", false},
		{"SSN of the SSA pamphlet", SystemUSSSN, "219-09-9999", false},
		{"SSN keyboard run", SystemUSSSNURI, "123-45-6789", false},
		{"not a national system", "urn:oid:1.2.3", "765894312", false},
		{"empty", SystemUSSSN, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Valid(tt.system, tt.value); got != tt.want {
				t.Errorf("Valid(%q, %q) = %v, want %v", tt.system, tt.value, got, tt.want)
			}
		})
	}
}
