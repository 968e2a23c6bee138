package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/keystore"
)

func TestGateway_PresignedGetAndPut(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "presign")
	pc := s3.NewPresignClient(c)
	body := randomBytes(t, 100000)

	put, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("presign"), Key: aws.String("p")}, s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(put.Method, put.URL, bytes.NewReader(body))
	for k, v := range put.SignedHeader {
		req.Header[k] = v
	}
	resp, err := g.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned PUT: %d", resp.StatusCode)
	}

	get, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("presign"), Key: aws.String("p")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = g.http.Get(get.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Errorf("presigned GET: %d, equal %v", resp.StatusCode, bytes.Equal(got, body))
	}
}

func TestGateway_Conditionals(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "cond")
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), Body: strings.NewReader("v1")})
	if err != nil {
		t.Fatal(err)
	}
	etag := aws.ToString(put.ETag)
	in := func() *s3.GetObjectInput { return &s3.GetObjectInput{Bucket: aws.String("cond"), Key: aws.String("k")} }

	i := in()
	i.IfMatch = aws.String(etag)
	if _, err := c.GetObject(ctx, i); err != nil {
		t.Errorf("If-Match with the ETag: %v", err)
	}
	i = in()
	i.IfMatch = aws.String(`"other"`)
	if _, err := c.GetObject(ctx, i); apiCode(err) != "PreconditionFailed" {
		t.Errorf("If-Match mismatch: %v, want PreconditionFailed", err)
	}
	i = in()
	i.IfNoneMatch = aws.String(etag)
	if _, err := c.GetObject(ctx, i); !strings.Contains(errString(err), "304") {
		t.Errorf("If-None-Match with the ETag: %v, want 304", err)
	}
	i = in()
	i.IfModifiedSince = aws.Time(time.Now().Add(time.Hour))
	if _, err := c.GetObject(ctx, i); !strings.Contains(errString(err), "304") {
		t.Errorf("If-Modified-Since in the future: %v, want 304", err)
	}
	i = in()
	i.IfUnmodifiedSince = aws.Time(time.Now().Add(-time.Hour))
	if _, err := c.GetObject(ctx, i); apiCode(err) != "PreconditionFailed" {
		t.Errorf("If-Unmodified-Since in the past: %v, want PreconditionFailed", err)
	}
	h := &s3.HeadObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), IfMatch: aws.String(`"other"`)}
	if _, err := c.HeadObject(ctx, h); !strings.Contains(errString(err), "412") {
		t.Errorf("HEAD If-Match mismatch: %v, want 412", err)
	}

	// Conditional writes: If-None-Match: * refuses to overwrite.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), Body: strings.NewReader("v2"), IfNoneMatch: aws.String("*")})
	if apiCode(err) != "PreconditionFailed" {
		t.Errorf("PUT If-None-Match * over an object: %v, want PreconditionFailed", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cond"), Key: aws.String("new"), Body: strings.NewReader("n"), IfNoneMatch: aws.String("*")}); err != nil {
		t.Errorf("PUT If-None-Match * of a new key: %v", err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), Body: strings.NewReader("v2"), IfMatch: aws.String(`"other"`)})
	if apiCode(err) != "PreconditionFailed" {
		t.Errorf("PUT If-Match mismatch: %v, want PreconditionFailed", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cond"), Key: aws.String("k"), Body: strings.NewReader("v2"), IfMatch: aws.String(etag)}); err != nil {
		t.Errorf("PUT If-Match with the ETag: %v", err)
	}
	got, _ := getAll(t, c, "cond", "k", "")
	if string(got) != "v2" {
		t.Errorf("object is %q, want v2", got)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestGateway_ResponseOverridesAndVersionNull(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "over")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("over"), Key: aws.String("k"), Body: strings.NewReader("x"), ContentType: aws.String("text/plain")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("over"), Key: aws.String("k"),
		ResponseContentType: aws.String("application/x-over"), ResponseContentDisposition: aws.String(`attachment; filename="x.bin"`),
		VersionId: aws.String("null")})
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	if aws.ToString(out.ContentType) != "application/x-over" || aws.ToString(out.ContentDisposition) != `attachment; filename="x.bin"` {
		t.Errorf("overrides not applied: %q %q", aws.ToString(out.ContentType), aws.ToString(out.ContentDisposition))
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("over"), Key: aws.String("k"), VersionId: aws.String("3HL4kqtJlcpXroDTDmJ")}); apiCode(err) != "NoSuchVersion" {
		t.Errorf("a real version id: %v, want NoSuchVersion", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("over"), Key: aws.String("k"), VersionId: aws.String("null")}); err != nil {
		t.Errorf("DeleteObject versionId=null: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("over"), Key: aws.String("k")}); apiCode(err) != "NotFound" {
		t.Errorf("after delete: %v", err)
	}
}

