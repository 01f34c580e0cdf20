package labs

import (
	"errors"
	"testing"
)

// FuzzParseFHIR checks that no body makes ParseFHIR panic, that every
// refusal is an *InvalidError, and that what it accepts is keyed: a
// message ID, report keys, and observation keys unique within each report.
//
// The micro bundle seed is 42 KB, so minimizing each new input derived
// from it can take the default 60 s while the execs counter stands still;
// cap it when fuzzing:
//
//	go test ./labs -run '^$' -fuzz FuzzParseFHIR -fuzztime 20s -fuzzminimizetime 200x
func FuzzParseFHIR(f *testing.F) {
	f.Add(microBundle(f))
	f.Add([]byte(loneReport))
	f.Add([]byte(`{"resourceType":"Bundle","id":"b","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"DiagnosticReport","id":"d","status":"final","code":{"text":"x"},"subject":{"identifier":{"value":"1"}},"result":[{"reference":"urn:uuid:2"}]}},{"fullUrl":"urn:uuid:2","resource":{"resourceType":"Observation","status":"final","code":{"text":"y"},"valueQuantity":{"value":1,"comparator":"\u003c"}}}]}`))
	f.Add([]byte(`{"resourceType":"DiagnosticReport","id":"d","status":"final","code":{"text":"x"},"subject":{"reference":"#p"},"contained":[{"resourceType":"Patient","id":"p"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseFHIR(body)
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T) is not an *InvalidError", err, err)
			}
			if ie.Reason == "" {
				t.Fatal("empty reason")
			}
			return
		}
		if m.ID == "" {
			t.Fatal("accepted a message without an ID")
		}
		if m.Format != FormatFHIR {
			t.Fatalf("Format = %q", m.Format)
		}
		if len(m.Reports) == 0 {
			t.Fatal("accepted a message without a report")
		}
		if len(m.Patient.Identifiers) == 0 {
			t.Fatal("accepted a message without a patient identifier")
		}
		for _, r := range m.Reports {
			if r.Key == "" || r.Status == "" {
				t.Fatalf("report without key or status: %q %q", r.Key, r.Status)
			}
			seen := map[string]bool{}
			for _, o := range r.Observations {
				if seen[o.Key] {
					t.Fatalf("observation key %q repeats in report %q", o.Key, r.Key)
				}
				seen[o.Key] = true
				switch o.Kind {
				case ValueQuantity, ValueRange, ValueRatio, ValueCoded, ValueText, ValueNone:
				default:
					t.Fatalf("observation %q has kind %q", o.Key, o.Kind)
				}
				if o.Status == "" {
					t.Fatalf("observation %q has no status", o.Key)
				}
			}
		}
	})
}
