package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7/pkg/signer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/keystore"
)

// bodyWatch counts the request body bytes the gateway's handlers have read,
// so that a test can wait until the gateway holds what was sent.
type bodyWatch struct{ read atomic.Int64 }

func (bw *bodyWatch) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = watchedBody{ReadCloser: r.Body, n: &bw.read}
		h.ServeHTTP(w, r)
	})
}

type watchedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// newWatchedGateway is newTestGateway (plain HTTP) with a bodyWatch around
// the gateway's handler.
func newWatchedGateway(t *testing.T, kind string, configure ...func(*Config)) (*testGateway, *bodyWatch) {
	t.Helper()
	store := keystore.OpenTest(t)
	creds, err := store.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	be, _ := newTestBackend(t, kind)
	v, err := auth.NewVerifier(Secrets(store), auth.DefaultConfig("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	for _, f := range configure {
		f(&cfg)
	}
	srv, err := New(cfg, be, store, v)
	if err != nil {
		t.Fatal(err)
	}
	bw := &bodyWatch{}
	ts := httptest.NewServer(bw.wrap(srv))
	t.Cleanup(ts.Close)
	return &testGateway{url: ts.URL, http: ts.Client(), store: store, backend: be, creds: creds}, bw
}

func (g *testGateway) awsCreds() aws.Credentials {
	return aws.Credentials{AccessKeyID: g.creds.AccessKeyID, SecretAccessKey: g.creds.SecretAccessKey}
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func md5Header(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

func crc32Header(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)))
}

// signedRequest is a header-signed request to target (path and query)
// whose x-amz-content-sha256 is payloadHash, with the extra headers (signed
// too) and body as the body sent.
func (g *testGateway) signedRequest(t *testing.T, method, target, payloadHash string, hdr map[string]string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, g.url+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := v4.NewSigner().SignHTTP(context.Background(), g.awsCreds(), req, payloadHash, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

// sha256Hasher adapts sha256 to minio-go's md5simd.Hasher.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// chunkedWire signs body as minio-go does over plain HTTP (signed
// aws-chunked, STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and returns the request
// and the framed body, for the caller to alter and send.
func (g *testGateway) chunkedWire(t *testing.T, method, target string, hdr map[string]string, body []byte) (*http.Request, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.url+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req = signer.StreamingSignV4(req, g.creds.AccessKeyID, g.creds.SecretAccessKey, "", "us-east-1",
		int64(len(body)), time.Now().UTC(), sha256Hasher{sha256.New()})
	wire, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return req, wire
}

func sendWire(t *testing.T, g *testGateway, req *http.Request, wire []byte) *http.Response {
	t.Helper()
	req.Body = io.NopCloser(bytes.NewReader(wire))
	req.ContentLength = int64(len(wire))
	resp, err := g.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// sameLength pads the shorter of a and b with spaces (white space after an
// XML document's root, data in an object) so that one can stand in for the
// other under the same Content-Length.
func sameLength(a, b string) ([]byte, []byte) {
	n := max(len(a), len(b))
	return []byte(a + strings.Repeat(" ", n-len(a))), []byte(b + strings.Repeat(" ", n-len(b)))
}

// bodyTarget is one body-carrying operation under attack: setup prepares
// a fresh fixture and returns the request's target, the body the client
// signed, a forged body of the same length that would change something if
// it were acted on, and a check that nothing changed.
type bodyTarget struct {
	name   string
	method string
	setup  func(t *testing.T, g *testGateway, n int) (target string, signed, forged []byte, unchanged func(t *testing.T))
}

func mustPut(t *testing.T, c *s3.Client, bucket, key, body string) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		t.Fatalf("PutObject %s/%s: %v", bucket, key, err)
	}
}

func objectIs(t *testing.T, c *s3.Client, bucket, key, want string) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Errorf("%s/%s is gone: %v", bucket, key, err)
		return
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != want {
		t.Errorf("%s/%s is %q, want %q", bucket, key, got, want)
	}
}

// uploadStillOpen checks that the upload is in progress with exactly the
// parts (number -> ETag) given, and that no object was completed.
func uploadStillOpen(t *testing.T, c *s3.Client, bucket, key, id string, parts map[int32]string) {
	t.Helper()
	ctx := context.Background()
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id)})
	if err != nil {
		t.Errorf("upload %s is no longer open: %v", id, err)
		return
	}
	got := map[int32]string{}
	for _, p := range lp.Parts {
		got[aws.ToInt32(p.PartNumber)] = aws.ToString(p.ETag)
	}
	if fmt.Sprint(got) != fmt.Sprint(parts) {
		t.Errorf("upload parts are %v, want %v", got, parts)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); apiCode(err) != "NotFound" {
		t.Errorf("an object %s/%s exists: %v", bucket, key, err)
	}
}

func openUpload(t *testing.T, c *s3.Client, bucket, key string, part string) (id, etag string) {
	t.Helper()
	ctx := context.Background()
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: mp.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader(part)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(mp.UploadId), aws.ToString(up.ETag)
}

