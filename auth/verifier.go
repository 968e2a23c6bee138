package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxSkew is how far a header-signed request's time may be from the
// verifier's clock: 15 minutes, as S3 enforces ("Authenticating Requests
// (AWS Signature Version 4)": a request is rejected with RequestTimeTooSkewed
// when its time stamp is more than 15 minutes off).
const DefaultMaxSkew = 15 * time.Minute

// Values of x-amz-content-sha256 other than a hex SHA-256 ("Authenticating
// Requests (AWS Signature Version 4)", "Signature Calculations for the
// Authorization Header", and the chunked-upload pages).
const (
	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// Config configures a Verifier.
type Config struct {
	// Region is the gateway's region, which credential scopes must name.
	Region string
	// StrictRegion refuses scopes naming us-east-1 when Region is another
	// region. By default us-east-1 is accepted too: it is the region
	// SigV4 clients sign with when they have none configured, and the one
	// minio-go always signs GetBucketLocation with. The region in a scope
	// only keeps an AWS signature from being replayed in another AWS
	// region; a tresor secret is valid at tresor alone, so accepting the
	// default region weakens nothing.
	StrictRegion bool
	// MaxSkew is the largest accepted difference between a header-signed
	// request's time and Clock, and how far in the future a presigned
	// URL's X-Amz-Date may lie. Zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// DefaultConfig returns a Config for region with S3's skew and the system
// clock.
func DefaultConfig(region string) Config {
	return Config{Region: region, MaxSkew: DefaultMaxSkew, Clock: time.Now}
}

// Validate explains what is wrong with c.
func (c Config) Validate() error {
	if c.Region == "" {
		return errors.New("auth: config: Region is empty")
	}
	if strings.Contains(c.Region, "/") {
		return fmt.Errorf("auth: config: Region %q contains '/'", c.Region)
	}
	if c.MaxSkew < 0 {
		return fmt.Errorf("auth: config: MaxSkew %v is negative", c.MaxSkew)
	}
	return nil
}

// Verifier authenticates S3 requests signed with AWS Signature Version 4,
// in the Authorization header or in the query (presigned URLs). It is safe
// for concurrent use.
type Verifier struct {
	secrets Secrets
	cfg     Config
}

// NewVerifier returns a Verifier that looks secrets up in s.
func NewVerifier(s Secrets, cfg Config) (*Verifier, error) {
	if s == nil {
		return nil, errors.New("auth: Secrets is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Verifier{secrets: s, cfg: cfg}, nil
}

// Result is an authenticated request.
type Result struct {
	// AccessKeyID is the key the request was signed with.
	AccessKeyID string
	// Principal is who that key signs for, as Secrets returned it.
	Principal Principal
	// Presigned tells a query-signed request (presigned URL) from a
	// header-signed one.
	Presigned bool
	// Body yields the decoded payload: the aws-chunked framing removed,
	// and nothing else changed. It verifies, while streaming, every chunk
	// and trailer signature, the hex x-amz-content-sha256, Content-MD5, the
	// x-amz-checksum-* (header or trailer) and the declared length, and
	// returns a mismatch as an error (an *Error) from the Read that would
	// otherwise have returned io.EOF. Bytes it returned are therefore not
	// trustworthy until it has returned io.EOF: consumers must commit only
	// then. Closing it closes the request body.
	Body io.ReadCloser
	// DecodedLength is the payload's length as declared: the
	// Content-Length header for a plain body, x-amz-decoded-content-length
	// for an aws-chunked one (or for a plain body sent with
	// Transfer-Encoding: chunked); -1 if undeclared, which includes a
	// plain request with neither Content-Length nor Transfer-Encoding (S3
	// itself answers MissingContentLength then; whether to is the
	// caller's choice). Body fails unless exactly this many bytes arrive.
	DecodedLength int64
	// ContentEncoding is the request's Content-Encoding without the
	// aws-chunked token, which describes only the transfer and must not
	// be stored or echoed (DESIGN.md section 8, trap 2).
	ContentEncoding string

	sums *ChecksumReader
}

// Checksums returns the x-amz-checksum-* digests computed over the decoded
// body (the one the client sent, or the one it asked for with
// x-amz-sdk-checksum-algorithm), for the response to echo. It is empty until
// Body has returned io.EOF. Content-MD5 is not included.
func (r *Result) Checksums() []Checksum {
	if r.sums == nil {
		return nil
	}
	return r.sums.Checksums()
}

// request is a parsed authentication, from the header or the query.
type request struct {
	authorization
	amzDate   string
	time      time.Time
	presigned bool
	expires   time.Duration
}

// Verify authenticates r from its headers and query alone; it reads no
// byte of the body. On success the Result's Body must be read (to io.EOF)
// for the payload to count as verified.
//
// The errors are *Error values of this package (errors.Is against the Err*
// sentinels), except a failing Secrets lookup other than
// ErrUnknownAccessKey, which is returned wrapped for the caller to answer
// InternalError. A request without any signature is ErrAnonymous.
func (v *Verifier) Verify(ctx context.Context, r *http.Request) (*Result, error) {
	if hasSessionToken(r) {
		return nil, ErrInvalidToken.with(errors.New("session token sent; tresor issues none"))
	}
	in, err := v.parse(r)
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(in); err != nil {
		return nil, err
	}
	if err := v.checkTime(in); err != nil {
		return nil, err
	}
	payloadHash, err := payloadHashOf(r, in)
	if err != nil {
		return nil, err
	}
	if err := checkSignedHeaders(r, in); err != nil {
		return nil, err
	}

	secret, principal, err := v.secrets.Secret(ctx, in.cred.accessKeyID)
	if errors.Is(err, ErrUnknownAccessKey) {
		return nil, ErrInvalidAccessKeyID.with(err)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: looking up access key: %w", err)
	}
	key := signingKey(secret, in.cred)

	skip := ""
	if in.presigned {
		skip = querySignature
	}
	mismatch := func(err error) *Error {
		e := ErrSignatureDoesNotMatch.with(err)
		e.Claimant = &principal
		return e
	}
	query, err := canonicalQuery(r.URL.RawQuery, skip)
	if err != nil {
		return nil, mismatch(err)
	}
	headers := canonicalHeaders(r, in.signedHeaders)
	scope := in.cred.scope()
	ok := false
	for _, uri := range canonicalURIs(r) {
		cr := canonicalRequest(r.Method, uri, query, headers, in.signedHeaders, payloadHash)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(stringToSign(in.amzDate, scope, cr)))
		if hmac.Equal(m.Sum(nil), in.signature) {
			ok = true
			break
		}
	}
	if !ok {
		return nil, mismatch(nil)
	}

	res := &Result{
		AccessKeyID:     in.cred.accessKeyID,
		Principal:       principal,
		Presigned:       in.presigned,
		ContentEncoding: stripAWSChunked(r.Header.Values("Content-Encoding")),
	}
	if err := v.body(r, in, key, payloadHash, res); err != nil {
		var e *Error
		if errors.As(err, &e) { // the signature was right: the key's tenant sees this refusal
			c := *e
			c.Claimant = &principal
			return nil, &c
		}
		return nil, err
	}
	return res, nil
}

// hasSessionToken reports whether r carries an STS session token, in the
// x-amz-security-token header or the X-Amz-Security-Token query parameter
// of a presigned URL. Such a token would be signed with the rest and then
// ignored; refusing it keeps a client from believing its temporary,
// scoped credentials are what authorized the request.
func hasSessionToken(r *http.Request) bool {
	if _, ok := r.Header["X-Amz-Security-Token"]; ok {
		return true
	}
	_, ok := r.URL.Query()["X-Amz-Security-Token"]
	return ok
}

// parse finds and parses the one authentication the request carries.
func (v *Verifier) parse(r *http.Request) (request, error) {
	var in request
	q := r.URL.Query()
	header := r.Header.Values(headerAuthorization)
	query := isPresigned(q)
	switch {
	case len(header) > 0 && (query || isPresignedV2(q)):
		return in, ErrInvalidArgument.withMessage(
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified", nil)
	case len(header) > 1:
		return in, ErrAuthorizationHeaderMalformed.with(errors.New("more than one Authorization header"))
	case len(header) == 1:
		return v.parseHeader(r, header[0])
	case query:
		p, err := parsePresigned(q)
		if err != nil {
			return in, ErrAuthorizationQueryParameters.withMessage(
				"Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.", err)
		}
		return p, nil
	case isPresignedV2(q):
		return in, unsupportedMechanism()
	}
	return in, ErrAnonymous.with(nil)
}

func unsupportedMechanism() error {
	return ErrInvalidRequest.withMessage(
		"The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.", nil)
}

// parseHeader parses the Authorization header and the request time from
// X-Amz-Date. SigV4 would also take the Date header when X-Amz-Date is
// absent; every client tresor serves sends X-Amz-Date, so that variant is
// refused rather than carried untested. X-Amz-Date is signed: every x-amz-*
// header must be (checkSignedHeaders).
func (v *Verifier) parseHeader(r *http.Request, h string) (request, error) {
	var in request
	if !strings.HasPrefix(h, algorithm+" ") {
		if strings.HasPrefix(h, "AWS ") || strings.HasPrefix(h, "AWS4-ECDSA-P256-SHA256 ") {
			return in, unsupportedMechanism()
		}
		return in, ErrAuthorizationHeaderMalformed.with(errors.New("unknown authorization algorithm"))
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return in, ErrAuthorizationHeaderMalformed.with(err)
	}
	in.authorization = a
	d := r.Header.Get(headerAmzDate)
	t, err := time.Parse(amzDateFormat, d)
	if err != nil {
		return in, ErrAccessDenied.withMessage("AWS authentication requires a valid Date or x-amz-date header",
			fmt.Errorf("x-amz-date %q", truncate(d)))
	}
	in.amzDate, in.time = d, t
	return in, nil
}

// checkScope checks the credential scope: its date is the request's, its
// region the gateway's, its service s3. S3 answers each mismatch with
// AuthorizationHeaderMalformed (AuthorizationQueryParametersError for
// presigned URLs) and these messages.
func (v *Verifier) checkScope(in request) error {
	bad := ErrAuthorizationHeaderMalformed
	prefix := "The authorization header is malformed; "
	if in.presigned {
		bad = ErrAuthorizationQueryParameters
		prefix = "Error parsing the X-Amz-Credential parameter; "
	}
	c := in.cred
	if c.date != in.time.Format(scopeDateFormat) {
		return bad.withMessage(prefix+"Invalid credential date. Date is not the same as X-Amz-Date.", nil)
	}
	if c.region != v.cfg.Region && (v.cfg.StrictRegion || c.region != defaultRegion) {
		return bad.withMessage(fmt.Sprintf("%sthe region '%s' is wrong; expecting '%s'", prefix, truncate(c.region), v.cfg.Region), nil)
	}
	if c.service != serviceS3 {
		return bad.withMessage(fmt.Sprintf("%sincorrect service '%s'. This endpoint belongs to '%s'.", prefix, truncate(c.service), serviceS3), nil)
	}
	return nil
}

// checkTime enforces the clock skew of header-signed requests and the
// validity window of presigned URLs.
func (v *Verifier) checkTime(in request) error {
	now := v.cfg.Clock()
	if in.presigned {
		if in.time.Sub(now) > v.cfg.MaxSkew {
			return ErrNotYetValid.with(nil)
		}
		if now.After(in.time.Add(in.expires)) {
			return ErrExpired.with(nil)
		}
		return nil
	}
	if d := now.Sub(in.time); d > v.cfg.MaxSkew || d < -v.cfg.MaxSkew {
		return ErrRequestTimeTooSkewed.with(fmt.Errorf("request time %s, server time %s", in.time.Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	return nil
}

// payloadHashOf returns the last line of the canonical request. A
// header-signed request must send x-amz-content-sha256 (S3 requires it of
// every SigV4 request). A presigned URL signs UNSIGNED-PAYLOAD unless it
// signed an x-amz-content-sha256 header, whose value then counts.
func payloadHashOf(r *http.Request, in request) (string, error) {
	vs := r.Header.Values(headerContentSHA256)
	if len(vs) > 1 {
		return "", ErrInvalidArgument.withMessage("x-amz-content-sha256 must be given once.", nil)
	}
	if len(vs) == 0 {
		if in.presigned {
			return unsignedPayload, nil
		}
		return "", ErrInvalidRequest.withMessage("Missing required header for this request: x-amz-content-sha256", nil)
	}
	h := vs[0]
	switch h {
	case unsignedPayload, streamingSigned, streamingSignedTrailer, streamingUnsignedTrailer:
		return h, nil
	}
	if _, err := payloadDigest(h); err != nil || strings.ToLower(h) != h {
		return "", ErrInvalidArgument.withMessage(
			"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.",
			fmt.Errorf("x-amz-content-sha256 %q", truncate(h)))
	}
	return h, nil
}

// checkSignedHeaders requires that host is signed and that every x-amz-*
// header the request carries is signed: those headers change what S3 does
// (metadata, checksums, conditions), so none may be added in transit. S3
// refuses such a request with AccessDenied.
func checkSignedHeaders(r *http.Request, in request) error {
	if !contains(in.signedHeaders, "host") {
		bad := ErrAuthorizationHeaderMalformed
		if in.presigned {
			bad = ErrAuthorizationQueryParameters
		}
		return bad.with(errors.New("host is not a signed header"))
	}
	for name := range r.Header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-amz-") && !contains(in.signedHeaders, lower) {
			return ErrAccessDenied.withMessage("There were headers present in the request which were not signed",
				fmt.Errorf("%s is not signed", truncate(lower)))
		}
	}
	return nil
}

func contains(sorted []string, s string) bool {
	for _, x := range sorted {
		if x == s {
			return true
		}
	}
	return false
}

// body builds Result.Body, Result.DecodedLength and the checksum plan for
// the payload mode named by payloadHash.
func (v *Verifier) body(r *http.Request, in request, key []byte, payloadHash string, res *Result) error {
	raw := r.Body
	if raw == nil {
		raw = http.NoBody
	}
	plan, err := planChecksums(r.Header)
	if err != nil {
		return err
	}
	streaming := strings.HasPrefix(payloadHash, "STREAMING-")
	withTrailer := payloadHash == streamingSignedTrailer || payloadHash == streamingUnsignedTrailer
	if plan.trailer != "" && !withTrailer {
		return ErrInvalidRequest.withMessage("x-amz-trailer requires a STREAMING-*-TRAILER x-amz-content-sha256.", nil)
	}
	if withTrailer && plan.trailer == "" {
		return ErrInvalidRequest.withMessage("x-amz-content-sha256 names a trailer, but x-amz-trailer declares none.", nil)
	}

	decoded, err := decodedLength(r)
	if err != nil {
		return err
	}
	var src io.Reader = raw
	var trailers func(string) (string, bool)
	if streaming {
		// Without x-amz-decoded-content-length (aws-sdk-go-v2 sends none
		// for a stream of unknown length) the framing still delimits and
		// verifies the body; DecodedLength stays -1 and the caller decides
		// whether it can store a body of unknown length.
		var signer *chunkSigner
		if payloadHash != streamingUnsignedTrailer {
			signer = &chunkSigner{
				mac:     hmac.New(sha256.New, key),
				amzDate: in.amzDate,
				scope:   in.cred.scope(),
				prev:    fmt.Sprintf("%x", in.signature),
			}
		}
		cr := newChunkedReader(raw, signer, payloadHash == streamingSignedTrailer, decoded, plan.trailer)
		src, trailers = cr, cr.trailer
	} else if declaresLength(r) {
		decoded = r.ContentLength
	}

	sums := &ChecksumReader{r: src, length: decoded, trailers: trailers}
	if !streaming && payloadHash != unsignedPayload {
		d, _ := payloadDigest(payloadHash) // validated by payloadHashOf
		sums.sums = append(sums.sums, d)
	}
	if plan.md5 != nil {
		sums.sums = append(sums.sums, digest{alg: ChecksumMD5, h: ChecksumMD5.New(), want: plan.md5.Sum})
	}
	if plan.alg != "" {
		sums.sums = append(sums.sums, digest{alg: plan.alg, h: plan.alg.New(), want: plan.want, trailer: plan.trailer})
	}
	res.Body = body{ChecksumReader: sums, closer: raw}
	res.DecodedLength = decoded
	res.sums = sums
	return nil
}

// declaresLength reports whether a plain body's length is declared: a
// Content-Length header was sent. Go's server gives a request with neither
// Content-Length nor Transfer-Encoding a ContentLength of 0, the length of
// the body HTTP says it has; but the client declared nothing, and storing
// that as an empty object would lose whatever it meant to send (S3 answers
// MissingContentLength).
func declaresLength(r *http.Request) bool {
	if r.ContentLength > 0 {
		return true
	}
	return r.ContentLength == 0 && len(r.Header.Values("Content-Length")) > 0
}

// decodedLength parses x-amz-decoded-content-length, -1 if absent.
func decodedLength(r *http.Request) (int64, error) {
	vs := r.Header.Values("X-Amz-Decoded-Content-Length")
	if len(vs) == 0 {
		return -1, nil
	}
	n, err := strconv.ParseInt(vs[0], 10, 64)
	if len(vs) > 1 || err != nil || n < 0 {
		return 0, ErrInvalidArgument.withMessage("x-amz-decoded-content-length is not a valid length.", nil)
	}
	return n, nil
}

// stripAWSChunked removes the aws-chunked token from Content-Encoding.
func stripAWSChunked(values []string) string {
	var keep []string
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok != "" && !strings.EqualFold(tok, "aws-chunked") {
				keep = append(keep, tok)
			}
		}
	}
	return strings.Join(keep, ",")
}

// body is Result.Body: the verifying reader, closing the request body.
type body struct {
	*ChecksumReader
	closer io.Closer
}

func (b body) Close() error { return b.closer.Close() }
