package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Protocol constants of AWS Signature Version 4 as Amazon S3 uses it. Source:
// Amazon S3 API Reference, "Authenticating Requests (AWS Signature Version
// 4)" and its sections "Signature Calculations for the Authorization Header"
// and "Query String Authentication".
const (
	// algorithm names HMAC-SHA256 SigV4, the only algorithm accepted. SigV2
	// ("AWS ") and SigV4a ("AWS4-ECDSA-P256-SHA256") are refused.
	algorithm = "AWS4-HMAC-SHA256"
	// scopeTerminator ends every credential scope
	// (<date>/<region>/<service>/aws4_request).
	scopeTerminator = "aws4_request"
	// serviceS3 is the service part of the scope for Amazon S3.
	serviceS3 = "s3"
	// defaultRegion is the region SigV4 clients fall back to when none is
	// configured (minio-go signs GetBucketLocation with it; see Config).
	defaultRegion = "us-east-1"
	// amzDateFormat is ISO 8601 basic format, as in X-Amz-Date.
	amzDateFormat = "20060102T150405Z"
	// scopeDateFormat is the date of the credential scope.
	scopeDateFormat = "20060102"
	// signatureHexLen is a hex-encoded HMAC-SHA256.
	signatureHexLen = 2 * sha256.Size

	headerAuthorization = "Authorization"
	headerAmzDate       = "X-Amz-Date"
	headerContentSHA256 = "X-Amz-Content-Sha256"
)

// credential is the parsed Credential (header) or X-Amz-Credential (query):
// <access key id>/<yyyymmdd>/<region>/<service>/aws4_request.
type credential struct {
	accessKeyID string
	date        string
	region      string
	service     string
}

// scope is the credential scope that goes into every string to sign.
func (c credential) scope() string {
	return c.date + "/" + c.region + "/" + c.service + "/" + scopeTerminator
}

// parseCredential splits a credential from the right, so that the access
// key id itself may contain '/' (the four scope parts cannot).
func parseCredential(s string) (credential, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 5 {
		return credential{}, errors.New("credential has fewer than five '/'-separated parts")
	}
	n := len(parts)
	c := credential{
		accessKeyID: strings.Join(parts[:n-4], "/"),
		date:        parts[n-4],
		region:      parts[n-3],
		service:     parts[n-2],
	}
	if parts[n-1] != scopeTerminator {
		return credential{}, fmt.Errorf("credential scope ends in %q, not %q", parts[n-1], scopeTerminator)
	}
	if c.accessKeyID == "" {
		return credential{}, errors.New("credential has an empty access key id")
	}
	if _, err := time.Parse(scopeDateFormat, c.date); err != nil || len(c.date) != len(scopeDateFormat) {
		return credential{}, fmt.Errorf("credential date %q is not yyyymmdd", c.date)
	}
	if c.region == "" || c.service == "" {
		return credential{}, errors.New("credential has an empty region or service")
	}
	return c, nil
}

// authorization is the parsed Authorization header of a header-signed
// request.
type authorization struct {
	cred          credential
	signedHeaders []string
	signature     []byte // decoded, signatureHexLen/2 bytes
}

// parseAuthorization parses
//
//	AWS4-HMAC-SHA256 Credential=<cred>, SignedHeaders=<h1;h2>, Signature=<hex>
//
// Components may be separated by "," with any spaces around them and come
// in any order, but each must appear exactly once. The signed headers must
// be lower case and sorted, as the canonical request lists them.
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	rest, ok := strings.CutPrefix(h, algorithm)
	if !ok || rest == "" || rest[0] != ' ' {
		return a, fmt.Errorf("authorization does not start with %q", algorithm+" ")
	}
	var seen [3]bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.Trim(part, " ")
		key, value, ok := strings.Cut(part, "=")
		if !ok {
			return a, fmt.Errorf("authorization component %q has no '='", truncate(part))
		}
		var i int
		switch key {
		case "Credential":
			i = 0
			c, err := parseCredential(value)
			if err != nil {
				return a, err
			}
			a.cred = c
		case "SignedHeaders":
			i = 1
			sh, err := parseSignedHeaders(value)
			if err != nil {
				return a, err
			}
			a.signedHeaders = sh
		case "Signature":
			i = 2
			sig, err := parseSignature(value)
			if err != nil {
				return a, err
			}
			a.signature = sig
		default:
			return a, fmt.Errorf("unknown authorization component %q", truncate(key))
		}
		if seen[i] {
			return a, fmt.Errorf("authorization component %q appears twice", key)
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return a, errors.New("authorization lacks Credential, SignedHeaders or Signature")
	}
	return a, nil
}

// parseSignedHeaders parses "h1;h2;...": lower-case names, strictly
// ascending (which also rules out duplicates).
func parseSignedHeaders(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("signed headers are empty")
	}
	names := strings.Split(s, ";")
	for i, n := range names {
		if n == "" || strings.ToLower(n) != n || strings.ContainsAny(n, " :\t") {
			return nil, fmt.Errorf("signed header %q is not a lower-case header name", truncate(n))
		}
		if i > 0 && names[i-1] >= n {
			return nil, errors.New("signed headers are not sorted")
		}
	}
	return names, nil
}

