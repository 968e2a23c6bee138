package gateway

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/keystore"
)

// bucketName is S3's general-purpose bucket naming rule ("Bucket naming
// rules", S3 user guide): 3 to 63 lower-case letters, digits, dots and
// hyphens, starting and ending with a letter or digit.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

var ipv4Shaped = regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+$`)

// validBucketName adds the rule's exceptions: no two adjacent dots, and
// nothing shaped like an IP address.
func validBucketName(name string) bool {
	if !bucketName.MatchString(name) || strings.Contains(name, "..") {
		return false
	}
	return !ipv4Shaped.MatchString(name)
}

func (s *Server) listBuckets(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	buckets, err := s.store.Buckets(ctx, rq.tenant())
	if err != nil {
		return err
	}
	res := listAllMyBucketsResult{Xmlns: s3Namespace, Owner: rq.owner()}
	for _, b := range buckets {
		if keystore.BucketRole(rq.caller.Role, rq.caller.Confined, rq.caller.Grants, b.Name) == "" {
			continue // not granted to a confined caller
		}
		res.Buckets = append(res.Buckets, bucketInfo{Name: b.Name, CreationDate: s3Time(b.Created)})
	}
	return writeXML(w, res)
}

// createBucket takes a globally unique name for the caller's tenant. The
// request body may carry a CreateBucketConfiguration with a location
// constraint; tresor has one region and ignores it.
func (s *Server) createBucket(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	if !validBucketName(rq.bucket) {
		return s3Error("InvalidBucketName")
	}
	_, err := s.store.CreateBucket(ctx, rq.tenant(), rq.bucket)
	switch {
	case errors.Is(err, keystore.ErrExists):
		if b, berr := s.store.Bucket(ctx, rq.bucket); berr == nil && b.Tenant == rq.tenant() {
			return s3Error("BucketAlreadyOwnedByYou")
		}
		return s3Error("BucketAlreadyExists")
	case err != nil:
		return err
	}
	w.Header().Set("Location", "/"+rq.bucket)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) headBucket(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	w.Header().Set("x-amz-bucket-region", s.cfg.Region)
	w.WriteHeader(http.StatusOK)
	return nil
}

// deleteBucket removes an empty bucket: no objects and no multipart
// uploads in progress (S3 refuses both with BucketNotEmpty).
func (s *Server) deleteBucket(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	page, err := s.backend.List(ctx, rq.bucket, backend.ListOptions{MaxKeys: 1})
	if err != nil {
		return err
	}
	if len(page.Objects) > 0 || len(page.CommonPrefixes) > 0 {
		return s3Error("BucketNotEmpty")
	}
	if err := s.store.DeleteBucket(ctx, rq.tenant(), rq.bucket); err != nil {
		if errors.Is(err, keystore.ErrNotEmpty) {
			return s3Error("BucketNotEmpty", "The bucket you tried to delete has multipart uploads in progress.")
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getBucketLocation(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	region := s.cfg.Region
	if region == "us-east-1" {
		region = "" // S3 reports us-east-1 as an empty constraint
	}
	return writeXML(w, locationConstraint{Xmlns: s3Namespace, Region: region})
}

// getBucketVersioning reports versioning as never enabled: an empty
// configuration, as S3 answers for such buckets.
func (s *Server) getBucketVersioning(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	return writeXML(w, versioningConfiguration{Xmlns: s3Namespace})
}
