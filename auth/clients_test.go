package auth

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// End-to-end tests: real clients against an httptest server whose handler
// verifies with a Verifier and reads the body through Result.Body.

func sdkClient(srv *http.Client, endpoint string, optFns ...func(*s3.Options)) *s3.Client {
	// aws.Config as config.LoadDefaultConfig fills it, without reading the
	// environment: it resolves RequestChecksumCalculation to WhenSupported.
	cfg := aws.Config{
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		Region:                     testRegion,
		Credentials:                awscreds.NewStaticCredentialsProvider(testAK, testSK, ""),
		HTTPClient:                 srv,
		RetryMaxAttempts:           1,
	}
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	}}, optFns...)...)
}

func checkReceived(t *testing.T, got received, want []byte) {
	t.Helper()
	if got.err != nil {
		t.Fatalf("server: %v (mode %s)", got.err, got.mode)
	}
	if !bytes.Equal(got.body, want) {
		t.Fatalf("server got %d bytes, want %d (mode %s)", len(got.body), len(want), got.mode)
	}
	if got.decodedLength != -1 && got.decodedLength != int64(len(want)) {
		t.Fatalf("DecodedLength = %d, want %d", got.decodedLength, len(want))
	}
	if strings.Contains(got.encoding, "aws-chunked") {
		t.Fatalf("ContentEncoding %q still names aws-chunked", got.encoding)
	}
}

func TestSDK_PutObject(t *testing.T) {
	t.Parallel()
	data := payload(300<<10+17, 1)
	cases := []struct {
		name     string
		tls      bool
		alg      types.ChecksumAlgorithm
		unseek   bool // body the SDK cannot seek, so it must stream
		wantMode string
		wantSum  ChecksumAlgorithm
	}{
		{name: "DefaultTLS", tls: true, wantMode: streamingUnsignedTrailer, wantSum: ChecksumCRC32},
		{name: "DefaultHTTP", wantSum: ChecksumCRC32},
		{name: "CRC32C_TLS", tls: true, alg: types.ChecksumAlgorithmCrc32c, wantMode: streamingUnsignedTrailer, wantSum: ChecksumCRC32C},
		{name: "SHA1_TLS", tls: true, alg: types.ChecksumAlgorithmSha1, wantMode: streamingUnsignedTrailer, wantSum: ChecksumSHA1},
		{name: "SHA256_TLS", tls: true, alg: types.ChecksumAlgorithmSha256, wantMode: streamingUnsignedTrailer, wantSum: ChecksumSHA256},
		{name: "CRC64NVME_TLS", tls: true, alg: types.ChecksumAlgorithmCrc64nvme, wantMode: streamingUnsignedTrailer, wantSum: ChecksumCRC64NVME},
		{name: "CRC32C_HTTP", alg: types.ChecksumAlgorithmCrc32c, wantSum: ChecksumCRC32C},
		{name: "SHA256_HTTP", alg: types.ChecksumAlgorithmSha256, wantSum: ChecksumSHA256},
		{name: "UnseekableTLS", tls: true, unseek: true, wantMode: streamingUnsignedTrailer, wantSum: ChecksumCRC32},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec, srv := newRecorder(t, tc.tls)
			c := sdkClient(srv.Client(), srv.URL)
			var body io.Reader = bytes.NewReader(data)
			if tc.unseek {
				body = oneReader{bytes.NewReader(data)}
			}
			out, err := c.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(testBucket), Key: aws.String("dir/a key+with!odd(chars)*~.bin"),
				Body: body, ContentLength: aws.Int64(int64(len(data))), ChecksumAlgorithm: tc.alg,
			})
			if err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			got := rec.last(t)
			checkReceived(t, got, data)
			t.Logf("mode %s, Content-Length %d, Transfer-Encoding %v, x-amz-trailer %q",
				got.mode, got.contentLength, got.te, got.header.Get("X-Amz-Trailer"))
			if tc.wantMode != "" && got.mode != tc.wantMode {
				t.Errorf("mode = %s, want %s", got.mode, tc.wantMode)
			}
			if len(got.checksums) != 1 || got.checksums[0].Algorithm != tc.wantSum {
				t.Fatalf("checksums = %v, want one %s", got.checksums, tc.wantSum)
			}
			want := Checksum{Algorithm: tc.wantSum, Sum: sumOf(tc.wantSum, data)}
			if got.checksums[0].String() != want.String() {
				t.Errorf("checksum = %s, want %s", got.checksums[0], want)
			}
			// The SDK reads the echoed checksum back into the output.
			if tc.wantSum == ChecksumCRC32 && aws.ToString(out.ChecksumCRC32) != want.String() {
				t.Errorf("SDK saw ChecksumCRC32 %q, want %q", aws.ToString(out.ChecksumCRC32), want)
			}
		})
	}
}

func sumOf(a ChecksumAlgorithm, data []byte) []byte {
	h := a.New()
	h.Write(data)
	return h.Sum(nil)
}

