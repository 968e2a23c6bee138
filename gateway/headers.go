package gateway

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/keystore"
)

// An x-amz-* request header is an instruction to S3, and many promise
// something: SSE-C encrypts under the client's key, Object Lock keeps an
// object from deletion, a canned ACL makes it public. A gateway that
// accepts such a header and does nothing about it tells its client a
// protection is in force that is not. So every x-amz-* header a request
// carries is judged here, in one table, before the operation runs:
//
//   - headers tresor implements (authentication, checksums, metadata,
//     copies, conditions) go through to their handler or to auth;
//   - headers whose promise holds at tresor without doing anything (a
//     private ACL, STANDARD storage, SSE with tresor's own key) are
//     accepted;
//   - headers whose promise tresor does not keep are refused with the
//     error AWS answers for a bucket without that feature;
//   - headers that promise nothing (a user agent) are ignored;
//   - any x-amz-* header not in the table is refused with NotImplemented
//     naming it, so a header S3 adds later cannot be silently dropped.
//
// A header sent to an operation it does not concern is ignored, as S3
// ignores it, unless S3 refuses it there (SSE headers on a GET, a copy
// source on a non-copy). auth.Verifier has already refused unsigned x-amz-*
// headers and session tokens (x-amz-security-token).

// headerCall is one x-amz-* header of one authenticated request.
type headerCall struct {
	op    Op
	name  string // lower case
	value string // the header's values joined by ","
	h     http.Header
	rq    *request
}

// headerRule judges one header: nil to go on, or the error to answer.
type headerRule func(c headerCall) error

// headerRules is the table of the x-amz-* request headers the gateway
// understands, by lower-case name. headerPrefixes covers the families.
var headerRules = map[string]headerRule{
	// Authentication and payload, verified by auth.Verifier.
	"x-amz-date":                   accept,
	"x-amz-content-sha256":         accept,
	"x-amz-decoded-content-length": accept,
	"x-amz-trailer":                accept,
	"x-amz-sdk-checksum-algorithm": accept,
	"x-amz-checksum-crc32":         accept,
	"x-amz-checksum-crc32c":        accept,
	"x-amz-checksum-crc64nvme":     accept,
	"x-amz-checksum-sha1":          accept,
	"x-amz-checksum-sha256":        accept,
	// The algorithm and type of a multipart upload's checksums (minio-go
	// sends them on every part too). Each part's checksum is verified as it
	// arrives; tresor stores no object checksum to answer with later, as S3
	// for an object uploaded without one.
	"x-amz-checksum-algorithm": checksumAlgorithm,
	"x-amz-checksum-type":      checksumType,
	// GET and HEAD may ask for the stored checksums: tresor stores none,
	// which S3 answers by leaving them out, as tresor does.
	"x-amz-checksum-mode": accept,

	// Information that promises nothing.
	"x-amz-user-agent": accept,
	// The requester accepts to pay; there is nothing to pay.
	"x-amz-request-payer": accept,
	// RestoreStatus is asked for; no tresor object is archived.
	"x-amz-optional-object-attributes": accept,
	// Object Lock and MFA Delete are not configured on any bucket, so there
	// is no retention to bypass and no MFA to check: S3 ignores both then.
	"x-amz-bypass-governance-retention": accept,
	"x-amz-mfa":                         accept,

	// The bucket owner a request expects is its tenant, the owner S3
	// documents name (request.owner).
	"x-amz-expected-bucket-owner":        expectedOwner,
	"x-amz-source-expected-bucket-owner": on(copies, expectedOwner),

	// Copies (copy.go reads them).
	"x-amz-copy-source":                     copySourceHeader,
	"x-amz-copy-source-range":               copySourceRange,
	"x-amz-copy-source-if-match":            accept,
	"x-amz-copy-source-if-none-match":       accept,
	"x-amz-copy-source-if-modified-since":   accept,
	"x-amz-copy-source-if-unmodified-since": accept,
	"x-amz-metadata-directive":              accept,
	"x-amz-tagging-directive":               on([]Op{OpCopyObject}, taggingDirective),
	// CompleteMultipartUpload checks it against the parts.
	"x-amz-mp-object-size": accept,

	// Encryption: every object is encrypted under its tenant's key, which
	// tresor reports as SSE-KMS (sseHeaders).
	"x-amz-server-side-encryption":                    sse,
	"x-amz-server-side-encryption-aws-kms-key-id":     on(creates, kmsKeyID),
	"x-amz-server-side-encryption-context":            on(creates, notImplemented),
	"x-amz-server-side-encryption-bucket-key-enabled": accept,

	// Ownership, ACLs, storage classes and the rest of what a new object
	// or bucket is given.
	"x-amz-acl":                        cannedACL,
	"x-amz-object-ownership":           on([]Op{OpCreateBucket}, objectOwnership),
	"x-amz-bucket-object-lock-enabled": on([]Op{OpCreateBucket}, bucketObjectLock),
	"x-amz-storage-class":              on(creates, storageClass),
	"x-amz-tagging":                    on(creates, tagging),
	"x-amz-website-redirect-location":  on(creates, notImplemented),
}

