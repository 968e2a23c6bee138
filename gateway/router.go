package gateway

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Op names one S3 operation. The names are the S3 API's own; they label
// metrics and log lines, so the set is bounded.
type Op string

// The operations the gateway serves. Anything else is answered with
// NotImplemented before a handler runs, so an unknown sub-resource can never
// reach an object write (DESIGN.md trap 3).
const (
	OpListBuckets             Op = "ListBuckets"
	OpCreateBucket            Op = "CreateBucket"
	OpHeadBucket              Op = "HeadBucket"
	OpDeleteBucket            Op = "DeleteBucket"
	OpGetBucketLocation       Op = "GetBucketLocation"
	OpGetBucketVersioning     Op = "GetBucketVersioning"
	OpListObjects             Op = "ListObjects"
	OpListObjectsV2           Op = "ListObjectsV2"
	OpListObjectVersions      Op = "ListObjectVersions"
	OpListMultipartUploads    Op = "ListMultipartUploads"
	OpDeleteObjects           Op = "DeleteObjects"
	OpPutObject               Op = "PutObject"
	OpCopyObject              Op = "CopyObject"
	OpGetObject               Op = "GetObject"
	OpHeadObject              Op = "HeadObject"
	OpDeleteObject            Op = "DeleteObject"
	OpCreateMultipartUpload   Op = "CreateMultipartUpload"
	OpUploadPart              Op = "UploadPart"
	OpUploadPartCopy          Op = "UploadPartCopy"
	OpCompleteMultipartUpload Op = "CompleteMultipartUpload"
	OpAbortMultipartUpload    Op = "AbortMultipartUpload"
	OpListParts               Op = "ListParts"
	// OpUnknown is a request the gateway does not implement.
	OpUnknown Op = "NotImplemented"
)

// Route is a request resolved to an operation and its target.
type Route struct {
	Op     Op
	Bucket string // empty for ListBuckets
	Key    string // empty for bucket operations
}

// Router resolves requests in path style (/bucket/key) and, when Domains
// is set, in virtual-host style (bucket.domain/key).
type Router struct {
	// Domains are the base domains of virtual-host addressing, e.g.
	// "s3.example.eu"; a Host of "photos.s3.example.eu" addresses bucket
	// "photos". A Host equal to a domain, or matching none, is path style.
	Domains []string
}

// Resolve maps a request to its Route. It never fails: requests it cannot
// place resolve to OpUnknown, which is answered with NotImplemented.
func (rt Router) Resolve(r *http.Request) Route {
	bucket, key := rt.target(r)
	q := r.URL.Query()
	if !knownParams(q) {
		return Route{Op: OpUnknown, Bucket: bucket, Key: key}
	}
	op := OpUnknown
	switch {
	case bucket == "":
		if r.Method == http.MethodGet {
			op = OpListBuckets
		}
	case key == "":
		op = bucketOp(r.Method, q)
	default:
		op = objectOp(r.Method, q, r.Header)
	}
	return Route{Op: op, Bucket: bucket, Key: key}
}

// target splits the request into bucket and key. The key is taken from the
// raw (escaped) path and unescaped once, so "%2F" inside a key stays a
// slash of the key and "a//b" keeps its empty segment.
func (rt Router) target(r *http.Request) (bucket, key string) {
	path := r.URL.EscapedPath()
	if b, ok := rt.hostBucket(r.Host); ok {
		key, _ = url.PathUnescape(strings.TrimPrefix(path, "/"))
		return b, key
	}
	path = strings.TrimPrefix(path, "/")
	b, k, _ := strings.Cut(path, "/")
	bucket, _ = url.PathUnescape(b)
	key, _ = url.PathUnescape(k)
	return bucket, key
}

func (rt Router) hostBucket(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, d := range rt.Domains {
		d = strings.ToLower(d)
		if b, ok := strings.CutSuffix(host, "."+d); ok && b != "" {
			return b, true
		}
	}
	return "", false
}

