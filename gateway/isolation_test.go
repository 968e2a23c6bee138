package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/keystore"
)

// isolationFixture is what the owner prepared before an operation runs:
// a bucket of the owner's tenant with one object and one upload in
// progress.
type isolationFixture struct {
	bucket, key, uploadID, partETag string
}

// isolationOp is one S3 operation as a principal runs it against the
// owner's fixture; write reports whether a reader may not do it.
type isolationOp struct {
	name  string
	write bool
	run   func(ctx context.Context, c *s3.Client, f isolationFixture) error
}

var isolationOps = []isolationOp{
	{"ListBuckets", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			return err
		}
		for _, b := range out.Buckets {
			if aws.ToString(b.Name) == f.bucket {
				return nil
			}
		}
		return errDenied // the bucket is not visible
	}},
	{"HeadBucket", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &f.bucket})
		return err
	}},
	{"GetBucketLocation", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: &f.bucket})
		return err
	}},
	{"GetBucketVersioning", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &f.bucket})
		return err
	}},
	{"ListObjects", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &f.bucket})
		return err
	}},
	{"ListObjectsV2", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &f.bucket})
		return err
	}},
	{"ListObjectVersions", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &f.bucket})
		return err
	}},
	{"ListMultipartUploads", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &f.bucket})
		return err
	}},
	{"GetObject", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &f.bucket, Key: &f.key})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		_, err = io.Copy(io.Discard, out.Body)
		return err
	}},
	{"GetObjectRange", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &f.bucket, Key: &f.key, Range: aws.String("bytes=0-3")})
		if err != nil {
			return err
		}
		out.Body.Close()
		return nil
	}},
	{"HeadObject", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &f.key})
		return err
	}},
	{"ListParts", false, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &f.bucket, Key: &f.key, UploadId: &f.uploadID})
		return err
	}},
	{"PutObject", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &f.bucket, Key: aws.String("new"), Body: strings.NewReader("x")})
		return err
	}},
	{"PutObjectOverwrite", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &f.bucket, Key: &f.key, Body: strings.NewReader("overwritten")})
		return err
	}},
	{"CopyObjectWithin", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &f.bucket, Key: aws.String("copy"), CopySource: aws.String(f.bucket + "/" + f.key)})
		return err
	}},
	{"CopyObjectOut", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		// Into a bucket of the caller's own (made on the fly), from the fixture.
		own := f.bucket + "-thief"
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &own}); err != nil && apiCode(err) != "BucketAlreadyOwnedByYou" {
			return err
		}
		_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &own, Key: aws.String("stolen"), CopySource: aws.String(f.bucket + "/" + f.key)})
		return err
	}},
	{"DeleteObject", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &f.key})
		return err
	}},
	{"DeleteObjects", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &f.bucket, Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: &f.key}}}})
		if err == nil && len(out.Errors) > 0 {
			return errDenied
		}
		return err
	}},
	{"CreateMultipartUpload", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &f.bucket, Key: aws.String("mp")})
		return err
	}},
	{"UploadPart", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &f.bucket, Key: &f.key, UploadId: &f.uploadID, PartNumber: aws.Int32(2), Body: strings.NewReader("part")})
		return err
	}},
	{"UploadPartCopy", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &f.bucket, Key: &f.key, UploadId: &f.uploadID, PartNumber: aws.Int32(3), CopySource: aws.String(f.bucket + "/" + f.key)})
		return err
	}},
	{"CompleteMultipartUpload", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &f.bucket, Key: &f.key, UploadId: &f.uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: &f.partETag}}}})
		return err
	}},
	{"AbortMultipartUpload", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &f.bucket, Key: &f.key, UploadId: &f.uploadID})
		return err
	}},
	{"CreateBucketTaken", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &f.bucket})
		if apiCode(err) == "BucketAlreadyOwnedByYou" {
			return nil // the owner's own name: allowed, nothing changes
		}
		return err
	}},
	{"DeleteBucket", true, func(ctx context.Context, c *s3.Client, f isolationFixture) error {
		_, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &f.bucket})
		if apiCode(err) == "BucketNotEmpty" {
			return nil // authorised; refused only because the bucket has content
		}
		return err
	}},
}

// errDenied marks a denial that is not an S3 error (a listing that hides
// the bucket, a DeleteObjects that answers per key).
var errDenied = fmt.Errorf("denied")

// isolationPrincipal is who runs the operations, and whether it may.
type isolationPrincipal struct {
	name        string
	read, write bool
	// grant, if set, is the role the principal, confined to granted
	// buckets, holds on the fixture's bucket.
	grant keystore.Role
}