// TestSDK_PutObjectUnknownLength gives the SDK a stream of unknown length
// over TLS: it frames it as aws-chunked inside Transfer-Encoding: chunked.
func TestSDK_PutObjectUnknownLength(t *testing.T) {
	t.Parallel()
	rec, srv := newRecorder(t, true)
	c := sdkClient(srv.Client(), srv.URL)
	data := payload(100<<10, 7)
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String("k"), Body: oneReader{bytes.NewReader(data)},
	})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	got := rec.last(t)
	t.Logf("mode %s, Content-Length %d, Transfer-Encoding %v, decoded %q", got.mode, got.contentLength, got.te, got.header.Get("X-Amz-Decoded-Content-Length"))
	checkReceived(t, got, data)
}

// TestSDK_VirtualHostStyle signs the bucket into the Host header.
func TestSDK_VirtualHostStyle(t *testing.T) {
	t.Parallel()
	rec, srv := newRecorder(t, false)
	addr := srv.Listener.Addr().String()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	c := sdkClient(hc, "http://s3.tresor.test:8080", func(o *s3.Options) { o.UsePathStyle = false })
	data := payload(1000, 2)
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String("k"), Body: bytes.NewReader(data),
	}); err != nil {
		t.Fatal(err)
	}
	got := rec.last(t)
	checkReceived(t, got, data)
	if got.path != "/k" {
		t.Errorf("path = %q, want /k (bucket in host)", got.path)
	}
}

// TestSDK_UploadPart covers the other body-carrying write of DESIGN.md 6.
func TestSDK_UploadPart(t *testing.T) {
	t.Parallel()
	rec, srv := newRecorder(t, true)
	c := sdkClient(srv.Client(), srv.URL)
	data := payload(70<<10, 3)
	if _, err := c.UploadPart(context.Background(), &s3.UploadPartInput{
		Bucket: aws.String(testBucket), Key: aws.String("k"), UploadId: aws.String("up/load=id"),
		PartNumber: aws.Int32(3), Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
	}); err != nil {
		t.Fatal(err)
	}
	checkReceived(t, rec.last(t), data)
}

func TestSDK_PresignedGetAndPut(t *testing.T) {
	t.Parallel()
	rec, srv := newRecorder(t, false)
	rec.getBody = []byte("the object")
	pc := s3.NewPresignClient(sdkClient(srv.Client(), srv.URL))
	ctx := context.Background()

	get, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String("a/b c.txt")},
		s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(get.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "the object" {
		t.Fatalf("presigned GET: %s %q (%v)", resp.Status, b, rec.last(t).err)
	}

	data := payload(5000, 4)
	put, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String("p"), ContentType: aws.String("text/plain")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(put.Method, put.URL, bytes.NewReader(data))
	for k, vs := range put.SignedHeader {
		if !strings.EqualFold(k, "host") {
			req.Header[k] = vs
		}
	}
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %s: %v", resp.Status, rec.last(t).err)
	}
	checkReceived(t, rec.last(t), data)
}

