package envelope

import (
	"errors"
	"fmt"
)

// Errors callers decide on, declared in one place as minio/sio does. Every
// failure to authenticate an envelope, a package, a manifest or a metadata
// blob wraps ErrAuthentication, so the gateway can count and refuse them with
// one errors.Is check; the more specific sentinels below wrap it and say what
// was wrong. None of these errors is ever returned after a byte of
// unauthenticated plaintext has been handed out.
var (
	// ErrAuthentication means a ciphertext, envelope, manifest or metadata
	// blob failed authentication: wrong tenant, bucket, key or key version,
	// a flipped bit, a spliced, reordered or duplicated package.
	ErrAuthentication = errors.New("envelope: authentication failed")

	// ErrTruncated means the ciphertext ended before the last byte the
	// authenticated plaintext size calls for.
	ErrTruncated = fmt.Errorf("%w: ciphertext truncated", ErrAuthentication)

	// ErrTrailingData means bytes follow the last package the plaintext size
	// calls for.
	ErrTrailingData = fmt.Errorf("%w: data after the last package", ErrAuthentication)

	// ErrKeyCommitment means the unwrapped DEK does not match the key
	// commitment stored in the envelope.
	ErrKeyCommitment = fmt.Errorf("%w: key commitment mismatch", ErrAuthentication)

	// ErrWrongTenant means an envelope names another tenant than the
	// binding it is opened or re-wrapped for.
	ErrWrongTenant = fmt.Errorf("%w: envelope belongs to another tenant", ErrAuthentication)

	// ErrMalformed means an envelope, manifest or metadata blob does not
	// parse: wrong length, bad encoding, out-of-bounds field, trailing bytes.
	ErrMalformed = errors.New("envelope: malformed")

	// ErrUnsupportedVersion means a format version this code does not know.
	ErrUnsupportedVersion = errors.New("envelope: unsupported format version")

	// ErrUnsupportedSuite means a cipher suite this code does not know.
	ErrUnsupportedSuite = errors.New("envelope: unsupported cipher suite")

	// ErrSizeMismatch means a plaintext source yielded fewer or more bytes
	// than the size declared for it; the ciphertext stream then ends with
	// this error before its final package, so the backend never commits it.
	ErrSizeMismatch = errors.New("envelope: plaintext length differs from declared size")

	// ErrTooLarge means a size or a metadata set exceeds what the format or
	// the backend accepts (see MaxSize, MaxBackendMetadata).
	ErrTooLarge = errors.New("envelope: too large")

	// ErrLayout means an operation does not fit the object's layout, such as
	// asking a multipart envelope for a single-part layout.
	ErrLayout = errors.New("envelope: operation does not match the object layout")

	// ErrInvalidRange means a Range header value is malformed. S3 ignores
	// such a header and serves the whole object.
	ErrInvalidRange = errors.New("envelope: malformed range")

	// ErrUnsatisfiableRange means a well-formed range selects no byte of the
	// object (S3: 416 InvalidRange).
	ErrUnsatisfiableRange = errors.New("envelope: range not satisfiable")

	// ErrMultipleRanges means a Range header asks for several ranges, which
	// S3 does not support: it serves the whole object instead.
	ErrMultipleRanges = errors.New("envelope: multiple ranges not supported")
)
