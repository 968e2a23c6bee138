package auth

import "errors"

// Error is an authentication or body-verification failure with the S3 error
// code the client must see. auth knows the codes because they are part of
// the protocol it implements; the HTTP status and the XML rendering live in
// gateway, which maps an *Error through its one table of S3 errors.
//
// Message is safe to send to the client. Err, when set, is the detail for
// logs (it may name headers or lengths, never secrets) and is never sent.
//
// Every *Error returned by this package comes from one of the Err* values
// below, and errors.Is(err, ErrX) tells which one, even when Message was
// made more specific (for example the region S3 names in
// AuthorizationHeaderMalformed).
type Error struct {
	Code    string
	Message string
	Err     error
	// Claimant, on a wrong signature made with an existing access key (or
	// a right one whose request is refused for what its headers declare
	// about the body), is whom that key signs for: a failed login is its
	// tenant's business too (ClaimantOf).
	Claimant *Principal

	kind *Error // the sentinel this error is an instance of
}

func (e *Error) Error() string {
	s := "auth: " + e.Code + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the detail, so errors.Is reaches causes such as
// io.ErrUnexpectedEOF.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e is an instance of the sentinel target.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t == e || t == e.kind
}

// ClaimantOf returns whom the access key of a request that failed with
// err signs for, when the key exists and its signature was checked.
func ClaimantOf(err error) (Principal, bool) {
	var e *Error
	if errors.As(err, &e) && e.Claimant != nil {
		return *e.Claimant, true
	}
	return Principal{}, false
}

// Unproven reports whether err refused a request before any signature of
// it was checked against a secret: no signature, a malformed one, an
// unknown access key, a request out of its time window. Such a refusal
// cost its sender nothing (it needs no secret, and only an unknown key
// spends the address's limiter budget), so its audit record may be
// aggregated (audit.Record.Aggregate). A wrong signature with an existing
// key is not unproven: it is a guess at that key, bounded by the Limiter
// and its tenant's business.
func Unproven(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Claimant == nil && !errors.Is(err, ErrSignatureDoesNotMatch)
}

// with returns an instance of the sentinel e carrying the detail err.
func (e *Error) with(err error) *Error {
	return &Error{Code: e.Code, Message: e.Message, Err: err, kind: e}
}

// withMessage returns an instance of the sentinel e with a more specific
// client-visible message, as S3 gives for some codes.
func (e *Error) withMessage(msg string, err error) *Error {
	return &Error{Code: e.Code, Message: msg, Err: err, kind: e}
}

// sentinel declares one member of the vocabulary. Codes and messages follow
// the Amazon S3 API Reference, "Error responses", and what S3 answers for
// each case.
func sentinel(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// The vocabulary. Several sentinels share a code (AccessDenied, BadDigest):
// they stay distinct for errors.Is so callers and tests can tell why.
var (
	// ErrAnonymous is returned for a request without any signature (no
	// Authorization header, no X-Amz-Signature). tresor serves no anonymous
	// access, so this is an error and not a Result: a caller that forgets
	// to check cannot treat an anonymous request as authenticated.
	ErrAnonymous = sentinel("AccessDenied", "Access Denied.")
	// ErrExpired is a presigned URL used after X-Amz-Date + X-Amz-Expires.
	ErrExpired = sentinel("AccessDenied", "Request has expired")
	// ErrNotYetValid is a presigned URL whose X-Amz-Date lies further in
	// the future than the allowed clock skew.
	ErrNotYetValid = sentinel("AccessDenied", "Request is not valid yet")
	// ErrAccessDenied covers the remaining authentication refusals, such as
	// x-amz-* headers that were sent but not signed.
	ErrAccessDenied = sentinel("AccessDenied", "Access Denied.")

	ErrSignatureDoesNotMatch = sentinel("SignatureDoesNotMatch",
		"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	ErrInvalidAccessKeyID = sentinel("InvalidAccessKeyId",
		"The AWS Access Key Id you provided does not exist in our records.")
	ErrRequestTimeTooSkewed = sentinel("RequestTimeTooSkewed",
		"The difference between the request time and the current time is too large.")
	ErrAuthorizationHeaderMalformed = sentinel("AuthorizationHeaderMalformed",
		"The authorization header is malformed.")
	ErrAuthorizationQueryParameters = sentinel("AuthorizationQueryParametersError",
		"Error parsing the X-Amz-Credential parameter.")

	// ErrContentSHA256Mismatch is a body whose SHA-256 differs from the hex
	// x-amz-content-sha256 it was signed with.
	ErrContentSHA256Mismatch = sentinel("XAmzContentSHA256Mismatch",
		"The provided 'x-amz-content-sha256' header does not match what was computed.")
	// ErrBadDigest is a body whose MD5 differs from Content-MD5.
	ErrBadDigest = sentinel("BadDigest",
		"The Content-MD5 you specified did not match what we received.")
	// ErrChecksumMismatch is a body whose x-amz-checksum-* (header or
	// trailer) differs from the one computed; the message names the header.
	ErrChecksumMismatch = sentinel("BadDigest",
		"The checksum you specified did not match the calculated checksum.")
	ErrInvalidDigest = sentinel("InvalidDigest",
		"The Content-MD5 you specified is not valid.")
	ErrIncompleteBody = sentinel("IncompleteBody",
		"You did not provide the number of bytes specified by the Content-Length HTTP header.")
	// ErrInvalidRequest covers malformed checksum headers, unsupported
	// signing mechanisms (SigV2, SigV4a) and a missing x-amz-content-sha256,
	// for which S3 answers InvalidRequest ("Missing required header for
	// this request: x-amz-content-sha256"), not MissingSecurityHeader.
	ErrInvalidRequest   = sentinel("InvalidRequest", "Invalid Request.")
	ErrMalformedTrailer = sentinel("MalformedTrailerError",
		"The request contained trailing data that was not well-formed or did not conform to our published schema.")
	ErrInvalidArgument = sentinel("InvalidArgument", "Invalid Argument.")
	// ErrInvalidToken is a request carrying a session token
	// (x-amz-security-token, header or query). tresor has no STS and
	// issues no temporary credentials, so any token is one it cannot
	// honour; S3 answers a token it cannot validate this way.
	ErrInvalidToken = sentinel("InvalidToken", "The provided token is malformed or otherwise invalid.")
)

// ErrUnknownAccessKey is what a Secrets implementation returns for an access
// key id it does not know, or knows but will not let sign (disabled,
// expired). Verify turns it into ErrInvalidAccessKeyID; any other lookup
// error is passed on wrapped, for the caller to answer InternalError.
var ErrUnknownAccessKey = errors.New("auth: unknown access key")
