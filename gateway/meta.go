package gateway

import (
	"net/http"
	"net/textproto"
	"strings"
)

// userMetaLimit is S3's limit on user-defined metadata: "the PUT request
// header is limited to 8 KB ... the user-defined metadata is limited to
// 2 KB" (S3 user guide, "Working with object metadata"), counted as the
// sum of the bytes of keys and values.
const userMetaLimit = 2 << 10

// contentHeaders are the system headers a client sets at PUT and gets back
// at GET. They travel sealed with the user metadata: a content type alone
// can say a lot about a document.
var contentHeaders = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding",
	"Content-Language", "Cache-Control", "Expires",
}

// requestMeta collects the metadata a PUT, copy with REPLACE, or
// CreateMultipartUpload stores: content headers under their canonical names
// and x-amz-meta-* under "x-amz-meta-" plus the lower-cased name. The
// aws-chunked content coding describes the request body, not the object,
// and is dropped (DESIGN.md trap 2).
func requestMeta(h http.Header) (map[string]string, error) {
	meta := map[string]string{}
	size := 0
	for name, values := range h {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-meta-") {
			continue
		}
		v := strings.Join(values, ",")
		meta[lower] = v
		size += len(lower) - len("x-amz-meta-") + len(v)
	}
	if size > userMetaLimit {
		return nil, s3Error("MetadataTooLarge")
	}
	for _, name := range contentHeaders {
		v := h.Get(name)
		if name == "Content-Encoding" {
			v = dropAWSChunked(v)
		}
		if v != "" {
			meta[name] = v
		}
	}
	return meta, nil
}

// dropAWSChunked removes the aws-chunked token from a Content-Encoding list.
func dropAWSChunked(v string) string {
	var keep []string
	for _, c := range strings.Split(v, ",") {
		c = strings.TrimSpace(c)
		if c != "" && !strings.EqualFold(c, "aws-chunked") {
			keep = append(keep, c)
		}
	}
	return strings.Join(keep, ",")
}

// writeMeta sets the stored metadata as response headers.
func writeMeta(h http.Header, meta map[string]string) {
	for k, v := range meta {
		if strings.HasPrefix(k, "x-amz-meta-") {
			h[k] = []string{v} // S3 answers with lower-case x-amz-meta- names
			continue
		}
		h.Set(textproto.CanonicalMIMEHeaderKey(k), v)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "binary/octet-stream") // S3's default
	}
}

// responseOverrides are the response-* query parameters of GetObject and
// the headers they set (S3 API reference, GetObject).
var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// applyOverrides sets the headers a GetObject's response-* parameters ask for.
func applyOverrides(h http.Header, r *http.Request) {
	q := r.URL.Query()
	for param, header := range responseOverrides {
		if v := q.Get(param); v != "" {
			h.Set(header, v)
		}
	}
}
