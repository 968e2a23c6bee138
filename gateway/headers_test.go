package gateway

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3Answer is an S3 response as the tests judge it.
type s3Answer struct {
	status int
	code   string
	header string // the error document's <Header>
	body   string
}

// signed sends one request signed with the gateway's bootstrap key (every
// header set before signing is signed) and reads the answer.
func (g *testGateway) signed(t *testing.T, method, path string, hdr http.Header, body []byte) s3Answer {
	t.Helper()
	req, err := http.NewRequest(method, g.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", h)
	creds := aws.Credentials{AccessKeyID: g.creds.AccessKeyID, SecretAccessKey: g.creds.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, h, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, resp)
}

func readAnswer(t *testing.T, resp *http.Response) s3Answer {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := string(b)
	element := func(name string) string {
		i, j := strings.Index(s, "<"+name+">"), strings.Index(s, "</"+name+">")
		if i < 0 || j < i {
			return ""
		}
		return s[i+len(name)+2 : j]
	}
	return s3Answer{status: resp.StatusCode, code: element("Code"), header: element("Header"), body: s}
}

// TestGateway_RequestHeaders sends every kind of x-amz-* request header
// tresor judges, to the operations that take it, and checks the answer:
// accepted where its promise holds at tresor, refused with AWS's error for
// a bucket without the feature where it does not. A refused write stores
// nothing.
func TestGateway_RequestHeaders(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "hdr")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("hdr"), Key: aws.String("src"), Body: strings.NewReader("source body")}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("hdr"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	part := "/hdr/mp?partNumber=1&uploadId=" + aws.ToString(up.UploadId)
	tenant := g.creds.Tenant.String()
	key := sha256.Sum256([]byte("customer key"))
	keyMD5 := md5.Sum(key[:])
	sseC := http.Header{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm": {"AES256"},
		"X-Amz-Server-Side-Encryption-Customer-Key":       {base64.StdEncoding.EncodeToString(key[:])},
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   {base64.StdEncoding.EncodeToString(keyMD5[:])},
	}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	with := func(a, b http.Header) http.Header {
		out := a.Clone()
		for k, v := range b {
			out[k] = v
		}
		return out
	}
	copyFrom := h("X-Amz-Copy-Source", "/hdr/src")
	body := []byte("new body")

	cases := []struct {
		name         string
		method, path string
		hdr          http.Header
		body         []byte
		status       int
		code, header string
	}{
		// Accepted: the promise holds.
		{"acl private", "PUT", "/hdr/k-acl-private", h("X-Amz-Acl", "private"), body, 200, "", ""},
		{"acl bucket-owner-full-control", "PUT", "/hdr/k-acl-bofc", h("X-Amz-Acl", "bucket-owner-full-control"), body, 200, "", ""},
		{"sse aws:kms", "PUT", "/hdr/k-kms", h("X-Amz-Server-Side-Encryption", "aws:kms"), body, 200, "", ""},
		{"sse AES256", "PUT", "/hdr/k-aes", h("X-Amz-Server-Side-Encryption", "AES256"), body, 200, "", ""},
		{"sse the tenant's key", "PUT", "/hdr/k-kms-own", h("X-Amz-Server-Side-Encryption", "aws:kms",
			"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "tresor:tenant/"+tenant), body, 200, "", ""},
		{"bucket key", "PUT", "/hdr/k-bk", h("X-Amz-Server-Side-Encryption", "aws:kms", "X-Amz-Server-Side-Encryption-Bucket-Key-Enabled", "true"), body, 200, "", ""},
		{"storage class STANDARD", "PUT", "/hdr/k-std", h("X-Amz-Storage-Class", "STANDARD"), body, 200, "", ""},
		{"empty tagging", "PUT", "/hdr/k-notags", h("X-Amz-Tagging", ""), body, 200, "", ""},
		{"expected owner", "GET", "/hdr/src", h("X-Amz-Expected-Bucket-Owner", tenant), nil, 200, "", ""},
		{"checksum mode", "GET", "/hdr/src", h("X-Amz-Checksum-Mode", "ENABLED"), nil, 200, "", ""},
		{"user agent", "GET", "/hdr/src", h("X-Amz-User-Agent", "test/1.0"), nil, 200, "", ""},
		{"request payer", "GET", "/hdr/src", h("X-Amz-Request-Payer", "requester"), nil, 200, "", ""},
		{"checksum algorithm", "POST", "/hdr/k-mp-crc?uploads", h("X-Amz-Checksum-Algorithm", "CRC32C", "X-Amz-Checksum-Type", "FULL_OBJECT"), nil, 200, "", ""},
		{"bypass governance", "DELETE", "/hdr/k-acl-private", h("X-Amz-Bypass-Governance-Retention", "true"), nil, 204, "", ""},
		{"create bucket private", "PUT", "/hdr-private", h("X-Amz-Acl", "private", "X-Amz-Object-Ownership", "BucketOwnerEnforced",
			"X-Amz-Bucket-Object-Lock-Enabled", "false"), nil, 200, "", ""},
		{"copy with directives", "PUT", "/hdr/k-copy", with(copyFrom, h("X-Amz-Metadata-Directive", "COPY", "X-Amz-Tagging-Directive", "COPY",
			"X-Amz-Source-Expected-Bucket-Owner", tenant)), nil, 200, "", ""},

		// SSE-C: no object is stored under a customer key.
		{"sse-c put", "PUT", "/hdr/k-ssec", sseC, body, 403, "AccessDenied", ""},
		{"sse-c get", "GET", "/hdr/src", sseC, nil, 400, "InvalidRequest", ""},
		{"sse-c create multipart", "POST", "/hdr/k-ssec-mp?uploads", sseC, nil, 403, "AccessDenied", ""},
		{"sse-c upload part", "PUT", part, sseC, body, 403, "AccessDenied", ""},
		{"sse-c copy source", "PUT", "/hdr/k-ssec-copy", with(copyFrom, h(
			"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm", "AES256")), nil, 400, "InvalidRequest", ""},
		// Object Lock: no bucket has it.
		{"lock compliance", "PUT", "/hdr/k-lock", h("X-Amz-Object-Lock-Mode", "COMPLIANCE",
			"X-Amz-Object-Lock-Retain-Until-Date", time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)), body, 400, "InvalidRequest", ""},
		{"legal hold", "PUT", "/hdr/k-hold", h("X-Amz-Object-Lock-Legal-Hold", "ON"), body, 400, "InvalidRequest", ""},
		{"lock on copy", "PUT", "/hdr/k-lock-copy", with(copyFrom, h("X-Amz-Object-Lock-Legal-Hold", "ON")), nil, 400, "InvalidRequest", ""},
		{"lock on multipart", "POST", "/hdr/k-lock-mp?uploads", h("X-Amz-Object-Lock-Mode", "GOVERNANCE"), nil, 400, "InvalidRequest", ""},
		{"bucket with lock", "PUT", "/hdr-locked", h("X-Amz-Bucket-Object-Lock-Enabled", "true"), nil, 501, "NotImplemented", "x-amz-bucket-object-lock-enabled"},
		// ACLs: buckets enforce bucket-owner ownership.
		{"acl public-read", "PUT", "/hdr/k-public", h("X-Amz-Acl", "public-read"), body, 400, "AccessControlListNotSupported", ""},
		{"grant read", "PUT", "/hdr/k-grant", h("X-Amz-Grant-Read", `uri="http://acs.amazonaws.com/groups/global/AllUsers"`), body, 400, "AccessControlListNotSupported", ""},
		{"bucket acl public-read", "PUT", "/hdr-public", h("X-Amz-Acl", "public-read"), nil, 400, "InvalidBucketAclWithObjectOwnership", ""},
		{"bucket object writer", "PUT", "/hdr-writer", h("X-Amz-Object-Ownership", "ObjectWriter"), nil, 501, "NotImplemented", "x-amz-object-ownership"},
		// Encryption tresor does not do.
		{"sse dsse", "PUT", "/hdr/k-dsse", h("X-Amz-Server-Side-Encryption", "aws:kms:dsse"), body, 501, "NotImplemented", "x-amz-server-side-encryption"},
		{"sse unknown", "PUT", "/hdr/k-sse-bad", h("X-Amz-Server-Side-Encryption", "AES512"), body, 400, "InvalidArgument", ""},
		{"sse on get", "GET", "/hdr/src", h("X-Amz-Server-Side-Encryption", "aws:kms"), nil, 400, "InvalidArgument", ""},
		{"sse on upload part", "PUT", part, h("X-Amz-Server-Side-Encryption", "aws:kms"), body, 400, "InvalidArgument", ""},
		{"another kms key", "PUT", "/hdr/k-kms-other", h("X-Amz-Server-Side-Encryption", "aws:kms",
			"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "arn:aws:kms:eu-central-1:111122223333:key/x"), body, 400, "KMS.NotFoundException", ""},
		{"kms key without aws:kms", "PUT", "/hdr/k-kms-alone", h("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "tresor:tenant/"+tenant), body, 400, "InvalidArgument", ""},
		{"encryption context", "PUT", "/hdr/k-ctx", h("X-Amz-Server-Side-Encryption", "aws:kms",
			"X-Amz-Server-Side-Encryption-Context", base64.StdEncoding.EncodeToString([]byte(`{"a":"b"}`))), body, 501, "NotImplemented", "x-amz-server-side-encryption-context"},
		// The rest of what an object could be given.
		{"storage class", "PUT", "/hdr/k-glacier", h("X-Amz-Storage-Class", "GLACIER"), body, 400, "InvalidStorageClass", ""},
		{"tagging", "PUT", "/hdr/k-tags", h("X-Amz-Tagging", "project=x"), body, 501, "NotImplemented", "x-amz-tagging"},
		{"website redirect", "PUT", "/hdr/k-web", h("X-Amz-Website-Redirect-Location", "/other"), body, 501, "NotImplemented", "x-amz-website-redirect-location"},
		{"tagging directive", "PUT", "/hdr/k-tagdir", with(copyFrom, h("X-Amz-Tagging-Directive", "MERGE")), nil, 400, "InvalidArgument", ""},
		{"copy range on CopyObject", "PUT", "/hdr/k-copyrange", with(copyFrom, h("X-Amz-Copy-Source-Range", "bytes=0-3")), nil, 400, "InvalidArgument", ""},
		{"copy source on a non-copy", "POST", "/hdr/k-cs-mp?uploads", copyFrom, nil, 400, "InvalidArgument", ""},
		{"expected owner wrong", "GET", "/hdr/src", h("X-Amz-Expected-Bucket-Owner", "111122223333"), nil, 403, "AccessDenied", ""},
		{"source owner wrong", "PUT", "/hdr/k-srcowner", with(copyFrom, h("X-Amz-Source-Expected-Bucket-Owner", "111122223333")), nil, 403, "AccessDenied", ""},
		// Checksums auth cannot verify.
		{"checksum sha512", "PUT", "/hdr/k-sha512", h("X-Amz-Checksum-Sha512", "AAAA"), body, 400, "InvalidRequest", ""},
		{"checksum algorithm unknown", "POST", "/hdr/k-mp-x?uploads", h("X-Amz-Checksum-Algorithm", "XXHASH3"), nil, 400, "InvalidRequest", ""},
		// Session tokens: tresor issues none.
		{"security token", "GET", "/hdr/src", h("X-Amz-Security-Token", "FwoGZXIvYXdzEXAMPLE"), nil, 400, "InvalidToken", ""},
		// Headers not in the table.
		{"append offset", "PUT", "/hdr/k-append", h("X-Amz-Write-Offset-Bytes", "0"), body, 501, "NotImplemented", "x-amz-write-offset-bytes"},
		{"conditional delete", "DELETE", "/hdr/src", h("X-Amz-If-Match-Size", "3"), nil, 501, "NotImplemented", "x-amz-if-match-size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := g.signed(t, tc.method, tc.path, tc.hdr, tc.body)
			if got.status != tc.status || got.code != tc.code {
				t.Fatalf("%s %s: %d %s, want %d %s\n%s", tc.method, tc.path, got.status, got.code, tc.status, tc.code, got.body)
			}
			if got.header != tc.header {
				t.Errorf("error document names header %q, want %q", got.header, tc.header)
			}
			if tc.status < 300 || tc.method != "PUT" || !strings.HasPrefix(tc.path, "/hdr/k-") {
				return
			}
			// A refused write stored nothing.
			k := strings.TrimPrefix(tc.path, "/hdr/")
			if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("hdr"), Key: aws.String(k)}); apiCode(err) != "NotFound" {
				t.Errorf("refused PUT left an object: HEAD %s: %v", k, err)
			}
		})
	}
	// The source, read and conditionally deleted above, is untouched.
	if got, _ := getAll(t, c, "hdr", "src", ""); string(got) != "source body" {
		t.Errorf("source is %q", got)
	}
}

// TestGateway_SSECustomerKeyRefused reproduces issue 9: an SSE-C upload was
// stored without the customer key, and a GET then returned it without one.
// Now the upload is refused as S3 refuses it on a bucket that blocks SSE-C,
// and a GET naming a customer key is refused for an object stored without.
func TestGateway_SSECustomerKeyRefused(t *testing.T) {
	g := newTestGateway(t, "fs", true)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "ssec")
	key := sha256.Sum256([]byte("my own key"))
	keyMD5 := md5.Sum(key[:])
	alg, k, kmd5 := aws.String("AES256"), aws.String(base64.StdEncoding.EncodeToString(key[:])), aws.String(base64.StdEncoding.EncodeToString(keyMD5[:]))
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ssec"), Key: aws.String("secret"), Body: strings.NewReader("customer-keyed"),
		SSECustomerAlgorithm: alg, SSECustomerKey: k, SSECustomerKeyMD5: kmd5})
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("SSE-C PutObject: %v, want AccessDenied", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ssec"), Key: aws.String("secret")}); apiCode(err) != "NotFound" {
		t.Fatalf("the refused SSE-C object exists: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ssec"), Key: aws.String("plain"), Body: strings.NewReader("plain")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ssec"), Key: aws.String("plain"),
		SSECustomerAlgorithm: alg, SSECustomerKey: k, SSECustomerKeyMD5: kmd5})
	if apiCode(err) != "InvalidRequest" {
		t.Fatalf("GetObject with a customer key: %v, want InvalidRequest", err)
	}
}

