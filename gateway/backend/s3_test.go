package backend_test

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/gateway/backend/backendtest"
)

// newS3 starts gofakes3 behind httptest and returns an S3 backend on it.
// A wrapper fails the test if any request carries aws-chunked framing,
// streaming signatures or a body without an exact Content-Length: gofakes3
// would store such framing as data (DESIGN.md trap 9), and a real service
// must receive plain bodies too.
func newS3(t *testing.T, prefix string) *backend.S3 { return newS3With(t, prefix, false) }

func newS3With(t *testing.T, prefix string, useTLS bool) *backend.S3 {
	t.Helper()
	mem := s3mem.New()
	faker := gofakes3.New(mem, gofakes3.WithAutoBucket(false))
	if err := mem.CreateBucket("tresor-data"); err != nil {
		t.Fatal(err)
	}
	var bad atomic.Value
	handler := faker.Server()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked"):
			bad.Store("Content-Encoding: aws-chunked")
		case strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-"):
			bad.Store("x-amz-content-sha256: " + r.Header.Get("X-Amz-Content-Sha256"))
		case r.Header.Get("X-Amz-Trailer") != "":
			bad.Store("x-amz-trailer: " + r.Header.Get("X-Amz-Trailer"))
		case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == "" && r.ContentLength < 0:
			bad.Store("PUT without Content-Length")
		}
		handler.ServeHTTP(w, r)
	}))
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		srv.Close()
		if v := bad.Load(); v != nil {
			t.Errorf("backend sent a request with %v", v)
		}
	})
	cfg := backend.DefaultS3Config()
	cfg.Endpoint = srv.URL
	cfg.Bucket = "tresor-data"
	cfg.Prefix = prefix
	cfg.PathStyle = true
	cfg.AccessKeyID, cfg.SecretAccessKey = "test", "test"
	if useTLS {
		cfg.CAFile = filepath.Join(t.TempDir(), "ca.pem")
		cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(cfg.CAFile, cert, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := backend.NewS3(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestS3_Conformance(t *testing.T) {
	backendtest.RunConformance(t, backendtest.Harness{
		New: func(t *testing.T) backend.Backend { return newS3(t, "tenants/") },
		Skip: map[string]string{
			"OverwriteReplacesMetadata": "gofakes3 limitation: s3mem's PutObject merges the old object's metadata into the new one (gofakes3.MergeMetadata)",
			"MultipartETag":             "gofakes3 limitation: CompleteMultipartUpload answers the md5-of-md5s-N ETag but stores and serves the MD5 of the whole object",
		},
	})
}

func TestS3_KeyLengthIncludesPrefix(t *testing.T) {
	b := newS3(t, "pfx/")
	// "pfx/" + "bkt" + "/" = 8 bytes of the 1024.
	ok := strings.Repeat("k", backend.MaxKeyLen-8)
	if _, err := b.Put(t.Context(), "bkt", ok, strings.NewReader("x"), 1, backend.PutOptions{}); err != nil {
		t.Fatalf("Put of a key filling the limit: %v", err)
	}
	_, err := b.Put(t.Context(), "bkt", ok+"k", strings.NewReader("x"), 1, backend.PutOptions{})
	if !errors.Is(err, backend.ErrInvalidKey) {
		t.Fatalf("Put of a key one byte over: %v, want ErrInvalidKey", err)
	}
	_, err = b.Put(t.Context(), "bkt", "nul\x00", strings.NewReader("x"), 1, backend.PutOptions{})
	if !errors.Is(err, backend.ErrInvalidKey) {
		t.Fatalf("Put of a key with NUL: %v, want ErrInvalidKey", err)
	}
}

func TestS3Config_Validate(t *testing.T) {
	for name, mutate := range map[string]func(*backend.S3Config){
		"no bucket":         func(c *backend.S3Config) { c.Bucket = "" },
		"bad endpoint":      func(c *backend.S3Config) { c.Endpoint = "ftp://x" },
		"secret without id": func(c *backend.S3Config) { c.AccessKeyID = "" },
		"zero attempts":     func(c *backend.S3Config) { c.MaxAttempts = 0 },
		"missing CA file":   func(c *backend.S3Config) { c.CAFile = "/nonexistent/ca.pem" },
		"no region":         func(c *backend.S3Config) { c.Region = "" },
	} {
		cfg := backend.DefaultS3Config()
		cfg.Bucket, cfg.AccessKeyID, cfg.SecretAccessKey = "b", "id", "secret"
		if err := cfg.Validate(); err != nil {
			t.Fatalf("valid config: %v", err)
		}
		mutate(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}

// TestS3_TLS runs uploads over HTTPS, where the SDK would otherwise switch
// to aws-chunked bodies with trailing checksums, trusting the test server
// through CAFile.
func TestS3_TLS(t *testing.T) {
	b := newS3With(t, "", true)
	body := bytes.Repeat([]byte("tresor"), 100_000)
	if _, err := b.Put(t.Context(), "bkt", "k", bytes.NewReader(body), int64(len(body)), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Put(t.Context(), "bkt", "k", bytes.NewReader(body), int64(len(body))-1, backend.PutOptions{})
	if !errors.Is(err, backend.ErrIncompleteBody) {
		t.Fatalf("long body over TLS: %v, want ErrIncompleteBody", err)
	}
	id, err := b.CreateMultipart(t.Context(), "bkt", "mp", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.UploadPart(t.Context(), "bkt", "mp", id, 1, io.MultiReader(bytes.NewReader(body)), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CompleteMultipart(t.Context(), "bkt", "mp", id, []backend.Part{p}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k", "mp"} {
		rc, _, err := b.Get(t.Context(), "bkt", k, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, body) {
			t.Fatalf("%s: read back %d bytes, want %d", k, len(got), len(body))
		}
	}
}
