package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"strings"
	"testing"
)

// FuzzParseAuthorization feeds arbitrary Authorization headers to the
// parser: it must not panic, and what it accepts must have the shape the
// verifier relies on.
func FuzzParseAuthorization(f *testing.F) {
	good := sdkSigned(f, signOpts{body: []byte("x")}).Header.Get("Authorization")
	f.Add(good)
	f.Add(strings.ReplaceAll(good, ", ", ","))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64))
	f.Add("AWS4-HMAC-SHA256 Credential=,SignedHeaders=;;,Signature=")
	f.Add("AWS AKID:sig")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			return
		}
		if len(a.signature) != sha256.Size || a.cred.accessKeyID == "" || len(a.signedHeaders) == 0 {
			t.Fatalf("accepted %q as %+v", h, a)
		}
		for i := 1; i < len(a.signedHeaders); i++ {
			if a.signedHeaders[i-1] >= a.signedHeaders[i] {
				t.Fatalf("accepted unsorted signed headers %q", a.signedHeaders)
			}
		}
	})
}

// FuzzChunked feeds arbitrary aws-chunked bodies to the decoder, unsigned
// with a trailer and signed with a fixed key: it must not panic, must
// return an error or io.EOF, and can never yield more bytes than it got.
func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), false)
	f.Add([]byte("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n"), false)
	f.Add([]byte("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\n\r\n\r\n"), false)
	f.Add([]byte("ffffffffffffffffff\r\n"), false)
	w := streamingWire(f, payload(100, 31), ChecksumCRC32)
	f.Add(w[bytes.Index(w, []byte("\r\n\r\n"))+4:], true)
	key := signingKey([]byte(testSK), credential{date: "20260101", region: testRegion, service: "s3"})
	f.Fuzz(func(t *testing.T, wire []byte, signed bool) {
		var s *chunkSigner
		if signed {
			s = &chunkSigner{mac: hmac.New(sha256.New, key), amzDate: "20260101T000000Z",
				scope: "20260101/" + testRegion + "/s3/aws4_request", prev: strings.Repeat("0", 64)}
		}
		c := newChunkedReader(bytes.NewReader(wire), s, signed, -1, "x-amz-checksum-crc32")
		n, err := io.Copy(io.Discard, c)
		if n > int64(len(wire)) {
			t.Fatalf("decoded %d bytes from %d", n, len(wire))
		}
		if err == nil {
			if _, ok := c.trailer("x-amz-checksum-crc32"); !ok {
				t.Fatal("io.EOF without the declared trailer")
			}
		}
	})
}
