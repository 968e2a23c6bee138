package auth

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strings"

	"github.com/minio/crc64nvme"
)

// ChecksumAlgorithm is a digest S3 lets a client send with a body: the
// x-amz-checksum-* family ("Checking object integrity" in the Amazon S3 User
// Guide) and Content-MD5 (RFC 1864).
type ChecksumAlgorithm string

// The algorithms S3 accepts. The names are those of
// x-amz-sdk-checksum-algorithm; values are sent base64-encoded, big-endian
// for the CRCs.
const (
	ChecksumMD5       ChecksumAlgorithm = "MD5" // Content-MD5; not an x-amz-checksum-*
	ChecksumCRC32     ChecksumAlgorithm = "CRC32"
	ChecksumCRC32C    ChecksumAlgorithm = "CRC32C"
	ChecksumCRC64NVME ChecksumAlgorithm = "CRC64NVME"
	ChecksumSHA1      ChecksumAlgorithm = "SHA1"
	ChecksumSHA256    ChecksumAlgorithm = "SHA256"
)

// checksumAlgorithms are the x-amz-checksum-* algorithms, in the order
// headers are examined.
var checksumAlgorithms = []ChecksumAlgorithm{ChecksumCRC32, ChecksumCRC32C, ChecksumCRC64NVME, ChecksumSHA1, ChecksumSHA256}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ParseChecksumAlgorithm parses an algorithm name as in
// x-amz-sdk-checksum-algorithm or x-amz-checksum-algorithm, case-insensitively.
// MD5 is not a name those headers take and is refused.
func ParseChecksumAlgorithm(s string) (ChecksumAlgorithm, error) {
	for _, a := range checksumAlgorithms {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", ErrInvalidRequest.withMessage("Checksum algorithm provided is unsupported.",
		fmt.Errorf("checksum algorithm %q", truncate(s)))
}

// Header is the request and response header that carries a value of a:
// "x-amz-checksum-crc32" and so on, "Content-MD5" for MD5.
func (a ChecksumAlgorithm) Header() string {
	if a == ChecksumMD5 {
		return "Content-MD5"
	}
	return "x-amz-checksum-" + strings.ToLower(string(a))
}

// New returns a fresh hash computing a, or nil for an unknown algorithm.
func (a ChecksumAlgorithm) New() hash.Hash {
	switch a {
	case ChecksumMD5:
		return md5.New()
	case ChecksumCRC32:
		return crc32.NewIEEE()
	case ChecksumCRC32C:
		return crc32.New(castagnoli)
	case ChecksumCRC64NVME:
		return crc64nvme.New()
	case ChecksumSHA1:
		return sha1.New()
	case ChecksumSHA256:
		return sha256.New()
	}
	return nil
}

// size is the length of a's digest in bytes, 0 for an unknown algorithm.
func (a ChecksumAlgorithm) size() int {
	if h := a.New(); h != nil {
		return h.Size()
	}
	return 0
}

// Checksum is one digest of a body.
type Checksum struct {
	Algorithm ChecksumAlgorithm
	// Sum is the raw digest. In an expectation passed to NewChecksumReader
	// a nil Sum asks for the digest to be computed but not compared.
	Sum []byte
}

// String returns the digest base64-encoded, as the header carries it.
func (c Checksum) String() string { return base64.StdEncoding.EncodeToString(c.Sum) }

// ParseChecksum decodes a base64 header value of algorithm a and checks its
// length. A malformed Content-MD5 is InvalidDigest; a malformed
// x-amz-checksum-* is InvalidRequest, as S3 answers.
func ParseChecksum(a ChecksumAlgorithm, value string) (Checksum, error) {
	sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err == nil && len(sum) != a.size() {
		err = fmt.Errorf("%d bytes, want %d", len(sum), a.size())
	}
	if err != nil {
		if a == ChecksumMD5 {
			return Checksum{}, ErrInvalidDigest.with(fmt.Errorf("Content-MD5: %w", err))
		}
		return Checksum{}, ErrInvalidRequest.withMessage(
			"Value for "+a.Header()+" header is invalid.", err)
	}
	return Checksum{Algorithm: a, Sum: sum}, nil
}

