package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// decodeUnsigned runs the unsigned aws-chunked decoder over wire.
func decodeUnsigned(wire string, declared int64, trailer string) ([]byte, error) {
	c := newChunkedReader(strings.NewReader(wire), nil, false, declared, trailer)
	return io.ReadAll(c)
}

func TestChunked_Unsigned(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		wire     string
		declared int64
		trailer  string
		want     string
		err      *Error
	}{
		{name: "TwoChunks", wire: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", declared: 11, want: "hello world"},
		{name: "Empty", wire: "0\r\n\r\n", declared: 0, want: ""},
		{name: "Trailer", wire: "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n", declared: 3, trailer: "x-amz-checksum-crc32", want: "abc"},
		{name: "TrailerMinioStyle", wire: "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\n\r\n\r\n", declared: 3, trailer: "x-amz-checksum-crc32", want: "abc"},
		{name: "UpperHex", wire: "A\r\n0123456789\r\n0\r\n\r\n", declared: 10, want: "0123456789"},
		{name: "ShorterThanDeclared", wire: "5\r\nhello\r\n0\r\n\r\n", declared: 6, err: ErrIncompleteBody},
		{name: "LongerThanDeclared", wire: "5\r\nhello\r\n0\r\n\r\n", declared: 4, err: ErrInvalidRequest},
		{name: "TruncatedInData", wire: "5\r\nhel", declared: 5, err: ErrIncompleteBody},
		{name: "TruncatedBeforeFinal", wire: "5\r\nhello\r\n", declared: 5, err: ErrIncompleteBody},
		{name: "NoFinalBlankLine", wire: "5\r\nhello\r\n0\r\n", declared: 5, err: ErrIncompleteBody},
		{name: "TruncatedTrailer", wire: "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSR", declared: 3, trailer: "x-amz-checksum-crc32", err: ErrIncompleteBody},
		{name: "MissingCRLFAfterData", wire: "5\r\nhelloXY0\r\n\r\n", declared: 5, err: ErrInvalidArgument},
		{name: "NotHex", wire: "5g\r\nhello\r\n0\r\n\r\n", declared: 5, err: ErrInvalidArgument},
		{name: "EmptySize", wire: "\r\nhello\r\n0\r\n\r\n", declared: 5, err: ErrInvalidArgument},
		{name: "ExtensionOnUnsigned", wire: "5;chunk-signature=00\r\nhello\r\n0\r\n\r\n", declared: 5, err: ErrInvalidArgument},
		{name: "TooLargeChunk", wire: "1000001\r\n", declared: -1, err: ErrInvalidRequest},
		{name: "SizeOverflow", wire: "ffffffffffffffff\r\n", declared: -1, err: ErrInvalidRequest},
		{name: "UndeclaredTrailer", wire: "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", declared: 0, err: ErrMalformedTrailer},
		{name: "OtherTrailer", wire: "0\r\nx-amz-meta-a:b\r\n\r\n", declared: 0, trailer: "x-amz-checksum-crc32", err: ErrMalformedTrailer},
		{name: "MissingDeclaredTrailer", wire: "0\r\n\r\n", declared: 0, trailer: "x-amz-checksum-crc32", err: ErrMalformedTrailer},
		{name: "DuplicateTrailer", wire: "0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", declared: 0, trailer: "x-amz-checksum-crc32", err: ErrMalformedTrailer},
		{name: "GarbageAfterEnd", wire: "0\r\n\r\nGARBAGE\r\n\r\n", declared: 0, err: ErrMalformedTrailer},
		{name: "SignatureInUnsignedTrailer", wire: "0\r\nx-amz-trailer-signature:" + strings.Repeat("0", 64) + "\r\n\r\n", declared: 0, err: ErrMalformedTrailer},
		{name: "TooManyTrailerLines", wire: "0\r\n" + strings.Repeat("\r\n", 20), declared: 0, err: ErrMalformedTrailer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeUnsigned(tc.wire, tc.declared, tc.trailer)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error = %v, want %s", err, tc.err.Code)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestChunked_LongSizeLineIsNotBuffered feeds a chunk-size line of 1 MB of
// hex digits: the decoder must refuse it after its fixed line buffer and
// allocate nothing in proportion to it. Not parallel: it reads the
// process-wide allocation counter.
func TestChunked_LongSizeLineIsNotBuffered(t *testing.T) {
	line := bytes.Repeat([]byte("f"), 1<<20)
	run := func() error {
		c := newChunkedReader(bytes.NewReader(line), nil, false, -1, "")
		_, err := c.Read(make([]byte, 512))
		return err
	}
	if err := run(); !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("error = %v", err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		run()
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / 10; perRun > 64<<10 {
		t.Fatalf("allocated %d bytes per refused line", perRun)
	}
	if a := testing.AllocsPerRun(10, func() { run() }); a > 20 {
		t.Fatalf("%v allocations per refused line", a)
	}
}

// TestChunked_SignedChainBindsOrder swaps two equal-sized signed chunks of
// a minio-go streaming body: each keeps its own valid-looking signature,
// but the chain no longer verifies.
func TestChunked_SignedChainBindsOrder(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, nil)
	data := payload(200<<10, 11) // chunks of 64 KiB
	wire := streamingWire(t, data, "")
	head := bytes.Index(wire, []byte("\r\n\r\n")) + 4
	body := wire[head:]
	// Each full chunk: "10000;chunk-signature=<64>\r\n" + 64 KiB + "\r\n".
	n := len("10000;chunk-signature=") + 64 + 2 + 64<<10 + 2
	swapped := bytes.Clone(wire)
	copy(swapped[head:], body[n:2*n])
	copy(swapped[head+n:], body[:n])
	_, stage, err := verifyAndRead(v, fromWire(t, swapped))
	if !errors.Is(err, ErrSignatureDoesNotMatch) || stage != "read" {
		t.Fatalf("swapped chunks: %s: %v", stage, err)
	}
	// The unmodified wire verifies.
	got, _, err := verifyAndRead(v, fromWire(t, wire))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("original: %v", err)
	}
}

// TestChunked_DroppedFinalChunk cuts the body after the last data chunk and
// fixes Content-Length, as an attacker would: the missing signed final
// chunk is IncompleteBody.
func TestChunked_DroppedFinalChunk(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, nil)
	data := payload(1000, 12)
	req := signedStreamingRequest(t, "http://127.0.0.1:9000", data, "", time.Now())
	full := wireBody(t, req)
	cut := full[:bytes.LastIndex(full, []byte("0;chunk-signature="))]
	req.Body = io.NopCloser(bytes.NewReader(cut))
	req.ContentLength = int64(len(cut))
	_, stage, err := verifyAndRead(v, toServerRequest(t, req))
	if !errors.Is(err, ErrIncompleteBody) || stage != "read" {
		t.Fatalf("%s: %v", stage, err)
	}
}

func TestChunkSigner_Verify(t *testing.T) {
	t.Parallel()
	key := signingKey([]byte(testSK), credential{date: "20260101", region: testRegion, service: "s3"})
	s := &chunkSigner{mac: hmac.New(sha256.New, key), amzDate: "20260101T000000Z", scope: "20260101/" + testRegion + "/s3/aws4_request", prev: strings.Repeat("0", 64)}
	if s.verify(chunkStringType, emptySHA256Hex, make([]byte, 32)) {
		t.Fatal("zero signature verified")
	}
	if s.prev != strings.Repeat("0", 64) {
		t.Fatal("failed verification moved the chain")
	}
}
