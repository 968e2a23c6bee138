package envelope

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DARE 2.0 framing, byte-compatible with github.com/minio/sio v0.4.1
// (DARE.md and dare.go there; FORMAT.md section 5 here). tresor frames the
// packages itself rather than through sio's readers so that it can start
// decrypting at any sequence number of any part, check every package
// against the authenticated plaintext size, reuse pooled buffers, and hand
// out plaintext only after the package's tag verified. TestDARE_SioCompatible
// proves sio reads what this writes and the other way round.
const (
	// dareVersion is DARE 2.0's version byte (sio.Version20).
	dareVersion = 0x20
	// dareAES256GCM is DARE's cipher suite id of AES-256-GCM (sio.AES_256_GCM).
	dareAES256GCM = 0x00
	// headerSize is DARE's package header: version, suite, length-1, nonce.
	headerSize = 16
	// tagSize is the AES-GCM authentication tag.
	tagSize = 16
	// finalFlag marks the final package in the top bit of the header's
	// first nonce byte (DARE 2.0).
	finalFlag = 0x80

	// PackageSize is the plaintext payload of every package but the last of
	// a stream: 64 KiB, DARE 2.0's fixed maximum (sio's maxPayloadSize).
	PackageSize = 1 << 16
	// PackageOverhead is the header and tag each package adds: 32 bytes.
	PackageOverhead = headerSize + tagSize
	// maxPackage is the largest package on the wire.
	maxPackage = PackageSize + PackageOverhead
)

// Size limits. S3 limits an object to 5 TiB and a part or a single PUT to
// 5 GiB; DARE's 32-bit sequence numbers would allow 256 TiB per stream.
const (
	MaxSize     = 5 << 40
	MaxPartSize = 5 << 30
)

// CiphertextSize returns the exact ciphertext size of a DARE stream of
// plaintext size n: 32 bytes per started 64 KiB package, nothing for an
// empty stream. It panics if n is negative.
func CiphertextSize(n int64) int64 {
	if n < 0 {
		panic("envelope: negative plaintext size")
	}
	full, rest := n/PackageSize, n%PackageSize
	c := full * maxPackage
	if rest > 0 {
		c += rest + PackageOverhead
	}
	return c
}

// PlaintextSize inverts CiphertextSize for a single DARE stream (a
// single-part object or one part), as LIST needs. A size no plaintext size
// maps to is ErrMalformed.
func PlaintextSize(c int64) (int64, error) {
	if c < 0 {
		return 0, fmt.Errorf("%w: negative ciphertext size %d", ErrMalformed, c)
	}
	full, rest := c/maxPackage, c%maxPackage
	if rest != 0 && rest <= PackageOverhead {
		return 0, fmt.Errorf("%w: no plaintext has ciphertext size %d", ErrMalformed, c)
	}
	n := full * PackageSize
	if rest > 0 {
		n += rest - PackageOverhead
	}
	return n, nil
}

// packages returns the number of packages of a stream of plaintext size n.
func packages(n int64) int64 { return (n + PackageSize - 1) / PackageSize }

// payload returns the plaintext length of package seq of a stream of size n.
func payload(n, seq int64) int { return int(min(PackageSize, n-seq*PackageSize)) }

// packagePool holds package buffers, so streams allocate no package-sized
// memory in steady state.
var packagePool = sync.Pool{New: func() any { return new([maxPackage]byte) }}

// packageNonce returns the AEAD nonce of package seq: the header's 12 nonce
// bytes (final flag included) with the last four XORed with the sequence
// number, little-endian, as sio does. It writes into dst, a field of the
// long-lived stream state, because a local array passed to cipher.AEAD
// escapes and would cost an allocation per package.
func packageNonce(dst *[12]byte, header []byte, seq uint32) []byte {
	copy(dst[:], header[4:headerSize])
	binary.LittleEndian.PutUint32(dst[8:], binary.LittleEndian.Uint32(dst[8:])^seq)
	return dst[:]
}

// sealer encrypts a plaintext stream of declared size into a DARE 2.0
// stream. It is an io.Reader of ciphertext and an io.WriterTo, so io.Copy
// moves packages straight from its buffer without another copy.
type sealer struct {
	src       io.Reader
	aead      cipher.AEAD
	nonce     [12]byte // random per stream; top bit clear (it is the final flag)
	scratch   [12]byte // the AEAD nonce of the current package
	seq       uint32
	remaining int64 // plaintext bytes not yet read from src
	buf       *[maxPackage]byte
	out       []byte // ciphertext not yet handed out, in buf
	err       error  // sticky: io.EOF when done
}

