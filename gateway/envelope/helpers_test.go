package envelope

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

var (
	tenantA = [16]byte{0xa}
	tenantB = [16]byte{0xb}
	bindA   = Binding{Tenant: tenantA, Bucket: "photos", Key: "2026/cat.jpg"}
)

// plaintext returns n reproducible pseudo-random bytes.
func plaintext(n int64, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	r.Read(b)
	return b
}

// newSingle creates a single-part object and returns its envelope and
// ciphertext.
func newSingle(t testing.TB, kr Keyring, b Binding, plain []byte) (*Envelope, []byte) {
	t.Helper()
	env, err := New(context.Background(), kr, b, int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := io.ReadAll(env.EncryptReader(bytes.NewReader(plain)))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(ct)) != CiphertextSize(int64(len(plain))) {
		t.Fatalf("ciphertext is %d bytes, CiphertextSize says %d", len(ct), CiphertextSize(int64(len(plain))))
	}
	return env, ct
}

// newMultipart creates a multipart object of the given part sizes and
// returns its envelope, layout, plaintext and ciphertext (parts concatenated
// as the backend does on completion).
func newMultipart(t testing.TB, kr Keyring, b Binding, sizes []PartSize) (*Envelope, Layout, []byte, []byte) {
	t.Helper()
	env, err := NewMultipart(context.Background(), kr, b)
	if err != nil {
		t.Fatal(err)
	}
	var plain, ct []byte
	for _, p := range sizes {
		pt := plaintext(p.Size, uint64(p.Number))
		c, err := io.ReadAll(env.EncryptPartReader(p.Number, p.Size, bytes.NewReader(pt)))
		if err != nil {
			t.Fatal(err)
		}
		plain, ct = append(plain, pt...), append(ct, c...)
	}
	m, err := env.SealManifest(sizes)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := env.OpenManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	return env, layout, plain, ct
}

// decrypt serves plaintext [start, end] of an object from its full
// ciphertext the way the gateway does: one backend range, one reader.
func decrypt(env *Envelope, layout Layout, ct []byte, start, end int64) ([]byte, error) {
	plan := layout.Plan(start, end)
	if plan.Err() != nil {
		return nil, plan.Err()
	}
	r, err := env.DecryptReader(bytes.NewReader(ct[plan.CipherStart:plan.CipherEnd+1]), plan)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// checkFailsClosed reads all of r and checks that it fails with an error
// wrapping want and that every byte it handed out before failing is a
// prefix of the true plaintext.
func checkFailsClosed(t *testing.T, r io.Reader, truth []byte, want error) {
	t.Helper()
	got, err := io.ReadAll(r)
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	if !bytes.HasPrefix(truth, got) {
		t.Fatalf("handed out %d bytes that are not a prefix of the plaintext", len(got))
	}
}
