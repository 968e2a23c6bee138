package envelope

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// fuzzKeyring holds one fixed tenant key version, so fuzz inputs are
// reproducible across runs.
func fuzzKeyring() *MemoryKeyring {
	kr := NewMemoryKeyring()
	kr.Add(tenantA, [16]byte{0x1d}, bytes.Repeat([]byte{0x42}, keySize))
	return kr
}

// fuzzObject is a fixed 2-package object (plaintext 65536+200 bytes) whose
// envelope the fuzzer opens ciphertext streams against.
func fuzzObject(t testing.TB) (*Envelope, Layout, []byte, []byte) {
	env, err := New(context.Background(), fuzzKeyring(), bindA, PackageSize+200)
	if err != nil {
		t.Fatal(err)
	}
	// Deterministic DEK and OID so the committed corpus stays meaningful.
	copy(env.dek[:], bytes.Repeat([]byte{7}, keySize))
	copy(env.oid[:], bytes.Repeat([]byte{9}, oidSize))
	plain := plaintext(PackageSize+200, 11)
	s := newSealer(partKey(&env.dek, &env.oid, 0), int64(len(plain)), bytes.NewReader(plain)).(*sealer)
	s.nonce = [12]byte{0x11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11} // fixed, final flag clear
	ct, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	layout, _ := env.SingleLayout()
	return env, layout, plain, ct
}

// editStream turns a fuzz input into a ciphertext stream. Input starting
// with 0xff is a raw stream (garbage, short prefixes). Anything else is an
// edit script of 4-byte records [op, pos(3 bytes)] applied to the object's
// true ciphertext: flip bits at pos, truncate at pos, swap the first two
// packages, or append bytes of the ciphertext from pos (duplication,
// trailing data). Editing keeps inputs small: the fuzzer minimizes every
// new input, and 64 KiB inputs would stall it there.
func editStream(ct, input []byte) []byte {
	if len(input) > 0 && input[0] == 0xff {
		return input[1:]
	}
	stream := bytes.Clone(ct)
	for ; len(input) >= 4; input = input[4:] {
		if len(stream) == 0 {
			break
		}
		op := input[0]
		pos := (int(input[1])<<16 | int(input[2])<<8 | int(input[3])) % len(stream)
		switch op & 3 {
		case 0:
			stream[pos] ^= op | 1
		case 1:
			stream = stream[:pos]
		case 2:
			if len(stream) >= 2*maxPackage {
				a := bytes.Clone(stream[:maxPackage])
				copy(stream, stream[maxPackage:2*maxPackage])
				copy(stream[maxPackage:], a)
			}
		case 3:
			n := min(int(op>>2)+1, len(ct)-pos%len(ct))
			stream = append(stream, ct[pos%len(ct):pos%len(ct)+n]...)
		}
	}
	return stream
}

// FuzzOpen feeds ciphertext streams (section 5 of FORMAT.md) and plaintext
// ranges to the opener of a fixed 2-package object: it must never hand out
// a byte that differs from the true plaintext slice, must succeed only on
// the exact ciphertext, and must otherwise fail with an error wrapping
// ErrAuthentication.
func FuzzOpen(f *testing.F) {
	env, layout, plain, ct := fuzzObject(f)
	f.Add([]byte{}, int64(0), int64(-1))
	f.Add([]byte{0x10, 0, 0, 20}, int64(0), int64(-1))
	f.Add([]byte{0x01, 0, 0x01, 0x00}, int64(0), int64(10))
	f.Add([]byte{0x02, 0, 0, 0}, int64(PackageSize+3), int64(PackageSize+199))
	f.Add([]byte{0xf3, 0, 0, 0}, int64(5), int64(PackageSize+1))
	f.Add([]byte{0xff, 0x20, 0, 0xff, 0xff}, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, input []byte, start, end int64) {
		if end < 0 {
			start, end = 0, layout.Size()-1
		}
		plan := layout.Plan(start, end)
		if plan.Err() == nil && plan.Length() == 0 {
			return // an empty selection reads nothing; the gateway sends no request
		}
		stream := editStream(ct[plan.CipherStart:plan.CipherEnd+1], input)
		r, err := env.DecryptReader(bytes.NewReader(stream), plan)
		if err != nil {
			if !errors.Is(err, ErrUnsatisfiableRange) {
				t.Fatalf("untyped plan error %v", err)
			}
			return
		}
		got, err := io.ReadAll(r)
		want := plain[start : end+1]
		if !bytes.HasPrefix(want, got) {
			t.Fatalf("handed out %d bytes that are not the plaintext", len(got))
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("succeeded with %d of %d bytes", len(got), len(want))
		}
		if err != nil && !errors.Is(err, ErrAuthentication) {
			t.Fatalf("untyped error %v", err)
		}
		if err == nil && !bytes.Equal(stream, ct[plan.CipherStart:plan.CipherEnd+1]) {
			t.Fatalf("accepted a stream that is not the object's ciphertext")
		}
	})
}

// FuzzParse feeds arbitrary envelope values to Open. Whatever opens must be
// an authentic envelope in its one canonical encoding (the committed corpus
// holds envelopes wrapped under the fixed fuzz key, which open); everything
// else fails with a typed error. Forging one would take the tenant key.
func FuzzParse(f *testing.F) {
	kr := fuzzKeyring()
	env, err := New(context.Background(), kr, bindA, 1234)
	if err != nil {
		f.Fatal(err)
	}
	multi, _ := NewMultipart(context.Background(), kr, bindA)
	f.Add(env.Marshal())
	f.Add(multi.Marshal())
	f.Add("")
	f.Add("AQEA")
	f.Add(env.Marshal()[:100])
	f.Fuzz(func(t *testing.T, value string) {
		got, err := Open(context.Background(), kr, bindA, value)
		if err == nil {
			if got.Marshal() != value || got.Binding() != bindA {
				t.Fatalf("opened a non-canonical envelope %q", value)
			}
			return
		}
		for _, want := range []error{ErrMalformed, ErrAuthentication, ErrUnsupportedVersion, ErrUnsupportedSuite, ErrNoKey} {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("untyped error %v (envelope %v)", err, got)
	})
}
