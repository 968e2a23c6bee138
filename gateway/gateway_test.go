package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/keystore"
)

// testGateway is a gateway in-process over httptest, on a real keystore
// and a real backend, with the bootstrap credentials.
type testGateway struct {
	url     string
	http    *http.Client
	store   *keystore.Store
	backend backend.Backend
	// objects is the fs backend's directory ("" for the s3 backend).
	objects string
	creds   keystore.Credentials
}

// backends are the backends every end-to-end test runs against.
var backends = []string{"fs", "s3"}

func newTestBackend(t testing.TB, kind string) (backend.Backend, string) {
	t.Helper()
	switch kind {
	case "fs":
		dir := t.TempDir()
		be, err := backend.NewFS(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { be.Close() })
		return be, dir
	case "s3":
		return newS3TestBackend(t), ""
	}
	t.Fatalf("unknown backend %q", kind)
	return nil, ""
}

func newTestGateway(t testing.TB, kind string, useTLS bool, configure ...func(*Config)) *testGateway {
	t.Helper()
	return newTestGatewayOn(t, keystore.OpenTest(t), kind, useTLS, configure...)
}

// newTestGatewayOn is newTestGateway over a given keystore, bootstrapped
// here.
func newTestGatewayOn(t testing.TB, store *keystore.Store, kind string, useTLS bool, configure ...func(*Config)) *testGateway {
	t.Helper()
	be, objects := newTestBackend(t, kind)
	g := newTestGatewayWith(t, store, be, useTLS, configure...)
	g.objects = objects
	return g
}

// newTestGatewayWith is newTestGatewayOn over a given backend.
func newTestGatewayWith(t testing.TB, store *keystore.Store, be backend.Backend, useTLS bool, configure ...func(*Config)) *testGateway {
	t.Helper()
	creds, err := store.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
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
	var ts *httptest.Server
	if useTLS {
		ts = httptest.NewTLSServer(srv)
	} else {
		ts = httptest.NewServer(srv)
	}
	t.Cleanup(ts.Close)
	return &testGateway{url: ts.URL, http: ts.Client(), store: store, backend: be, creds: creds}
}

// client returns an aws-sdk-go-v2 S3 client with the SDK's defaults
// (CRC32 checksums on uploads, sent as aws-chunked trailers).
func (g *testGateway) client(optFns ...func(*s3.Options)) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(g.url),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(g.creds.AccessKeyID, g.creds.SecretAccessKey, ""),
		UsePathStyle: true,
		HTTPClient:   g.http,
	}, optFns...)
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// apiCode returns the S3 error code of an SDK error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func mustCreateBucket(t *testing.T, c *s3.Client, name string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("CreateBucket %s: %v", name, err)
	}
}

func getAll(t *testing.T, c *s3.Client, bucket, key string, rng string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	out, err := c.GetObject(context.Background(), in)
	if err != nil {
		t.Fatalf("GetObject %s/%s %s: %v", bucket, key, rng, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GetObject %s/%s body: %v", bucket, key, err)
	}
	return b, out
}

// forEachGateway runs fn against a gateway on every backend, over HTTP
// and HTTPS.
func forEachGateway(t *testing.T, fn func(t *testing.T, g *testGateway)) {
	for _, kind := range backends {
		for _, useTLS := range []bool{false, true} {
			name := kind + "/http"
			if useTLS {
				name = kind + "/https"
			}
			t.Run(name, func(t *testing.T) {
				fn(t, newTestGateway(t, kind, useTLS))
			})
		}
	}
}

func TestGateway_PutGetRoundTrip(t *testing.T) {
	forEachGateway(t, func(t *testing.T, g *testGateway) {
		ctx := context.Background()
		c := g.client()
		mustCreateBucket(t, c, "roundtrip")
		for _, size := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 5 << 20} {
			key := fmt.Sprintf("obj-%d", size)
			body := randomBytes(t, size)
			put, err := c.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String("roundtrip"), Key: aws.String(key), Body: bytes.NewReader(body),
				ContentType: aws.String("application/x-test"),
				Metadata:    map[string]string{"colour": "blue"},
			})
			if err != nil {
				t.Fatalf("PutObject %d bytes: %v", size, err)
			}
			if put.ServerSideEncryption != "aws:kms" {
				t.Errorf("PutObject SSE header = %q, want aws:kms", put.ServerSideEncryption)
			}
			got, out := getAll(t, c, "roundtrip", key, "")
			if !bytes.Equal(got, body) {
				t.Fatalf("GetObject %d bytes: body differs (got %d bytes)", size, len(got))
			}
			if aws.ToInt64(out.ContentLength) != int64(size) {
				t.Errorf("Content-Length %d, want %d", aws.ToInt64(out.ContentLength), size)
			}
			if aws.ToString(out.ContentType) != "application/x-test" || out.Metadata["colour"] != "blue" {
				t.Errorf("metadata did not round-trip: type %q, meta %v", aws.ToString(out.ContentType), out.Metadata)
			}
			if out.ContentEncoding != nil && strings.Contains(*out.ContentEncoding, "aws-chunked") {
				t.Errorf("GetObject echoes the request's aws-chunked content encoding")
			}
			head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("roundtrip"), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToInt64(head.ContentLength) != int64(size) {
				t.Errorf("HEAD Content-Length %d, want %d", aws.ToInt64(head.ContentLength), size)
			}
		}
	})
}