// newSealer returns a sealer of size bytes from src under key. The nonce is
// drawn from crypto/rand for every stream: a part number can be uploaded
// again with other bytes under the same part key, so nonces must never be
// derived deterministically (DESIGN.md section 3).
func newSealer(key []byte, size int64, src io.Reader) io.Reader {
	s := &sealer{src: src, aead: newGCM(key), remaining: size}
	if size < 0 || size > MaxSize {
		s.err = fmt.Errorf("%w: plaintext size %d", ErrTooLarge, size)
		return s
	}
	if _, err := rand.Read(s.nonce[:]); err != nil {
		s.err = fmt.Errorf("envelope: nonce: %w", err)
		return s
	}
	s.nonce[0] &^= finalFlag
	return s
}

// next seals the next package into s.buf and returns it, or sets s.err.
func (s *sealer) next() []byte {
	if s.remaining == 0 {
		// The final package is out (its source end was checked before it
		// was sealed), or the stream is empty and has no package at all:
		// then the source must be empty too.
		if s.seq == 0 {
			if err := s.checkEnd(); err != nil {
				s.fail(err)
				return nil
			}
		}
		s.fail(io.EOF)
		return nil
	}
	if s.buf == nil {
		s.buf = packagePool.Get().(*[maxPackage]byte)
	}
	n := int(min(s.remaining, PackageSize))
	pkg := s.buf[:n+PackageOverhead]
	if _, err := io.ReadFull(s.src, pkg[headerSize:headerSize+n]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: source ended before its declared size", ErrSizeMismatch)
		}
		s.fail(err)
		return nil
	}
	s.remaining -= int64(n)
	final := s.remaining == 0
	if final {
		// Read the source to its end before sealing the final package:
		// a longer source is an error, and a source that verifies a
		// checksum or signature at EOF (aws-chunked trailers) fails here,
		// so the backend never receives a complete, committable stream.
		if err := s.checkEnd(); err != nil {
			s.fail(err)
			return nil
		}
	}
	h := pkg[:headerSize]
	h[0] = dareVersion
	h[1] = dareAES256GCM
	binary.LittleEndian.PutUint16(h[2:4], uint16(n-1))
	copy(h[4:], s.nonce[:])
	if final {
		h[4] |= finalFlag
	}
	s.aead.Seal(pkg[headerSize:headerSize], packageNonce(&s.scratch, h, s.seq), pkg[headerSize:headerSize+n], h[:4])
	s.seq++
	return pkg
}

// checkEnd returns nil if src has no byte left, else ErrSizeMismatch.
func (s *sealer) checkEnd() error {
	var one [1]byte
	for {
		n, err := s.src.Read(one[:])
		if n > 0 {
			return fmt.Errorf("%w: source longer than declared", ErrSizeMismatch)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s *sealer) fail(err error) {
	s.err = err
	s.release()
}

func (s *sealer) release() {
	if s.buf != nil {
		packagePool.Put(s.buf)
		s.buf, s.out = nil, nil
	}
}

// Read implements io.Reader.
func (s *sealer) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		s.out = s.next()
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// WriteTo implements io.WriterTo: each package goes to w from the pooled
// buffer it was sealed in.
func (s *sealer) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(s.out) == 0 {
			if s.err != nil {
				if s.err == io.EOF {
					return total, nil
				}
				return total, s.err
			}
			s.out = s.next()
			continue
		}
		n, err := w.Write(s.out)
		total += int64(n)
		s.out = s.out[n:]
		if err != nil {
			return total, err
		}
	}
}

// segment is the part of one DARE stream an opener decrypts.
type segment struct {
	key      []byte
	part     int   // part number, for error messages
	size     int64 // plaintext size of the whole stream
	firstSeq int64 // first package to decrypt
	lastSeq  int64 // last package to decrypt, inclusive
	skip     int   // plaintext bytes to drop from the first package
}

// opener decrypts consecutive DARE streams (or a run of packages of each)
// from one ciphertext reader and trims to a plaintext slice. It hands out a
// package's plaintext only after the package's tag verified and every
// header field matched what the authenticated layout calls for.
type opener struct {
	src       io.Reader
	segs      []segment
	aead      cipher.AEAD
	ref       [12]byte // nonce of the current stream, final flag clear
	scratch   [12]byte // the AEAD nonce of the current package
	haveRef   bool
	seq       int64
	remaining int64 // plaintext bytes still to hand out
	buf       *[maxPackage]byte
	out       []byte
	err       error
}

