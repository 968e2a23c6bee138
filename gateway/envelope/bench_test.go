package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"io"
	"testing"
)

const benchSize = 64 << 20

// BenchmarkRawAESGCM is the ceiling: AES-256-GCM over the same bytes in
// 64 KiB chunks with crypto/cipher directly, no framing, no I/O.
func BenchmarkRawAESGCM(b *testing.B) {
	plain := plaintext(benchSize, 1)
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCM(block)
	dst := make([]byte, PackageSize+tagSize)
	nonce := make([]byte, 12)
	b.SetBytes(benchSize)
	for b.Loop() {
		for off := 0; off < len(plain); off += PackageSize {
			nonce[11]++
			aead.Seal(dst[:0], nonce, plain[off:off+PackageSize], nil)
		}
	}
}

// BenchmarkSeal encrypts 64 MiB through EncryptReader as the gateway's PUT
// does (io.Copy to the backend's writer).
func BenchmarkSeal(b *testing.B) {
	plain := plaintext(benchSize, 1)
	env, err := New(b.Context(), NewMemoryKeyring(), bindA, benchSize)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.Copy(io.Discard, env.EncryptReader(bytes.NewReader(plain))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen decrypts 64 MiB through DecryptReader as the gateway's GET
// does (io.Copy to the response).
func BenchmarkOpen(b *testing.B) {
	plain := plaintext(benchSize, 1)
	env, ct := newSingle(b, NewMemoryKeyring(), bindA, plain)
	layout, _ := env.SingleLayout()
	plan := layout.Plan(0, benchSize-1)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		r, err := env.DecryptReader(bytes.NewReader(ct), plan)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
