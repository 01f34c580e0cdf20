package passwords

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// HashList is a set of breached passwords' SHA-1 hashes, read from a file
// in the format of Have I Been Pwned's downloadable corpus: one
// `HASH:COUNT` line per password, HASH the 40 hex digits of the SHA-1 of
// the password (upper case in the corpus; either case is read), COUNT how
// often it was seen (read past: every listed password is refused).
//
// Only the first 8 bytes of each hash are kept, in one sorted slice: 8
// bytes a password rather than the ~50 a map entry would cost, so the
// hundreds of millions of the full corpus fit in a few GB, and a file
// pre-filtered to passwords seen more than a few times in far less. Two
// passwords share a prefix with odds of about n / 2^64 (under 1e-10 for
// the full corpus); a collision refuses a good password, which the user
// answers by picking another.
type HashList struct {
	prefixes []uint64
}

// LoadHIBP reads the file at path. A line that is not a hash, or a hash
// with a count that is not a number, fails the load with its line number:
// a truncated or wrong file must not silently protect less.
func LoadHIBP(path string) (*HashList, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("breached passwords: %w", err)
	}
	defer f.Close()
	l, err := ReadHIBP(f)
	if err != nil {
		return nil, fmt.Errorf("breached passwords %s: %w", path, err)
	}
	return l, nil
}

// ReadHIBP reads HIBP lines from r; see LoadHIBP.
func ReadHIBP(r io.Reader) (*HashList, error) {
	var out []uint64
	sorted := true
	sc := bufio.NewScanner(r)
	var raw [20]byte
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		hash, count, hasCount := strings.Cut(text, ":")
		if len(hash) != 40 {
			return nil, fmt.Errorf("line %d: not a SHA-1 in hex", line)
		}
		if _, err := hex.Decode(raw[:], []byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d: not a SHA-1 in hex", line)
		}
		if hasCount && strings.TrimFunc(count, func(r rune) bool { return r >= '0' && r <= '9' }) != "" {
			return nil, fmt.Errorf("line %d: count is not a number", line)
		}
		p := binary.BigEndian.Uint64(raw[:8])
		if n := len(out); n > 0 && out[n-1] > p {
			sorted = false
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// The corpus is published ordered by hash (and by count); sort only
	// when needed, which for a file ordered by count takes a while at
	// start-up, once.
	if !sorted {
		slices.Sort(out)
	}
	return &HashList{prefixes: slices.Compact(out)}, nil
}

// Len is how many distinct hash prefixes the list holds.
func (l *HashList) Len() int { return len(l.prefixes) }

// Contains reports whether the list holds sum.
func (l *HashList) Contains(sum [20]byte) bool {
	_, found := slices.BinarySearch(l.prefixes, binary.BigEndian.Uint64(sum[:8]))
	return found
}
