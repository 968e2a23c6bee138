package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// The aws-chunked encoding, from "Signature Calculations for the
// Authorization Header: Transferring Payload in Multiple Chunks
// (Chunked Upload) (AWS Signature Version 4)" and its trailer variant
// ("... Including Trailing Headers"):
//
//	<hex size>;chunk-signature=<sig>\r\n<data>\r\n   (signed chunks)
//	<hex size>\r\n<data>\r\n                         (unsigned chunks)
//	...
//	0;chunk-signature=<sig>\r\n                      (final chunk, size 0)
//	x-amz-checksum-crc32:<base64>\r\n                (trailers, if declared)
//	x-amz-trailer-signature:<sig>\r\n                (signed trailer only)
//	\r\n
//
// Each chunk signature signs
//
//	AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<previous sig>\nSHA256("")\nSHA256(data)
//
// starting from the request's own signature (the seed), so chunks can be
// neither changed, dropped nor reordered. The trailer signature signs
//
//	AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n<final chunk sig>\nSHA256(trailers)
//
// where trailers is each trailer line as "name:value\n".
const (
	chunkSigKey      = "chunk-signature="
	chunkStringType  = "AWS4-HMAC-SHA256-PAYLOAD"
	trailerSigType   = "AWS4-HMAC-SHA256-TRAILER"
	trailerSignature = "x-amz-trailer-signature"

	// MaxChunkSize bounds the size one aws-chunked chunk may declare.
	// Chunks are streamed, never buffered, so the bound is not about
	// memory: it caps how much unverified data of a signed chunk is
	// released before that chunk's signature is checked. Clients use
	// 64 KiB (aws-sdk-go-v2, minio-go) to 1 MiB (aws cli); S3's own
	// minimum for non-final chunks is 8 KiB.
	MaxChunkSize = 16 << 20

	// maxChunkLine bounds a chunk header or trailer line without its
	// CRLF. The longest legitimate ones are a signed chunk header (16 hex
	// digits + ";chunk-signature=" + 64 = 97 bytes) and the trailer
	// signature (24 + 64 = 88 bytes).
	maxChunkLine = 256
	// lineBufferSize is the bufio buffer lines are read from; a longer
	// line is refused when the buffer fills, without growing anything.
	lineBufferSize = 4096
	// maxTrailerLines bounds the trailer section, counting blank lines:
	// one checksum, the signature, and the blank lines clients put
	// around them (minio-go ends each trailer with "\n\r\n").
	maxTrailerLines = 8
)

// emptySHA256Hex is SHA-256 of no bytes, the fixed fifth line of a chunk
// string to sign.
const emptySHA256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// chunkSigner verifies the chain of chunk signatures of one request.
type chunkSigner struct {
	mac     hash.Hash // HMAC-SHA256 keyed with the signing key
	amzDate string
	scope   string
	prev    string // previous signature, hex
}

// verify checks sig against the string to sign of kind over prev and
// hexHash, and moves the chain on.
func (s *chunkSigner) verify(kind string, hexHash string, sig []byte) bool {
	s.mac.Reset()
	io.WriteString(s.mac, kind+"\n"+s.amzDate+"\n"+s.scope+"\n"+s.prev+"\n")
	if kind == chunkStringType {
		io.WriteString(s.mac, emptySHA256Hex+"\n")
	}
	io.WriteString(s.mac, hexHash)
	want := s.mac.Sum(nil)
	if !hmac.Equal(want, sig) {
		return false
	}
	s.prev = hex.EncodeToString(sig)
	return true
}

// chunkedReader decodes an aws-chunked body, verifying chunk signatures
// (when signer is set), the declared decoded length, and the trailer
// signature; it collects the trailers for the ChecksumReader above it.
//
// Data is released as it arrives: a signed chunk's bytes are returned
// before its signature is checked at the chunk's end. A mismatch is
// returned before io.EOF, which is the contract of Result.Body.
type chunkedReader struct {
	br       *bufio.Reader
	signer   *chunkSigner // nil for unsigned chunks
	signTail bool         // the trailer carries x-amz-trailer-signature
	declared int64        // x-amz-decoded-content-length
	allowed  string       // the declared trailer name, "" for none

	decoded   int64
	remaining int64 // bytes left in the current chunk
	inChunk   bool
	chunkHash hash.Hash
	chunkSig  []byte
	trailers  map[string]string
	err       error
}

