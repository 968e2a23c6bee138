package gateway

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/keystore"
)

// request is one S3 request as the handlers see it once it is
// authenticated: its route, the caller, and the verified body.
type request struct {
	id     string
	route  Route
	bucket string
	key    string

	// caller is who the request's access key signs for.
	caller    auth.Principal
	accessKey string
	auth      *auth.Result
	// body yields the decoded payload and fails before io.EOF if a
	// signature, length or checksum does not hold (auth.Verifier).
	body io.ReadCloser
	// length is the decoded payload's declared length, -1 if none.
	length int64

	bytesIn, bytesOut int64
	// retryAfter, if set, is sent as Retry-After with a SlowDown.
	retryAfter time.Duration
}

// tenant is the caller's tenant.
func (rq *request) tenant() keystore.ID { return keystore.ID(rq.caller.Tenant) }

// owner is the caller's tenant as S3 documents name an owner.
func (rq *request) owner() owner {
	id := rq.tenant().String()
	return owner{ID: id, DisplayName: id}
}

// authorize checks that the caller's role allows the operation and that
// the caller's tenant owns the bucket. A caller confined to granted buckets
// (keystore.User.Confined) gets its role on the bucket instead and none on
// a bucket not granted; it may create a bucket it was granted as a writer
// before the bucket existed. A bucket of another tenant
// is reported exactly as a missing one, so nobody can probe for other
// tenants' buckets.
func (s *Server) authorize(ctx context.Context, rq *request, need access) error {
	role := rq.caller.Role
	if rq.bucket != "" {
		role = keystore.BucketRole(role, rq.caller.Confined, rq.caller.Grants, rq.bucket)
	}
	switch keystore.Role(role) {
	case keystore.RoleAdmin, keystore.RoleWriter:
	case keystore.RoleReader:
		if need != accessRead {
			return s3Error("AccessDenied")
		}
	default:
		return s3Error("AccessDenied")
	}
	if rq.bucket == "" || rq.route.Op == OpCreateBucket {
		return nil
	}
	b, err := s.store.Bucket(ctx, rq.bucket)
	if errors.Is(err, keystore.ErrNotFound) {
		// Perhaps created through another node a moment ago and not yet
		// applied here: ask at the linearizable level before saying no.
		b, err = s.store.Bucket(keystore.WithReadLevel(ctx, keystore.ReadLinearizable), rq.bucket)
	}
	if errors.Is(err, keystore.ErrNotFound) || (err == nil && b.Tenant != rq.tenant()) {
		return s3Error("NoSuchBucket")
	}
	return err
}