// headerPrefixes are the header families, tried in order after an exact
// name in headerRules.
var headerPrefixes = []struct {
	prefix string
	rule   headerRule
}{
	{"x-amz-meta-", accept},
	// The customer-key trio of SSE-C, for the object and for a copy's
	// source.
	{"x-amz-server-side-encryption-customer-", sseC},
	{"x-amz-copy-source-server-side-encryption-customer-", notApplicableEncryption},
	{"x-amz-object-lock-", on(creates, objectLock)},
	{"x-amz-grant-", aclGrant},
	// Algorithms S3 has and auth cannot verify (SHA512, MD5, XXHASH...).
	{"x-amz-checksum-", unsupportedChecksum},
}

// Operations by what they write.
var (
	// creates make an object (or an upload that will become one) and
	// take its metadata, encryption, ACL, storage class and lock.
	creates = []Op{OpPutObject, OpCopyObject, OpCreateMultipartUpload}
	// copies read a source object.
	copies = []Op{OpCopyObject, OpUploadPartCopy}
)

// checkHeaders judges every x-amz-* header of an authenticated request,
// in name order, so that a request with several refused headers always
// gets the same answer.
func checkHeaders(r *http.Request, rq *request) error {
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		lower, values := strings.ToLower(name), r.Header[name]
		rule := headerRule(unknownHeader)
		if exact, ok := headerRules[lower]; ok {
			rule = exact
		} else {
			for _, p := range headerPrefixes {
				if strings.HasPrefix(lower, p.prefix) {
					rule = p.rule
					break
				}
			}
		}
		c := headerCall{op: rq.route.Op, name: lower, value: strings.Join(values, ","), h: r.Header, rq: rq}
		if err := rule(c); err != nil {
			return err
		}
	}
	return nil
}

// on applies rule to the operations ops; other operations ignore the header.
func on(ops []Op, rule headerRule) headerRule {
	return func(c headerCall) error {
		if slices.Contains(ops, c.op) {
			return rule(c)
		}
		return nil
	}
}

func accept(headerCall) error { return nil }

// headerError is an S3 error about the header of c.
func headerError(c headerCall, code, msg string) *APIError {
	e := s3Error(code, msg)
	e.Header = c.name
	return e
}

// argumentError is an InvalidArgument naming the header of c and its value.
func argumentError(c headerCall, msg string) *APIError {
	e := s3Error("InvalidArgument", msg)
	e.ArgumentName, e.ArgumentValue = c.name, c.value
	return e
}

// notImplemented answers a header whose feature tresor does not have.
func notImplemented(c headerCall) error {
	return headerError(c, "NotImplemented", "A header you provided implies functionality that is not implemented")
}

func unknownHeader(c headerCall) error { return notImplemented(c) }

func unsupportedChecksum(c headerCall) error {
	return s3Error("InvalidRequest", "Checksum algorithm provided is unsupported.")
}

func checksumAlgorithm(c headerCall) error {
	if _, err := auth.ParseChecksumAlgorithm(c.value); err != nil {
		return s3Error("InvalidRequest", "Checksum algorithm provided is unsupported.")
	}
	return nil
}

