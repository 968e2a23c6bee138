package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		value      string
		size       int64
		start, end int64
		err        error
	}{
		{"bytes=0-0", 10, 0, 0, nil},
		{"bytes=0-9", 10, 0, 9, nil},
		{"bytes=2-5", 10, 2, 5, nil},
		{"bytes=5-100", 10, 5, 9, nil},
		{"bytes=9-", 10, 9, 9, nil},
		{"bytes=0-", 10, 0, 9, nil},
		{"bytes=-3", 10, 7, 9, nil},
		{"bytes=-10", 10, 0, 9, nil},
		{"bytes=-11", 10, 0, 9, nil},
		{"bytes=-99999999999999999999", 10, 0, 9, nil},
		{"bytes=3-99999999999999999999", 10, 3, 9, nil},
		{"Bytes=1-2", 10, 1, 2, nil},
		{" bytes=1-2 ", 10, 1, 2, nil},
		{"bytes=10-", 10, 0, 0, ErrUnsatisfiableRange},
		{"bytes=10-20", 10, 0, 0, ErrUnsatisfiableRange},
		{"bytes=99999999999999999999-", 10, 0, 0, ErrUnsatisfiableRange},
		{"bytes=-0", 10, 0, 0, ErrUnsatisfiableRange},
		{"bytes=0-", 0, 0, 0, ErrUnsatisfiableRange},
		{"bytes=-5", 0, 0, 0, ErrUnsatisfiableRange},
		{"bytes=0-1,3-4", 10, 0, 0, ErrMultipleRanges},
		{"bytes=5-2", 10, 0, 0, ErrInvalidRange},
		{"bytes=-", 10, 0, 0, ErrInvalidRange},
		{"bytes=", 10, 0, 0, ErrInvalidRange},
		{"bytes=a-b", 10, 0, 0, ErrInvalidRange},
		{"bytes=+1-2", 10, 0, 0, ErrInvalidRange},
		{"bytes=1-+2", 10, 0, 0, ErrInvalidRange},
		{"bytes=--1", 10, 0, 0, ErrInvalidRange},
		{"bytes=1", 10, 0, 0, ErrInvalidRange},
		{"items=1-2", 10, 0, 0, ErrInvalidRange},
		{"1-2", 10, 0, 0, ErrInvalidRange},
		{"", 10, 0, 0, ErrInvalidRange},
	}
	for _, tt := range tests {
		start, end, err := ParseRange(tt.value, tt.size)
		if !errors.Is(err, tt.err) || (tt.err == nil && (start != tt.start || end != tt.end)) {
			t.Errorf("ParseRange(%q, %d) = %d, %d, %v; want %d, %d, %v", tt.value, tt.size, start, end, err, tt.start, tt.end, tt.err)
		}
	}
}

// interesting returns offsets around every package boundary of an object of
// size n, plus a few random ones.
func interesting(n int64, r *rand.Rand) []int64 {
	var out []int64
	for b := int64(0); b <= n; b += PackageSize {
		for d := int64(-2); d <= 2; d++ {
			if b+d >= 0 && b+d < n {
				out = append(out, b+d)
			}
		}
	}
	for range 6 {
		if n > 0 {
			out = append(out, r.Int64N(n))
		}
	}
	if n > 0 {
		out = append(out, n-1)
	}
	return out
}

// TestPlan_EveryInterestingRangeMatchesSlicing decrypts every range between
// offsets near package boundaries of objects up to 3 packages and compares
// with slicing the plaintext. Package size is fixed by DARE 2.0, so this is
// a dense sample rather than all pairs.
func TestPlan_EveryInterestingRangeMatchesSlicing(t *testing.T) {
	kr := NewMemoryKeyring()
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int64{1, 2, 100, PackageSize - 1, PackageSize, PackageSize + 1, 2*PackageSize + 1, 3 * PackageSize} {
		plain := plaintext(n, uint64(n))
		env, ct := newSingle(t, kr, bindA, plain)
		layout, _ := env.SingleLayout()
		offs := interesting(n, r)
		for _, a := range offs {
			for _, b := range offs {
				if b < a {
					continue
				}
				plan := layout.Plan(a, b)
				if plan.CipherEnd >= int64(len(ct)) || plan.CipherStart%maxPackage != 0 {
					t.Fatalf("size %d range %d-%d: cipher range %d-%d", n, a, b, plan.CipherStart, plan.CipherEnd)
				}
				got, err := decrypt(env, layout, ct, a, b)
				if err != nil || !bytes.Equal(got, plain[a:b+1]) {
					t.Fatalf("size %d range %d-%d: %v", n, a, b, err)
				}
			}
		}
	}
}

