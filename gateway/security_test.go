package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
)

// s3ErrorCode reads the Code of an S3 XML error document.
func s3ErrorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := string(b)
	i, j := strings.Index(s, "<Code>"), strings.Index(s, "</Code>")
	if i < 0 || j < i {
		return ""
	}
	return s[i+len("<Code>") : j]
}

func TestGateway_RejectsBadAuthentication(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "secure")
	body := []byte("secret document")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("secure"), Key: aws.String("doc"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: g.creds.AccessKeyID, SecretAccessKey: g.creds.SecretAccessKey}
	emptyHash := hex.EncodeToString(sha256.New().Sum(nil))

	t.Run("wrong secret", func(t *testing.T) {
		bad := s3.New(s3.Options{BaseEndpoint: aws.String(g.url), Region: "us-east-1", UsePathStyle: true, HTTPClient: g.http,
			Credentials: credentials.NewStaticCredentialsProvider(g.creds.AccessKeyID, "wrong"+g.creds.SecretAccessKey[5:], "")})
		_, err := bad.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secure"), Key: aws.String("doc")})
		if apiCode(err) != "SignatureDoesNotMatch" {
			t.Errorf("got %v, want SignatureDoesNotMatch", err)
		}
	})
	t.Run("unknown access key", func(t *testing.T) {
		bad := s3.New(s3.Options{BaseEndpoint: aws.String(g.url), Region: "us-east-1", UsePathStyle: true, HTTPClient: g.http,
			Credentials: credentials.NewStaticCredentialsProvider("TRSRUNKNOWNKEY000000", g.creds.SecretAccessKey, "")})
		_, err := bad.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secure"), Key: aws.String("doc")})
		if apiCode(err) != "InvalidAccessKeyId" {
			t.Errorf("got %v, want InvalidAccessKeyId", err)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		resp, err := g.http.Get(g.url + "/secure/doc")
		if err != nil {
			t.Fatal(err)
		}
		if code := s3ErrorCode(t, resp); resp.StatusCode != http.StatusForbidden || code != "AccessDenied" {
			t.Errorf("anonymous GET: %d %s, want 403 AccessDenied", resp.StatusCode, code)
		}
		if resp.Header.Get("x-amz-request-id") == "" {
			t.Error("error response without x-amz-request-id")
		}
	})

	presign := func(t *testing.T, method, path string, signed time.Time, expires time.Duration) string {
		t.Helper()
		req, _ := http.NewRequest(method, g.url+path, nil)
		q := req.URL.Query()
		q.Set("X-Amz-Expires", strconv.Itoa(int(expires.Seconds())))
		req.URL.RawQuery = q.Encode()
		u, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", signed)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	t.Run("presigned GET works", func(t *testing.T) {
		resp, err := g.http.Get(presign(t, "GET", "/secure/doc", time.Now(), time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Errorf("presigned GET: %d %q", resp.StatusCode, got)
		}
	})
	t.Run("tampered presigned URL", func(t *testing.T) {
		u := presign(t, "GET", "/secure/doc", time.Now(), time.Hour)
		u = strings.Replace(u, "X-Amz-Expires=3600", "X-Amz-Expires=3601", 1)
		resp, err := g.http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if code := s3ErrorCode(t, resp); code != "SignatureDoesNotMatch" {
			t.Errorf("tampered URL: %d %s, want SignatureDoesNotMatch", resp.StatusCode, code)
		}
	})
	t.Run("expired presigned URL", func(t *testing.T) {
		resp, err := g.http.Get(presign(t, "GET", "/secure/doc", time.Now().Add(-2*time.Hour), time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if code := s3ErrorCode(t, resp); resp.StatusCode != http.StatusForbidden || code != "AccessDenied" {
			t.Errorf("expired URL: %d %s, want 403 AccessDenied", resp.StatusCode, code)
		}
	})
	t.Run("skewed clock", func(t *testing.T) {
		req, _ := http.NewRequest("GET", g.url+"/secure/doc", nil)
		req.Header.Set("X-Amz-Content-Sha256", emptyHash)
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptyHash, "s3", "us-east-1", time.Now().Add(-20*time.Minute)); err != nil {
			t.Fatal(err)
		}
		resp, err := g.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if code := s3ErrorCode(t, resp); resp.StatusCode != http.StatusForbidden || code != "RequestTimeTooSkewed" {
			t.Errorf("skewed request: %d %s, want 403 RequestTimeTooSkewed", resp.StatusCode, code)
		}
	})
	t.Run("modified streaming chunk", func(t *testing.T) {
		// minio-go over plain HTTP signs every chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD);
		// the transport flips one byte of the body on the way.
		tr := &flipTransport{base: http.DefaultTransport, at: 5000}
		mc, err := minio.New(strings.TrimPrefix(g.url, "http://"), &minio.Options{
			Creds: miniocreds.NewStaticV4(g.creds.AccessKeyID, g.creds.SecretAccessKey, ""), Region: "us-east-1", Transport: tr,
		})
		if err != nil {
			t.Fatal(err)
		}
		data := randomBytes(t, 100000)
		_, err = mc.PutObject(ctx, "secure", "chunked", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		if minio.ToErrorResponse(err).Code != "SignatureDoesNotMatch" {
			t.Errorf("modified chunk: %v, want SignatureDoesNotMatch", err)
		}
		if !tr.flipped {
			t.Fatal("the transport never flipped a byte: the test proves nothing")
		}
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("secure"), Key: aws.String("chunked")}); apiCode(err) != "NotFound" {
			t.Errorf("an object was committed from a forged body: %v", err)
		}
	})
}