func checksumType(c headerCall) error {
	if c.value != "COMPOSITE" && c.value != "FULL_OBJECT" {
		return s3Error("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
	}
	return nil
}

// expectedOwner refuses a request that expects another owner than the
// caller's tenant, as S3 does (403 AccessDenied): a bucket a request names
// is always the caller's tenant's, else it got NoSuchBucket already.
func expectedOwner(c headerCall) error {
	if c.op == OpListBuckets {
		return nil
	}
	if c.value != c.rq.tenant().String() {
		return s3Error("AccessDenied")
	}
	return nil
}

// copySourceHeader allows x-amz-copy-source on copies only (the router
// made a PUT with one a copy).
func copySourceHeader(c headerCall) error {
	if slices.Contains(copies, c.op) {
		return nil
	}
	return argumentError(c, "You can only specify a copy source header for copy requests.")
}

// copySourceRange belongs to UploadPartCopy (checked by copyRange). A
// CopyObject copies whole objects: a range there would be a promise of a
// partial copy that CopyObject does not make.
func copySourceRange(c headerCall) error {
	if c.op == OpCopyObject {
		return argumentError(c, "The x-amz-copy-source-range header is only valid for UploadPartCopy; CopyObject copies the whole object.")
	}
	return nil
}

// taggingDirective: a source never has tags at tresor, so COPY copies none
// and REPLACE takes x-amz-tagging, which must be empty (tagging).
func taggingDirective(c headerCall) error {
	if c.value != "COPY" && c.value != "REPLACE" {
		return argumentError(c, "Unknown tagging directive.")
	}
	return nil
}

// sse accepts what tresor does to every object where S3 takes the header.
// aws:kms is what tresor reports; AES256 (SSE-S3: encryption at rest
// under keys the service manages, AES-256) holds as well, since tresor
// encrypts with AES-256-GCM under the tenant's key, and the response says
// aws:kms, what was done. DSSE-KMS promises a second layer of encryption
// tresor does not add. GET, HEAD and the part operations refuse the header
// as S3 does (400, "not supported for this operation"): the encryption of
// an object is chosen when it is created.
func sse(c headerCall) error {
	switch {
	case slices.Contains(creates, c.op):
		switch c.value {
		case "aws:kms", "AES256":
			return nil
		case "aws:kms:dsse":
			return notImplemented(c)
		}
		return argumentError(c, "The encryption method specified is not supported")
	case slices.Contains([]Op{OpGetObject, OpHeadObject, OpUploadPart, OpUploadPartCopy, OpCompleteMultipartUpload}, c.op):
		return argumentError(c, "x-amz-server-side-encryption header is not supported for this operation.")
	}
	return nil
}

// kmsKeyID accepts only the tenant's own key, the one sseHeaders names:
// tresor has no other key to encrypt with. Another id is a KMS key that
// does not exist here, which S3 answers KMS.NotFoundException.
func kmsKeyID(c headerCall) error {
	if c.h.Get("X-Amz-Server-Side-Encryption") != "aws:kms" {
		return argumentError(c, "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
	}
	if c.value != tenantKeyID(c.rq.tenant()) {
		return s3Error("KMS.NotFoundException", "Invalid keyId '"+truncateValue(c.value)+"'")
	}
	return nil
}

// sseC refuses customer-provided keys. tresor keeps no SSE-C object, so
// reads answer as S3 does for an object stored without one; writes answer
// as S3 does for a bucket that blocks SSE-C (the default for every new
// bucket since April 2026): 403 AccessDenied.
func sseC(c headerCall) error {
	if slices.Contains(creates, c.op) || c.op == OpUploadPart || c.op == OpUploadPartCopy {
		return s3Error("AccessDenied", "Not authorized to perform s3:"+string(c.op)+
			" because this bucket has blocked upload requests that specify Server Side Encryption with Customer provided keys (SSE-C). Please specify a different server-side encryption type")
	}
	return notApplicableEncryption(c)
}

func notApplicableEncryption(headerCall) error {
	return s3Error("InvalidRequest", "The encryption parameters are not applicable to this object.")
}

// objectLock refuses retention and legal holds: no bucket has Object Lock
// (CreateBucket refuses x-amz-bucket-object-lock-enabled), and S3 answers
// a lock requested on such a bucket with this error.
func objectLock(headerCall) error {
	return s3Error("InvalidRequest", "Bucket is missing ObjectLockConfiguration")
}

func bucketObjectLock(c headerCall) error {
	switch strings.ToLower(c.value) {
	case "false":
		return nil
	case "true":
		return notImplemented(c)
	}
	return argumentError(c, "Invalid x-amz-bucket-object-lock-enabled header: "+truncateValue(c.value))
}

// Buckets behave as S3's with Object Ownership BucketOwnerEnforced (S3's
// default since April 2023): the tenant owns every object and ACLs are
// disabled. Such a bucket accepts the ACLs that say exactly that and
// refuses any other.
func cannedACL(c headerCall) error {
	switch {
	case c.op == OpCreateBucket:
		if c.value != "private" {
			return s3Error("InvalidBucketAclWithObjectOwnership")
		}
	case slices.Contains(creates, c.op):
		if c.value != "private" && c.value != "bucket-owner-full-control" {
			return s3Error("AccessControlListNotSupported")
		}
	}
	return nil
}

func aclGrant(c headerCall) error {
	switch {
	case c.op == OpCreateBucket:
		return s3Error("InvalidBucketAclWithObjectOwnership")
	case slices.Contains(creates, c.op):
		return s3Error("AccessControlListNotSupported")
	}
	return nil
}

func objectOwnership(c headerCall) error {
	switch c.value {
	case "BucketOwnerEnforced":
		return nil
	case "BucketOwnerPreferred", "ObjectWriter":
		return notImplemented(c) // both enable ACLs
	}
	return argumentError(c, "Invalid x-amz-object-ownership header: "+truncateValue(c.value))
}

// storageClass: tresor stores every object one way, which is STANDARD.
func storageClass(c headerCall) error {
	if c.value != "STANDARD" {
		return s3Error("InvalidStorageClass")
	}
	return nil
}

// tagging: tresor keeps no object tags (?tagging is NotImplemented), so
// only an empty tag set is a true statement.
func tagging(c headerCall) error {
	if c.value != "" {
		return notImplemented(c)
	}
	return nil
}

// tenantKeyID is the KMS key id tresor reports for a tenant's objects.
func tenantKeyID(tenant keystore.ID) string {
	return "tresor:tenant/" + tenant.String()
}

// truncateValue shortens a client's value before it goes into a message.
func truncateValue(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
