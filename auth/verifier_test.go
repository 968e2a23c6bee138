package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signOpts describes a request signed with aws-sdk-go-v2's signer.
type signOpts struct {
	method  string
	target  string
	body    []byte
	headers map[string]string
	hash    string // x-amz-content-sha256 and payload hash; default: hex of body
	at      time.Time
	secret  string
	key     string
	region  string
	service string
}

// sdkSigned signs o with aws/signer/v4 and returns it as the server sees it.
func sdkSigned(t testing.TB, o signOpts) *http.Request {
	t.Helper()
	if o.method == "" {
		o.method = http.MethodPut
	}
	if o.target == "" {
		o.target = "http://127.0.0.1:9000/bucket/key"
	}
	if o.hash == "" {
		o.hash = hexSHA256(o.body)
	}
	if o.at.IsZero() {
		o.at = time.Now()
	}
	if o.secret == "" {
		o.secret = testSK
	}
	if o.key == "" {
		o.key = testAK
	}
	if o.region == "" {
		o.region = testRegion
	}
	if o.service == "" {
		o.service = "s3"
	}
	req, _ := http.NewRequest(o.method, o.target, bytes.NewReader(o.body))
	req.Header.Set("X-Amz-Content-Sha256", o.hash)
	for k, v := range o.headers {
		req.Header.Set(k, v)
	}
	signer := v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: o.key, SecretAccessKey: o.secret}
	if err := signer.SignHTTP(context.Background(), creds, req, o.hash, o.service, o.region, o.at); err != nil {
		t.Fatal(err)
	}
	return toServerRequest(t, req)
}

// sdkPresigned presigns a GET for expires with aws/signer/v4 and returns
// the URL.
func sdkPresigned(t testing.TB, target string, expires string, at time.Time) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	q := req.URL.Query()
	q.Set("X-Amz-Expires", expires)
	req.URL.RawQuery = q.Encode()
	u, _, err := v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true }).PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}, req, unsignedPayload, "s3", testRegion, at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func getRequest(t testing.TB, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return toServerRequest(t, req)
}