func bucketOp(method string, q url.Values) Op {
	switch method {
	case http.MethodGet:
		switch {
		case has(q, "location"):
			return only(q, OpGetBucketLocation, "location")
		case has(q, "versioning"):
			return only(q, OpGetBucketVersioning, "versioning")
		case has(q, "versions"):
			return only(q, OpListObjectVersions, "versions")
		case has(q, "uploads"):
			return only(q, OpListMultipartUploads, "uploads")
		case q.Get("list-type") == "2":
			return OpListObjectsV2
		case has(q, "list-type"):
			return OpUnknown
		case subresource(q):
			return OpUnknown
		}
		return OpListObjects
	case http.MethodHead:
		if subresource(q) {
			return OpUnknown
		}
		return OpHeadBucket
	case http.MethodPut:
		if subresource(q) {
			return OpUnknown
		}
		return OpCreateBucket
	case http.MethodDelete:
		if subresource(q) {
			return OpUnknown
		}
		return OpDeleteBucket
	case http.MethodPost:
		if has(q, "delete") {
			return only(q, OpDeleteObjects, "delete")
		}
	}
	return OpUnknown
}

func objectOp(method string, q url.Values, h http.Header) Op {
	upload := has(q, "uploadId")
	part := has(q, "partNumber")
	switch method {
	case http.MethodGet:
		if upload {
			return only(q, OpListParts, "uploadId", "max-parts", "part-number-marker")
		}
		return only(q, OpGetObject, "partNumber")
	case http.MethodHead:
		return only(q, OpHeadObject, "partNumber")
	case http.MethodPut:
		switch {
		case upload && part:
			if h.Get("X-Amz-Copy-Source") != "" {
				return only(q, OpUploadPartCopy, "uploadId", "partNumber")
			}
			return only(q, OpUploadPart, "uploadId", "partNumber")
		case upload || part || subresource(q):
			return OpUnknown
		case h.Get("X-Amz-Copy-Source") != "":
			return OpCopyObject
		}
		return OpPutObject
	case http.MethodPost:
		switch {
		case has(q, "uploads"):
			return only(q, OpCreateMultipartUpload, "uploads")
		case upload:
			return only(q, OpCompleteMultipartUpload, "uploadId")
		}
	case http.MethodDelete:
		if upload {
			return only(q, OpAbortMultipartUpload, "uploadId")
		}
		if part || subresource(q) {
			return OpUnknown
		}
		return OpDeleteObject
	}
	return OpUnknown
}

// plainParams are the query parameters that select options of an
// operation rather than a sub-resource. x-id is added by aws-sdk-go-v2 to
// every request; X-Amz-* carry presigned-URL authentication.
var plainParams = map[string]bool{
	"x-id": true, "versionId": true,
	"prefix": true, "delimiter": true, "marker": true, "max-keys": true,
	"encoding-type": true, "list-type": true, "continuation-token": true,
	"start-after": true, "fetch-owner": true, "key-marker": true,
	"upload-id-marker": true, "max-uploads": true, "version-id-marker": true,
	"max-parts": true, "part-number-marker": true,
	"response-content-type": true, "response-content-language": true,
	"response-expires": true, "response-cache-control": true,
	"response-content-disposition": true, "response-content-encoding": true,
}

// subresourceParams are the parameters the router gives a meaning to; any
// other parameter outside plainParams makes the request unknown.
var subresourceParams = map[string]bool{
	"location": true, "versioning": true, "versions": true, "uploads": true,
	"uploadId": true, "partNumber": true, "delete": true,
}

// knownParams reports whether every query parameter is one the router
// understands. Parameters such as ?tagging or ?acl make a request unknown.
func knownParams(q url.Values) bool {
	for k := range q {
		if plainParams[k] || subresourceParams[k] || strings.HasPrefix(k, "X-Amz-") {
			continue
		}
		return false
	}
	return true
}

// subresource reports whether q names a sub-resource at all; operations
// that take none treat one as unknown.
func subresource(q url.Values) bool {
	for k := range q {
		if subresourceParams[k] {
			return true
		}
	}
	return false
}

// only returns op if q has no sub-resource besides allowed, else OpUnknown.
func only(q url.Values, op Op, allowed ...string) Op {
	for k := range q {
		if subresourceParams[k] && !slices.Contains(allowed, k) {
			return OpUnknown
		}
	}
	return op
}

func has(q url.Values, k string) bool {
	_, ok := q[k]
	return ok
}
