package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/tresor-gw/tresor/auth/audit"
)

// TestAdmin_EndToEnd runs the real binary: serve writes the operator's
// credentials, `tresor admin --data-dir` finds the node and signs with them,
// a user it creates works on S3, and the operator's own key does not.
func TestAdmin_EndToEnd(t *testing.T) {
	bin := buildTresor(t)
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, bin, dir)
	ctx := context.Background()

	st, err := os.Stat(filepath.Join(dir, operatorFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("operator file: %v, %v", st, err)
	}
	admin := func(args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"admin"}, args...)...).CombinedOutput()
		return string(out), err
	}
	mustAdmin := func(args ...string) string {
		t.Helper()
		out, err := admin(args...)
		if err != nil {
			t.Fatalf("tresor admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	out := mustAdmin("--data-dir", dir, "tenant", "create", "acme", "--jurisdiction", "EU")
	if !strings.Contains(out, "acme") || !strings.Contains(out, "active") {
		t.Fatalf("tenant create printed:\n%s", out)
	}
	var nk struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	out = mustAdmin("--data-dir", dir, "user", "create", "--tenant", "acme", "--role", "admin", "alice", "--json")
	if err := json.Unmarshal([]byte(out), &nk); err != nil || nk.AccessKeyID == "" || nk.SecretAccessKey == "" {
		t.Fatalf("user create --json printed %q (%v)", out, err)
	}
	client := func(id, secret string) *s3.Client {
		return s3.New(s3.Options{
			BaseEndpoint: aws.String(p.s3), Region: "us-east-1", UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
		})
	}
	alice := client(nk.AccessKeyID, nk.SecretAccessKey)
	if _, err := alice.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("acme-data")}); err != nil {
		t.Fatalf("new user's key on S3: %v", err)
	}
	if _, err := alice.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-data"), Key: aws.String("k"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	opID, opSecret, err := readCredentialsFile(filepath.Join(dir, operatorFile))
	if err != nil {
		t.Fatal(err)
	}
	_, err = client(opID, opSecret).ListBuckets(ctx, &s3.ListBucketsInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidAccessKeyId" {
		t.Fatalf("operator key on S3: %v, want InvalidAccessKeyId", err)
	}

	// alice, a tenant admin, manages her team with --endpoint and a
	// credentials file, and cannot act as an operator.
	creds := filepath.Join(t.TempDir(), "alice")
	os.WriteFile(creds, []byte("[default]\naws_access_key_id = "+nk.AccessKeyID+"\naws_secret_access_key = "+nk.SecretAccessKey+"\n"), 0o600)
	as := func(args ...string) []string {
		return append([]string{"--endpoint", p.admin, "--credentials", creds}, args...)
	}
	out = mustAdmin(as("user", "create", "--tenant", "acme", "bob", "--role", "reader")...)
	if !strings.Contains(out, "secret_access_key") {
		t.Fatalf("user create printed:\n%s", out)
	}
	out = mustAdmin(as("user", "list", "--tenant", "acme")...)
	if !strings.Contains(out, "alice") || !strings.Contains(out, "bob") {
		t.Fatalf("user list printed:\n%s", out)
	}
	if out, err := admin(as("tenant", "list")...); err == nil || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("tenant admin listed tenants: %v\n%s", err, out)
	}
	if out, err := admin(as("tenant", "show", "default")...); err == nil || !strings.Contains(out, "NotFound") {
		t.Fatalf("tenant admin saw another tenant: %v\n%s", err, out)
	}
	mustAdmin(as("tenant", "rotate-key", "acme")...)
	var kvs []map[string]any
	if err := json.Unmarshal([]byte(mustAdmin(as("tenant", "key-versions", "acme", "--json")...)), &kvs); err != nil || len(kvs) != 2 {
		t.Fatalf("key versions: %v %v", kvs, err)
	}
	// Disabling the version "k" was written under stops it being served at
	// once; enabling it serves it again. (TestAdmin_KeyVersions goes on to
	// destruction, which needs the keystore's clock.)
	var old string
	for _, kv := range kvs {
		if kv["state"] == "decrypt-only" {
			old, _ = kv["id"].(string)
		}
	}
	getK := func() error {
		out, err := alice.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("acme-data"), Key: aws.String("k")},
			func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			out.Body.Close()
		}
		return err
	}
	if out, err := admin("--data-dir", dir, "tenant", "key-version", "disable", "acme", old); err == nil || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("operator disabled a tenant's key version: %v\n%s", err, out)
	}
	mustAdmin(as("tenant", "key-version", "disable", "acme", old)...)
	if err := getK(); err == nil {
		t.Fatal("an object under a disabled key version is still served")
	}
	mustAdmin(as("tenant", "key-version", "enable", "acme", old)...)
	if err := getK(); err != nil {
		t.Fatalf("an object under a re-enabled key version: %v", err)
	}

	// Per-bucket grants: carl, a writer, confined to reading acme-data;
	// then granted a bucket to create; then unconfined.
	out = mustAdmin(as("user", "create", "--tenant", "acme", "carl", "--role", "writer", "--json")...)
	var carlKey struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	if err := json.Unmarshal([]byte(out), &carlKey); err != nil {
		t.Fatal(err)
	}
	carl := client(carlKey.AccessKeyID, carlKey.SecretAccessKey)
	if out, err := admin("--data-dir", dir, "user", "grant", "--tenant", "acme", "carl", "acme-data", "reader"); err == nil || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("operator granted a bucket: %v\n%s", err, out)
	}
	out = mustAdmin(as("user", "grant", "--tenant", "acme", "carl", "acme-data", "reader")...)
	if !strings.Contains(out, "acme-data:reader") {
		t.Fatalf("user grant printed:\n%s", out)
	}
	denied := func(err error) bool { return errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied" }
	if o, err := carl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("acme-data"), Key: aws.String("k")}); err != nil {
		t.Fatalf("confined reader on its bucket: %v", err)
	} else {
		o.Body.Close()
	}
	if _, err := carl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-data"), Key: aws.String("c"), Body: strings.NewReader("x")}); !denied(err) {
		t.Fatalf("a writer granted reader wrote: %v", err)
	}
	if _, err := carl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("acme-carl")}); !denied(err) {
		t.Fatalf("a confined writer created a bucket not granted: %v", err)
	}
	mustAdmin(as("user", "grant", "--tenant", "acme", "carl", "acme-carl", "writer")...)
	if _, err := carl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("acme-carl")}); err != nil {
		t.Fatalf("a confined writer creating its granted bucket: %v", err)
	}
	mustAdmin(as("user", "clear-grants", "--tenant", "acme", "carl")...)
	if _, err := carl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-data"), Key: aws.String("c"), Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("an unconfined writer: %v", err)
	}

	// The login audit through the admin API: two wrong secrets with
	// alice's key id are in acme's review in clear, cross a threshold
	// (exit status 1, for cron), and are pseudonyms in the operator's.
	wrong := client(nk.AccessKeyID, strings.Repeat("w", 40))
	for range 2 {
		if _, err := wrong.ListBuckets(ctx, &s3.ListBucketsInput{}, func(o *s3.Options) { o.RetryMaxAttempts = 1 }); err == nil {
			t.Fatal("a wrong secret was accepted")
		}
	}
	var review audit.Summary
	if err := json.Unmarshal([]byte(mustAdmin(as("audit", "review", "--tenant", "acme", "--json")...)), &review); err != nil {
		t.Fatal(err)
	}
	if len(review.FailuresByKey) != 1 || review.FailuresByKey[0].Value != nk.AccessKeyID || review.FailuresByKey[0].Count != 2 {
		t.Fatalf("acme's review, failures by key: %+v", review.FailuresByKey)
	}
	if out, err := admin(as("audit", "review", "--tenant", "acme", "--max-failures-per-key", "1")...); err == nil || !strings.Contains(out, "thresholds crossed") {
		t.Fatalf("review past a threshold: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(mustAdmin("--data-dir", dir, "audit", "review", "--json")), &review); err != nil {
		t.Fatal(err)
	}
	if len(review.FailuresByKey) == 0 || review.Records == 0 {
		t.Fatalf("operator's review: %+v", review)
	}
	for _, c := range review.FailuresByKey {
		if c.Tenant != "" && !strings.HasPrefix(c.Value, "~") {
			t.Fatalf("operator's review shows a tenant's access key in clear: %+v", c)
		}
	}

	// Allowlists. The admin listener keeps admitting loopback whatever
	// its list says, so the node can always be repaired from itself.
	mustAdmin("--data-dir", dir, "allowlist", "set", "--admin", "10.0.0.0/8", "2001:db8::/32")
	out = mustAdmin("--data-dir", dir, "allowlist", "show", "--json")
	if !strings.Contains(out, `"10.0.0.0/8"`) || !strings.Contains(out, `"2001:db8::/32"`) {
		t.Fatalf("allowlist show --json:\n%s", out)
	}
	mustAdmin("--data-dir", dir, "allowlist", "clear", "--admin")
	mustAdmin(as("allowlist", "set", "--tenant", "acme", "127.0.0.0/8", "::1")...)
	if out, err := admin(as("allowlist", "set", "--s3", "0.0.0.0/0")...); err == nil || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("tenant admin set the global S3 allowlist: %v\n%s", err, out)
	}
	if out, err := admin("--data-dir", dir, "allowlist", "set", "--admin", "not-a-cidr"); err == nil {
		t.Fatalf("bad CIDR accepted:\n%s", out)
	}

	// Operator credential rotation: a new key for the operator, then the
	// bootstrap key disabled; --json answers carry the new secret.
	out = mustAdmin("--data-dir", dir, "operator", "key", "create", "--user", "operator", "--json")
	var opKey struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	if err := json.Unmarshal([]byte(out), &opKey); err != nil || opKey.SecretAccessKey == "" {
		t.Fatalf("operator key create --json printed %q (%v)", out, err)
	}
	opCreds := filepath.Join(t.TempDir(), "operator2")
	os.WriteFile(opCreds, []byte("[default]\naws_access_key_id = "+opKey.AccessKeyID+"\naws_secret_access_key = "+opKey.SecretAccessKey+"\n"), 0o600)
	mustAdmin("--endpoint", p.admin, "--credentials", opCreds, "operator", "key", "disable", "--user", "operator", opID)
	if out, err := admin("--data-dir", dir, "tenant", "list"); err == nil {
		t.Fatalf("disabled bootstrap key still works:\n%s", out)
	}
	out = mustAdmin("--endpoint", p.admin, "--credentials", opCreds, "operator", "key", "list", "--user", "operator")
	if !strings.Contains(out, "disabled") || !strings.Contains(out, opKey.AccessKeyID) {
		t.Fatalf("operator key list:\n%s", out)
	}
	mustAdmin("--endpoint", p.admin, "--credentials", opCreds, "operator", "key", "enable", "--user", "operator", opID)

	// Suspension takes alice's keys away at once.
	mustAdmin("--data-dir", dir, "tenant", "suspend", "acme")
	if _, err := alice.ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
		t.Fatal("a suspended tenant's key still works on S3")
	}
	mustAdmin("--data-dir", dir, "tenant", "resume", "acme")
	if _, err := alice.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("resumed tenant: %v", err)
	}
}

func TestReadCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, id string
	}{
		{"default", "# c\n[default]\naws_access_key_id = A\naws_secret_access_key = S\n", "A"},
		{"default wins", "[other]\naws_access_key_id = B\naws_secret_access_key = S\n[default]\naws_access_key_id=A\naws_secret_access_key=S\n", "A"},
		{"first profile", "[other]\naws_access_key_id = B\naws_secret_access_key = S\n", "B"},
		{"missing secret", "[default]\naws_access_key_id = A\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			os.WriteFile(path, []byte(tt.content), 0o600)
			id, secret, err := readCredentialsFile(path)
			if tt.id == "" {
				if err == nil {
					t.Fatalf("accepted: %q", id)
				}
				return
			}
			if err != nil || id != tt.id || secret != "S" {
				t.Fatalf("got %q %q %v", id, secret, err)
			}
		})
	}
}