// fromWire parses raw bytes as a server request.
func fromWire(t testing.TB, wire []byte) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// dump serialises a client request as it goes on the wire.
func dump(t testing.TB, req *http.Request) []byte {
	t.Helper()
	b, err := httputil.DumpRequestOut(req, true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyAndRead runs Verify and reads the body to its end. stage says
// where it failed: "verify", "read" or "" (success, io.EOF seen).
func verifyAndRead(v *Verifier, r *http.Request) (body []byte, stage string, err error) {
	res, err := v.Verify(context.Background(), r)
	if err != nil {
		return nil, "verify", err
	}
	defer res.Body.Close()
	body, err = io.ReadAll(res.Body) // stops at the first error: no io.EOF was seen
	if err != nil {
		return body, "read", err
	}
	return body, "", nil
}

// streamingWire returns the wire form of a minio-go signed streaming PUT.
func streamingWire(t testing.TB, data []byte, alg ChecksumAlgorithm) []byte {
	t.Helper()
	return dump(t, signedStreamingRequest(t, "http://127.0.0.1:9000", data, alg, time.Now()))
}

// flipInBody flips one byte of the wire request at offset from the start
// of its body.
func flipInBody(t testing.TB, wire []byte, offset int) []byte {
	t.Helper()
	i := bytes.Index(wire, []byte("\r\n\r\n"))
	out := bytes.Clone(wire)
	out[i+4+offset] ^= 0x01
	return out
}

func TestVerify_Rejects(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, nil)
	now := time.Now()
	body := []byte("some body bytes")
	md5sum := md5.Sum(body)
	goodMD5 := base64.StdEncoding.EncodeToString(md5sum[:])
	badMD5 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	data := payload(150<<10, 9) // three signed chunks of 64 KiB and a tail

	cases := []struct {
		name  string
		req   func(t *testing.T) *http.Request
		want  *Error
		stage string
	}{
		{"WrongSecret", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, secret: "not the secret"})
		}, ErrSignatureDoesNotMatch, "verify"},
		{"UnknownAccessKey", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, key: "AKIDNOBODY"})
		}, ErrInvalidAccessKeyID, "verify"},
		{"TamperedPresignedQuery", func(t *testing.T) *http.Request {
			u := sdkPresigned(t, "http://127.0.0.1/bucket?list-type=2&prefix=public", "600", now)
			return getRequest(t, strings.Replace(u, "prefix=public", "prefix=private", 1))
		}, ErrSignatureDoesNotMatch, "verify"},
		{"TamperedPresignedExpiry", func(t *testing.T) *http.Request {
			u := sdkPresigned(t, "http://127.0.0.1/bucket/key", "600", now)
			return getRequest(t, strings.Replace(u, "X-Amz-Expires=600", "X-Amz-Expires=6000", 1))
		}, ErrSignatureDoesNotMatch, "verify"},
		{"TamperedPresignedPath", func(t *testing.T) *http.Request {
			u := sdkPresigned(t, "http://127.0.0.1/bucket/key", "600", now)
			return getRequest(t, strings.Replace(u, "/bucket/key", "/bucket/kez", 1))
		}, ErrSignatureDoesNotMatch, "verify"},
		{"EmptyNameParameterAdded", func(t *testing.T) *http.Request {
			r := sdkSigned(t, signOpts{method: http.MethodGet, target: "http://127.0.0.1/bucket?list-type=2"})
			r.URL.RawQuery += "&=x"
			return r
		}, ErrSignatureDoesNotMatch, "verify"},
		{"ExpiredPresigned", func(t *testing.T) *http.Request {
			return getRequest(t, sdkPresigned(t, "http://127.0.0.1/bucket/key", "3600", now.Add(-2*time.Hour)))
		}, ErrExpired, "verify"},
		{"PresignedNotYetValid", func(t *testing.T) *http.Request {
			return getRequest(t, sdkPresigned(t, "http://127.0.0.1/bucket/key", "3600", now.Add(time.Hour)))
		}, ErrNotYetValid, "verify"},
		{"PresignedLongerThanAWeek", func(t *testing.T) *http.Request {
			return getRequest(t, sdkPresigned(t, "http://127.0.0.1/bucket/key", "604801", now))
		}, ErrAuthorizationQueryParameters, "verify"},
		{"PresignedWithoutSignature", func(t *testing.T) *http.Request {
			u := sdkPresigned(t, "http://127.0.0.1/bucket/key", "600", now)
			pu, _ := url.Parse(u)
			q := pu.Query()
			q.Del("X-Amz-Signature")
			pu.RawQuery = q.Encode()
			return getRequest(t, pu.String())
		}, ErrAuthorizationQueryParameters, "verify"},
		{"ClockSkewPast", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, at: now.Add(-20 * time.Minute)})
		}, ErrRequestTimeTooSkewed, "verify"},
		{"ClockSkewFuture", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, at: now.Add(20 * time.Minute)})
		}, ErrRequestTimeTooSkewed, "verify"},
		{"WrongRegion", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, region: "us-west-2"})
		}, ErrAuthorizationHeaderMalformed, "verify"},
		{"WrongService", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, service: "iam"})
		}, ErrAuthorizationHeaderMalformed, "verify"},
		{"ScopeDateNotRequestDate", func(t *testing.T) *http.Request {
			r := sdkSigned(t, signOpts{body: body})
			d := now.UTC().Format(scopeDateFormat)
			other := now.UTC().Add(-48 * time.Hour).Format(scopeDateFormat)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/"+d+"/", "/"+other+"/", 1))
			return r
		}, ErrAuthorizationHeaderMalformed, "verify"},
		{"WrongPayloadHash", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, hash: hexSHA256([]byte("another body"))})
		}, ErrContentSHA256Mismatch, "read"},
		{"WrongContentMD5", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, headers: map[string]string{"Content-MD5": badMD5}})
		}, ErrBadDigest, "read"},
		{"MalformedContentMD5", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, headers: map[string]string{"Content-MD5": "not base64!"}})
		}, ErrInvalidDigest, "verify"},
		{"WrongChecksumHeader", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, hash: unsignedPayload, headers: map[string]string{
				"Content-MD5": goodMD5, "X-Amz-Checksum-Crc32": "AAAAAA=="}})
		}, ErrChecksumMismatch, "read"},
		{"TwoChecksumHeaders", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, headers: map[string]string{
				"X-Amz-Checksum-Crc32": "AAAAAA==", "X-Amz-Checksum-Sha1": base64.StdEncoding.EncodeToString(make([]byte, 20))}})
		}, ErrInvalidRequest, "verify"},
		{"ModifiedSignedChunkByte", func(t *testing.T) *http.Request {
			w := streamingWire(t, data, "")
			return fromWire(t, flipInBody(t, w, 100+70<<10)) // inside the second chunk's data
		}, ErrSignatureDoesNotMatch, "read"},
		{"ModifiedSignedTrailerValue", func(t *testing.T) *http.Request {
			w := streamingWire(t, data, ChecksumCRC32)
			i := bytes.LastIndex(w, []byte("x-amz-checksum-crc32:"))
			w[i+len("x-amz-checksum-crc32:")] ^= 0x01
			return fromWire(t, w)
		}, ErrSignatureDoesNotMatch, "read"},
		{"WrongUnsignedTrailerChecksum", func(t *testing.T) *http.Request {
			return toServerRequest(t, unsignedTrailerRequest(t, "http://127.0.0.1:9000", data, ChecksumCRC32C, "AAAAAA=="))
		}, ErrChecksumMismatch, "read"},
		{"TruncatedAWSChunked", func(t *testing.T) *http.Request {
			w := streamingWire(t, data, "")
			return fromWire(t, w[:len(w)-200]) // Content-Length promises more
		}, ErrIncompleteBody, "read"},
		{"TruncatedPlainBody", func(t *testing.T) *http.Request {
			req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:9000/bucket/key", bytes.NewReader(body))
			req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
			v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK},
				req, unsignedPayload, "s3", testRegion, now)
			w := dump(t, req)
			return fromWire(t, w[:len(w)-3])
		}, ErrIncompleteBody, "read"},
		{"Anonymous", func(t *testing.T) *http.Request {
			return getRequest(t, "http://127.0.0.1/bucket/key")
		}, ErrAnonymous, "verify"},
		{"UnsignedAmzHeader", func(t *testing.T) *http.Request {
			r := sdkSigned(t, signOpts{body: body})
			r.Header.Set("X-Amz-Meta-Injected", "yes")
			return r
		}, ErrAccessDenied, "verify"},
		{"ChangedSignedHeader", func(t *testing.T) *http.Request {
			r := sdkSigned(t, signOpts{body: body, headers: map[string]string{"X-Amz-Meta-A": "1"}})
			r.Header.Set("X-Amz-Meta-A", "2")
			return r
		}, ErrSignatureDoesNotMatch, "verify"},
		{"ChangedHost", func(t *testing.T) *http.Request {
			r := sdkSigned(t, signOpts{body: body})
			r.Host = "other.example.com"
			return r
		}, ErrSignatureDoesNotMatch, "verify"},
		{"SigV2", func(t *testing.T) *http.Request {
			r := getRequest(t, "http://127.0.0.1/bucket/key")
			r.Header.Set("Authorization", "AWS "+testAK+":c2lnbmF0dXJl")
			return r
		}, ErrInvalidRequest, "verify"},
		{"HeaderAndQueryAuth", func(t *testing.T) *http.Request {
			r := getRequest(t, sdkPresigned(t, "http://127.0.0.1/bucket/key", "600", now))
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
			return r
		}, ErrInvalidArgument, "verify"},
		{"MissingAmzDate", func(t *testing.T) *http.Request {
			r := sdkSigned(t, signOpts{body: body})
			r.Header.Del("X-Amz-Date")
			return r
		}, ErrAccessDenied, "verify"},
		{"MissingContentSHA256", func(t *testing.T) *http.Request {
			r := sdkSigned(t, signOpts{body: body})
			r.Header.Del("X-Amz-Content-Sha256")
			return r
		}, ErrInvalidRequest, "verify"},
		{"BadContentSHA256", func(t *testing.T) *http.Request {
			return sdkSigned(t, signOpts{body: body, hash: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"})
		}, ErrInvalidArgument, "verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, stage, err := verifyAndRead(v, tc.req(t))
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %s (%s)", err, tc.want.Code, tc.want.Message)
			}
			if stage != tc.stage {
				t.Errorf("failed at %s, want %s", stage, tc.stage)
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != tc.want.Code {
				t.Errorf("code = %v, want %s", ae, tc.want.Code)
			}
		})
	}
}