func TestPlan_EmptyAndUnsatisfiable(t *testing.T) {
	env, ct := newSingle(t, NewMemoryKeyring(), bindA, nil)
	layout, _ := env.SingleLayout()
	if got, err := decrypt(env, layout, ct, 0, -1); err != nil || len(got) != 0 {
		t.Fatalf("whole empty object: %q, %v", got, err)
	}
	for _, r := range [][2]int64{{0, 0}, {-1, 5}, {3, 1}, {1, 0}} {
		plan := layout.Plan(r[0], r[1])
		if !errors.Is(plan.Err(), ErrUnsatisfiableRange) || plan.CipherEnd != -1 {
			t.Errorf("Plan(%d, %d) of empty object: %v", r[0], r[1], plan.Err())
		}
		if _, err := env.DecryptReader(bytes.NewReader(ct), plan); !errors.Is(err, ErrUnsatisfiableRange) {
			t.Errorf("DecryptReader of Plan(%d, %d): %v", r[0], r[1], err)
		}
	}
}

func TestPlan_RangeReadsFailClosedOnTampering(t *testing.T) {
	plain := plaintext(3*PackageSize+10, 5)
	env, ct := newSingle(t, NewMemoryKeyring(), bindA, plain)
	layout, _ := env.SingleLayout()
	plan := layout.Plan(PackageSize+5, 2*PackageSize+5) // packages 1 and 2
	body := bytes.Clone(ct[plan.CipherStart : plan.CipherEnd+1])
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"package 1 spliced from position 0", append(bytes.Clone(ct[:maxPackage]), body[maxPackage:]...), ErrAuthentication},
		{"packages swapped", append(bytes.Clone(body[maxPackage:]), body[:maxPackage]...), ErrAuthentication},
		{"truncated inside", body[:len(body)-1], ErrTruncated},
		{"truncated at boundary", body[:maxPackage], ErrTruncated},
		{"longer than asked", append(bytes.Clone(body), 1), ErrTrailingData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := env.DecryptReader(bytes.NewReader(tt.body), plan)
			if err != nil {
				t.Fatal(err)
			}
			checkFailsClosed(t, r, plain[plan.Start:plan.End+1], tt.want)
		})
	}
}

func TestMultipart_RangesSpanningPartsMatchSlicing(t *testing.T) {
	kr := NewMemoryKeyring()
	layouts := map[string][]PartSize{
		"one part":              {{1, 3*PackageSize + 1}},
		"uneven parts":          {{1, PackageSize + 7}, {2, 1}, {3, 2*PackageSize - 1}, {4, 100}},
		"gaps in part numbers":  {{2, PackageSize}, {5, PackageSize}, {9, 3}},
		"empty part in between": {{1, 1000}, {2, 0}, {3, 1000}},
		"empty last part":       {{1, PackageSize + 1}, {2, 0}},
		"empty only part":       {{1, 0}},
		"tiny parts":            {{1, 1}, {2, 1}, {3, 1}, {4, 1}},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for name, sizes := range layouts {
		t.Run(name, func(t *testing.T) {
			env, layout, plain, ct := newMultipart(t, kr, bindA, sizes)
			if layout.Size() != int64(len(plain)) || layout.CiphertextSize() != int64(len(ct)) || layout.Parts() != len(sizes) {
				t.Fatalf("layout %d/%d bytes, %d parts; want %d/%d, %d", layout.Size(), layout.CiphertextSize(), layout.Parts(), len(plain), len(ct), len(sizes))
			}
			var offs []int64
			var pos int64
			for _, p := range sizes {
				for _, d := range []int64{-1, 0, 1, PackageSize - 1, PackageSize} {
					if o := pos + d; o >= 0 && o < layout.Size() {
						offs = append(offs, o)
					}
				}
				pos += p.Size
			}
			offs = append(offs, interesting(layout.Size(), r)...)
			for _, a := range offs {
				for _, b := range offs {
					if b < a {
						continue
					}
					got, err := decrypt(env, layout, ct, a, b)
					if err != nil || !bytes.Equal(got, plain[a:b+1]) {
						t.Fatalf("range %d-%d: %v", a, b, err)
					}
				}
			}
			if got, err := decrypt(env, layout, ct, 0, layout.Size()-1); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("whole object: %v", err)
			}
			for _, p := range sizes {
				s, e, ok := layout.Part(p.Number)
				if !ok || e-s+1 != p.Size {
					t.Fatalf("Part(%d) = %d-%d, %v", p.Number, s, e, ok)
				}
			}
		})
	}
}