// TestIsolationMatrix runs every S3 operation the gateway serves as every
// kind of principal (owner, teammates by role, another tenant's admin, an
// operator, anonymous, a disabled and an expired key) against a bucket of
// tenant "default" and compares
// allow or deny with one table: zero unexpected allows, zero unexpected
// denials.
func TestIsolationMatrix(t *testing.T) {
	// The keystore's clock is the test's, so that a key can expire.
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	kcfg := keystore.DefaultConfig(t.TempDir())
	kcfg.RootKey = bytes.Repeat([]byte{7}, keystore.RootKeySize)
	kcfg.SyncWrites = false
	kcfg.Now = func() time.Time { return *now.Load() }
	st, err := keystore.Open(context.Background(), kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Every principal calls from loopback: rate limiting is another test's.
	noLimit := auth.LimiterConfig{AddrBurst: 1e6, KeyBurst: 1e6, PairBurst: 1e6}
	g := newTestGatewayOn(t, st, "fs", false, func(c *Config) { c.Limiter = auth.NewLimiter(noLimit) })
	ctx := context.Background()
	owner := g.client()
	tenant := g.creds.Tenant

	mkKey := func(tenantID keystore.ID, name string, role keystore.Role, expires time.Time) keystore.AccessKey {
		u, err := st.CreateUser(ctx, tenantID, name, role)
		if err != nil {
			t.Fatal(err)
		}
		k, err := st.CreateAccessKey(ctx, u.ID, expires)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	other, err := st.CreateTenant(ctx, "intruder", nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]keystore.AccessKey{
		"teammate-admin":  mkKey(tenant, "ann", keystore.RoleAdmin, time.Time{}),
		"teammate-writer": mkKey(tenant, "wes", keystore.RoleWriter, time.Time{}),
		"teammate-reader": mkKey(tenant, "rea", keystore.RoleReader, time.Time{}),
		"other-admin":     mkKey(other.ID, "eve", keystore.RoleAdmin, time.Time{}),
		"disabled-key":    mkKey(tenant, "dis", keystore.RoleAdmin, time.Time{}),
		"expired-key":     mkKey(tenant, "exp", keystore.RoleAdmin, start.Add(time.Minute)),
		// Writers confined to granted buckets (keystore.User.Confined).
		"granted-writer": mkKey(tenant, "gwr", keystore.RoleWriter, time.Time{}),
		"granted-reader": mkKey(tenant, "grd", keystore.RoleWriter, time.Time{}),
		"not-granted":    mkKey(tenant, "ngr", keystore.RoleWriter, time.Time{}),
	}
	if _, err := st.GrantBucket(ctx, keys["not-granted"].User, "iso-elsewhere", keystore.RoleWriter); err != nil {
		t.Fatal(err)
	}
	later := start.Add(2 * time.Minute)
	now.Store(&later) // the expired key's time is up; every other key lives on
	if err := st.SetAccessKeyState(ctx, keys["disabled-key"].ID, keystore.AccessKeyDisabled); err != nil {
		t.Fatal(err)
	}
	op, err := st.BootstrapOperator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys["operator"] = keystore.AccessKey{ID: op.AccessKeyID, Secret: op.SecretAccessKey}
	clientFor := func(name string) *s3.Client {
		switch name {
		case "owner":
			return owner
		case "anonymous":
			return s3.New(s3.Options{BaseEndpoint: aws.String(g.url), Region: "us-east-1", UsePathStyle: true,
				HTTPClient: g.http, Credentials: aws.AnonymousCredentials{}})
		}
		k := keys[name]
		return s3.New(s3.Options{BaseEndpoint: aws.String(g.url), Region: "us-east-1", UsePathStyle: true,
			HTTPClient: g.http, Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, "")})
	}
	principals := []isolationPrincipal{
		{"owner", true, true, ""},
		{"teammate-admin", true, true, ""},
		{"teammate-writer", true, true, ""},
		{"teammate-reader", true, false, ""},
		{"other-admin", false, false, ""},
		{"operator", false, false, ""},
		{"anonymous", false, false, ""},
		{"disabled-key", false, false, ""},
		{"expired-key", false, false, ""},
		{"granted-writer", true, true, keystore.RoleWriter},
		{"granted-reader", true, false, keystore.RoleReader},
		{"not-granted", false, false, ""},
	}

	n := 0
	for _, p := range principals {
		for _, op := range isolationOps {
			n++
			f := isolationFixture{bucket: fmt.Sprintf("iso-%03d", n), key: "secret.txt"}
			mustCreateBucket(t, owner, f.bucket)
			secret := []byte("tenant default's document")
			if _, err := owner.PutObject(ctx, &s3.PutObjectInput{Bucket: &f.bucket, Key: &f.key, Body: bytes.NewReader(secret)}); err != nil {
				t.Fatal(err)
			}
			mp, err := owner.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &f.bucket, Key: &f.key})
			if err != nil {
				t.Fatal(err)
			}
			f.uploadID = aws.ToString(mp.UploadId)
			part, err := owner.UploadPart(ctx, &s3.UploadPartInput{Bucket: &f.bucket, Key: &f.key, UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part one")})
			if err != nil {
				t.Fatal(err)
			}
			f.partETag = aws.ToString(part.ETag)
			if p.grant != "" {
				// The fixture's bucket, and the one CopyObjectOut makes.
				for _, b := range []string{f.bucket, f.bucket + "-thief"} {
					if _, err := st.GrantBucket(ctx, keys[p.name].User, b, p.grant); err != nil {
						t.Fatal(err)
					}
				}
			}

			want := p.read && (!op.write || p.write)
			err = op.run(ctx, clientFor(p.name), f)
			got := err == nil
			switch {
			case got && !want:
				t.Errorf("UNEXPECTED ALLOW: %s may %s", p.name, op.name)
			case !got && want:
				t.Errorf("unexpected deny: %s may not %s: %v", p.name, op.name, err)
			case !got && !isDenial(err):
				t.Errorf("%s %s: denied with %v, not an access error", p.name, op.name, err)
			}
			if !want {
				// Whatever was tried, the owner's object is as it was.
				got, _ := getAll(t, owner, f.bucket, f.key, "")
				if !bytes.Equal(got, secret) {
					t.Errorf("%s %s changed the owner's object", p.name, op.name)
				}
			}
		}
	}
}

// isDenial reports whether err is an answer that reveals nothing: access
// denied, a bucket that "does not exist", or an unusable key.
func isDenial(err error) bool {
	if err == errDenied {
		return true
	}
	switch apiCode(err) {
	case "AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "BucketAlreadyExists", "NoSuchUpload",
		"Forbidden", "NotFound": // HEAD answers carry no body, so the SDK names the status
		return true
	}
	return false
}