func TestVerify_MalformedAuthorization(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, nil)
	good := sdkSigned(t, signOpts{body: nil}).Header.Get("Authorization")
	cred := good[strings.Index(good, "Credential=")+len("Credential=") : strings.Index(good, ",")]
	sig := good[strings.Index(good, "Signature=")+len("Signature="):]
	for _, h := range []string{
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 ",
		"AWS4-HMAC-SHA256Credential=" + cred,
		"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host;x-amz-date",
		"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host;x-amz-date, Signature=" + sig + ", Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=x-amz-date;host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=Host;x-amz-date, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host;x-amz-date, Signature=" + sig[:63],
		"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host;x-amz-date, Signature=" + strings.ToUpper(sig),
		"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host;x-amz-date, Signature=" + sig + ", Extra=1",
		"AWS4-HMAC-SHA256 Credential=" + testAK + "/20260101/" + testRegion + "/s3, SignedHeaders=host;x-amz-date, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=" + testAK + "/2026-1-1/" + testRegion + "/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=" + testAK + "/20260101/" + testRegion + "/s3/aws5_request, SignedHeaders=host;x-amz-date, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=/20260101/" + testRegion + "/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=" + cred + "; SignedHeaders=host;x-amz-date; Signature=" + sig,
		"AWS4-HMAC-SHA512 Credential=" + cred + ", SignedHeaders=host;x-amz-date, Signature=" + sig,
	} {
		r := sdkSigned(t, signOpts{body: nil})
		r.Header.Set("Authorization", h)
		_, _, err := verifyAndRead(v, r)
		if !errors.Is(err, ErrAuthorizationHeaderMalformed) {
			t.Errorf("%q: error = %v, want AuthorizationHeaderMalformed", h, err)
		}
	}
	// Signing without host is refused even when the signature holds.
	r := sdkSigned(t, signOpts{body: nil})
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=host;", "SignedHeaders=", 1))
	if _, _, err := verifyAndRead(v, r); !errors.Is(err, ErrAuthorizationHeaderMalformed) {
		t.Errorf("host not signed: %v", err)
	}
}

