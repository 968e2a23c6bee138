package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// TestGateway_AuditDiskFullRefusesThenRecovers fills the login audit's
// disk under a running gateway: every request, DELETE included, is refused
// with 503 ServiceUnavailable while the audit cannot write, /health/ready
// says not ready and why, tresor_audit_writable is 0; once space returns
// the same gateway serves again without a restart, and the audit log
// verifies end to end with no record of the refused requests.
func TestGateway_AuditDiskFullRefusesThenRecovers(t *testing.T) {
	ctx := context.Background()
	store := keystore.OpenTest(t)
	dir := filepath.Join(t.TempDir(), "audit")
	disk := audit.NewFaultyDisk()
	cfg := audit.WithDisk(audit.DefaultConfig(dir, "n1"), disk)
	cfg.TenantKeys = store
	cfg.Logger = slog.New(slog.DiscardHandler)
	checkpoints := &audit.MemoryCheckpoints{}
	cfg.Checkpoints = checkpoints
	cfg.RetryInterval, cfg.MaxRetryInterval = 10*time.Millisecond, 100*time.Millisecond
	alog, err := audit.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	g := newTestGatewayOn(t, store, "fs", false, func(c *Config) { c.Auditor = alog })
	reg := prometheus.NewRegistry()
	reg.MustRegister(alog.Collectors()...)
	admin := httptest.NewServer(AdminHandler(reg, map[string]Check{"audit": alog.Ready}))
	t.Cleanup(admin.Close)

	c := g.client(func(o *s3.Options) { o.Retryer = aws.NopRetryer{} })
	mustCreateBucket(t, c, "full")
	put := func(key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("full"), Key: aws.String(key), Body: bytes.NewReader([]byte("data of " + key))})
		return err
	}
	for _, k := range []string{"keep", "doomed"} {
		if err := put(k); err != nil {
			t.Fatal(err)
		}
	}
	ready := func() (int, string) {
		resp, err := http.Get(admin.URL + "/health/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Failed map[string]string `json:"failed"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Failed["audit"]
	}
	metric := func(name string) string {
		resp, err := http.Get(admin.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		return ""
	}
	if code, _ := ready(); code != http.StatusOK {
		t.Fatalf("ready before the disk fills: %d", code)
	}

	disk.SetFree(100) // the next record is cut short
	var refused []string
	refusedOK := func(what string, err error) {
		t.Helper()
		if apiCode(err) != "ServiceUnavailable" {
			t.Fatalf("%s while the audit's disk is full: %v, want ServiceUnavailable", what, err)
		}
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusServiceUnavailable {
			refused = append(refused, re.ServiceRequestID())
		} else {
			t.Errorf("%s: status not 503: %v", what, err)
		}
	}
	refusedOK("PutObject", put("new"))
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("full"), Key: aws.String("keep")})
	refusedOK("GetObject", err)
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("full"), Key: aws.String("doomed")})
	refusedOK("DeleteObject", err) // freeing space through the gateway is refused too: no record, no service
	if code, why := ready(); code != http.StatusServiceUnavailable || !strings.Contains(why, "no space left on device") {
		t.Errorf("/health/ready while full: %d %q, want 503 with the reason", code, why)
	}
	if v := metric("tresor_audit_writable"); v != "0" {
		t.Errorf("tresor_audit_writable = %q while full", v)
	}

	disk.SetFree(-1)
	deadline := time.Now().Add(30 * time.Second)
	for code, _ := ready(); code != http.StatusOK; code, _ = ready() {
		if time.Now().After(deadline) {
			t.Fatal("still not ready 30 s after space came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v := metric("tresor_audit_writable"); v != "1" {
		t.Errorf("tresor_audit_writable = %q after recovery", v)
	}
	if v := metric("tresor_audit_write_failures_total"); v != "1" {
		t.Errorf("tresor_audit_write_failures_total = %q, want 1", v)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("full"), Key: aws.String("doomed")}); err != nil {
		t.Fatalf("DeleteObject after recovery: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("full"), Key: aws.String("doomed")}); apiCode(err) != "NoSuchKey" {
		t.Errorf("deleted object: %v", err)
	}
	if b, _ := getAll(t, c, "full", "keep", ""); string(b) != "data of keep" {
		t.Errorf("kept object reads %q", b)
	}

	pub := alog.PublicKeys()
	if err := alog.Close(); err != nil {
		t.Fatal(err)
	}
	replicated, err := checkpoints.Checkpoints(ctx, pub.LogID)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, dir, pub, audit.VerifyOptions{Replicated: replicated})
	if err != nil || !rep.OK() {
		t.Fatalf("audit verify after recovery: %v %+v", err, rep.Problems)
	}
	seen := map[string]bool{}
	audit.Entries(ctx, dir, func(e audit.Entry, err error) error {
		seen[e.RequestID] = true
		return err
	})
	for _, id := range refused {
		if seen[id] {
			t.Errorf("refused request %s has a record in the audit", id)
		}
	}
	t.Logf("%d records verify; %d refused requests left none", rep.Records, len(refused))
}