func TestGateway_DeleteObjects(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "del")
	var ids []types.ObjectIdentifier
	for _, k := range []string{"a", "b", "c"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("del"), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
	}
	ids = append(ids, types.ObjectIdentifier{Key: aws.String("missing")}, types.ObjectIdentifier{Key: aws.String("a"), VersionId: aws.String("null")})
	out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{Objects: ids[:4]}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 4 || len(out.Errors) != 0 {
		t.Errorf("DeleteObjects: %d deleted, %d errors", len(out.Deleted), len(out.Errors))
	}
	quiet, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{Objects: ids[4:], Quiet: aws.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(quiet.Deleted) != 0 {
		t.Errorf("Quiet DeleteObjects listed %d deleted", len(quiet.Deleted))
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("del")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 0 {
		t.Errorf("%d objects left", len(list.Contents))
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("del")}); err != nil {
		t.Errorf("DeleteBucket of the empty bucket: %v", err)
	}
}

func TestGateway_Buckets(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "one")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("one")}); apiCode(err) != "BucketAlreadyOwnedByYou" {
		t.Errorf("second CreateBucket: %v, want BucketAlreadyOwnedByYou", err)
	}
	for _, bad := range []string{"UPPER", "a", "has_underscore", "192.168.1.1", "dots..dots"} {
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bad)}); apiCode(err) != "InvalidBucketName" {
			t.Errorf("CreateBucket %q: %v, want InvalidBucketName", bad, err)
		}
	}
	// Another tenant cannot take the name, and cannot see the bucket.
	other, err := g.store.CreateTenant(ctx, "other", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := g.store.CreateUser(ctx, other.ID, "bob", keystore.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	key, err := g.store.CreateAccessKey(ctx, u.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	oc := (&testGateway{url: g.url, http: g.http, creds: keystore.Credentials{AccessKeyID: key.ID, SecretAccessKey: key.Secret}}).client()
	if _, err := oc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("one")}); apiCode(err) != "BucketAlreadyExists" {
		t.Errorf("other tenant's CreateBucket: %v, want BucketAlreadyExists", err)
	}
	if _, err := oc.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("one")}); apiCode(err) != "NoSuchBucket" {
		t.Errorf("other tenant lists the bucket: %v, want NoSuchBucket", err)
	}
	lb, err := oc.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 0 {
		t.Errorf("other tenant's ListBuckets: %v, %d buckets", err, len(lb.Buckets))
	}
	// Location, HeadBucket, not-empty DeleteBucket.
	loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("one")})
	if err != nil || loc.LocationConstraint != "" {
		t.Errorf("GetBucketLocation: %v %q", err, loc.LocationConstraint)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("one")}); err != nil {
		t.Errorf("HeadBucket: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("one"), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("one")}); apiCode(err) != "BucketNotEmpty" {
		t.Errorf("DeleteBucket of a full bucket: %v, want BucketNotEmpty", err)
	}
	lb, err = c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != "one" {
		t.Errorf("ListBuckets: %v %+v", err, lb)
	}
}

