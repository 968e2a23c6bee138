package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httputil"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// toServerRequest writes a client request to the wire and parses it back
// as Go's server would, so Host, Content-Length and Transfer-Encoding land
// where they do in a real handler.
func toServerRequest(t testing.TB, req *http.Request) *http.Request {
	t.Helper()
	wire, err := httputil.DumpRequestOut(req, true)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
	if err != nil {
		t.Fatal(err)
	}
	return sr
}

// signedStreamingRequest builds a PUT whose body minio-go's signer frames
// as signed aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or ...-TRAILER
// with trailer alg when alg is set).
func signedStreamingRequest(t testing.TB, endpoint string, data []byte, alg ChecksumAlgorithm, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, endpoint+"/"+testBucket+"/streamed", io.NopCloser(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	if alg != "" {
		req.Trailer = http.Header{alg.Header(): {Checksum{Algorithm: alg, Sum: sumOf(alg, data)}.String()}}
	}
	return signer.StreamingSignV4(req, testAK, testSK, "", testRegion, int64(len(data)), at.UTC(), newSHA256Hasher())
}

// unsignedTrailerRequest builds a PUT framed by minio-go as
// STREAMING-UNSIGNED-PAYLOAD-TRAILER, signed in the header.
func unsignedTrailerRequest(t testing.TB, endpoint string, data []byte, alg ChecksumAlgorithm, value string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, endpoint+"/"+testBucket+"/streamed", io.NopCloser(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(data))
	req.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
	return signer.SignV4Trailer(*req, testAK, testSK, "", testRegion, http.Header{alg.Header(): {value}})
}

// wireBody returns the framed body of req as the client would send it.
func wireBody(t testing.TB, req *http.Request) []byte {
	t.Helper()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