var bodyTargets = []bodyTarget{
	{"PutObject", http.MethodPut, func(t *testing.T, g *testGateway, n int) (string, []byte, []byte, func(*testing.T)) {
		c := g.client()
		bucket := fmt.Sprintf("put-%d", n)
		mustCreateBucket(t, c, bucket)
		mustPut(t, c, bucket, "doc", "original")
		signed, forged := sameLength("the signed replacement", "a forged replacement")
		return "/" + bucket + "/doc", signed, forged, func(t *testing.T) { objectIs(t, c, bucket, "doc", "original") }
	}},
	{"UploadPart", http.MethodPut, func(t *testing.T, g *testGateway, n int) (string, []byte, []byte, func(*testing.T)) {
		c := g.client()
		bucket := fmt.Sprintf("part-%d", n)
		mustCreateBucket(t, c, bucket)
		id, etag := openUpload(t, c, bucket, "mp", "first part")
		signed, forged := sameLength("the signed part", "a forged part")
		return "/" + bucket + "/mp?partNumber=1&uploadId=" + id, signed, forged, func(t *testing.T) {
			uploadStillOpen(t, c, bucket, "mp", id, map[int32]string{1: etag})
		}
	}},
	{"DeleteObjects", http.MethodPost, func(t *testing.T, g *testGateway, n int) (string, []byte, []byte, func(*testing.T)) {
		c := g.client()
		bucket := fmt.Sprintf("del-%d", n)
		mustCreateBucket(t, c, bucket)
		mustPut(t, c, bucket, "keepme", "kept")
		mustPut(t, c, bucket, "victim", "precious")
		// Same length: the forged body names another key.
		signed, forged := sameLength("<Delete><Object><Key>keepme</Key></Object></Delete>", "<Delete><Object><Key>victim</Key></Object></Delete>")
		return "/" + bucket + "?delete", signed, forged, func(t *testing.T) {
			objectIs(t, c, bucket, "keepme", "kept")
			objectIs(t, c, bucket, "victim", "precious")
		}
	}},
	{"CompleteMultipartUpload", http.MethodPost, func(t *testing.T, g *testGateway, n int) (string, []byte, []byte, func(*testing.T)) {
		c := g.client()
		bucket := fmt.Sprintf("complete-%d", n)
		mustCreateBucket(t, c, bucket)
		id, etag := openUpload(t, c, bucket, "mp", "the only part uploaded")
		part := func(n int, etag string) string {
			return fmt.Sprintf("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, etag)
		}
		// Signed for three parts, forged for the one that exists.
		signed, forged := sameLength(
			"<CompleteMultipartUpload>"+part(1, etag)+part(2, `"00000000000000000000000000000002"`)+part(3, `"00000000000000000000000000000003"`)+"</CompleteMultipartUpload>",
			"<CompleteMultipartUpload>"+part(1, etag)+"</CompleteMultipartUpload>")
		return "/" + bucket + "/mp?uploadId=" + id, signed, forged, func(t *testing.T) {
			uploadStillOpen(t, c, bucket, "mp", id, map[int32]string{1: etag})
		}
	}},
	{"CreateBucket", http.MethodPut, func(t *testing.T, g *testGateway, n int) (string, []byte, []byte, func(*testing.T)) {
		c := g.client()
		bucket := fmt.Sprintf("created-%d", n)
		signed, forged := sameLength("<CreateBucketConfiguration><LocationConstraint></LocationConstraint></CreateBucketConfiguration>",
			"<CreateBucketConfiguration/>")
		return "/" + bucket, signed, forged, func(t *testing.T) {
			if _, err := c.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(bucket)}); apiCode(err) != "NotFound" {
				t.Errorf("bucket %s was created: %v", bucket, err)
			}
		}
	}},
}