func TestGateway_MultipartSessions(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "mpu")
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k"), Metadata: map[string]string{"m": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	part1 := randomBytes(t, 5<<20)
	p1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part1)})
	if err != nil {
		t.Fatal(err)
	}
	// Upload part 2 twice: the second replaces the first.
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: mp.UploadId, PartNumber: aws.Int32(2), Body: strings.NewReader("first try")}); err != nil {
		t.Fatal(err)
	}
	p2, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: mp.UploadId, PartNumber: aws.Int32(2), Body: strings.NewReader("second")})
	if err != nil {
		t.Fatal(err)
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: mp.UploadId})
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 2 || aws.ToInt64(lp.Parts[0].Size) != 5<<20 || aws.ToInt64(lp.Parts[1].Size) != 6 {
		t.Errorf("ListParts: %+v", lp.Parts)
	}
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != aws.ToString(mp.UploadId) {
		t.Errorf("ListMultipartUploads: %v %+v", err, lu)
	}
	complete := func(parts ...types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: mp.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return err
	}
	if err := complete(types.CompletedPart{PartNumber: aws.Int32(2), ETag: p2.ETag}, types.CompletedPart{PartNumber: aws.Int32(1), ETag: p1.ETag}); apiCode(err) != "InvalidPartOrder" {
		t.Errorf("descending parts: %v, want InvalidPartOrder", err)
	}
	if err := complete(types.CompletedPart{PartNumber: aws.Int32(1), ETag: aws.String(`"0123"`)}); apiCode(err) != "InvalidPart" {
		t.Errorf("wrong ETag: %v, want InvalidPart", err)
	}
	if err := complete(types.CompletedPart{PartNumber: aws.Int32(2), ETag: p2.ETag}, types.CompletedPart{PartNumber: aws.Int32(3), ETag: p2.ETag}); apiCode(err) != "InvalidPart" {
		t.Errorf("missing part: %v, want InvalidPart", err)
	}
	if err := complete(types.CompletedPart{PartNumber: aws.Int32(1), ETag: p1.ETag}, types.CompletedPart{PartNumber: aws.Int32(2), ETag: p2.ETag}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	got, out := getAll(t, c, "mpu", "k", "")
	if !bytes.Equal(got, append(part1, "second"...)) || out.Metadata["m"] != "1" {
		t.Errorf("completed object differs or lost metadata %v", out.Metadata)
	}
	// The session is gone: uploading again is NoSuchUpload.
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: mp.UploadId, PartNumber: aws.Int32(3), Body: strings.NewReader("x")}); apiCode(err) != "NoSuchUpload" {
		t.Errorf("part after completion: %v, want NoSuchUpload", err)
	}
	// Abort removes a session.
	mp2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k2"), UploadId: mp2.UploadId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("k2"), UploadId: mp2.UploadId}); apiCode(err) != "NoSuchUpload" {
		t.Errorf("ListParts after abort: %v, want NoSuchUpload", err)
	}
}

// TestGateway_VirtualHostAddressing serves bucket.domain/key to a client
// that signs the virtual-host Host header.
func TestGateway_VirtualHostAddressing(t *testing.T) {
	g := newTestGateway(t, "fs", false, func(c *Config) { c.Domains = []string{"s3.test"} })
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "vhost")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vhost"), Key: aws.String("a/b"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", g.url+"/a/b", nil)
	req.Host = "vhost.s3.test"
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	creds := aws.Credentials{AccessKeyID: g.creds.AccessKeyID, SecretAccessKey: g.creds.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptySHA256, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(got) != "hello" {
		t.Errorf("virtual-host GET: %d %q", resp.StatusCode, got)
	}
}

// TestGateway_MultipartSurvivesRestart starts an upload on one gateway
// process, stops it, and finishes the upload on a new one over the same
// keystore and backend directories: sessions live in the keystore.
func TestGateway_MultipartSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	ksDir, objDir := t.TempDir(), t.TempDir()
	start := func() (*testGateway, func()) {
		cfg := keystore.DefaultConfig(ksDir)
		cfg.SyncWrites = false
		store, err := keystore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		creds, err := store.Bootstrap(ctx)
		if errors.Is(err, keystore.ErrExists) {
			err = nil
		}
		if err != nil {
			t.Fatal(err)
		}
		be, err := backend.NewFS(objDir)
		if err != nil {
			t.Fatal(err)
		}
		v, err := auth.NewVerifier(Secrets(store), auth.DefaultConfig("us-east-1"))
		if err != nil {
			t.Fatal(err)
		}
		srv, err := New(DefaultConfig(), be, store, v)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		return &testGateway{url: ts.URL, http: ts.Client(), store: store, creds: creds}, func() {
			ts.Close()
			if err := be.Close(); err != nil {
				t.Error(err)
			}
			if err := store.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	g1, stop1 := start()
	c1 := g1.client()
	mustCreateBucket(t, c1, "restart")
	mp, err := c1.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("restart"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	part1 := randomBytes(t, 5<<20)
	p1, err := c1.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("restart"), Key: aws.String("k"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part1)})
	if err != nil {
		t.Fatal(err)
	}
	stop1()

	g2, stop2 := start()
	defer stop2()
	g2.creds = g1.creds
	c2 := g2.client()
	p2, err := c2.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("restart"), Key: aws.String("k"), UploadId: mp.UploadId, PartNumber: aws.Int32(2), Body: strings.NewReader("tail")})
	if err != nil {
		t.Fatalf("UploadPart after restart: %v", err)
	}
	if _, err := c2.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("restart"), Key: aws.String("k"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p1.ETag}, {PartNumber: aws.Int32(2), ETag: p2.ETag}}}}); err != nil {
		t.Fatalf("Complete after restart: %v", err)
	}
	got, _ := getAll(t, c2, "restart", "k", "")
	if !bytes.Equal(got, append(part1, "tail"...)) {
		t.Error("object differs after restart")
	}
}