// TestGateway_ObjectLockRefused reproduces issue 9: a COMPLIANCE-locked
// object was stored without a lock and could be deleted at once. Now no
// lock is taken that would not hold: the PUT, the copy and the multipart
// upload asking for one are refused and store nothing, and a bucket cannot
// be created with Object Lock.
func TestGateway_ObjectLockRefused(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "locks")
	until := aws.Time(time.Now().Add(365 * 24 * time.Hour))
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("locks"), Key: aws.String("record"), Body: strings.NewReader("keep for a year"),
		ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: until})
	var ae interface{ ErrorMessage() string }
	if apiCode(err) != "InvalidRequest" || !errors.As(err, &ae) || ae.ErrorMessage() != "Bucket is missing ObjectLockConfiguration" {
		t.Fatalf("COMPLIANCE PutObject: %v, want InvalidRequest: Bucket is missing ObjectLockConfiguration", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("locks"), Key: aws.String("record")}); apiCode(err) != "NotFound" {
		t.Fatalf("an object that claims a lock it does not have exists: %v", err)
	}
	_, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("locks"), Key: aws.String("record"),
		ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn})
	if apiCode(err) != "InvalidRequest" {
		t.Fatalf("legal hold CreateMultipartUpload: %v, want InvalidRequest", err)
	}
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("locked-bucket"), ObjectLockEnabledForBucket: aws.Bool(true)})
	if apiCode(err) != "NotImplemented" {
		t.Fatalf("CreateBucket with Object Lock: %v, want NotImplemented", err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("locked-bucket")}); err == nil {
		t.Fatal("the bucket that was to have Object Lock exists")
	}
}

