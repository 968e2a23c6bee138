package keystore

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Bucket is a gateway bucket: a globally unique name owned by one tenant.
// Which buckets exist is decided here; the backend only uses the name as a
// namespace.
type Bucket struct {
	Name    string    `json:"name"`
	Tenant  ID        `json:"tenant"`
	Created time.Time `json:"created"`
}

type createBucketPayload struct {
	Bucket Bucket `json:"bucket"`
}

type deleteBucketPayload struct {
	Tenant ID     `json:"tenant"`
	Name   string `json:"name"`
}

// CreateBucket creates bucket name owned by tenant. Names follow S3's rules
// for general purpose buckets. A name already in use, by this or another
// tenant, is ErrExists; Bucket tells the two apart (S3's
// BucketAlreadyOwnedByYou and BucketAlreadyExists). A suspended tenant gets
// ErrDisabled.
func (s *Store) CreateBucket(ctx context.Context, tenant ID, name string) (Bucket, error) {
	b := Bucket{Name: name, Tenant: tenant, Created: s.now().UTC()}
	var out Bucket
	err := s.propose(ctx, OpCreateBucket, createBucketPayload{Bucket: b}, &out)
	return out, err
}

// Bucket returns bucket name, whose Tenant is its owner.
func (s *Store) Bucket(ctx context.Context, name string) (Bucket, error) {
	var b Bucket
	err := s.view(ctx, func(txn *badger.Txn) error {
		ok, err := read(txn, bucketKey(name), &b)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: bucket %q", ErrNotFound, name)
		}
		return nil
	})
	return b, err
}

// Buckets lists tenant's buckets in name order.
func (s *Store) Buckets(ctx context.Context, tenant ID) ([]Bucket, error) {
	var bs []Bucket
	err := s.view(ctx, func(txn *badger.Txn) error {
		prefix := key(pfxTenantBucket, tenant[:])
		return scan(txn, prefix, func(k, _ []byte) (bool, error) {
			var b Bucket
			ok, err := read(txn, bucketKey(string(k[len(prefix):])), &b)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, fmt.Errorf("keystore: bucket index %q dangles (corrupt store)", k[len(prefix):])
			}
			bs = append(bs, b)
			return true, nil
		})
	})
	return bs, err
}

// DeleteBucket deletes tenant's bucket name. The gateway checks that the
// backend holds no objects; the keystore refuses (ErrNotEmpty) while the
// bucket has multipart upload sessions or manifests, so a later bucket of
// the same name never inherits them. Another tenant's bucket is ErrNotFound.
func (s *Store) DeleteBucket(ctx context.Context, tenant ID, name string) error {
	return s.propose(ctx, OpDeleteBucket, deleteBucketPayload{Tenant: tenant, Name: name}, nil)
}

func applyCreateBucket(a *applyCtx, p createBucketPayload) (any, error) {
	b := p.Bucket
	if err := validBucketName(b.Name); err != nil {
		return nil, err
	}
	t, err := liveTenant(a, b.Tenant)
	if err != nil {
		return nil, err
	}
	if t.State != TenantActive {
		return nil, reject(CodeDisabled, "tenant %s is %s", t.ID, t.State)
	}
	if a.exists(bucketKey(b.Name)) {
		return nil, reject(CodeExists, "bucket %q exists", b.Name)
	}
	a.put(bucketKey(b.Name), b)
	a.putRaw(tenantBucketKey(b.Tenant, b.Name), nil)
	return b, nil
}

func applyDeleteBucket(a *applyCtx, p deleteBucketPayload) (any, error) {
	b, err := ownedBucket(a, p.Tenant, p.Name)
	if err != nil {
		return nil, err
	}
	if a.anyWithPrefix(uploadBucketPrefix(b.Name)) {
		return nil, reject(CodeNotEmpty, "bucket %q has multipart uploads in progress", b.Name)
	}
	// The gateway deletes a bucket once the backend holds no object in
	// it, so manifests still here describe no object: leftovers of a
	// completion that raced a delete (DeleteManifests). They go with it,
	// else the bucket could never be deleted.
	for _, k := range a.keysWithPrefix(manifestBucketPrefix(b.Name)) {
		a.del(k)
	}
	a.del(bucketKey(b.Name))
	a.del(tenantBucketKey(b.Tenant, b.Name))
	return nil, nil
}

// ownedBucket reads bucket name if tenant owns it; another tenant's bucket
// is reported as missing so nothing leaks across tenants.
func ownedBucket(a *applyCtx, tenant ID, name string) (Bucket, error) {
	var b Bucket
	if !a.get(bucketKey(name), &b) || b.Tenant != tenant {
		return Bucket{}, reject(CodeNotFound, "bucket %q", name)
	}
	return b, nil
}

// ValidBucketName reports, as ErrInvalid, a name the keystore refuses to
// create a bucket under. The gateway checks names against it before
// proposing a bucket, so that a refusal is the client's InvalidBucketName
// and not an error of the state machine.
func ValidBucketName(name string) error { return validBucketName(name) }

// validBucketName applies S3's naming rules for general purpose buckets
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
// 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a
// letter or digit, no "..", not shaped like an IPv4 address, none of the
// reserved prefixes and suffixes.
func validBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return reject(CodeInvalid, "bucket name %q must be 3 to 63 characters", name)
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !alnum(c) && c != '.' && c != '-' {
			return reject(CodeInvalid, "bucket name %q: only a-z, 0-9, '.' and '-' are allowed", name)
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return reject(CodeInvalid, "bucket name %q must start and end with a letter or digit", name)
	}
	if strings.Contains(name, "..") {
		return reject(CodeInvalid, "bucket name %q must not contain \"..\"", name)
	}
	if addr, err := netip.ParseAddr(name); err == nil && addr.Is4() {
		return reject(CodeInvalid, "bucket name %q must not be an IP address", name)
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return reject(CodeInvalid, "bucket name %q: prefix %q is reserved", name, p)
		}
	}
	for _, sfx := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3"} {
		if strings.HasSuffix(name, sfx) {
			return reject(CodeInvalid, "bucket name %q: suffix %q is reserved", name, sfx)
		}
	}
	return nil
}