// TestVerify_AcceptsVariants covers modes and details real clients leave
// out: a different component spacing, us-east-1 scopes, Date instead of
// X-Amz-Date, chunked transfer of a plain body, and paths sent with bytes
// the S3 encoding would have escaped.
func TestVerify_AcceptsVariants(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, nil)
	body := []byte("variant body")

	t.Run("CompactAuthorization", func(t *testing.T) {
		r := sdkSigned(t, signOpts{body: body})
		r.Header.Set("Authorization", strings.ReplaceAll(r.Header.Get("Authorization"), ", ", ","))
		if got, _, err := verifyAndRead(v, r); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%q, %v", got, err)
		}
	})
	t.Run("USEast1Scope", func(t *testing.T) {
		if _, _, err := verifyAndRead(v, sdkSigned(t, signOpts{body: body, region: "us-east-1"})); err != nil {
			t.Fatal(err)
		}
		strict, _ := NewVerifier(testSecrets, Config{Region: testRegion, StrictRegion: true})
		if _, _, err := verifyAndRead(strict, sdkSigned(t, signOpts{body: body, region: "us-east-1"})); !errors.Is(err, ErrAuthorizationHeaderMalformed) {
			t.Fatalf("strict region: %v", err)
		}
	})
	t.Run("UnsignedPayload", func(t *testing.T) {
		r := sdkSigned(t, signOpts{body: body, hash: unsignedPayload})
		res, err := v.Verify(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if res.DecodedLength != int64(len(body)) || res.AccessKeyID != testAK || res.Presigned {
			t.Fatalf("result %+v", res)
		}
	})
	t.Run("PathSentUnescaped", func(t *testing.T) {
		// The client signs the path it sends, '!' and '(' left raw.
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/bucket/a!b(c)", nil)
		req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
		v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
			aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}, req, unsignedPayload, "s3", testRegion, time.Now())
		if _, _, err := verifyAndRead(v, toServerRequest(t, req)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("PlainBodyChunkedTransfer", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1/bucket/k", io.NopCloser(bytes.NewReader(body)))
		req.ContentLength = -1
		req.Header.Set("X-Amz-Content-Sha256", hexSHA256(body))
		req.Header.Set("X-Amz-Decoded-Content-Length", "12")
		v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK},
			req, hexSHA256(body), "s3", testRegion, time.Now())
		r := toServerRequest(t, req)
		if len(r.TransferEncoding) == 0 {
			t.Fatal("not sent chunked")
		}
		res, err := v.Verify(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if res.DecodedLength != 12 {
			t.Fatalf("DecodedLength %d", res.DecodedLength)
		}
		if got, err := io.ReadAll(res.Body); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%q, %v", got, err)
		}
	})
	t.Run("SDKChecksumAlgorithmOnly", func(t *testing.T) {
		r := sdkSigned(t, signOpts{body: body, headers: map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "SHA1"}})
		res, err := v.Verify(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Checksums()) != 0 {
			t.Fatal("checksums before EOF")
		}
		io.ReadAll(res.Body)
		cs := res.Checksums()
		if len(cs) != 1 || cs[0].Algorithm != ChecksumSHA1 || !bytes.Equal(cs[0].Sum, sumOf(ChecksumSHA1, body)) {
			t.Fatalf("checksums %v", cs)
		}
	})
}