// TestGateway_OverwriteMultipartWithSinglePart checks that listing and
// reading show a single-part object that replaced a multipart one (whose
// manifest stays in the key's set until the object is deleted: deleting it
// at the PUT could take a racing completion's along), and that deleting
// the object deletes the key's manifests.
func TestGateway_OverwriteMultipartWithSinglePart(t *testing.T) {
	g := newTestGateway(t, "fs", false)
	ctx := context.Background()
	c := g.client()
	mustCreateBucket(t, c, "over")
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("over"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("over"), Key: aws.String("k"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("multipart")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("over"), Key: aws.String("k"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p1.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.store.ManifestSet(ctx, "over", "k"); err != nil {
		t.Fatalf("no manifest after completion: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("over"), Key: aws.String("k"), Body: strings.NewReader("single, longer")}); err != nil {
		t.Fatal(err)
	}
	got, _ := getAll(t, c, "over", "k", "")
	if string(got) != "single, longer" {
		t.Errorf("GET %q", got)
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("over")})
	if err != nil || len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != int64(len("single, longer")) {
		t.Errorf("listing after overwrite: %v %+v", err, list)
	}
	// The multipart version again, then deleted: its manifest goes.
	mp, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("over"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	p1, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("over"), Key: aws.String("k"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("multipart again")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("over"), Key: aws.String("k"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p1.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("over"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if set, err := g.store.ManifestSet(ctx, "over", "k"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("after the delete the key still has manifests: %+v, %v", set, err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("over"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("over")}); err != nil {
		t.Errorf("DeleteBucket after deleting everything: %v", err)
	}
}

// dropsCompleteAnswer completes multipart uploads in the backend and then
// fails, as when the gateway dies (or the connection drops) between the
// backend's completion and the keystore's record of it.
type dropsCompleteAnswer struct {
	backend.Backend
}

func (d dropsCompleteAnswer) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []backend.Part) (backend.ObjectInfo, error) {
	if _, err := d.Backend.CompleteMultipart(ctx, bucket, key, uploadID, parts); err != nil {
		return backend.ObjectInfo{}, err
	}
	return backend.ObjectInfo{}, errors.New("connection reset after the backend completed")
}

// TestGateway_CompletionRolledForward overwrites an object with a
// multipart upload whose completion the keystore never records: the next
// GET finds the prepared manifest in the session, serves the new object,
// and records the completion.
func TestGateway_CompletionRolledForward(t *testing.T) {
	ctx := context.Background()
	store := keystore.OpenTest(t)
	creds, err := store.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := backend.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	v, err := auth.NewVerifier(Secrets(store), auth.DefaultConfig("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(DefaultConfig(), dropsCompleteAnswer{fs}, store, v)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c := (&testGateway{url: ts.URL, http: ts.Client(), creds: creds}).client(func(o *s3.Options) { o.Retryer = aws.NopRetryer{} })
	mustCreateBucket(t, c, "rollfwd")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rollfwd"), Key: aws.String("k"), Body: strings.NewReader("old version")}); err != nil {
		t.Fatal(err)
	}
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("rollfwd"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("rollfwd"), Key: aws.String("k"), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("new version")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("rollfwd"), Key: aws.String("k"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p1.ETag}}}})
	if err == nil {
		t.Fatal("the completion should have failed after the backend completed")
	}
	got, _ := getAll(t, c, "rollfwd", "k", "")
	if string(got) != "new version" {
		t.Fatalf("GET after the interrupted completion: %q, want the completed object", got)
	}
	if _, err := store.ManifestSet(ctx, "rollfwd", "k"); err != nil {
		t.Errorf("the completion was not rolled forward into the keystore: %v", err)
	}
	if _, err := store.Upload(ctx, "rollfwd", "k", aws.ToString(mp.UploadId)); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("the session outlived the roll-forward: %v", err)
	}
}