// parseSignature decodes a lower-case hex HMAC-SHA256.
func parseSignature(s string) ([]byte, error) {
	if len(s) != signatureHexLen || strings.ToLower(s) != s {
		return nil, errors.New("signature is not 64 lower-case hex digits")
	}
	sig, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("signature is not 64 lower-case hex digits")
	}
	return sig, nil
}

// signingKey derives the SigV4 signing key:
// HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func signingKey(secret []byte, c credential) []byte {
	k := make([]byte, 0, 4+len(secret))
	k = append(k, "AWS4"...)
	k = append(k, secret...)
	k = hmacSHA256(k, c.date)
	k = hmacSHA256(k, c.region)
	k = hmacSHA256(k, c.service)
	return hmacSHA256(k, scopeTerminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// stringToSign is the SigV4 string to sign of a canonical request.
func stringToSign(amzDate, scope string, canonicalRequest []byte) string {
	h := sha256.Sum256(canonicalRequest)
	return algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(h[:])
}

// canonicalRequest builds
//
//	<method>\n<canonical URI>\n<canonical query>\n<canonical headers>\n<signed headers>\n<payload hash>
//
// canonicalHeaders already ends in '\n' after its last header, so the blank
// line the specification shows falls out of the join.
func canonicalRequest(method, uri, query, canonicalHeaders string, signedHeaders []string, payloadHash string) []byte {
	var b strings.Builder
	b.Grow(len(method) + len(uri) + len(query) + len(canonicalHeaders) + 64 + len(payloadHash) + 8)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(uri)
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	b.WriteString(canonicalHeaders)
	b.WriteByte('\n')
	for i, h := range signedHeaders {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(h)
	}
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return []byte(b.String())
}

// canonicalURIs returns the canonical URI of r and, if it differs, the path
// exactly as it came on the wire.
//
// S3 does not double-encode: the canonical URI is the path with every byte
// outside the unreserved set (A-Z a-z 0-9 - _ . ~) and '/' percent-encoded
// once ("Authenticating Requests (AWS Signature Version 4)": "each path
// segment must be URI-encoded twice ... except for Amazon S3"). Clients
// encode their keys that way before sending (aws-sdk-go-v2's S3 client and
// minio-go both), so the two forms are normally equal. A client that sent a
// byte unescaped that the rule escapes (say '!') and signed the path as sent
// still verifies through the second form. Both forms decode to the same path
// the gateway routes by, so accepting either binds the same object.
func canonicalURIs(r *http.Request) []string {
	p := r.URL.Path
	if p == "" {
		p = "/"
	}
	enc := encodePath(p)
	wire := r.URL.RawPath
	if wire == "" {
		wire = p
	}
	if wire != enc {
		return []string{enc, wire}
	}
	return []string{enc}
}

// encodePath percent-encodes everything but unreserved bytes and '/'.
func encodePath(p string) string {
	return uriEncode(p, true)
}

// uriEncode is the SigV4 UriEncode: unreserved bytes stay, every other byte
// becomes %XX with upper-case hex; '/' stays when keepSlash is set (paths).
func uriEncode(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && (s[i] != '/' || !keepSlash) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (c == '/' && keepSlash) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// canonicalQuery builds the canonical query string from the raw query:
// every name and value decoded, then URI-encoded (space as %20), pairs
// sorted by encoded name and then encoded value, a name without '=' given
// an empty value. skip, unless empty, names a parameter left out
// (X-Amz-Signature of a presigned URL). '+' decodes to a space, as url.ParseQuery has it; SDKs
// send a literal plus as %2B.
func canonicalQuery(raw, skip string) (string, error) {
	if raw == "" {
		return "", nil
	}
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return "", fmt.Errorf("query parameter name: %w", err)
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return "", fmt.Errorf("query parameter %q: %w", truncate(dk), err)
		}
		if skip != "" && dk == skip {
			continue
		}
		pairs = append(pairs, pair{uriEncode(dk, false), uriEncode(dv, false)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String(), nil
}

// canonicalHeaders builds "<name>:<value>\n" for every signed header:
// values of repeated header lines joined by ',', each trimmed and with runs
// of spaces collapsed to one. Go's server moves three headers out of
// r.Header; they are read back from where it put them: Host (r.Host, the
// Host header as sent, so virtual-host and path style both verify),
// Transfer-Encoding (r.TransferEncoding) and, when absent, Content-Length
// (r.ContentLength).
func canonicalHeaders(r *http.Request, signed []string) string {
	var b strings.Builder
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		switch name {
		case "host":
			b.WriteString(trimHeaderValue(r.Host))
		case "transfer-encoding":
			if vs := r.Header.Values(name); len(vs) > 0 {
				writeHeaderValues(&b, vs)
			} else {
				b.WriteString(strings.Join(r.TransferEncoding, ","))
			}
		case "content-length":
			if vs := r.Header.Values(name); len(vs) > 0 {
				writeHeaderValues(&b, vs)
			} else if r.ContentLength >= 0 && len(r.TransferEncoding) == 0 {
				b.WriteString(strconv.FormatInt(r.ContentLength, 10))
			}
		default:
			writeHeaderValues(&b, r.Header.Values(name))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func writeHeaderValues(b *strings.Builder, vs []string) {
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(trimHeaderValue(v))
	}
}

// trimHeaderValue trims spaces at both ends and collapses inner runs of
// spaces to one, as SigV4 canonical headers require.
func trimHeaderValue(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// truncate shortens client-supplied text before it goes into an error.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
