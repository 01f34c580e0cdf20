package labs

import (
	"testing"
)

// decodeCorpus is a set of shared HL7 v2 messages a benchmark cycles
// through, with their mean size for b.SetBytes (exact over whole cycles).
type decodeCorpus struct {
	msgs [][]byte
	mean int64
}

// acceptedHL7 is the shared messages Decode takes: NIST and Cerner must
// decode, or the benchmark fails; the nHapi message, whose order carries no
// order number, is included only while Decode takes it, and the benchmark
// says which way it went.
func acceptedHL7(b *testing.B) decodeCorpus {
	b.Helper()
	var c decodeCorpus
	var total int64
	add := func(raw []byte) {
		c.msgs = append(c.msgs, raw)
		total += int64(len(raw))
	}
	for _, name := range []string{nistFile, cernerFile} {
		raw := readCase(b, "hl7", name)
		if _, err := Decode(FormatHL7v2, raw); err != nil {
			b.Fatalf("%s no longer decodes: %v", name, err)
		}
		add(raw)
	}
	raw := readCase(b, "hl7", nhapiFile)
	if _, err := Decode(FormatHL7v2, raw); err != nil {
		reason, _ := Rejection(err)
		b.Logf("corpus: NIST, Cerner (nHapi left out, refused: %s)", reason)
	} else {
		add(raw)
		b.Logf("corpus: NIST, Cerner, nHapi")
	}
	c.mean = total / int64(len(c.msgs))
	return c
}

// BenchmarkDecodeHL7 times what intake and every workflow step do with a
// stored HL7 v2 message: the parse and the mapping into the model.
func BenchmarkDecodeHL7(b *testing.B) {
	c := acceptedHL7(b)
	b.SetBytes(c.mean)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Decode(FormatHL7v2, c.msgs[i%len(c.msgs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRejectMalformed times Decode refusing the HL7Enumerator message
// (a missing OBX-4), up to the reason sent back to the lab.
func BenchmarkRejectMalformed(b *testing.B) {
	raw := readCase(b, "hl7", enumFile)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		_, err := Decode(FormatHL7v2, raw)
		if _, ok := Rejection(err); !ok {
			b.Fatalf("Decode error = %v, want a rejection", err)
		}
	}
}

// BenchmarkParseFHIR times reading the shared micro bundle (a
// DiagnosticReport with its observations, patient and specimen), JSON
// element-path validation included.
func BenchmarkParseFHIR(b *testing.B) {
	raw := microBundle(b)
	if _, err := ParseFHIR(raw); err != nil {
		b.Fatalf("the micro bundle no longer parses: %v", err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFHIR(raw); err != nil {
			b.Fatal(err)
		}
	}
}
