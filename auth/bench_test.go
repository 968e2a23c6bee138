package auth

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"
	"time"
)

// BenchmarkVerify_SignedChunks measures decoding a minio-go signed
// aws-chunked body through Result.Body: SHA-256 of the data plus one HMAC
// per 64 KiB chunk.
func BenchmarkVerify_SignedChunks(b *testing.B) {
	v := newTestVerifier(b, nil)
	data := payload(4<<20, 41)
	wire := dump(b, signedStreamingRequest(b, "http://127.0.0.1:9000", data, ChecksumCRC32C, time.Now()))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		res, err := v.Verify(b.Context(), fromWire(b, wire))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSHA256Ceiling is the ceiling for the benchmark above: SHA-256
// alone over the same bytes.
func BenchmarkSHA256Ceiling(b *testing.B) {
	data := payload(4<<20, 41)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		h := sha256.New()
		io.Copy(h, bytes.NewReader(data))
		h.Sum(nil)
	}
}
