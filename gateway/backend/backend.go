// Package backend stores tresor's ciphertext objects. The gateway encrypts
// before it calls a Backend and decrypts after, so a Backend only ever sees
// ciphertext and the envelope metadata; it knows nothing of tenants or keys.
//
// Buckets here are the gateway's buckets, used as a namespace only: which
// buckets exist and who owns them is kept in the keystore, so a Backend
// creates a bucket's storage lazily on first write and never fails a call
// because a bucket "does not exist" (a listing of an unknown bucket is empty).
//
// Two implementations live beside this file: FS (fs.go), the embedded default
// that keeps objects as files under one directory, and S3 (s3.go), which
// stores them in one bucket of any S3-compatible service. Both pass the
// conformance suite in backendtest, which any new implementation (or
// wrapper) should run too.
package backend

import (
	"context"
	"errors"
	"io"
	"time"
)

// Backend is the storage tresor writes ciphertext to. Every method honours
// ctx. Readers and writers stream: no implementation may buffer a whole
// object, and sizes passed in are exact (the gateway computes them from the
// ciphertext formula), so implementations send them as Content-Length.
type Backend interface {
	// Put stores size bytes read from r as bucket/key with opts.Metadata, replacing any
	// previous object atomically: readers see the old object or the new one,
	// never a mix or a partial write. If r yields fewer or more than size
	// bytes, or returns an error, nothing is committed and the error is
	// returned (wrapping ErrIncompleteBody for a length mismatch).
	Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error)

	// Get opens bucket/key for reading. rng selects a byte range of the
	// stored object; nil means the whole object. The ObjectInfo describes the
	// whole object (Size is its full size) whatever the range.
	// A range starting at or past the end returns ErrInvalidRange.
	Get(ctx context.Context, bucket, key string, rng *Range) (io.ReadCloser, ObjectInfo, error)

	// Head returns an object's info and metadata without its body.
	Head(ctx context.Context, bucket, key string) (ObjectInfo, error)

	// Delete removes bucket/key. Deleting a missing object is not an error,
	// as in S3.
	Delete(ctx context.Context, bucket, key string) error

	// Copy copies src to dst inside the backend without the data passing
	// through the caller, replacing dst's metadata with meta.
	Copy(ctx context.Context, src, dst Location, meta Metadata) (ObjectInfo, error)

	// List lists bucket's objects in ascending byte order of their keys.
	List(ctx context.Context, bucket string, opts ListOptions) (ListPage, error)

	// CreateMultipart starts a multipart upload of bucket/key whose
	// completed object will carry meta, and returns its upload id.
	CreateMultipart(ctx context.Context, bucket, key string, meta Metadata) (uploadID string, err error)

	// UploadPart stores part number n (1..10000) of an upload, replacing an
	// earlier upload of the same number.
	UploadPart(ctx context.Context, bucket, key, uploadID string, n int, r io.Reader, size int64) (Part, error)

	// CompleteMultipart assembles the listed parts, in the order given (which
	// must be ascending by part number), into the object.
	CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []Part) (ObjectInfo, error)

	// AbortMultipart discards an upload and its parts.
	AbortMultipart(ctx context.Context, bucket, key, uploadID string) error

	// ListParts returns an upload's parts in ascending part number order.
	ListParts(ctx context.Context, bucket, key, uploadID string) ([]Part, error)
}

// Metadata is user metadata stored with an object: lower-case keys without
// the x-amz-meta- prefix, values in printable ASCII (the S3 limits apply: 2
// KiB for all keys and values together). tresor keeps its envelope here.
type Metadata map[string]string

// PutOptions carries a Put's metadata and its optional preconditions,
// evaluated atomically with the write (S3 conditional writes).
type PutOptions struct {
	Metadata Metadata
	// IfMatch, when set, commits only if the current object's ETag equals it
	// (quoted); otherwise Put fails with ErrPreconditionFailed.
	IfMatch string
	// IfNoneMatch may be "*": commit only if no object exists at the key.
	IfNoneMatch string
}

// Location names one object.
type Location struct {
	Bucket, Key string
	// IfMatch, on a Copy's source, copies only the version with this ETag
	// (quoted); another fails with ErrPreconditionFailed. The gateway opened
	// that version's envelope: a copy of another would be undecryptable.
	IfMatch string
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key          string
	Size         int64  // stored (ciphertext) size in bytes
	ETag         string // quoted, as S3 returns it
	LastModified time.Time
	Metadata     Metadata // nil in listings
}

// Range is an inclusive byte range [Start, End] of a stored object. End < 0
// means "to the end of the object".
type Range struct {
	Start, End int64
}

// ListOptions selects a page of a listing, with S3's semantics.
type ListOptions struct {
	Prefix    string
	Delimiter string
	// After lists only keys (and common prefixes) sorting strictly after it:
	// S3's marker, start-after, or the key a continuation token stands for.
	After string
	// MaxKeys bounds the entries (objects plus common prefixes) of a page:
	// 0 means 1000, and more than 1000 is capped at 1000, S3's page limit.
	MaxKeys int
}

// ListPage is one page of a listing. When Truncated, the next page starts
// after NextAfter.
type ListPage struct {
	Objects        []ObjectInfo
	CommonPrefixes []string
	Truncated      bool
	NextAfter      string
}

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number       int
	Size         int64
	ETag         string
	LastModified time.Time
}

// Errors callers decide on. Implementations wrap them with context.
var (
	ErrNotFound           = errors.New("backend: object not found")
	ErrUploadNotFound     = errors.New("backend: multipart upload not found")
	ErrInvalidPart        = errors.New("backend: invalid part")
	ErrInvalidRange       = errors.New("backend: range not satisfiable")
	ErrIncompleteBody     = errors.New("backend: body length differs from declared size")
	ErrInvalidKey         = errors.New("backend: invalid object key")
	ErrInvalidBucket      = errors.New("backend: invalid bucket name")
	ErrPreconditionFailed = errors.New("backend: precondition failed")
)