// flipTransport flips one byte of a request body at offset at.
type flipTransport struct {
	base    http.RoundTripper
	at      int
	flipped bool
}

func (f *flipTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Method == http.MethodPut {
		r.Body = &flipReader{r: r.Body, at: f.at, done: &f.flipped}
	}
	return f.base.RoundTrip(r)
}

type flipReader struct {
	r    io.ReadCloser
	at   int
	pos  int
	done *bool
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.pos <= f.at && f.at < f.pos+n {
		p[f.at-f.pos] ^= 0x01
		*f.done = true
	}
	f.pos += n
	return n, err
}

func (f *flipReader) Close() error { return f.r.Close() }

func TestGateway_MinioClient(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			g := newTestGateway(t, "fs", useTLS)
			ctx := context.Background()
			endpoint := strings.TrimPrefix(strings.TrimPrefix(g.url, "http://"), "https://")
			mc, err := minio.New(endpoint, &minio.Options{
				Creds:     miniocreds.NewStaticV4(g.creds.AccessKeyID, g.creds.SecretAccessKey, ""),
				Secure:    useTLS,
				Region:    "us-east-1",
				Transport: g.http.Transport,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := mc.MakeBucket(ctx, "minio", minio.MakeBucketOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, size := range []int{0, 1, 5 << 20} {
				data := randomBytes(t, size)
				if _, err := mc.PutObject(ctx, "minio", "obj", bytes.NewReader(data), int64(size), minio.PutObjectOptions{
					UserMetadata: map[string]string{"k": "v"},
				}); err != nil {
					t.Fatalf("PutObject %d: %v", size, err)
				}
				obj, err := mc.GetObject(ctx, "minio", "obj", minio.GetObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(obj)
				obj.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("GetObject %d: %v, equal %v", size, err, bytes.Equal(got, data))
				}
			}
			// minio-go's multipart upload for an unknown size.
			data := randomBytes(t, 12<<20)
			if _, err := mc.PutObject(ctx, "minio", "stream", bytes.NewReader(data), -1, minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
				t.Fatalf("streamed PutObject: %v", err)
			}
			obj, err := mc.GetObject(ctx, "minio", "stream", minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(obj)
			obj.Close()
			if !bytes.Equal(got, data) {
				t.Fatalf("multipart object differs (got %d bytes)", len(got))
			}
			var n int
			for o := range mc.ListObjects(ctx, "minio", minio.ListObjectsOptions{}) {
				if o.Err != nil {
					t.Fatal(o.Err)
				}
				n++
				if o.Key == "stream" && o.Size != 12<<20 {
					t.Errorf("listed size %d, want %d", o.Size, 12<<20)
				}
			}
			if n != 2 {
				t.Errorf("listed %d objects, want 2", n)
			}
		})
	}
}

// TestGateway_TamperedCiphertext changes the fs backend's files behind the
// gateway's back: a flipped byte and two swapped objects must both fail,
// and no byte of wrong plaintext may reach the client.
func TestGateway_TamperedCiphertext(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "tamper")
	a, b := randomBytes(t, 300000), randomBytes(t, 300000)
	for key, body := range map[string][]byte{"a": a, "b": b} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tamper"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	files := objectFiles(t, g.objects)
	if len(files) != 2 {
		t.Fatalf("found %d object files under %s, want 2: %v", len(files), g.objects, files)
	}
	read := func(key string) ([]byte, error) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tamper"), Key: aws.String(key)})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	// Both read fine before.
	for key, want := range map[string][]byte{"a": a, "b": b} {
		if got, err := read(key); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("before tampering %s: %v", key, err)
		}
	}

	t.Run("flipped byte", func(t *testing.T) {
		f := files[0]
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		orig := bytes.Clone(raw)
		raw[len(raw)-100] ^= 0x40 // inside the last package of ciphertext
		if err := os.WriteFile(f, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(f, orig, 0o600)
		failed := 0
		for key, want := range map[string][]byte{"a": a, "b": b} {
			got, err := read(key)
			if err != nil {
				failed++
				if !bytes.HasPrefix(want, got) {
					t.Errorf("%s: the bytes sent before the failure are not a prefix of the plaintext", key)
				}
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: wrong plaintext served without an error", key)
			}
		}
		if failed != 1 {
			t.Errorf("%d reads failed, want exactly the tampered one", failed)
		}
	})
	t.Run("swapped objects", func(t *testing.T) {
		tmp := files[0] + ".swap"
		must(t, os.Rename(files[0], tmp))
		must(t, os.Rename(files[1], files[0]))
		must(t, os.Rename(tmp, files[1]))
		for _, key := range []string{"a", "b"} {
			got, err := read(key)
			if err == nil {
				t.Errorf("%s: served %d bytes of a swapped object", key, len(got))
			}
			if len(got) > 0 {
				t.Errorf("%s: %d bytes reached the client", key, len(got))
			}
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// objectFiles lists the regular files under dir, which holds only the fs
// backend's objects in these tests.
func objectFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, _ := d.Info()
			if info.Size() > 1000 {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestGateway_UnknownSubresourceIsNotAWrite(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "sub")
	body := []byte("keep me")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sub"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: g.creds.AccessKeyID, SecretAccessKey: g.creds.SecretAccessKey}
	for _, q := range []string{"tagging", "acl", "retention", "legal-hold", "torrent", "restore"} {
		payload := []byte("<Tagging><TagSet/></Tagging>")
		req, _ := http.NewRequest("PUT", g.url+"/sub/k?"+q, bytes.NewReader(payload))
		sum := sha256.Sum256(payload)
		h := hex.EncodeToString(sum[:])
		req.Header.Set("X-Amz-Content-Sha256", h)
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, h, "s3", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := g.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if code := s3ErrorCode(t, resp); resp.StatusCode != http.StatusNotImplemented || code != "NotImplemented" {
			t.Errorf("PUT ?%s: %d %s, want 501 NotImplemented", q, resp.StatusCode, code)
		}
	}
	got, _ := getAll(t, c, "sub", "k", "")
	if !bytes.Equal(got, body) {
		t.Errorf("the object changed: %q", got)
	}
}

// TestGateway_BadDigestCommitsNothing sends bodies whose Content-MD5 or
// x-amz-checksum-crc32 does not match: the PUT fails with BadDigest and the
// object stored before is untouched.
func TestGateway_BadDigestCommitsNothing(t *testing.T) {
	for _, kind := range backends {
		t.Run(kind, func(t *testing.T) {
			g := newTestGateway(t, kind, false)
			ctx := context.Background()
			c := g.client()
			mustCreateBucket(t, c, "digest")
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("digest"), Key: aws.String("k"), Body: strings.NewReader("original")}); err != nil {
				t.Fatal(err)
			}
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("digest"), Key: aws.String("k"), Body: strings.NewReader("replacement"),
				ContentMD5: aws.String("1B2M2Y8AsgTpgAmY7PhCfg==")}) // MD5 of ""
			if apiCode(err) != "BadDigest" {
				t.Errorf("wrong Content-MD5: %v, want BadDigest", err)
			}
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("digest"), Key: aws.String("k"), Body: strings.NewReader("replacement"),
				ChecksumCRC32: aws.String("AAAAAA==")})
			if apiCode(err) != "BadDigest" {
				t.Errorf("wrong x-amz-checksum-crc32: %v, want BadDigest", err)
			}
			got, _ := getAll(t, c, "digest", "k", "")
			if string(got) != "original" {
				t.Errorf("object is %q after failed PUTs, want the original", got)
			}
		})
	}
}

