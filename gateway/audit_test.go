package gateway

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// TestGateway_AuditsEveryAuthentication checks that successes, failures
// with their reason, and the limiter's refusals reach the login audit, with
// the tenant of the key that was attacked.
func TestGateway_AuditsEveryAuthentication(t *testing.T) {
	ctx := context.Background()
	store := keystore.OpenTest(t)
	dir := filepath.Join(t.TempDir(), "audit")
	cfg := audit.DefaultConfig(dir, "n1")
	cfg.TenantKeys = store
	cfg.Checkpoints = &audit.MemoryCheckpoints{}
	alog, err := audit.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := newTestGatewayOn(t, store, "fs", false, func(c *Config) { c.Auditor = alog })
	c := g.client()
	mustCreateBucket(t, c, "audited")
	bad := s3.New(s3.Options{BaseEndpoint: aws.String(g.url), Region: "us-east-1", UsePathStyle: true, HTTPClient: g.http,
		Credentials: credentials.NewStaticCredentialsProvider(g.creds.AccessKeyID, "not-the-secret", "")})
	if _, err := bad.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("audited")}); apiCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
	if err := alog.Close(); err != nil {
		t.Fatal(err)
	}

	var got []audit.Entry
	err = audit.Entries(ctx, dir, func(e audit.Entry, err error) error {
		if err != nil {
			return err
		}
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var success, failure bool
	for _, e := range got {
		if e.Tenant != g.creds.Tenant {
			t.Errorf("record %d names tenant %x, want the key's tenant", e.Seq, e.Tenant)
		}
		switch {
		case e.Kind == audit.AuthSuccess && e.Operation == "CreateBucket":
			success = true
		case e.Kind == audit.AuthFailure && e.Reason == "SignatureDoesNotMatch" && e.Operation == "ListObjectsV2":
			failure = true
		}
	}
	if !success || !failure {
		t.Errorf("audit has success %v, failure %v; records: %+v", success, failure, got)
	}
}

// failingAuditor refuses every record, as a full disk would.
type failingAuditor struct {
	mu sync.Mutex
	n  int
}

func (f *failingAuditor) Append(context.Context, audit.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return errors.New("disk full")
}

// TestGateway_NoAuditNoService checks that a request whose audit record
// cannot be written is refused and changes nothing.
func TestGateway_NoAuditNoService(t *testing.T) {
	fa := &failingAuditor{}
	g := newTestGateway(t, "fs", false, func(c *Config) { c.Auditor = fa })
	_, err := g.client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("unaudited")})
	if apiCode(err) != "ServiceUnavailable" {
		t.Fatalf("CreateBucket without an audit: %v, want ServiceUnavailable", err)
	}
	if _, err := g.store.Bucket(context.Background(), "unaudited"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("the bucket was created although its audit record was not written: %v", err)
	}
	if fa.n == 0 {
		t.Error("the auditor was never called")
	}
}
