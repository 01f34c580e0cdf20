package mllp

import (
	"testing"
)

func TestSplitBatch(t *testing.T) {
	const (
		m1 = "MSH|^~\\&|LAB||||20260102||ORU^R01|1|P|2.5.1"
		m2 = "MSH|^~\\&|LAB||||20260102||ORU^R01|2|P|2.5.1"
	)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: nil},
		{name: "blank lines only", in: "\r\n\n  \r", want: nil},
		{name: "one message CR", in: m1 + "\rPID|1\r", want: []string{m1 + "\rPID|1\r"}},
		{name: "one message without final end", in: m1 + "\rPID|1", want: []string{m1 + "\rPID|1\r"}},
		{name: "LF", in: m1 + "\nPID|1\n" + m2 + "\nPID|2\n", want: []string{m1 + "\rPID|1\r", m2 + "\rPID|2\r"}},
		{name: "CRLF", in: m1 + "\r\nPID|1\r\n" + m2 + "\r\nPID|2\r\n", want: []string{m1 + "\rPID|1\r", m2 + "\rPID|2\r"}},
		{name: "mixed with blank lines", in: m1 + "\r\n\r\nPID|1\n\n\n" + m2 + "\rPID|2", want: []string{m1 + "\rPID|1\r", m2 + "\rPID|2\r"}},
		{name: "byte order mark", in: "\xef\xbb\xbf" + m1 + "\n", want: []string{m1 + "\r"}},
		{
			name: "batch envelope dropped",
			in:   "FHS|^~\\&|LAB\nBHS|^~\\&|LAB\n" + m1 + "\nPID|1\n" + m2 + "\nBTS|2\nFTS|1\n",
			want: []string{m1 + "\rPID|1\r", m2 + "\r"},
		},
		{name: "other field separator", in: "MSH*:!$%*LAB\nPID*1\n" + m1 + "\n", want: []string{"MSH*:!$%*LAB\rPID*1\r", m1 + "\r"}},
		{name: "stray lines before the first MSH kept apart", in: "hello\n" + m1 + "\n", want: []string{"hello\r", m1 + "\r"}},
		{name: "MSHX is not a header", in: m1 + "\nMSHX|1\n", want: []string{m1 + "\rMSHX|1\r"}},
		{name: "BTSX is not envelope", in: m1 + "\nBTSX\n", want: []string{m1 + "\rBTSX\r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitBatch([]byte(tt.in))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d messages %q, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if string(got[i]) != tt.want[i] {
					t.Errorf("message %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