func TestGateway_Multipart40MiB(t *testing.T) {
	forEachGateway(t, func(t *testing.T, g *testGateway) {
		ctx := context.Background()
		c := g.client()
		mustCreateBucket(t, c, "multipart")
		body := randomBytes(t, 40<<20)
		tm := transfermanager.New(c, func(o *transfermanager.Options) {
			o.PartSizeBytes = 8 << 20
			o.Concurrency = 3
		})
		if _, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
			Bucket: aws.String("multipart"), Key: aws.String("big"), Body: bytes.NewReader(body),
		}); err != nil {
			t.Fatalf("UploadObject: %v", err)
		}
		got, out := getAll(t, c, "multipart", "big", "")
		if !bytes.Equal(got, body) {
			t.Fatalf("multipart object differs (got %d bytes)", len(got))
		}
		if aws.ToInt32(out.PartsCount) != 5 {
			t.Errorf("parts count %d, want 5", aws.ToInt32(out.PartsCount))
		}
		// Ranges inside a part, across a part boundary, and suffix.
		for _, r := range []struct {
			header     string
			start, end int
		}{
			{"bytes=0-0", 0, 0},
			{"bytes=100-200", 100, 200},
			{fmt.Sprintf("bytes=%d-%d", 8<<20-10, 8<<20+10), 8<<20 - 10, 8<<20 + 10},
			{fmt.Sprintf("bytes=%d-", 40<<20-1000), 40<<20 - 1000, 40<<20 - 1},
			{"bytes=-65537", 40<<20 - 65537, 40<<20 - 1},
		} {
			got, _ := getAll(t, c, "multipart", "big", r.header)
			if !bytes.Equal(got, body[r.start:r.end+1]) {
				t.Errorf("range %s differs", r.header)
			}
		}
		// GET ?partNumber serves one part.
		part, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("multipart"), Key: aws.String("big"), PartNumber: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		p2, _ := io.ReadAll(part.Body)
		part.Body.Close()
		if !bytes.Equal(p2, body[8<<20:16<<20]) {
			t.Errorf("part 2 differs")
		}
		// The listing shows the plaintext size.
		list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("multipart")})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != 40<<20 {
			t.Errorf("listing %+v, want one object of %d bytes", list.Contents, 40<<20)
		}
		// Downloading through the transfer manager (ranged or per-part GETs).
		var buf writeAtBuffer
		if _, err := tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{
			Bucket: aws.String("multipart"), Key: aws.String("big"), WriterAt: &buf,
		}); err != nil {
			t.Fatalf("DownloadObject: %v", err)
		}
		if !bytes.Equal(buf.b, body) {
			t.Errorf("DownloadObject differs")
		}
	})
}

// writeAtBuffer is an in-memory io.WriterAt for the transfer manager.
type writeAtBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (w *writeAtBuffer) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := int(off) + len(p); end > len(w.b) {
		w.b = append(w.b, make([]byte, end-len(w.b))...)
	}
	copy(w.b[off:], p)
	return len(p), nil
}

