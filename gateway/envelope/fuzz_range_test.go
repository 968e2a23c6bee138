package envelope

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

// rangeModel is ParseRange written the slow, obvious way from RFC 9110
// section 14.1.2 for the three forms S3 accepts, so the fuzzer compares two
// independent readings of every header.
func rangeModel(value string, size int64) (start, end int64, err error) {
	v := strings.TrimSpace(value)
	i := strings.IndexByte(v, '=')
	if i < 0 || !strings.EqualFold(strings.TrimSpace(v[:i]), "bytes") {
		return 0, 0, ErrInvalidRange
	}
	spec := v[i+1:]
	if strings.Contains(spec, ",") {
		return 0, 0, ErrMultipleRanges
	}
	spec = strings.TrimSpace(spec)
	j := strings.IndexByte(spec, '-')
	if j < 0 {
		return 0, 0, ErrInvalidRange
	}
	num := func(s string) (int64, bool) {
		if s == "" || strings.Trim(s, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return math.MaxInt64, true // well-formed, past any object
		}
		return n, true
	}
	a, okA := num(spec[:j])
	b, okB := num(spec[j+1:])
	switch {
	case spec[:j] == "" && okB: // the last b bytes
		if b == 0 || size == 0 {
			return 0, 0, ErrUnsatisfiableRange
		}
		return max(size-b, 0), size - 1, nil
	case okA && spec[j+1:] == "": // from a to the end
		if a >= size {
			return 0, 0, ErrUnsatisfiableRange
		}
		return a, size - 1, nil
	case okA && okB && a <= b:
		if a >= size {
			return 0, 0, ErrUnsatisfiableRange
		}
		return a, min(b, size-1), nil
	}
	return 0, 0, ErrInvalidRange
}

// FuzzParseRange feeds Range header values to ParseRange and the range
// planner. For every value and object size: ParseRange agrees with the
// independent model (same result or same error class); a range it accepts
// lies inside the object; its plan fetches whole packages inside the
// ciphertext; and, for the fixed 2-package object, decrypting through the
// plan yields exactly the plaintext slice.
func FuzzParseRange(f *testing.F) {
	for _, seed := range []string{
		"bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0", "bytes=5-4", "bytes=65535-65536",
		"bytes=65536-", "bytes=-65736", "bytes=-99999999999999999999", "bytes=1-2,3-4",
		"Bytes = 7 - 9", "bytes=", "bytes=-", "items=0-1", "bytes=0x1-2", "bytes=+1-2",
		"bytes=99999999999999999999-", "bytes= 10-20 ", "bytes=\t3-", "",
	} {
		f.Add(seed, int64(PackageSize+200))
		f.Add(seed, int64(0))
	}
	env, layout, plain, ct := fuzzObject(f)
	f.Fuzz(func(t *testing.T, value string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		start, end, err := ParseRange(value, size)
		ms, me, merr := rangeModel(value, size)
		for _, class := range []error{ErrInvalidRange, ErrMultipleRanges, ErrUnsatisfiableRange} {
			if errors.Is(err, class) != errors.Is(merr, class) {
				t.Fatalf("ParseRange(%q, %d) = %v, model says %v", value, size, err, merr)
			}
		}
		if (err == nil) != (merr == nil) {
			t.Fatalf("ParseRange(%q, %d) = %v, model says %v", value, size, err, merr)
		}
		if err != nil {
			return
		}
		if start != ms || end != me {
			t.Fatalf("ParseRange(%q, %d) = %d-%d, model says %d-%d", value, size, start, end, ms, me)
		}
		if start < 0 || start > end || end >= size {
			t.Fatalf("ParseRange(%q, %d) = %d-%d: outside the object", value, size, start, end)
		}
		l := singleLayout(size)
		p := l.Plan(start, end)
		if p.Err() != nil {
			t.Fatalf("plan of an accepted range %d-%d of %d: %v", start, end, size, p.Err())
		}
		if p.CipherStart < 0 || p.CipherStart > p.CipherEnd || p.CipherEnd >= l.CiphertextSize() ||
			p.CipherStart%maxPackage != 0 || p.Length() != end-start+1 {
			t.Fatalf("plan of %d-%d of %d: cipher %d-%d of %d, length %d", start, end, size,
				p.CipherStart, p.CipherEnd, l.CiphertextSize(), p.Length())
		}
		if size != layout.Size() {
			return
		}
		got, err := decrypt(env, layout, ct, start, end)
		if err != nil {
			t.Fatalf("decrypting %d-%d: %v", start, end, err)
		}
		if !bytes.Equal(got, plain[start:end+1]) {
			t.Fatalf("decrypting %d-%d: %d bytes that are not the plaintext slice", start, end, len(got))
		}
	})
}