// TestGateway_ForgedBodiesChangeNothing sends every body-carrying operation
// a body other than the one its request vouches for: a same-length
// substitute under a signed payload hash, under a Content-MD5, under an
// x-amz-checksum-crc32, inside signed aws-chunked framing, a signed
// aws-chunked body whose final chunk signature is wrong, and a body that
// stalls half-way and then goes on wrong. Each is refused with S3's code,
// and nothing changed: the object keeps its bytes, the upload stays open
// with its parts, no key is deleted, no bucket created. While the stalled
// body waits for its rest, nothing may have happened either.
func TestGateway_ForgedBodiesChangeNothing(t *testing.T) {
	type attack struct {
		name string
		code string
		send func(t *testing.T, g *testGateway, bw *bodyWatch, method, target string, signed, forged []byte, unchanged func(*testing.T)) *http.Response
	}
	attacks := []attack{
		{"substituted under signed payload hash", "XAmzContentSHA256Mismatch", func(t *testing.T, g *testGateway, _ *bodyWatch, method, target string, signed, forged []byte, _ func(*testing.T)) *http.Response {
			// Content-MD5 of the forged body: only the payload hash can tell.
			req := g.signedRequest(t, method, target, hexSHA256(signed), map[string]string{"Content-MD5": md5Header(forged)}, forged)
			resp, err := g.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}},
		{"wrong Content-MD5", "BadDigest", func(t *testing.T, g *testGateway, _ *bodyWatch, method, target string, signed, forged []byte, _ func(*testing.T)) *http.Response {
			req := g.signedRequest(t, method, target, "UNSIGNED-PAYLOAD", map[string]string{"Content-MD5": md5Header(signed)}, forged)
			resp, err := g.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}},
		{"wrong x-amz-checksum-crc32", "BadDigest", func(t *testing.T, g *testGateway, _ *bodyWatch, method, target string, signed, forged []byte, _ func(*testing.T)) *http.Response {
			req := g.signedRequest(t, method, target, "UNSIGNED-PAYLOAD", map[string]string{"X-Amz-Checksum-Crc32": crc32Header(signed)}, forged)
			resp, err := g.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}},
		{"aws-chunked with a substituted chunk", "SignatureDoesNotMatch", func(t *testing.T, g *testGateway, _ *bodyWatch, method, target string, signed, forged []byte, _ func(*testing.T)) *http.Response {
			req, wire := g.chunkedWire(t, method, target, map[string]string{"Content-MD5": md5Header(forged)}, signed)
			i := bytes.Index(wire, signed)
			if i < 0 {
				t.Fatal("the signed body is not in one chunk of the wire")
			}
			copy(wire[i:], forged)
			return sendWire(t, g, req, wire)
		}},
		{"aws-chunked with a bad final chunk signature", "SignatureDoesNotMatch", func(t *testing.T, g *testGateway, _ *bodyWatch, method, target string, _, forged []byte, _ func(*testing.T)) *http.Response {
			req, wire := g.chunkedWire(t, method, target, map[string]string{"Content-MD5": md5Header(forged)}, forged)
			i := bytes.LastIndex(wire, []byte("0;chunk-signature="))
			if i < 0 {
				t.Fatal("no final chunk in the wire")
			}
			sig := i + len("0;chunk-signature=")
			if wire[sig] == '0' { // another hex digit
				wire[sig] = '1'
			} else {
				wire[sig] = '0'
			}
			return sendWire(t, g, req, wire)
		}},
		{"stalls half-way, then goes on wrong", "XAmzContentSHA256Mismatch", func(t *testing.T, g *testGateway, bw *bodyWatch, method, target string, _, forged []byte, unchanged func(*testing.T)) *http.Response {
			// The signed body is the forged document followed by white
			// space; the document itself arrives first, intact.
			pad := 1000
			body := append(bytes.Clone(forged), bytes.Repeat([]byte(" "), pad)...)
			head := body[:len(forged)+pad/2]
			wrongRest := bytes.Repeat([]byte("\t"), pad-pad/2)
			req := g.signedRequest(t, method, target, hexSHA256(body), map[string]string{"Content-MD5": md5Header(append(bytes.Clone(head), wrongRest...))}, nil)
			req.ContentLength = int64(len(body))
			conn, err := net.Dial("tcp", req.URL.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var wire bytes.Buffer
			fmt.Fprintf(&wire, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.Method, req.URL.RequestURI(), req.Host, len(body))
			if err := req.Header.Write(&wire); err != nil {
				t.Fatal(err)
			}
			wire.WriteString("\r\n")
			before := bw.read.Load()
			if _, err := conn.Write(append(wire.Bytes(), head...)); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for bw.read.Load()-before < int64(len(head)) {
				if time.Now().After(deadline) {
					t.Fatalf("the gateway read %d of the %d bytes sent", bw.read.Load()-before, len(head))
				}
				time.Sleep(5 * time.Millisecond)
			}
			// The gateway holds the whole document, but not the body's
			// end, where it is verified: nothing may have happened yet.
			unchanged(t)
			if _, err := conn.Write(wrongRest); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}},
	}
	for _, kind := range backends {
		t.Run(kind, func(t *testing.T) {
			g, bw := newWatchedGateway(t, kind)
			n := 0
			for _, op := range bodyTargets {
				t.Run(op.name, func(t *testing.T) {
					for _, a := range attacks {
						t.Run(a.name, func(t *testing.T) {
							n++
							target, signed, forged, unchanged := op.setup(t, g, n)
							if len(signed) != len(forged) || bytes.Equal(signed, forged) {
								t.Fatal("the forged body must differ from the signed one and have its length")
							}
							resp := a.send(t, g, bw, op.method, target, signed, forged, unchanged)
							if code := s3ErrorCode(t, resp); code != a.code {
								t.Errorf("%s: %d %s, want %s", op.name, resp.StatusCode, code, a.code)
							}
							unchanged(t)
						})
					}
				})
			}
		})
	}
}