func TestGateway_RangesOnSmallObject(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	c := g.client()
	mustCreateBucket(t, c, "ranges")
	const size = 3*64<<10 + 17
	body := randomBytes(t, size)
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("ranges"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	type rng struct {
		header     string
		start, end int
	}
	var cases []rng
	for _, a := range []int{0, 1, 65535, 65536, 65537, 2 * 65536, size - 1} {
		for _, b := range []int{a, a + 1, 65535, 65536, 3 * 65536, size - 1, size + 100} {
			if b < a {
				continue
			}
			cases = append(cases, rng{fmt.Sprintf("bytes=%d-%d", a, b), a, min(b, size-1)})
		}
		cases = append(cases, rng{fmt.Sprintf("bytes=%d-", a), a, size - 1})
	}
	for _, n := range []int{1, 17, 65536, size, size + 5} {
		cases = append(cases, rng{fmt.Sprintf("bytes=-%d", n), max(0, size-n), size - 1})
	}
	for _, r := range cases {
		got, out := getAll(t, c, "ranges", "k", r.header)
		if !bytes.Equal(got, body[r.start:r.end+1]) {
			t.Errorf("%s: got %d bytes, want body[%d:%d]", r.header, len(got), r.start, r.end+1)
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", r.start, r.end, size); aws.ToString(out.ContentRange) != want {
			t.Errorf("%s: Content-Range %q, want %q", r.header, aws.ToString(out.ContentRange), want)
		}
	}
	// Past the end: 416 InvalidRange.
	_, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("ranges"), Key: aws.String("k"), Range: aws.String(fmt.Sprintf("bytes=%d-", size))})
	if apiCode(err) != "InvalidRange" {
		t.Errorf("range past the end: %v, want InvalidRange", err)
	}
	// Ranged HEAD.
	head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("ranges"), Key: aws.String("k"), Range: aws.String("bytes=10-19")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(head.ContentLength) != 10 || aws.ToString(head.ContentRange) != fmt.Sprintf("bytes 10-19/%d", size) {
		t.Errorf("ranged HEAD: length %d, range %q", aws.ToInt64(head.ContentLength), aws.ToString(head.ContentRange))
	}
}

func TestGateway_ListingsShowPlaintextSizes(t *testing.T) {
	for _, kind := range backends {
		t.Run(kind, func(t *testing.T) {
			g := newTestGateway(t, kind, false)
			ctx := context.Background()
			c := g.client()
			mustCreateBucket(t, c, "listing")
			sizes := map[string]int{}
			for i, key := range []string{"a", "b/1", "b/2", "b/c/3", "c d", "e+f", "z"} {
				sizes[key] = i * 70000
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("listing"), Key: aws.String(key), Body: bytes.NewReader(randomBytes(t, i*70000))}); err != nil {
					t.Fatal(err)
				}
			}
			// V2, paginated by two, no delimiter.
			var keys []string
			p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("listing"), MaxKeys: aws.Int32(2)})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range page.Contents {
					keys = append(keys, aws.ToString(o.Key))
					if int(aws.ToInt64(o.Size)) != sizes[aws.ToString(o.Key)] {
						t.Errorf("%s listed with size %d, want %d", aws.ToString(o.Key), aws.ToInt64(o.Size), sizes[aws.ToString(o.Key)])
					}
				}
			}
			if want := []string{"a", "b/1", "b/2", "b/c/3", "c d", "e+f", "z"}; !slices.Equal(keys, want) {
				t.Errorf("V2 keys %q, want %q", keys, want)
			}
			// V2 with delimiter and prefix.
			out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("listing"), Prefix: aws.String("b/"), Delimiter: aws.String("/")})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Contents) != 2 || len(out.CommonPrefixes) != 1 || aws.ToString(out.CommonPrefixes[0].Prefix) != "b/c/" {
				t.Errorf("delimiter listing: %d objects, prefixes %+v", len(out.Contents), out.CommonPrefixes)
			}
			// V1 with marker and encoding-type=url, which aws-sdk-go-v2
			// leaves encoded.
			v1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("listing"), Marker: aws.String("b/2"), EncodingType: "url"})
			if err != nil {
				t.Fatal(err)
			}
			var v1keys []string
			for _, o := range v1.Contents {
				v1keys = append(v1keys, aws.ToString(o.Key))
			}
			if want := []string{"b/c/3", "c+d", "e%2Bf", "z"}; !slices.Equal(v1keys, want) {
				t.Errorf("V1 after marker, url-encoded: %q, want %q", v1keys, want)
			}
			// StartAfter.
			sa, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("listing"), StartAfter: aws.String("c d")})
			if err != nil {
				t.Fatal(err)
			}
			if len(sa.Contents) != 2 {
				t.Errorf("start-after: %d objects, want 2", len(sa.Contents))
			}
			// Versions: every object is version "null".
			vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("listing")})
			if err != nil {
				t.Fatal(err)
			}
			if len(vs.Versions) != 7 || aws.ToString(vs.Versions[0].VersionId) != "null" {
				t.Errorf("ListObjectVersions: %d versions", len(vs.Versions))
			}
		})
	}
}

