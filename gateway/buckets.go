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

// validBucketName applies S3's rules for general purpose bucket names
// ("General purpose bucket naming rules", S3 user guide). The keystore
// enforces them when a bucket is created (keystore.ValidBucketName: length,
// characters, "..", IPv4 addresses, the reserved prefixes xn--, sthree- and
// amzn-s3-demo-, the reserved suffixes -s3alias, --ol-s3, .mrap and
// --x-s3); the gateway checks the same rule first, so that every name the
// keystore would refuse is InvalidBucketName here and never reaches the
// state machine as an error. Two rules are the gateway's alone, as they
// are newer than buckets the keystore may hold (its rule is applied on log
// replay and must not change): names shaped like an IPv4 address but not
// one (999.1.1.1), and the suffix --table-s3, reserved for S3 Tables.
func validBucketName(name string) bool {
	if keystore.ValidBucketName(name) != nil || ipv4Shaped.MatchString(name) {
		return false
	}
	return !strings.HasSuffix(name, "--table-s3")
}

var ipv4Shaped = regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+$`)

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
// request body may carry a CreateBucketConfiguration, read whole and
// verified (readBody) before the bucket is created; its location
// constraint must name the gateway's region (checkLocation).
func (s *Server) createBucket(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	if !validBucketName(rq.bucket) {
		return s3Error("InvalidBucketName")
	}
	body, err := readBody(rq, maxCreateBucketBody)
	if err != nil {
		return err
	}
	cfg, err := parseCreateBucket(body)
	if err != nil {
		return err
	}
	if err := checkLocation(cfg.LocationConstraint, s.cfg.Region); err != nil {
		return err
	}
	_, err = s.store.CreateBucket(ctx, rq.tenant(), rq.bucket)
	switch {
	case errors.Is(err, keystore.ErrInvalid):
		return s3Error("InvalidBucketName")
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

// regionShaped matches AWS region codes (eu-central-1, us-gov-west-1,
// eusc-de-east-1), which S3 knows as location constraints.
var regionShaped = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)

// checkLocation checks a CreateBucket location constraint against the
// gateway's one region, as S3 answers at a regional endpoint ("CreateBucket"
// in the S3 API reference, and what S3 returns):
//
//   - the region itself is taken; so is "EU", S3's old name of eu-west-1;
//   - "us-east-1" is never a valid constraint (S3 wants none for it):
//     InvalidLocationConstraint, as is anything that is not a region code;
//   - another region is IllegalLocationConstraintException, naming it.
//
// An empty or absent constraint means the gateway's region. S3 takes that
// only at us-east-1 and refuses it at other regional endpoints ("The
// unspecified location constraint is incompatible..."); tresor has one
// region, so an unspecified one is not ambiguous, and clients that send
// none by default (rclone, s3cmd, the SDKs) keep working in any region.
func checkLocation(constraint, region string) error {
	switch {
	case constraint == "":
		return nil
	case constraint == region && constraint != "us-east-1", constraint == "EU" && region == "eu-west-1":
		return nil
	case constraint == "us-east-1" || !regionShaped.MatchString(constraint):
		return s3Error("InvalidLocationConstraint")
	}
	return s3Error("IllegalLocationConstraintException",
		"The "+constraint+" location constraint is incompatible for the region specific endpoint this request was sent to.")
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
