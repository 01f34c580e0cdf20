package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/carebook/carebook/hl7"
)

// sharedHL7 finds the shared HL7 v2 samples as the parser's tests do:
// $CAREBOOK_SHARED_CASES/hl7 or ../../shared/cases/hl7 from this package.
// A missing folder fails the test.
func sharedHL7(t *testing.T) string {
	t.Helper()
	root := os.Getenv("CAREBOOK_SHARED_CASES")
	if root == "" {
		root = filepath.Join("..", "..", "shared", "cases")
	}
	dir := filepath.Join(root, "hl7")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("shared HL7 cases not found at %s (set CAREBOOK_SHARED_CASES): %v", dir, err)
	}
	return dir
}

func TestLabTemplatesPutTheIDInMSH10AndOBR3(t *testing.T) {
	dir := sharedHL7(t)
	templates, err := loadLabTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(templates) != len(labSamples) {
		t.Fatalf("templates = %d, want %d", len(templates), len(labSamples))
	}
	const id = "BENCH-run1-3-17"
	for _, tm := range templates {
		t.Run(tm.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, tm.name))
			if err != nil {
				t.Fatal(err)
			}
			orig, err := hl7.ParseORU(raw)
			if err != nil {
				t.Fatal(err)
			}
			msg := tm.build(id)
			got, err := hl7.ParseORU(msg)
			if err != nil {
				t.Fatalf("built message does not parse: %v", err)
			}
			if got.Message.ControlID != id {
				t.Errorf("MSH-10 = %q, want %q", got.Message.ControlID, id)
			}
			if len(got.Orders) != len(orig.Orders) {
				t.Fatalf("orders = %d, want %d", len(got.Orders), len(orig.Orders))
			}
			// Only the two IDs change: the rest of every byte, the mixed
			// segment terminators included, stays as the lab sent it.
			want := len(raw) + 2*len(id) - len(orig.Message.ControlID)
			for i, o := range got.Orders {
				if o.FillerOrderNumber.ID != id {
					t.Errorf("order %d OBR-3.1 = %q, want %q", i, o.FillerOrderNumber.ID, id)
				}
				if o.FillerOrderNumber.NamespaceID != orig.Orders[i].FillerOrderNumber.NamespaceID {
					t.Errorf("order %d OBR-3.2 changed", i)
				}
				want -= len(orig.Orders[i].FillerOrderNumber.ID)
			}
			if len(msg) != want {
				t.Errorf("built message is %d bytes, want %d", len(msg), want)
			}
			for _, c := range []string{"\r", "\n"} {
				if g, w := bytes.Count(msg, []byte(c)), bytes.Count(raw, []byte(c)); g != w {
					t.Errorf("%q count = %d, want %d", c, g, w)
				}
			}
			if got.Patient.Name != orig.Patient.Name || !reflect.DeepEqual(got.Patient.Identifiers, orig.Patient.Identifiers) {
				t.Error("the patient changed")
			}
		})
	}
}

func TestNewLabTemplateRefuses(t *testing.T) {
	tests := []struct {
		name string
		raw  string
	}{
		{name: "not HL7", raw: "hello, world\r"},
		{name: "short MSH", raw: "MSH|^~\\&|A|B\rOBR|1||F1\r"},
		{name: "no order", raw: "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\rPID|1||X\r"},
		{name: "NUL byte", raw: "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5.1\rOBR|1||F\x001\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newLabTemplate(tt.name, []byte(tt.raw)); err == nil {
				t.Error("newLabTemplate took it")
			}
		})
	}
}

func TestLabsMode(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		want   []string
		wantOK bool
	}{
		{name: "booking bench", args: []string{"-clients", "4"}, want: []string{"-clients", "4"}},
		{name: "first", args: []string{"-labs", "-clients", "4"}, want: []string{"-clients", "4"}, wantOK: true},
		{name: "later", args: []string{"-mllp", "127.0.0.1:1", "--labs"}, want: []string{"-mllp", "127.0.0.1:1"}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := labsMode(tt.args)
			if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("labsMode(%q) = %q, %v, want %q, %v", tt.args, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseLabsFlagsRefusesOtherHosts(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "mllp", args: []string{"-mllp", "192.0.2.1:2575"}},
		{name: "db", args: []string{"-db", "postgres://postgres@192.0.2.1:5432/carebook"}},
		{name: "no clients", args: []string{"-clients", "0"}},
		{name: "stray argument", args: []string{"now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseLabsFlags(tt.args); err == nil {
				t.Errorf("parseLabsFlags(%q) took it", tt.args)
			}
		})
	}
	if _, err := parseLabsFlags(nil); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []int
		want float64
	}{
		{name: "none", in: nil, want: 0},
		{name: "odd", in: []int{9, 1, 5}, want: 5},
		{name: "even", in: []int{4, 1, 3, 10}, want: 3.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.in); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// The ceiling's server and the senders agree: every message sent gets its
// own AA, and the tallies add up.
func TestMLLPCeilingAcknowledgesEveryMessage(t *testing.T) {
	templates, err := loadLabTemplates(sharedHL7(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := mllpCeiling(context.Background(), 2, time.Second, templates, "TEST")
	if err != nil {
		t.Fatal(err)
	}
	if l.sent == 0 {
		t.Fatal("nothing sent")
	}
	if l.aa() != l.sent || l.noAck != 0 || len(l.codes) != 1 {
		t.Errorf("sent %d, ACKs %v, no ACK %d (%v): want an AA for each", l.sent, l.codes, l.noAck, l.firstErr)
	}
	if len(l.acked) != l.aa() {
		t.Errorf("AA times kept for %d messages, want %d", len(l.acked), l.aa())
	}
	if l.lat.n != l.sent {
		t.Errorf("latencies = %d, want %d", l.lat.n, l.sent)
	}
	inSeconds := 0
	for _, n := range l.perSecond {
		inSeconds += n
	}
	if len(l.perSecond) != 1 || inSeconds != l.aaInWindow || l.aaInWindow > l.aa() {
		t.Errorf("per second %v, in window %d, AA %d: the window's counts disagree", l.perSecond, l.aaInWindow, l.aa())
	}
}

func TestReadACKChecksTheMessageID(t *testing.T) {
	m, err := hl7.Parse([]byte("MSH|^~\\&|A|B|C|D|20240101||ORU^R01^ORU_R01|M1|P|2.5.1\r"))
	if err != nil {
		t.Fatal(err)
	}
	ack := hl7.NewACK(m, hl7.Ack{Code: hl7.AckAccept, ControlID: "A1", Time: time.Unix(0, 0)})
	if code, _, err := readACK(ack, "M1"); err != nil || code != "AA" {
		t.Errorf("readACK(own) = %q, %v; want AA", code, err)
	}
	if _, _, err := readACK(ack, "M2"); err == nil {
		t.Error("readACK took the ACK of another message")
	}
	if _, _, err := readACK([]byte("garbage"), "M1"); err == nil {
		t.Error("readACK took garbage")
	}
}
