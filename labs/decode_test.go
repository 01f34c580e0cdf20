package labs

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeRefusesTextItCannotStore: a message whose text is not UTF-8
// (a Latin-1 byte, or an \X..\ escape of one) or holds NUL is rejected with
// the place in the model, not filed and left to fail in the database. The
// reason never quotes the bytes.
func TestDecodeRefusesTextItCannotStore(t *testing.T) {
	nist := readCase(t, "hl7", nistFile)
	for _, tc := range []struct {
		name, seg string
		field     int
		value     string
		where     string
	}{
		{"Latin-1 in a value", "OBX", 3, "10368-9^Lead \xe9l\xe9ment^LN", "Observations[0].Code.Display"},
		{"escaped 0xFF in a value", "OBX", 3, `10368-9^Lead \XFF\^LN`, "Observations[0].Code.Display"},
		{"escaped NUL in a value", "OBX", 3, `10368-9^Lead \X00\^LN`, "Observations[0].Code.Display"},
		{"raw 0xFF in the filler number", "OBR", 3, "97\xff^Lab", "Reports[0]."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(FormatHL7v2, withField(t, nist, tc.seg, tc.field, tc.value))
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("Decode error = %v, want *InvalidError", err)
			}
			if !strings.Contains(ie.Reason, tc.where) || !strings.Contains(ie.Reason, "UTF-8") {
				t.Fatalf("reason %q does not name %q", ie.Reason, tc.where)
			}
			if strings.ContainsAny(ie.Reason, "\xe9\xff\x00") {
				t.Fatal("the reason quotes the bytes")
			}
			if _, ok := Rejection(err); !ok {
				t.Fatal("not a rejection")
			}
		})
	}
	if _, err := Decode(FormatHL7v2, nist); err != nil {
		t.Fatalf("the message itself: %v", err)
	}
}
