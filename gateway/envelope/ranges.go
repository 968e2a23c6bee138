package envelope

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// layoutPart is one DARE stream of an object: a single PUT's only stream
// (part 0) or one part of a completed multipart object, whose ciphertexts the
// backend concatenates in part order.
type layoutPart struct {
	number    int
	size      int64 // plaintext bytes
	plainOff  int64 // offset of the part's first plaintext byte in the object
	cipherOff int64 // offset of the part's first ciphertext byte in the object
}

// Layout is where an object's plaintext lies in its ciphertext: one stream
// for a single-part object, the manifest's parts for a multipart object.
// The zero Layout is an empty single-part object.
type Layout struct {
	multipart bool
	parts     []layoutPart
	size      int64
	cipher    int64
}

func singleLayout(size int64) Layout {
	return Layout{parts: []layoutPart{{number: 0, size: size}}, size: size, cipher: CiphertextSize(size)}
}

// multipartLayout builds the layout of validated parts.
func multipartLayout(sizes []PartSize) Layout {
	l := Layout{multipart: true, parts: make([]layoutPart, len(sizes))}
	for i, p := range sizes {
		l.parts[i] = layoutPart{number: p.Number, size: p.Size, plainOff: l.size, cipherOff: l.cipher}
		l.size += p.Size
		l.cipher += CiphertextSize(p.Size)
	}
	return l
}

// Size returns the object's plaintext size.
func (l Layout) Size() int64 { return l.size }

// CiphertextSize returns the size of the backend object.
func (l Layout) CiphertextSize() int64 { return l.cipher }

// Multipart reports whether the layout is a multipart object's.
func (l Layout) Multipart() bool { return l.multipart }

// Parts returns the number of parts of a multipart object (S3's
// x-amz-mp-parts-count), and 0 for a single-part object.
func (l Layout) Parts() int {
	if !l.multipart {
		return 0
	}
	return len(l.parts)
}

// Part returns the inclusive plaintext range of part number n, for
// GetObject?partNumber=n. For a single-part object, part 1 is the whole
// object, as in S3. An empty part has end = start-1.
func (l Layout) Part(n int) (start, end int64, ok bool) {
	if !l.multipart {
		if n != 1 {
			return 0, 0, false
		}
		return 0, l.size - 1, true
	}
	for _, p := range l.parts {
		if p.number == n {
			return p.plainOff, p.plainOff + p.size - 1, true
		}
	}
	return 0, 0, false
}

// Plan is how to serve the plaintext bytes [Start, End] of an object: which
// backend bytes [CipherStart, CipherEnd] to fetch in one request (whole
// packages, possibly across parts) and, for DecryptReader, where they lie.
type Plan struct {
	Start, End             int64 // plaintext range, inclusive
	CipherStart, CipherEnd int64 // backend range, inclusive

	multipart bool
	parts     []layoutPart // the parts the range touches, in order
	err       error
}

// Length returns the number of plaintext bytes the plan yields.
func (p Plan) Length() int64 {
	if p.err != nil {
		return 0
	}
	return p.End - p.Start + 1
}

// Plan returns the plan for plaintext bytes [start, end] of the object, both
// inclusive, as ParseRange returns them. An empty selection (end = start-1,
// as for a whole empty object) is a valid plan that reads nothing. A range
// outside the object yields a plan whose DecryptReader reports
// ErrUnsatisfiableRange and whose cipher range is empty (0, -1); check Err
// before fetching.
func (l Layout) Plan(start, end int64) Plan {
	p := Plan{Start: start, End: end, CipherStart: 0, CipherEnd: -1, multipart: l.multipart}
	if end == start-1 && start >= 0 && start <= l.size {
		return p
	}
	if start < 0 || end < start || end >= l.size {
		p.err = fmt.Errorf("%w: bytes %d-%d of %d", ErrUnsatisfiableRange, start, end, l.size)
		return p
	}
	// First part holding start and last part holding end; empty parts hold
	// nothing and are never found here.
	i := sort.Search(len(l.parts), func(i int) bool { return l.parts[i].plainOff+l.parts[i].size > start })
	j := sort.Search(len(l.parts), func(j int) bool { return l.parts[j].plainOff+l.parts[j].size > end })
	first, last := l.parts[i], l.parts[j]
	p.CipherStart = first.cipherOff + (start-first.plainOff)/PackageSize*maxPackage
	lastSeq := (end - last.plainOff) / PackageSize
	p.CipherEnd = last.cipherOff + lastSeq*maxPackage + int64(payload(last.size, lastSeq)) + PackageOverhead - 1
	p.parts = l.parts[i : j+1]
	return p
}

// Err returns why the plan cannot be served, or nil.
func (p Plan) Err() error { return p.err }

// ParseRange parses an HTTP Range header value (RFC 9110 section 14.1.2) for
// an object of size bytes, as S3 does: "bytes=a-b", "bytes=a-" or
// "bytes=-n", and returns the inclusive plaintext range, with b clamped to
// the object's end. It returns ErrMultipleRanges for a list of ranges and
// ErrInvalidRange for a malformed value (S3 serves the whole object for
// both), and ErrUnsatisfiableRange when the range selects no byte (S3: 416).
func ParseRange(value string, size int64) (start, end int64, err error) {
	unit, spec, ok := strings.Cut(strings.TrimSpace(value), "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return 0, 0, fmt.Errorf("%w: %q", ErrInvalidRange, value)
	}
	if strings.Contains(spec, ",") {
		return 0, 0, fmt.Errorf("%w: %q", ErrMultipleRanges, value)
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok || (first == "" && last == "") {
		return 0, 0, fmt.Errorf("%w: %q", ErrInvalidRange, value)
	}
	a, okA := parsePos(first)
	b, okB := parsePos(last)
	switch {
	case first == "": // suffix: the last b bytes
		if !okB {
			return 0, 0, fmt.Errorf("%w: %q", ErrInvalidRange, value)
		}
		if b == 0 || size == 0 {
			return 0, 0, fmt.Errorf("%w: %q of %d bytes", ErrUnsatisfiableRange, value, size)
		}
		return size - min(b, size), size - 1, nil
	case last == "": // a to the end
		if !okA {
			return 0, 0, fmt.Errorf("%w: %q", ErrInvalidRange, value)
		}
		b = math.MaxInt64
	default:
		if !okA || !okB || b < a {
			return 0, 0, fmt.Errorf("%w: %q", ErrInvalidRange, value)
		}
	}
	if a >= size {
		return 0, 0, fmt.Errorf("%w: %q of %d bytes", ErrUnsatisfiableRange, value, size)
	}
	return a, min(b, size-1), nil
}

// parsePos parses a byte position: ASCII digits only, saturating at
// MaxInt64 (a position past any object is still well-formed).
func parsePos(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return math.MaxInt64, true
	}
	return n, true
}

// SuffixCipherLength returns how many trailing ciphertext bytes of a
// single-part object always hold its last n plaintext bytes, whatever the
// object's size: the n bytes span at most n/64Ki + 2 packages. It lets the
// gateway serve "bytes=-n" with one backend GET of "bytes=-SuffixCipherLength(n)"
// and no HEAD first: the response carries the envelope and the object's full
// size, from which Layout.Plan gives CipherStart; the gateway discards the
// CipherStart - (size - received) leading bytes of the body and decrypts the
// rest with DecryptReader. Multipart objects need their manifest first.
func SuffixCipherLength(n int64) int64 {
	return (n/PackageSize + 2) * maxPackage
}
