package gateway

import (
	"io"
	"net/http"

	"github.com/tresor-gw/tresor/auth"
)

// Bounds of the request documents the gateway reads whole. S3 documents
// the number of entries, not a byte size; these allow that many entries at
// their longest, and refuse more with MaxMessageLengthExceeded rather than
// read it.
const (
	// maxDeleteBody: 1,000 keys (maxDeleteKeys) of up to 1,024 bytes, the
	// longest key S3 takes, with their tags and some escaping: about
	// 1.1 MiB unescaped.
	maxDeleteBody = 2 << 20
	// maxCompleteBody: 10,000 parts (maxPartNumber), each a part number,
	// a quoted ETag and a checksum: about 150 bytes a part as SDKs write
	// them, so 1.5 MiB, with room for indentation.
	maxCompleteBody = 4 << 20
	// maxCreateBucketBody: a CreateBucketConfiguration is a location
	// constraint and at most 50 tags of 128 + 256 characters, about 25 KB.
	maxCreateBucketBody = 64 << 10
)

// readBody reads the request's body whole and verified, for the handlers
// that act on a document (DeleteObjects, CompleteMultipartUpload,
// CreateBucket), and returns it only if every check of auth.Result.Body
// held: the signed payload hash, each aws-chunked chunk signature and the
// final one, Content-MD5, the x-amz-checksum-* and the declared length.
// Those checks end only with the body, so a handler that decoded the first
// element and acted would act on bytes nobody vouched for.
//
// The body may be at most limit bytes: a longer declared length is refused
// before a byte is read, and a body that turns out longer when it arrives
// (a chunked one declares none) is refused after limit+1 bytes. The buffer
// grows with what arrives, never from a declared length.
func readBody(rq *request, limit int64) ([]byte, error) {
	if rq.length > limit {
		return nil, errTooBig()
	}
	if rq.body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(&countingReader{r: rq.body, n: &rq.bytesIn}, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooBig()
	}
	return b, nil
}

func errTooBig() error { return s3Error("MaxMessageLengthExceeded") }

// requireChecksum refuses a request that names no digest of its body to be
// checked: S3 requires Content-MD5 or an x-amz-checksum-* (a header, or a
// trailer declared in x-amz-trailer) of DeleteObjects, and answers
// InvalidRequest without one. x-amz-sdk-checksum-algorithm alone names an
// algorithm but no value, so it does not count.
func requireChecksum(h http.Header) error {
	if h.Get("Content-Md5") != "" || h.Get("X-Amz-Trailer") != "" {
		return nil
	}
	for _, a := range []auth.ChecksumAlgorithm{auth.ChecksumCRC32, auth.ChecksumCRC32C, auth.ChecksumCRC64NVME, auth.ChecksumSHA1, auth.ChecksumSHA256} {
		if h.Get(a.Header()) != "" {
			return nil
		}
	}
	return s3Error("InvalidRequest", "Missing required header for this request: Content-MD5 OR x-amz-checksum-*")
}