// untouchable is a body that records any read.
type untouchable struct{ read bool }

func (u *untouchable) Read([]byte) (int, error) { u.read = true; return 0, io.EOF }
func (u *untouchable) Close() error             { return nil }

// TestVerify_ReadsNoBody checks that authentication, failed or not, happens
// from the headers alone, and that the Result carries the principal.
func TestVerify_ReadsNoBody(t *testing.T) {
	t.Parallel()
	p := Principal{Tenant: [16]byte{1}, User: [16]byte{2}, Role: "writer"}
	v, err := NewVerifier(StaticSecrets{Keys: testSecrets.Keys, Principals: map[string]Principal{testAK: p}}, DefaultConfig(testRegion))
	if err != nil {
		t.Fatal(err)
	}
	data := payload(1000, 51)
	for _, secret := range []string{testSK, "wrong"} {
		r := sdkSigned(t, signOpts{body: data, secret: secret})
		u := &untouchable{}
		r.Body = u
		res, err := v.Verify(context.Background(), r)
		if u.read {
			t.Fatal("Verify read the body")
		}
		if secret == testSK && (err != nil || !reflect.DeepEqual(res.Principal, p) || res.AccessKeyID != testAK) {
			t.Fatalf("result %+v, %v", res, err)
		}
		if secret != testSK && err == nil {
			t.Fatal("wrong secret verified")
		}
		// A wrong signature with an existing key names whom the key signs
		// for, so the failure lands in that tenant's login audit.
		if c, ok := ClaimantOf(err); secret != testSK && (!ok || !reflect.DeepEqual(c, p)) {
			t.Fatalf("wrong secret: claimant %+v, %v; want %+v", c, ok, p)
		}
	}
	r := sdkSigned(t, signOpts{body: data, secret: testSK, key: "AKIDNOSUCHKEY"})
	if _, err := v.Verify(context.Background(), r); !errors.Is(err, ErrInvalidAccessKeyID) {
		t.Fatalf("unknown key: %v", err)
	} else if c, ok := ClaimantOf(err); ok {
		t.Fatalf("unknown key has a claimant %+v", c)
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{{}, {Region: "a/b"}, {Region: "x", MaxSkew: -1}} {
		if _, err := NewVerifier(testSecrets, c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := NewVerifier(nil, DefaultConfig(testRegion)); err == nil {
		t.Error("nil Secrets accepted")
	}
}