// digest is one running hash of a ChecksumReader and what it must equal.
type digest struct {
	alg  ChecksumAlgorithm
	h    hash.Hash
	want []byte
	// trailer names the aws-chunked trailer whose value is the expected
	// digest; it is looked up when the body ends.
	trailer string
	// payload marks the hex x-amz-content-sha256 check, which is not a
	// checksum the client asked to have stored and fails with its own code.
	payload bool
}

// ChecksumReader passes a body through unchanged and, when the body ends,
// checks its length and digests. A mismatch is returned by the Read that
// would have returned io.EOF, so a consumer that commits only on io.EOF
// (the gateway's backend PUT) never commits a body that does not verify.
//
// Use it alone where a body is not the request body of a Verify (the
// digests of an UploadPart body are already checked by Verify's Result.Body).
type ChecksumReader struct {
	r      io.Reader
	length int64 // declared, -1 if unknown
	n      int64
	sums   []digest
	// trailers yields the aws-chunked trailer values once the decoder
	// underneath has returned io.EOF.
	trailers func(name string) (string, bool)
	err      error
	done     bool
}

// NewChecksumReader returns a reader of r that fails unless r yields exactly
// length bytes (-1: any number) whose digests equal want. A Checksum in want
// with a nil Sum is computed only (see Checksums). An unknown algorithm makes
// every Read fail.
func NewChecksumReader(r io.Reader, length int64, want ...Checksum) *ChecksumReader {
	c := &ChecksumReader{r: r, length: length}
	for _, w := range want {
		h := w.Algorithm.New()
		if h == nil {
			// Fail closed: a digest that cannot be computed is not
			// silently skipped.
			c.err = ErrInvalidRequest.withMessage("Checksum algorithm provided is unsupported.",
				fmt.Errorf("checksum algorithm %q", truncate(string(w.Algorithm))))
			break
		}
		c.sums = append(c.sums, digest{alg: w.Algorithm, h: h, want: w.Sum})
	}
	return c
}

// Read implements io.Reader.
func (c *ChecksumReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		if c.length >= 0 && c.n > c.length {
			c.err = ErrInvalidRequest.withMessage("The request body is longer than the declared length.",
				fmt.Errorf("body exceeds %d bytes", c.length))
			return 0, c.err
		}
		for i := range c.sums {
			c.sums[i].h.Write(p[:n])
		}
	}
	switch {
	case err == io.EOF:
		c.err = c.finish()
		if c.err == nil {
			c.err = io.EOF
			c.done = true
		}
		return n, c.err
	case errors.Is(err, io.ErrUnexpectedEOF):
		// net/http's body reader says so when the connection ends before
		// Content-Length bytes arrived.
		c.err = ErrIncompleteBody.with(err)
		return n, c.err
	case err != nil:
		c.err = err
		return n, err
	}
	return n, nil
}

// finish checks the declared length and every digest.
func (c *ChecksumReader) finish() error {
	if c.length >= 0 && c.n != c.length {
		return ErrIncompleteBody.with(fmt.Errorf("body has %d of %d bytes", c.n, c.length))
	}
	for i := range c.sums {
		d := &c.sums[i]
		want := d.want
		if d.trailer != "" {
			v, ok := c.trailers(d.trailer)
			if !ok {
				return ErrMalformedTrailer.with(fmt.Errorf("trailer %s is missing", d.trailer))
			}
			cs, err := ParseChecksum(d.alg, v)
			if err != nil {
				return ErrMalformedTrailer.with(err)
			}
			want = cs.Sum
		}
		got := d.h.Sum(nil)
		d.want = got // from here on, the computed digest
		if want == nil || bytes.Equal(got, want) {
			continue
		}
		switch {
		case d.payload:
			return ErrContentSHA256Mismatch.with(fmt.Errorf("computed %x", got))
		case d.alg == ChecksumMD5:
			return ErrBadDigest.with(nil)
		default:
			return ErrChecksumMismatch.withMessage(
				"The "+d.alg.Header()+" you specified did not match the calculated checksum.", nil)
		}
	}
	return nil
}