// TestGateway_SessionTokenRefused: tresor has no STS, so a session token,
// in the header (an SDK with temporary credentials) or in a presigned URL,
// can only be one it cannot honour: InvalidToken, before anything runs.
func TestGateway_SessionTokenRefused(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "sts")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sts"), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	withToken := s3.New(s3.Options{BaseEndpoint: aws.String(g.url), Region: "us-east-1", UsePathStyle: true, HTTPClient: g.http,
		Credentials: credentials.NewStaticCredentialsProvider(g.creds.AccessKeyID, g.creds.SecretAccessKey, "FwoGZXIvYXdzEXAMPLETOKEN")})
	if _, err := withToken.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sts"), Key: aws.String("k")}); apiCode(err) != "InvalidToken" {
		t.Errorf("GetObject with a session token: %v, want InvalidToken", err)
	}
	_, err := withToken.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sts"), Key: aws.String("k"), Body: strings.NewReader("replaced")})
	if apiCode(err) != "InvalidToken" {
		t.Errorf("PutObject with a session token: %v, want InvalidToken", err)
	}
	presigned, err := s3.NewPresignClient(withToken).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sts"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(presigned.URL, "X-Amz-Security-Token=") {
		t.Fatalf("presigned URL carries no token: %s", presigned.URL)
	}
	resp, err := g.http.Get(presigned.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAnswer(t, resp); got.status != http.StatusBadRequest || got.code != "InvalidToken" {
		t.Errorf("presigned GET with a token: %d %s, want 400 InvalidToken", got.status, got.code)
	}
	if got, _ := getAll(t, c, "sts", "k", ""); string(got) != "x" {
		t.Errorf("object is %q", got)
	}
}
