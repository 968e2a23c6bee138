package gateway

import (
	"net/http"
	"strings"
	"time"
)

// preconditions evaluates the conditional headers of a GET or HEAD against
// the stored object's ETag and modification time, in the order RFC 9110
// section 13.2.2 gives and S3 follows. It returns nil to go ahead, or the
// error to answer with: 412 PreconditionFailed, or a 304 notModified.
func preconditions(h http.Header, etag string, modified time.Time) error {
	modified = modified.Truncate(time.Second) // HTTP dates have whole seconds
	if im := h.Get("If-Match"); im != "" {
		if !etagListMatches(im, etag) {
			return s3Error("PreconditionFailed")
		}
	} else if ius := h.Get("If-Unmodified-Since"); ius != "" {
		if t, err := http.ParseTime(ius); err == nil && modified.After(t) {
			return s3Error("PreconditionFailed")
		}
	}
	if inm := h.Get("If-None-Match"); inm != "" {
		if etagListMatches(inm, etag) {
			return errNotModified
		}
	} else if ims := h.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !modified.After(t) {
			return errNotModified
		}
	}
	return nil
}

// errNotModified answers 304 with no body; it is not an S3 error document.
var errNotModified = &APIError{Code: "NotModified", Status: http.StatusNotModified, Message: "Not Modified"}

// etagListMatches reports whether a comma-separated If-Match or
// If-None-Match list names etag or is "*". Quotes and the weak prefix are
// ignored, as S3 does.
func etagListMatches(list, etag string) bool {
	want := normalizeETag(etag)
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "*" || normalizeETag(e) == want {
			return true
		}
	}
	return false
}

func normalizeETag(e string) string {
	return strings.Trim(strings.TrimPrefix(strings.TrimSpace(e), "W/"), `"`)
}