func newOpener(src io.Reader, segs []segment, length int64) *opener {
	o := &opener{src: src, segs: segs, remaining: length}
	if len(segs) > 0 {
		o.start()
	}
	return o
}

// start prepares decryption of o.segs[0].
func (o *opener) start() {
	o.aead = newGCM(o.segs[0].key)
	o.seq = o.segs[0].firstSeq
	o.haveRef = false
}

// next opens the next package and returns its plaintext to hand out, or
// sets o.err.
func (o *opener) next() []byte {
	if o.remaining == 0 {
		o.finish(nil)
		return nil
	}
	if len(o.segs) == 0 { // the layout promised fewer bytes than asked: a bug
		o.finish(fmt.Errorf("envelope: plan asks for %d bytes past its packages", o.remaining))
		return nil
	}
	if o.buf == nil {
		o.buf = packagePool.Get().(*[maxPackage]byte)
	}
	seg := &o.segs[0]
	n := payload(seg.size, o.seq)
	final := o.seq == packages(seg.size)-1
	pkg := o.buf[:n+PackageOverhead]
	if _, err := io.ReadFull(o.src, pkg); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: part %d package %d", ErrTruncated, seg.part, o.seq)
		}
		o.finish(err)
		return nil
	}
	h := pkg[:headerSize]
	bad := func(what string) []byte {
		o.finish(fmt.Errorf("%w: part %d package %d: %s", ErrAuthentication, seg.part, o.seq, what))
		return nil
	}
	if h[0] != dareVersion {
		return bad("not a DARE 2.0 package")
	}
	if h[1] != dareAES256GCM {
		return bad("cipher suite is not AES-256-GCM")
	}
	if int(binary.LittleEndian.Uint16(h[2:4]))+1 != n {
		return bad("payload length differs from the layout")
	}
	if (h[4]&finalFlag != 0) != final {
		return bad("final flag differs from the layout")
	}
	var nonce [12]byte
	copy(nonce[:], h[4:])
	nonce[0] &^= finalFlag
	if !o.haveRef {
		o.ref, o.haveRef = nonce, true
	} else if subtle.ConstantTimeCompare(nonce[:], o.ref[:]) != 1 {
		return bad("nonce differs from the stream's")
	}
	plain, err := o.aead.Open(pkg[headerSize:headerSize], packageNonce(&o.scratch, h, uint32(o.seq)), pkg[headerSize:], h[:4])
	if err != nil {
		return bad("tag mismatch")
	}
	if o.seq == seg.firstSeq {
		plain = plain[seg.skip:]
	}
	if int64(len(plain)) > o.remaining {
		plain = plain[:o.remaining]
	}
	o.remaining -= int64(len(plain))
	if o.seq == seg.lastSeq {
		o.segs = o.segs[1:]
		if len(o.segs) > 0 {
			o.start()
		}
	} else {
		o.seq++
	}
	if o.remaining == 0 {
		// Before the last bytes leave, make sure nothing follows them.
		var one [1]byte
		if k, err := io.ReadFull(o.src, one[:]); k > 0 {
			o.finish(ErrTrailingData)
			return nil
		} else if err != io.EOF {
			o.finish(err)
			return nil
		}
	}
	return plain
}

func (o *opener) finish(err error) {
	if err == nil {
		err = io.EOF
	}
	o.err = err
	if o.buf != nil {
		packagePool.Put(o.buf)
		o.buf = nil
	}
	o.out = nil
}

// Read implements io.Reader.
func (o *opener) Read(p []byte) (int, error) {
	for len(o.out) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		o.out = o.next()
	}
	n := copy(p, o.out)
	o.out = o.out[n:]
	if len(o.out) == 0 && o.remaining == 0 {
		o.finish(nil)
	}
	return n, nil
}

// WriteTo implements io.WriterTo: plaintext goes to w from the buffer it was
// decrypted in.
func (o *opener) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for len(o.out) == 0 {
			if o.err == io.EOF {
				return total, nil
			}
			if o.err != nil {
				return total, o.err
			}
			o.out = o.next()
		}
		n, err := w.Write(o.out)
		total += int64(n)
		o.out = o.out[n:]
		if err != nil {
			return total, err
		}
	}
}