func TestGateway_Copy(t *testing.T) {
	for _, kind := range backends {
		t.Run(kind, func(t *testing.T) {
			g := newTestGateway(t, kind, false)
			ctx := context.Background()
			c := g.client()
			mustCreateBucket(t, c, "src")
			mustCreateBucket(t, c, "dst")
			body := randomBytes(t, 200000)
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("k"), Body: bytes.NewReader(body),
				Metadata: map[string]string{"a": "1"}, ContentType: aws.String("text/x-a")}); err != nil {
				t.Fatal(err)
			}
			// COPY keeps the metadata.
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("copied"), CopySource: aws.String("src/k")}); err != nil {
				t.Fatalf("CopyObject: %v", err)
			}
			got, out := getAll(t, c, "dst", "copied", "")
			if !bytes.Equal(got, body) || out.Metadata["a"] != "1" || aws.ToString(out.ContentType) != "text/x-a" {
				t.Errorf("COPY: body equal %v, metadata %v, type %q", bytes.Equal(got, body), out.Metadata, aws.ToString(out.ContentType))
			}
			// REPLACE takes the request's metadata.
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String("k"), CopySource: aws.String("src/k"),
				MetadataDirective: "REPLACE", Metadata: map[string]string{"b": "2"}}); err != nil {
				t.Fatalf("CopyObject REPLACE onto itself: %v", err)
			}
			got, out = getAll(t, c, "src", "k", "")
			if !bytes.Equal(got, body) || out.Metadata["b"] != "2" || out.Metadata["a"] != "" {
				t.Errorf("REPLACE: body equal %v, metadata %v", bytes.Equal(got, body), out.Metadata)
			}
			// Copying onto itself without REPLACE is refused, as in S3.
			_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String("k"), CopySource: aws.String("src/k")})
			if apiCode(err) != "InvalidRequest" {
				t.Errorf("copy onto itself: %v, want InvalidRequest", err)
			}
			// UploadPartCopy re-encrypts a range of the source into a part.
			mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("dst"), Key: aws.String("assembled")})
			if err != nil {
				t.Fatal(err)
			}
			big := randomBytes(t, 5<<20)
			p1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("dst"), Key: aws.String("assembled"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(big)})
			if err != nil {
				t.Fatal(err)
			}
			p2, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("dst"), Key: aws.String("assembled"), UploadId: mp.UploadId, PartNumber: aws.Int32(2),
				CopySource: aws.String("src/k"), CopySourceRange: aws.String("bytes=1000-1999")})
			if err != nil {
				t.Fatalf("UploadPartCopy: %v", err)
			}
			if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("dst"), Key: aws.String("assembled"), UploadId: mp.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
					{PartNumber: aws.Int32(1), ETag: p1.ETag}, {PartNumber: aws.Int32(2), ETag: p2.CopyPartResult.ETag},
				}}}); err != nil {
				t.Fatalf("CompleteMultipartUpload: %v", err)
			}
			got, _ = getAll(t, c, "dst", "assembled", "")
			if want := append(append([]byte{}, big...), body[1000:2000]...); !bytes.Equal(got, want) {
				t.Errorf("assembled object differs")
			}
			// A copy of a multipart object keeps its manifest.
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String("assembled-copy"), CopySource: aws.String("dst/assembled")}); err != nil {
				t.Fatal(err)
			}
			got, _ = getAll(t, c, "src", "assembled-copy", "")
			if len(got) != 5<<20+1000 {
				t.Errorf("copy of multipart object: %d bytes", len(got))
			}
		})
	}
}