// TestGateway_MetricsCarryNoPersonalData checks that requests are counted
// and that no label value names a bucket, key, tenant or access key.
func TestGateway_MetricsCarryNoPersonalData(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newTestGateway(t, "fs", false, func(c *Config) { c.Metrics = NewMetrics(reg) })
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "personal-bucket")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("personal-bucket"), Key: aws.String("personal-key"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	getAll(t, c, "personal-bucket", "personal-key", "")
	_, _ = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("personal-bucket"), Key: aws.String("missing")})

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var puts, notFound float64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
				for _, secret := range []string{"personal", g.creds.AccessKeyID, g.creds.Tenant.String(), "127.0.0.1"} {
					if strings.Contains(l.GetValue(), secret) {
						t.Errorf("metric %s label %s=%q carries %q", f.GetName(), l.GetName(), l.GetValue(), secret)
					}
				}
			}
			if f.GetName() == "tresor_s3_requests_total" {
				if labels["operation"] == "PutObject" && labels["status"] == "200" {
					puts += m.GetCounter().GetValue()
				}
				if labels["operation"] == "GetObject" && labels["status"] == "404" {
					notFound += m.GetCounter().GetValue()
				}
			}
		}
	}
	if puts != 1 || notFound != 1 {
		t.Errorf("counted %v PutObject 200 and %v GetObject 404, want 1 and 1", puts, notFound)
	}
}