func newChunkedReader(r io.Reader, signer *chunkSigner, signTail bool, declared int64, trailer string) *chunkedReader {
	c := &chunkedReader{
		br:       bufio.NewReaderSize(r, lineBufferSize),
		signer:   signer,
		signTail: signTail,
		declared: declared,
		allowed:  trailer,
	}
	if signer != nil {
		c.chunkHash = sha256.New()
		c.chunkSig = make([]byte, sha256.Size)
	}
	return c
}

// trailer returns a trailer value; valid once Read returned io.EOF.
func (c *chunkedReader) trailer(name string) (string, bool) {
	v, ok := c.trailers[name]
	return v, ok
}

// Read implements io.Reader.
func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if !c.inChunk {
		if err := c.nextChunk(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.br.Read(p)
	c.remaining -= int64(n)
	if c.chunkHash != nil {
		c.chunkHash.Write(p[:n])
	}
	if err != nil {
		// The chunk is not complete, so any end of input is early.
		c.err = incomplete(err)
		return n, c.err
	}
	if c.remaining == 0 {
		if err := c.endChunk(); err != nil {
			c.err = err
			return n, err
		}
	}
	return n, nil
}

// nextChunk reads a chunk header. For the final chunk it also reads and
// verifies the trailer section and returns io.EOF.
func (c *chunkedReader) nextChunk() error {
	line, err := c.line()
	if err != nil {
		return err
	}
	size, sig, err := c.parseChunkHeader(line)
	if err != nil {
		return err
	}
	if c.declared >= 0 && c.decoded+size > c.declared {
		return ErrInvalidRequest.withMessage("The aws-chunked body is longer than x-amz-decoded-content-length.",
			fmt.Errorf("chunks exceed %d bytes", c.declared))
	}
	if sig != nil {
		copy(c.chunkSig, sig)
		c.chunkHash.Reset()
	}
	if size > 0 {
		c.remaining, c.inChunk = size, true
		c.decoded += size
		return nil
	}
	// The final, empty chunk: S3 sends no CRLF after its (empty) data;
	// the trailer section follows directly.
	if c.signer != nil && !c.signer.verify(chunkStringType, emptySHA256Hex, c.chunkSig) {
		return ErrSignatureDoesNotMatch.with(errors.New("final chunk signature"))
	}
	if c.declared >= 0 && c.decoded != c.declared {
		return ErrIncompleteBody.with(fmt.Errorf("aws-chunked body has %d of %d decoded bytes", c.decoded, c.declared))
	}
	if err := c.readTrailers(); err != nil {
		return err
	}
	return io.EOF
}

// parseChunkHeader parses "<hex>" or "<hex>;chunk-signature=<64 hex>".
func (c *chunkedReader) parseChunkHeader(line []byte) (int64, []byte, error) {
	hexSize, ext, hasExt := bytes.Cut(line, []byte(";"))
	if len(hexSize) == 0 || len(hexSize) > 16 {
		return 0, nil, malformedChunk("chunk size has %d hex digits", len(hexSize))
	}
	var size int64
	for _, b := range hexSize {
		var d byte
		switch {
		case '0' <= b && b <= '9':
			d = b - '0'
		case 'a' <= b && b <= 'f':
			d = b - 'a' + 10
		case 'A' <= b && b <= 'F':
			d = b - 'A' + 10
		default:
			return 0, nil, malformedChunk("chunk size is not hex")
		}
		size = size<<4 | int64(d)
		if size > MaxChunkSize {
			return 0, nil, ErrInvalidRequest.withMessage("The aws-chunked chunk is too large.",
				fmt.Errorf("chunk size exceeds %d bytes", MaxChunkSize))
		}
	}
	if c.signer == nil {
		if hasExt {
			return 0, nil, malformedChunk("unsigned chunk carries an extension")
		}
		return size, nil, nil
	}
	sigHex, ok := bytes.CutPrefix(ext, []byte(chunkSigKey))
	if !hasExt || !ok {
		return 0, nil, ErrSignatureDoesNotMatch.with(errors.New("signed chunk has no chunk-signature"))
	}
	sig, err := parseSignature(string(sigHex))
	if err != nil {
		return 0, nil, malformedChunk("chunk signature: %v", err)
	}
	return size, sig, nil
}

// endChunk reads the CRLF after a chunk's data and verifies its signature.
func (c *chunkedReader) endChunk() error {
	c.inChunk = false
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
		return incomplete(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return malformedChunk("chunk data is not followed by CRLF")
	}
	if c.signer == nil {
		return nil
	}
	sum := c.chunkHash.Sum(nil)
	if !c.signer.verify(chunkStringType, hex.EncodeToString(sum), c.chunkSig) {
		return ErrSignatureDoesNotMatch.with(fmt.Errorf("chunk signature at decoded offset %d", c.decoded))
	}
	return nil
}

// readTrailers reads the trailer section up to the end of the body: lines
// "name:value", blank lines between and after them, and in signed-trailer
// mode x-amz-trailer-signature after the trailers it signs. The section
// must end with a blank line.
func (c *chunkedReader) readTrailers() error {
	c.trailers = make(map[string]string, 1)
	canonical := sha256.New()
	var sig []byte
	lastBlank := false
	for i := 0; ; i++ {
		line, err := c.line()
		if err != nil {
			if lastBlank && errors.Is(err, io.EOF) {
				break // the body ended cleanly after a blank line
			}
			if errors.Is(err, ErrIncompleteBody) {
				return ErrIncompleteBody.with(errors.New("aws-chunked trailer section is not terminated"))
			}
			return err
		}
		if i >= maxTrailerLines {
			return ErrMalformedTrailer.with(fmt.Errorf("more than %d trailer lines", maxTrailerLines))
		}
		if len(line) == 0 {
			lastBlank = true
			continue
		}
		lastBlank = false
		if sig != nil {
			return ErrMalformedTrailer.with(errors.New("trailer after x-amz-trailer-signature"))
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok {
			return ErrMalformedTrailer.with(errors.New("trailer line has no ':'"))
		}
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if name == trailerSignature {
			if !c.signTail {
				return ErrMalformedTrailer.with(errors.New("x-amz-trailer-signature in an unsigned trailer"))
			}
			if sig, err = parseSignature(value); err != nil {
				return ErrMalformedTrailer.with(err)
			}
			continue
		}
		if name != c.allowed {
			return ErrMalformedTrailer.with(fmt.Errorf("trailer %q was not declared in x-amz-trailer", truncate(name)))
		}
		if _, dup := c.trailers[name]; dup {
			return ErrMalformedTrailer.with(fmt.Errorf("trailer %q appears twice", name))
		}
		c.trailers[name] = value
		io.WriteString(canonical, name+":"+value+"\n")
	}
	if c.allowed != "" {
		if _, ok := c.trailers[c.allowed]; !ok {
			return ErrMalformedTrailer.with(fmt.Errorf("declared trailer %q is missing", c.allowed))
		}
	}
	if !c.signTail {
		return nil
	}
	if sig == nil {
		return ErrSignatureDoesNotMatch.with(errors.New("signed trailer has no x-amz-trailer-signature"))
	}
	if !c.signer.verify(trailerSigType, hex.EncodeToString(canonical.Sum(nil)), sig) {
		return ErrSignatureDoesNotMatch.with(errors.New("trailer signature"))
	}
	return nil
}

// line reads one line of at most maxChunkLine bytes and returns it without
// its "\n" or "\r\n". The slice is valid until the next read. A longer line
// is refused as soon as the bound is crossed, and nothing is allocated for
// it. The end of input before a "\n" is ErrIncompleteBody (wrapping io.EOF
// when no byte of the line had arrived).
func (c *chunkedReader) line() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, malformedChunk("line longer than %d bytes", maxChunkLine)
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, incomplete(err)
	}
	line = line[:len(line)-1]
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > maxChunkLine {
		return nil, malformedChunk("line longer than %d bytes", maxChunkLine)
	}
	return line, nil
}

// incomplete maps the end of input inside an aws-chunked body to
// IncompleteBody and passes other read errors on.
func incomplete(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrIncompleteBody.with(err)
	}
	return err
}

// malformedChunk is a framing error of the aws-chunked encoding. S3 has no
// dedicated code for it; it answers InvalidArgument, and so do we.
func malformedChunk(format string, args ...any) error {
	return ErrInvalidArgument.withMessage("The aws-chunked encoding of the request body is malformed.",
		fmt.Errorf(format, args...))
}
