package gateway

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc32"
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
func (p listParams) encode(s string) xmlKey {
	if p.encoding != "url" {
		return xmlKey(s)
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
	return xmlKey(b.String())
}

// xmlKey is a key or prefix in a listing. An S3 key may hold any Unicode
// character, XML 1.0 only some: not U+0000 to U+001F but tab, LF and CR,
// nor U+FFFE and U+FFFF. encoding/xml writes each such character as
// U+FFFD, so the listing would show another key than the one stored,
// silently (two keys differing there would even list alike). S3 instead
// writes them as character references ("&#x0;"), which gives the key
// exactly: clients that ask for encoding-type=url, as the aws cli, boto3,
// minio-go and rclone do, never see one, and a strict XML parser given one
// fails loudly instead of reading a wrong key. xmlKey does what S3 does.
type xmlKey string

// MarshalXML writes the key escaped by escapeKey.
func (k xmlKey) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return e.EncodeElement(struct {
		Text string `xml:",innerxml"`
	}{escapeKey(string(k))}, start)
}

// escapeKey escapes s as XML character data: the markup characters and
// the white space that XML parsers would normalize (CR, LF, tab) as
// encoding/xml escapes them, and every character XML 1.0 cannot carry as
// a numeric character reference. A byte that is not UTF-8 has no
// character to refer to: it is written as U+FFFD, as encoding/xml does.
func escapeKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&#34;")
		case '\'':
			b.WriteString("&#39;")
		case '\t':
			b.WriteString("&#x9;")
		case '\n':
			b.WriteString("&#xA;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			if r < 0x20 || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF) {
				fmt.Fprintf(&b, "&#x%X;", r)
			} else {
				b.WriteRune(r)
			}
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
	// An empty token is no token, as in S3.
	token := q.Get("continuation-token")
	if token != "" {
		k, err := parseContinuationToken(token)
		if err != nil {
			e := s3Error("InvalidArgument", "The continuation token provided is incorrect")
			e.ArgumentName = "continuation-token"
			return e
		}
		after = k
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
		res.NextContinuationToken = continuationToken(page.NextAfter)
	}
	res.Contents, res.CommonPrefixes = s.listEntries(rq, p, page, sizes, q.Get("fetch-owner") == "true")
	res.KeyCount = len(res.Contents) + len(res.CommonPrefixes)
	return writeXML(w, res)
}

// continuationTokenVersion starts every continuation token, so that a
// token of another format is refused rather than misread.
const continuationTokenVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// continuationToken is the opaque token of ListObjectsV2 for a listing that
// goes on after key: base64url of a version byte, the key and a CRC-32C
// of both. The checksum makes a garbled or made-up token an error
// (InvalidArgument, as S3 answers) rather than a listing from some
// arbitrary key. It is no secret: a token only says where a listing
// resumes, which start-after says in the clear; it is not bound to a
// node, so any gateway node continues a listing.
func continuationToken(key string) string {
	b := make([]byte, 0, 1+len(key)+4)
	b = append(b, continuationTokenVersion)
	b = append(b, key...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseContinuationToken returns the key a continuationToken was made for.
func parseContinuationToken(token string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", err
	}
	if len(b) < 1+1+4 || b[0] != continuationTokenVersion {
		return "", errors.New("continuation token: unknown format")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return "", errors.New("continuation token: checksum mismatch")
	}
	return string(body[1:]), nil
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