func TestMultipart_PartsSwappedOrSplicedFail(t *testing.T) {
	kr := NewMemoryKeyring()
	sizes := []PartSize{{1, PackageSize}, {2, PackageSize}}
	env, layout, plain, ct := newMultipart(t, kr, bindA, sizes)
	swapped := append(bytes.Clone(ct[maxPackage:]), ct[:maxPackage]...)
	checkFailsClosed(t, openAll(env, layout, swapped), plain, ErrAuthentication)
	_, _, _, other := newMultipart(t, kr, bindA, sizes)
	spliced := append(bytes.Clone(ct[:maxPackage]), other[maxPackage:]...)
	checkFailsClosed(t, openAll(env, layout, spliced), plain, ErrAuthentication)
}

func TestPlan_FullSizeMathWithoutData(t *testing.T) {
	// Range math at S3's limits: 10,000 parts of 5 GiB... bounded to 5 TiB.
	sizes := make([]PartSize, 1000)
	for i := range sizes {
		sizes[i] = PartSize{i + 1, MaxPartSize}
	}
	l := multipartLayout(sizes)
	end := l.Size() - 1
	p := l.Plan(end-10, end)
	if p.CipherEnd != l.CiphertextSize()-1 || p.Length() != 11 || l.Size() > math.MaxInt64/2 {
		t.Fatalf("plan %+v of layout %d", p, l.CiphertextSize())
	}
	p = l.Plan(MaxPartSize-1, MaxPartSize)
	if p.CipherStart != CiphertextSize(MaxPartSize)-maxPackage || p.CipherEnd != CiphertextSize(MaxPartSize)+maxPackage-1 {
		t.Fatalf("plan across parts 1-2: %d-%d", p.CipherStart, p.CipherEnd)
	}
}

func TestSuffixCipherLength_CoversEverySuffix(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	sizes := []int64{1, PackageSize - 1, PackageSize, PackageSize + 1, 5*PackageSize + 3}
	for range 200 {
		sizes = append(sizes, r.Int64N(1<<30)+1)
	}
	for _, size := range sizes {
		l := singleLayout(size)
		for _, n := range []int64{1, 2, PackageSize - 1, PackageSize, PackageSize + 1, r.Int64N(size) + 1, size, size + 5} {
			start, end, err := ParseRange(fmt.Sprintf("bytes=-%d", n), size)
			if err != nil {
				t.Fatal(err)
			}
			p := l.Plan(start, end)
			got := min(SuffixCipherLength(n), l.CiphertextSize())
			if p.CipherEnd != l.CiphertextSize()-1 || l.CiphertextSize()-p.CipherStart > got {
				t.Fatalf("size %d suffix %d: needs %d ciphertext bytes, SuffixCipherLength gives %d", size, n, l.CiphertextSize()-p.CipherStart, got)
			}
		}
	}
}

func TestPlan_AllRangesOfSmallObjectsMatchSlicing(t *testing.T) {
	kr := NewMemoryKeyring()
	for _, n := range []int64{1, 2, 3, 17, 300} {
		plain := plaintext(n, uint64(n))
		env, ct := newSingle(t, kr, bindA, plain)
		layout, _ := env.SingleLayout()
		for a := int64(0); a < n; a++ {
			for b := a; b < n; b++ {
				got, err := decrypt(env, layout, ct, a, b)
				if err != nil || !bytes.Equal(got, plain[a:b+1]) {
					t.Fatalf("size %d range %d-%d: %v", n, a, b, err)
				}
			}
		}
	}
}