// Checksums returns the x-amz-checksum-* digests computed over the body, for
// the caller to echo in its response. It is empty until Read has returned
// io.EOF (before then nothing has been verified) and never includes
// Content-MD5 or the x-amz-content-sha256 payload hash.
func (c *ChecksumReader) Checksums() []Checksum {
	if !c.done {
		return nil
	}
	var out []Checksum
	for _, d := range c.sums {
		if d.payload || d.alg == ChecksumMD5 {
			continue
		}
		out = append(out, Checksum{Algorithm: d.alg, Sum: bytes.Clone(d.want)})
	}
	return out
}

// checksumPlan is what a request's headers ask to be verified over its
// decoded body.
type checksumPlan struct {
	md5 *Checksum
	// alg is the one x-amz-checksum-* algorithm, "" for none.
	alg ChecksumAlgorithm
	// want is its value when given as a header; nil if it comes as a
	// trailer or is only to be computed (x-amz-sdk-checksum-algorithm).
	want []byte
	// trailer is the declared trailer carrying the value, "" for none.
	trailer string
}

// planChecksums reads Content-MD5, x-amz-checksum-*, x-amz-trailer and
// x-amz-sdk-checksum-algorithm. S3 takes at most one x-amz-checksum-*
// algorithm per request; the SDK algorithm header, when present, must agree
// with it.
func planChecksums(h http.Header) (checksumPlan, error) {
	var p checksumPlan
	if vs := h.Values("Content-Md5"); len(vs) > 0 {
		if len(vs) > 1 {
			return p, ErrInvalidDigest.with(errors.New("more than one Content-MD5"))
		}
		cs, err := ParseChecksum(ChecksumMD5, vs[0])
		if err != nil {
			return p, err
		}
		p.md5 = &cs
	}
	multiple := ErrInvalidRequest.withMessage(
		"Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.", nil)
	for _, a := range checksumAlgorithms {
		vs := h.Values(a.Header())
		if len(vs) == 0 {
			continue
		}
		if p.alg != "" || len(vs) > 1 {
			return p, multiple
		}
		cs, err := ParseChecksum(a, vs[0])
		if err != nil {
			return p, err
		}
		p.alg, p.want = a, cs.Sum
	}
	for _, line := range h.Values("X-Amz-Trailer") {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			a, ok := trailerAlgorithm(name)
			if !ok {
				return p, ErrInvalidRequest.withMessage("The value specified in the x-amz-trailer header is not supported",
					fmt.Errorf("trailer %q", truncate(name)))
			}
			if p.alg != "" {
				return p, multiple
			}
			p.alg, p.trailer = a, name
		}
	}
	if v := h.Get("X-Amz-Sdk-Checksum-Algorithm"); v != "" {
		a, err := ParseChecksumAlgorithm(v)
		if err != nil {
			return p, err
		}
		if p.alg != "" && p.alg != a {
			return p, ErrInvalidRequest.withMessage(
				"Value for x-amz-sdk-checksum-algorithm header is invalid.",
				fmt.Errorf("x-amz-sdk-checksum-algorithm %s but checksum %s", a, p.alg))
		}
		p.alg = a
	}
	return p, nil
}

// trailerAlgorithm maps a trailer name to its algorithm.
func trailerAlgorithm(name string) (ChecksumAlgorithm, bool) {
	for _, a := range checksumAlgorithms {
		if name == a.Header() {
			return a, true
		}
	}
	return "", false
}

// payloadDigest is the digest checking a hex x-amz-content-sha256.
func payloadDigest(hexSum string) (digest, error) {
	want, err := hex.DecodeString(hexSum)
	if err != nil || len(want) != sha256.Size {
		return digest{}, errors.New("not a hex SHA-256")
	}
	return digest{alg: ChecksumSHA256, h: sha256.New(), want: want, payload: true}, nil
}
