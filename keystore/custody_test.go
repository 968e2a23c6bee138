package keystore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

// subsets returns every k-element subset of 0..n-1.
func subsets(n, k int) [][]int {
	var out [][]int
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) == k {
			out = append(out, append([]int(nil), cur...))
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	rec(0, nil)
	return out
}

func pick(shares []Share, idx []int) []Share {
	out := make([]Share, 0, len(idx))
	for _, i := range idx {
		out = append(out, shares[i])
	}
	return out
}

func TestCombineRootKey_AnyThresholdSubsetRecoversKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ n, t int }{{5, 3}, {3, 3}, {1, 1}, {4, 1}, {6, 4}} {
		key, shares, c, err := SplitRootKey(rand.Reader, tc.n, tc.t)
		if err != nil {
			t.Fatal(err)
		}
		if len(key) != RootKeySize || len(shares) != tc.n || len(c.Commitments) != tc.t {
			t.Fatalf("%d/%d: key %d bytes, %d shares, %d commitments", tc.t, tc.n, len(key), len(shares), len(c.Commitments))
		}
		for k := tc.t; k <= tc.n; k++ {
			for _, sub := range subsets(tc.n, k) {
				got, err := CombineRootKey(pick(shares, sub), c)
				if err != nil || !bytes.Equal(got, key) {
					t.Fatalf("%d/%d: subset %v: key mismatch, err %v", tc.t, tc.n, sub, err)
				}
			}
		}
		if tc.t > 1 {
			for _, sub := range subsets(tc.n, tc.t-1) {
				if _, err := CombineRootKey(pick(shares, sub), c); !errors.Is(err, ErrTooFewShares) {
					t.Fatalf("%d/%d: subset %v of t-1 shares: err %v, want ErrTooFewShares", tc.t, tc.n, sub, err)
				}
			}
		}
	}
}

func TestCombineRootKey_TamperedShareNamedByIndex(t *testing.T) {
	t.Parallel()
	_, shares, c, err := SplitRootKey(rand.Reader, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, bit := range []int{0, 77, 255} {
		bad := append([]Share(nil), shares[:3]...)
		bad[1].Value[bit/8] ^= 1 << (bit % 8)
		_, err := CombineRootKey(bad, c)
		var se *ShareError
		if !errors.As(err, &se) || se.Index != 2 || !errors.Is(err, ErrShareInvalid) {
			t.Fatalf("bit %d flipped in share 2: err %v", bit, err)
		}
		if err := c.VerifyShare(bad[1]); !errors.Is(err, ErrShareInvalid) {
			t.Fatalf("VerifyShare: %v", err)
		}
	}
	// A share claiming another index fails too.
	moved := shares[0]
	moved.Index = 4
	if _, err := CombineRootKey([]Share{moved, shares[1], shares[2]}, c); !errors.Is(err, ErrShareInvalid) {
		t.Fatalf("moved index: %v", err)
	}
	if _, err := CombineRootKey([]Share{shares[0], shares[0], shares[2]}, c); !errors.Is(err, ErrShareDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestCombineRootKey_OtherSplitRejected(t *testing.T) {
	t.Parallel()
	_, sharesA, _, err := SplitRootKey(rand.Reader, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	_, _, cB, err := SplitRootKey(rand.Reader, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CombineRootKey(sharesA[:3], cB); !errors.Is(err, ErrShareForeign) {
		t.Fatalf("foreign set id: %v", err)
	}
	// With the set id forged to B's, the Feldman check still refuses.
	forged := append([]Share(nil), sharesA[:3]...)
	for i := range forged {
		forged[i].SetID = cB.SetID()
	}
	var se *ShareError
	if _, err := CombineRootKey(forged, cB); !errors.Is(err, ErrShareInvalid) || !errors.As(err, &se) || se.Index != 1 {
		t.Fatalf("forged set id: %v", err)
	}
}

func TestCombineRootKey_KeyCheckMismatch(t *testing.T) {
	t.Parallel()
	_, shares, c, err := SplitRootKey(rand.Reader, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	c.KeyCheck = bytes.Repeat([]byte{1}, 32)
	if _, err := CombineRootKey(shares[:2], c); !errors.Is(err, ErrKeyCheck) {
		t.Fatalf("err %v, want ErrKeyCheck", err)
	}
}

func TestParseShare_RoundTripAndChecksum(t *testing.T) {
	t.Parallel()
	key, shares, c, err := SplitRootKey(rand.Reader, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	var parsed []Share
	for _, s := range shares {
		text := s.String()
		if !strings.HasPrefix(text, sharePrefix) || len(text) > 90 {
			t.Fatalf("share text %q", text)
		}
		p, err := ParseShare("  " + strings.ToUpper(text) + "\n")
		if err != nil || p != s {
			t.Fatalf("round trip of %q: %v", text, err)
		}
		parsed = append(parsed, p)
	}
	if got, err := CombineRootKey(parsed[2:], c); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("combine parsed: %v", err)
	}
	text := shares[0].String()
	for i := len(sharePrefix) + 2; i < len(text); i++ {
		b := []byte(text)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, err := ParseShare(string(b)); !errors.Is(err, ErrShareFormat) {
			t.Fatalf("typo at %d in %q: err %v", i, b, err)
		}
	}
	for _, bad := range []string{"", "tresor-share1-", "tresor-share1-0-aaaa", "tresor-share1-3-" + text[len(sharePrefix)+2:len(text)-1], "other-1-abc"} {
		if _, err := ParseShare(bad); !errors.Is(err, ErrShareFormat) {
			t.Fatalf("ParseShare(%q): %v", bad, err)
		}
	}
}

func TestCustody_JSONRoundTripAndValidate(t *testing.T) {
	t.Parallel()
	_, _, c, err := SplitRootKey(rand.Reader, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalCustody(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCustody(b)
	if err != nil || got.SetID() != c.SetID() || got.Threshold != 3 || got.Shares != 5 {
		t.Fatalf("round trip: %v", err)
	}
	for _, n := range [][2]int{{0, 0}, {3, 4}, {256, 2}, {5, 0}} {
		if _, _, _, err := SplitRootKey(rand.Reader, n[0], n[1]); !errors.Is(err, ErrCustody) {
			t.Fatalf("SplitRootKey(%d, %d): %v", n[0], n[1], err)
		}
	}
	bad := *c
	bad.Commitments = bad.Commitments[:2]
	if err := bad.Validate(); err == nil {
		t.Fatal("2 commitments for threshold 3 accepted")
	}
}

// FuzzParseShare: share text comes from operators' copies and over the
// admin listener; it parses or fails with ErrShareFormat, and what parses
// encodes back to itself.
func FuzzParseShare(f *testing.F) {
	_, shares, _, err := SplitRootKey(rand.Reader, 3, 2)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range shares {
		f.Add(s.String())
	}
	f.Add("tresor-share1-0-")
	f.Add("tresor-share1-256-AAAA")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseShare(text)
		if err != nil {
			if !errors.Is(err, ErrShareFormat) {
				t.Fatalf("error %v is not ErrShareFormat", err)
			}
			return
		}
		if p, err := ParseShare(s.String()); err != nil || p != s {
			t.Fatalf("round trip of %q: %v", text, err)
		}
	})
}
