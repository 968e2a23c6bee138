package gateway

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/tresor-gw/tresor/gateway/backend"
)

// newS3TestBackend is the s3 backend against gofakes3 (in memory, behind
// httptest), which checks no signatures: the backend client is configured
// to send plain bodies, as DESIGN.md trap 9 says.
func newS3TestBackend(t testing.TB) backend.Backend {
	t.Helper()
	mem := s3mem.New()
	if err := mem.CreateBucket("tresor-backend"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(ts.Close)
	cfg := backend.DefaultS3Config()
	cfg.Endpoint = ts.URL
	cfg.Bucket = "tresor-backend"
	cfg.AccessKeyID, cfg.SecretAccessKey = "backend-key", "backend-secret"
	cfg.PathStyle = true
	be, err := backend.NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return be
}
