package hl7

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	dir := casesDir(f)
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".hl7" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("MSH|^~\\&#|A||||20260102||ORU^R01|1|P|2.7\rPID|1||1\rOBR|1\rOBX|1|SN|X||<^1^-^2||||||F\r"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(raw)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("Parse error %v is not a *ParseError with a reason", err)
			}
			return
		}
		for _, s := range m.Segments {
			if len(s.Name) != 3 {
				t.Fatalf("segment name %q", s.Name)
			}
		}
		o, err := ReadORU(m)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("ReadORU error %v is not a *ParseError with a reason", err)
			}
			return
		}
		if len(o.Orders) == 0 || len(o.Patient.Identifiers) == 0 {
			t.Fatalf("accepted ORU without order or patient identifier")
		}
	})
}