func minioClient(t *testing.T, srv string, tls bool, transport http.RoundTripper) *minio.Client {
	t.Helper()
	u, _ := url.Parse(srv)
	mc, err := minio.New(u.Host, &minio.Options{
		Creds: miniocreds.NewStaticV4(testAK, testSK, ""), Secure: tls, Region: testRegion, Transport: transport,
		TrailingHeaders: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

func TestMinio_PutObject(t *testing.T) {
	t.Parallel()
	data := payload(200<<10+3, 5)
	cases := []struct {
		name     string
		tls      bool
		opts     minio.PutObjectOptions
		wantMode string
	}{
		{name: "HTTP", wantMode: streamingSigned},
		{name: "TLS", tls: true},
		{name: "HTTP_CRC32C", opts: minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}},
		{name: "TLS_CRC32C", tls: true, opts: minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}},
		{name: "HTTP_AutoCRC64NVME", opts: minio.PutObjectOptions{AutoChecksum: minio.ChecksumCRC64NVME}},
		{name: "HTTP_SHA256", opts: minio.PutObjectOptions{Checksum: minio.ChecksumSHA256}},
		{name: "HTTP_ContentMD5", opts: minio.PutObjectOptions{SendContentMd5: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec, srv := newRecorder(t, tc.tls)
			mc := minioClient(t, srv.URL, tc.tls, srv.Client().Transport)
			opts := tc.opts
			opts.DisableMultipart = true
			if _, err := mc.PutObject(context.Background(), testBucket, "dir/obj ect", bytes.NewReader(data), int64(len(data)), opts); err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			got := rec.last(t)
			checkReceived(t, got, data)
			t.Logf("mode %s, x-amz-trailer %q, checksums %v", got.mode, got.header.Get("X-Amz-Trailer"), got.checksums)
			if tc.wantMode != "" && got.mode != tc.wantMode {
				t.Errorf("mode = %s, want %s", got.mode, tc.wantMode)
			}
		})
	}
}

// TestMinio_StreamingSignedTrailer drives minio-go's streaming signer with a
// signed trailer (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER), and with the
// body sent as Transfer-Encoding: chunked without Content-Length.
func TestMinio_StreamingSignedTrailer(t *testing.T) {
	t.Parallel()
	for _, chunkedTE := range []bool{false, true} {
		rec, srv := newRecorder(t, false)
		data := payload(150<<10, 6)
		req := signedStreamingRequest(t, srv.URL, data, ChecksumCRC32C, time.Now())
		if chunkedTE {
			req.ContentLength = -1
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := rec.last(t)
		checkReceived(t, got, data)
		if got.mode != streamingSignedTrailer {
			t.Errorf("mode = %s", got.mode)
		}
		if chunkedTE && (got.contentLength != -1 || len(got.te) == 0) {
			t.Errorf("request was not sent chunked: Content-Length %d, TE %v", got.contentLength, got.te)
		}
		if len(got.checksums) != 1 || got.checksums[0].Algorithm != ChecksumCRC32C {
			t.Errorf("checksums = %v", got.checksums)
		}
	}
}

func TestMinio_PresignedGetObject(t *testing.T) {
	t.Parallel()
	rec, srv := newRecorder(t, true)
	rec.getBody = []byte("minio object")
	mc := minioClient(t, srv.URL, true, srv.Client().Transport)
	u, err := mc.PresignedGetObject(context.Background(), testBucket, "x/y z", time.Hour, url.Values{"response-content-type": {"text/plain"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "minio object" {
		t.Fatalf("%s %q: %v", resp.Status, b, rec.last(t).err)
	}
}

// TestSigner_HeaderAndPresign signs raw requests with aws-sdk-go-v2's
// aws/signer/v4 and verifies them in-process.
func TestSigner_HeaderAndPresign(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, nil)
	creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	ctx := context.Background()
	body := []byte("hello, tresor")
	bodyHash := hexSHA256(body)

	for _, target := range []string{
		"http://127.0.0.1:9000/bucket/key",
		"http://bucket.s3.example.com/key%20with%20space?tagging",
		"http://127.0.0.1/bucket/%E2%82%AC/%21x?list-type=2&prefix=a%2Fb&delimiter=%2F&max-keys=5",
		"http://127.0.0.1/bucket?uploads=&x=1&x=0",
	} {
		req, _ := http.NewRequest(http.MethodPut, target, bytes.NewReader(body))
		req.Header.Set("X-Amz-Content-Sha256", bodyHash)
		req.Header.Set("X-Amz-Meta-Color", "  blue   and  green ")
		if err := signer.SignHTTP(ctx, creds, req, bodyHash, "s3", testRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(ctx, toServerRequest(t, req))
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if b, err := io.ReadAll(res.Body); err != nil || !bytes.Equal(b, body) {
			t.Fatalf("%s: body %q, %v", target, b, err)
		}

		preq, _ := http.NewRequest(http.MethodGet, target, nil)
		q := preq.URL.Query()
		q.Set("X-Amz-Expires", "600")
		preq.URL.RawQuery = q.Encode()
		u, hdr, err := signer.PresignHTTP(ctx, creds, preq, unsignedPayload, "s3", testRegion, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		get, _ := http.NewRequest(http.MethodGet, u, nil)
		for k, vs := range hdr {
			if !strings.EqualFold(k, "host") {
				get.Header[k] = vs
			}
		}
		if _, err := v.Verify(ctx, toServerRequest(t, get)); err != nil {
			t.Fatalf("presigned %s: %v", target, err)
		}
	}
}

// TestHTTP2 repeats the default TLS uploads over HTTP/2, where Host comes
// from :authority and there is no Transfer-Encoding.
func TestHTTP2(t *testing.T) {
	t.Parallel()
	rec := &recorder{v: newTestVerifier(t, nil)}
	srv := httptest.NewUnstartedServer(rec)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	data := payload(200<<10, 71)

	if _, err := sdkClient(srv.Client(), srv.URL).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String("h2"), Body: bytes.NewReader(data),
	}); err != nil {
		t.Fatalf("SDK: %v", err)
	}
	got := rec.last(t)
	checkReceived(t, got, data)
	if got.proto != "HTTP/2.0" {
		t.Fatalf("served over %s", got.proto)
	}
	if !strings.HasPrefix(got.mode, "STREAMING-") {
		t.Errorf("SDK mode %s", got.mode)
	}

	mc := minioClient(t, srv.URL, true, srv.Client().Transport)
	if _, err := mc.PutObject(context.Background(), testBucket, "h2", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{DisableMultipart: true, Checksum: minio.ChecksumSHA256}); err != nil {
		t.Fatalf("minio: %v", err)
	}
	checkReceived(t, rec.last(t), data)
}
