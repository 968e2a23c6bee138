package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/tresor-gw/tresor/gateway/envelope"
)

// selection is the plaintext byte range a GET or HEAD answers with.
type selection struct {
	start, end int64 // inclusive; end = start-1 for nothing
	partial    bool  // 206 with Content-Range
}

func (s selection) length() int64 { return s.end - s.start + 1 }

func (s selection) contentRange(size int64) string {
	return fmt.Sprintf("bytes %d-%d/%d", s.start, s.end, size)
}

// selectRange reads the Range header or the partNumber parameter of a GET
// or HEAD. As in S3, a malformed or multi-range header is ignored and the
// whole object served; a range past the end is 416 InvalidRange.
func selectRange(r *http.Request, layout envelope.Layout) (selection, error) {
	size := layout.Size()
	if pn := r.URL.Query().Get("partNumber"); pn != "" {
		n, err := strconv.Atoi(pn)
		if err != nil || n < 1 || n > maxPartNumber {
			return selection{}, s3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		}
		if r.Header.Get("Range") != "" {
			return selection{}, s3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
		}
		start, end, ok := layout.Part(n)
		if !ok {
			return selection{}, s3Error("InvalidPartNumber")
		}
		return selection{start: start, end: end, partial: layout.Multipart()}, nil
	}
	whole := selection{start: 0, end: size - 1}
	v := r.Header.Get("Range")
	if v == "" {
		return whole, nil
	}
	start, end, err := envelope.ParseRange(v, size)
	switch {
	case errors.Is(err, envelope.ErrUnsatisfiableRange):
		return selection{}, s3Error("InvalidRange")
	case err != nil:
		return whole, nil
	}
	return selection{start: start, end: end, partial: true}, nil
}
