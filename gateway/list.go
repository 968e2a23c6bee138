package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tresor-gw/tresor/gateway/backend"
)

// maxListKeys is S3's page size limit for listings ("returns up to 1,000
// key names", ListObjectsV2); larger max-keys values are capped to it.
const maxListKeys = 1000

// listParams are the options common to the listing operations.
type listParams struct {
	prefix, delimiter, encoding string
	maxKeys                     int
}

func parseListParams(q url.Values, maxName string) (listParams, error) {
	p := listParams{
		prefix:    q.Get("prefix"),
		delimiter: q.Get("delimiter"),
		encoding:  q.Get("encoding-type"),
		maxKeys:   maxListKeys,
	}
	if p.encoding != "" && p.encoding != "url" {
		return p, s3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
	}
	if v := q.Get(maxName); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, s3Error("InvalidArgument", "Provided "+maxName+" not an integer or within integer range")
		}
		p.maxKeys = min(n, maxListKeys)
	}
	return p, nil
}

// encode applies encoding-type=url to a key or prefix in a listing, so
// that keys with bytes XML cannot carry survive. Like S3 (and MinIO), it
// leaves letters, digits and "-_./*" alone, writes a space as "+" and
// percent-encodes every other byte; clients decode with a form unescape.
func (p listParams) encode(s string) string {
	if p.encoding != "url" {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '/', c == '*':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// list reads one page from the backend and the plaintext sizes of its
// objects. A max-keys of 0 lists nothing, as in S3.
func (s *Server) list(ctx context.Context, bucket string, p listParams, after string) (backend.ListPage, []int64, error) {
	if p.maxKeys == 0 {
		return backend.ListPage{}, nil, nil
	}
	page, err := s.backend.List(ctx, bucket, backend.ListOptions{
		Prefix: p.prefix, Delimiter: p.delimiter, After: after, MaxKeys: p.maxKeys,
	})
	if err != nil {
		return page, nil, err
	}
	sizes, err := s.plaintextSizes(ctx, bucket, page.Objects)
	return page, sizes, err
}

func (s *Server) listObjects(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	p, err := parseListParams(q, "max-keys")
	if err != nil {
		return err
	}
	marker := q.Get("marker")
	page, sizes, err := s.list(ctx, rq.bucket, p, marker)
	if err != nil {
		return err
	}
	res := listBucketResult{
		Xmlns: s3Namespace, Name: rq.bucket, Prefix: p.encode(p.prefix),
		Marker: p.encode(marker), MaxKeys: p.maxKeys, Delimiter: p.encode(p.delimiter),
		EncodingType: p.encoding, IsTruncated: page.Truncated,
	}
	if page.Truncated {
		res.NextMarker = p.encode(page.NextAfter)
	}
	res.Contents, res.CommonPrefixes = s.listEntries(rq, p, page, sizes, true)
	return writeXML(w, res)
}

func (s *Server) listObjectsV2(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	p, err := parseListParams(q, "max-keys")
	if err != nil {
		return err
	}
	after := q.Get("start-after")
	token := q.Get("continuation-token")
	if _, ok := q["continuation-token"]; ok {
		k, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(k) == 0 {
			return s3Error("InvalidArgument", "The continuation token provided is incorrect")
		}
		after = string(k)
	}
	page, sizes, err := s.list(ctx, rq.bucket, p, after)
	if err != nil {
		return err
	}
	res := listBucketV2Result{
		Xmlns: s3Namespace, Name: rq.bucket, Prefix: p.encode(p.prefix),
		StartAfter: p.encode(q.Get("start-after")), ContinuationToken: token,
		MaxKeys: p.maxKeys, Delimiter: p.encode(p.delimiter), EncodingType: p.encoding,
		IsTruncated: page.Truncated,
	}
	if page.Truncated {
		res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(page.NextAfter))
	}
	res.Contents, res.CommonPrefixes = s.listEntries(rq, p, page, sizes, q.Get("fetch-owner") == "true")
	res.KeyCount = len(res.Contents) + len(res.CommonPrefixes)
	return writeXML(w, res)
}

// listObjectVersions serves ListObjectVersions on buckets without
// versioning: every object is its one version, "null", as S3 reports
// objects written before versioning was enabled. Cleanup tools and SDK
// helpers rely on it.
func (s *Server) listObjectVersions(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	p, err := parseListParams(q, "max-keys")
	if err != nil {
		return err
	}
	keyMarker := q.Get("key-marker")
	page, sizes, err := s.list(ctx, rq.bucket, p, keyMarker)
	if err != nil {
		return err
	}
	res := listVersionsResult{
		Xmlns: s3Namespace, Name: rq.bucket, Prefix: p.encode(p.prefix),
		KeyMarker: p.encode(keyMarker), VersionIDMarker: q.Get("version-id-marker"),
		MaxKeys: p.maxKeys, Delimiter: p.encode(p.delimiter), EncodingType: p.encoding,
		IsTruncated: page.Truncated,
	}
	if page.Truncated {
		res.NextKeyMarker = p.encode(page.NextAfter)
		res.NextVersionIDMarker = "null"
	}
	objs, prefixes := s.listEntries(rq, p, page, sizes, true)
	for _, o := range objs {
		res.Versions = append(res.Versions, objectVersion{
			Key: o.Key, VersionID: "null", IsLatest: true, LastModified: o.LastModified,
			ETag: o.ETag, Size: o.Size, StorageClass: o.StorageClass, Owner: *o.Owner,
		})
	}
	res.CommonPrefixes = prefixes
	return writeXML(w, res)
}

func (s *Server) listEntries(rq *request, p listParams, page backend.ListPage, sizes []int64, withOwner bool) ([]listObject, []commonPrefix) {
	objs := make([]listObject, 0, len(page.Objects))
	for i, o := range page.Objects {
		e := listObject{
			Key: p.encode(o.Key), LastModified: s3Time(o.LastModified), ETag: o.ETag,
			Size: sizes[i], StorageClass: "STANDARD",
		}
		if withOwner {
			own := rq.owner()
			e.Owner = &own
		}
		objs = append(objs, e)
	}
	prefixes := make([]commonPrefix, 0, len(page.CommonPrefixes))
	for _, cp := range page.CommonPrefixes {
		prefixes = append(prefixes, commonPrefix{Prefix: p.encode(cp)})
	}
	return objs, prefixes
}
