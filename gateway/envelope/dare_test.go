package envelope

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/cryptotest"
	"testing/iotest"

	"github.com/minio/sio"
)

func TestCiphertextSize_MatchesSioAndInverts(t *testing.T) {
	for _, n := range []int64{0, 1, 2, PackageSize - 1, PackageSize, PackageSize + 1, 3*PackageSize - 7, 5 << 20, MaxPartSize, MaxSize} {
		c := CiphertextSize(n)
		want, err := sio.EncryptedSize(uint64(n))
		if err != nil || uint64(c) != want {
			t.Errorf("CiphertextSize(%d) = %d, sio says %d (%v)", n, c, want, err)
		}
		if back, err := PlaintextSize(c); err != nil || back != n {
			t.Errorf("PlaintextSize(%d) = %d, %v; want %d", c, back, err, n)
		}
	}
}

func TestPlaintextSize_RejectsImpossibleSizes(t *testing.T) {
	for _, c := range []int64{-1, 1, 32, maxPackage + 1, maxPackage + 32, 3*maxPackage + 5} {
		if _, err := PlaintextSize(c); !errors.Is(err, ErrMalformed) {
			t.Errorf("PlaintextSize(%d) error %v, want ErrMalformed", c, err)
		}
	}
}

func TestSeal_RoundTripsAtPackageBoundaries(t *testing.T) {
	kr := NewMemoryKeyring()
	sizes := []int64{0, 1, PackageSize - 1, PackageSize, PackageSize + 1, 2 * PackageSize, 3<<20 + 17}
	for i := range 4 {
		sizes = append(sizes, int64(plaintext(3, uint64(i))[0])<<10+int64(plaintext(3, uint64(i))[1]))
	}
	for _, n := range sizes {
		plain := plaintext(n, uint64(n))
		env, ct := newSingle(t, kr, bindA, plain)
		layout, err := env.SingleLayout()
		if err != nil {
			t.Fatal(err)
		}
		got, err := decrypt(env, layout, ct, 0, n-1)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: round trip failed: %v", n, err)
		}
		// The same through Read alone (no WriterTo), in odd-sized reads.
		r, _ := env.DecryptReader(bytes.NewReader(ct), layout.Plan(0, n-1))
		got, err = io.ReadAll(iotest.OneByteReader(io.LimitReader(r, 1<<62)))
		if n < 1<<20 && (err != nil || !bytes.Equal(got, plain)) {
			t.Fatalf("size %d: byte-wise round trip failed: %v", n, err)
		}
		sealed, err := io.ReadAll(iotest.HalfReader(env.EncryptReader(iotest.HalfReader(bytes.NewReader(plain)))))
		if err != nil || int64(len(sealed)) != CiphertextSize(n) {
			t.Fatalf("size %d: half reads sealed %d bytes: %v", n, len(sealed), err)
		}
	}
}

func TestSeal_FailsOnSourceLengthMismatch(t *testing.T) {
	env, err := New(t.Context(), NewMemoryKeyring(), bindA, PackageSize+10)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  []byte
	}{
		{"short by one", plaintext(PackageSize+9, 1)},
		{"long by one", plaintext(PackageSize+11, 1)},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, err := io.ReadAll(env.EncryptReader(bytes.NewReader(tt.src)))
			if !errors.Is(err, ErrSizeMismatch) {
				t.Fatalf("error %v, want ErrSizeMismatch", err)
			}
			if int64(len(ct)) >= CiphertextSize(PackageSize+10) {
				t.Fatalf("emitted the whole stream (%d bytes) despite the mismatch", len(ct))
			}
		})
	}
	empty, _ := New(t.Context(), NewMemoryKeyring(), bindA, 0)
	if _, err := io.ReadAll(empty.EncryptReader(bytes.NewReader([]byte{1}))); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("empty object with a 1-byte source: error %v, want ErrSizeMismatch", err)
	}
}

func TestSeal_SourceErrorStopsBeforeFinalPackage(t *testing.T) {
	env, _ := New(t.Context(), NewMemoryKeyring(), bindA, 10)
	boom := errors.New("checksum mismatch")
	src := io.MultiReader(bytes.NewReader(make([]byte, 10)), iotest.ErrReader(boom))
	ct, err := io.ReadAll(env.EncryptReader(src))
	if !errors.Is(err, boom) || len(ct) != 0 {
		t.Fatalf("got %d bytes, error %v; want none and the source's error", len(ct), err)
	}
}

// TestDARE_SioCompatible proves the framing is DARE 2.0 as minio/sio v0.4.1
// writes it: with the same key and nonce the bytes are identical, and each
// side decrypts the other's.
func TestDARE_SioCompatible(t *testing.T) {
	key := plaintext(32, 99)
	for _, n := range []int64{1, 100, PackageSize, PackageSize + 1, 3*PackageSize + 5} {
		cryptotest.SetGlobalRandom(t, uint64(n))
		plain := plaintext(n, 7)
		ours, err := io.ReadAll(newSealer(key, n, bytes.NewReader(plain)))
		if err != nil {
			t.Fatal(err)
		}
		var nonce [12]byte
		copy(nonce[:], ours[4:16])
		nonce[0] &^= finalFlag
		cfg := sio.Config{MinVersion: sio.Version20, MaxVersion: sio.Version20,
			CipherSuites: []byte{sio.AES_256_GCM}, Key: key, Nonce: &nonce}
		sr, err := sio.EncryptReader(bytes.NewReader(plain), cfg)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := io.ReadAll(sr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("size %d: our stream differs from sio's", n)
		}
		dr, _ := sio.DecryptReader(bytes.NewReader(ours), sio.Config{MinVersion: sio.Version20, MaxVersion: sio.Version20, CipherSuites: []byte{sio.AES_256_GCM}, Key: key})
		if got, err := io.ReadAll(dr); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: sio does not decrypt ours: %v", n, err)
		}
		segs := []segment{{key: key, size: n, lastSeq: packages(n) - 1}}
		if got, err := io.ReadAll(newOpener(bytes.NewReader(theirs), segs, n)); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: we do not decrypt sio's: %v", n, err)
		}
	}
}

