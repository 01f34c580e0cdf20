package hl7

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The benchmarks read the shared public messages, the same files the case
// tests check, so that the figures are for what labs really send: a short
// corrected lead result (NIST), a culture with mixed segment terminators
// (Cerner) and formatted text in repetitions (nHapi). The HL7Enumerator
// message is refused by ParseORU by design and has a benchmark of its own.
const (
	benchNIST       = "nist_oru_r01_2.5.1_case3_corrected_lead.hl7"
	benchCerner     = "cerner_oru_r01_2.5.1_culture_abnormal.hl7"
	benchNHapi      = "nhapi_oru_r01_2.5.1_ft_br_repetitions.hl7"
	benchEnumerator = "hl7enumerator_oru_r01_2.3_escapes_T_R.hl7"
)

// benchCorpus is a set of messages a benchmark cycles through.
type benchCorpus struct {
	msgs [][]byte
	// mean is the mean size in bytes, what one operation is worth for
	// b.SetBytes: over any whole number of cycles the MB/s is exact, and
	// the partial last cycle is a negligible share of b.N.
	mean int64
}

// readBenchCorpus reads the named shared messages; a missing folder or file
// fails the benchmark, as in the case tests.
func readBenchCorpus(b *testing.B, names ...string) benchCorpus {
	b.Helper()
	dir := casesDir(b)
	var c benchCorpus
	var total int64
	for _, name := range names {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		c.msgs = append(c.msgs, raw)
		total += int64(len(raw))
	}
	c.mean = total / int64(len(c.msgs))
	return c
}

// acceptedCorpus is every shared message ParseORU takes. Each is checked
// once before timing, so a message that stops parsing fails the benchmark
// rather than timing an error path.
func acceptedCorpus(b *testing.B) benchCorpus {
	b.Helper()
	c := readBenchCorpus(b, benchNIST, benchCerner, benchNHapi)
	for i, raw := range c.msgs {
		if _, err := ParseORU(raw); err != nil {
			b.Fatalf("shared message %d no longer parses: %v", i, err)
		}
	}
	return c
}

// BenchmarkParse times the generic parse (segments, fields, repetitions,
// components, escapes) of the accepted shared messages, one per operation.
func BenchmarkParse(b *testing.B) {
	c := acceptedCorpus(b)
	b.SetBytes(c.mean)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Parse(c.msgs[i%len(c.msgs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseORU times the generic parse plus the ORU^R01 view
// (patient, orders, typed observation values, times).
func BenchmarkParseORU(b *testing.B) {
	c := acceptedCorpus(b)
	b.SetBytes(c.mean)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := ParseORU(c.msgs[i%len(c.msgs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRejectMalformed times refusing the HL7Enumerator message, whose
// missing OBX-4 shifts the value a field to the right: the path a broken
// sender's messages take, up to the located *ParseError.
func BenchmarkRejectMalformed(b *testing.B) {
	raw := readBenchCorpus(b, benchEnumerator).msgs[0]
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		_, err := ParseORU(raw)
		var pe *ParseError
		if !errors.As(err, &pe) {
			b.Fatalf("ParseORU error = %v, want *ParseError", err)
		}
	}
}
