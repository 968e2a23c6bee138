package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Credentials and region the tests sign with. The region is not us-east-1
// so that the scope check is exercised.
const (
	testRegion = "eu-central-1"
	testAK     = "AKIDTRESOREXAMPLE"
	testSK     = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testBucket = "bucket"
)

var testSecrets = StaticSecrets{Keys: map[string]string{testAK: testSK}}

func newTestVerifier(t testing.TB, clock func() time.Time) *Verifier {
	t.Helper()
	cfg := DefaultConfig(testRegion)
	if clock != nil {
		cfg.Clock = clock
	}
	v, err := NewVerifier(testSecrets, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// received is what the test server saw of one request.
type received struct {
	method        string
	proto         string
	path          string
	mode          string // x-amz-content-sha256
	header        http.Header
	contentLength int64
	te            []string
	body          []byte
	err           error
	decodedLength int64
	checksums     []Checksum
	encoding      string
}

// recorder is an S3-ish endpoint: it verifies every request, reads the
// whole body through Result.Body and records what it got.
type recorder struct {
	v  *Verifier
	mu sync.Mutex
	rs []received
	// getBody is served to GET requests that verify.
	getBody []byte
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := received{
		method: r.Method, proto: r.Proto, path: r.URL.Path, mode: r.Header.Get("X-Amz-Content-Sha256"),
		header: r.Header.Clone(), contentLength: r.ContentLength, te: r.TransferEncoding,
	}
	defer func() {
		rec.mu.Lock()
		rec.rs = append(rec.rs, got)
		rec.mu.Unlock()
	}()
	res, err := rec.v.Verify(r.Context(), r)
	if err != nil {
		got.err = err
		writeTestError(w, err)
		return
	}
	got.decodedLength = res.DecodedLength
	got.encoding = res.ContentEncoding
	got.body, err = io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		got.err = err
		writeTestError(w, err)
		return
	}
	got.checksums = res.Checksums()
	for _, c := range got.checksums {
		w.Header().Set(c.Algorithm.Header(), c.String())
	}
	sum := sha256.Sum256(got.body)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(rec.getBody)
	}
}

func (rec *recorder) last(t *testing.T) received {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.rs) == 0 {
		t.Fatal("server received no request")
	}
	return rec.rs[len(rec.rs)-1]
}

// writeTestError renders err as an S3 error document, enough for the
// clients to report the code.
func writeTestError(w http.ResponseWriter, err error) {
	code, msg, status := "InternalError", err.Error(), http.StatusInternalServerError
	var ae *Error
	if errors.As(err, &ae) {
		code, msg, status = ae.Code, ae.Message, http.StatusBadRequest
		switch ae.Code {
		case "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "RequestTimeTooSkewed":
			status = http.StatusForbidden
		}
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string
		Message string
	}{Code: code, Message: msg})
}

func newRecorder(t *testing.T, tls bool) (*recorder, *httptest.Server) {
	t.Helper()
	rec := &recorder{v: newTestVerifier(t, nil)}
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(rec)
	} else {
		srv = httptest.NewServer(rec)
	}
	t.Cleanup(srv.Close)
	return rec, srv
}

// payload returns n pseudo-random bytes, deterministic per seed.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sha256Hasher adapts sha256 to minio-go's md5simd.Hasher.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

func newSHA256Hasher() sha256Hasher { return sha256Hasher{sha256.New()} }

// oneReader hides everything but Read (so clients cannot seek it).
type oneReader struct{ r io.Reader }

func (o oneReader) Read(p []byte) (int, error) { return o.r.Read(p) }