func TestSeal_DrawsAFreshNonceEveryStream(t *testing.T) {
	env, err := NewMultipart(t.Context(), NewMemoryKeyring(), bindA)
	if err != nil {
		t.Fatal(err)
	}
	plain := plaintext(100, 1)
	a, _ := io.ReadAll(env.EncryptPartReader(1, 100, bytes.NewReader(plain)))
	b, _ := io.ReadAll(env.EncryptPartReader(1, 100, bytes.NewReader(plain)))
	if bytes.Equal(a[4:16], b[4:16]) || bytes.Equal(a, b) {
		t.Fatal("two uploads of the same part share a nonce")
	}
}

// tamperObject is a 2-package single-part object with a short last package.
func tamperObject(t *testing.T) (*Envelope, Layout, []byte, []byte) {
	plain := plaintext(PackageSize+100, 3)
	env, ct := newSingle(t, NewMemoryKeyring(), bindA, plain)
	layout, _ := env.SingleLayout()
	return env, layout, plain, ct
}

func openAll(env *Envelope, layout Layout, ct []byte) io.Reader {
	r, err := env.DecryptReader(bytes.NewReader(ct), layout.Plan(0, layout.Size()-1))
	if err != nil {
		panic(err)
	}
	return r
}

// TestOpen_FlippedBitAnywhereFails flips one bit in every byte of a
// 2-package object (every bit of headers and tags): each must fail, and no
// byte of the tampered package may come out.
func TestOpen_FlippedBitAnywhereFails(t *testing.T) {
	env, layout, plain, ct := tamperObject(t)
	bad := make([]byte, len(ct))
	for i := range ct {
		bits := []byte{1 << (i % 8)}
		if off := i % maxPackage; off < headerSize || off >= maxPackage-tagSize || i >= len(ct)-tagSize {
			bits = []byte{1, 2, 4, 8, 16, 32, 64, 128}
		}
		for _, bit := range bits {
			copy(bad, ct)
			bad[i] ^= bit
			got, err := io.ReadAll(openAll(env, layout, bad))
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("byte %d bit %#x: error %v, want ErrAuthentication", i, bit, err)
			}
			if pkg := i / maxPackage; len(got) > pkg*PackageSize || !bytes.HasPrefix(plain, got) {
				t.Fatalf("byte %d bit %#x: handed out %d bytes of a tampered stream", i, bit, len(got))
			}
		}
	}
}

func TestOpen_TruncatedAnywhereFails(t *testing.T) {
	env, layout, plain, ct := tamperObject(t)
	for n := 0; n < len(ct); n++ {
		if n%257 != 0 && n%maxPackage > 40 && n%maxPackage < maxPackage-40 && n < len(ct)-40 {
			continue // a dense sample inside payloads, every byte near boundaries
		}
		r := openAll(env, layout, ct[:n])
		got, err := io.ReadAll(r)
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("truncated to %d bytes: error %v, want ErrTruncated", n, err)
		}
		if !bytes.HasPrefix(plain, got) || len(got) > n/maxPackage*PackageSize {
			t.Fatalf("truncated to %d bytes: handed out %d bytes", n, len(got))
		}
	}
}

func TestOpen_StructuralAttacksFail(t *testing.T) {
	kr := NewMemoryKeyring()
	plain := plaintext(3*PackageSize, 4)
	env, ct := newSingle(t, kr, bindA, plain)
	layout, _ := env.SingleLayout()
	_, other := newSingle(t, kr, bindA, plain) // same binding and plaintext, other DEK
	p := func(c []byte, i int) []byte { return c[i*maxPackage : (i+1)*maxPackage] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// The same object encrypted again under the same key (a re-upload of
	// a part) has another nonce: its packages must not splice in either.
	again, _ := io.ReadAll(newSealer(partKey(&env.dek, &env.oid, 0), int64(len(plain)), bytes.NewReader(plain)))
	tests := []struct {
		name string
		ct   []byte
		want error
	}{
		{"packages swapped", cat(p(ct, 1), p(ct, 0), p(ct, 2)), ErrAuthentication},
		{"package duplicated", cat(p(ct, 0), p(ct, 0), p(ct, 2)), ErrAuthentication},
		{"package from another object", cat(p(ct, 0), p(other, 1), p(ct, 2)), ErrAuthentication},
		{"package from another upload of the same part", cat(p(ct, 0), p(again, 1), p(ct, 2)), ErrAuthentication},
		{"final package dropped", cat(p(ct, 0), p(ct, 1)), ErrTruncated},
		{"package appended", cat(ct, p(ct, 2)), ErrTrailingData},
		{"byte appended", cat(ct, []byte{0}), ErrTrailingData},
		{"another object's ciphertext", other, ErrAuthentication},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFailsClosed(t, openAll(env, layout, tt.ct), plain, tt.want)
		})
	}
}
