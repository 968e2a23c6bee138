// Package envelope is tresor's object format: the envelope that carries an
// object's wrapped data key (DEK), the DARE 2.0 framing of its ciphertext,
// key derivation, range math, the multipart manifest and the sealed blob of
// the tenant's own metadata. FORMAT.md beside this file specifies every byte.
//
// The backend and its operators are not trusted (DESIGN.md section 3): they
// may read, replace, truncate, reorder and copy objects and their metadata.
// Everything this package reads from the backend is therefore parsed
// strictly and authenticated before use, and no function hands out a byte of
// plaintext that has not been authenticated.
package envelope

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Format identifiers (FORMAT.md section 2).
const (
	// Version is the envelope format version this package writes and reads.
	Version = 1
	// SuiteAES256GCM is cipher suite 1: DARE 2.0 with AES-256-GCM for the
	// body, AES-256-GCM for the DEK wrap and the metadata blob, HKDF-SHA256
	// for every derived key and HMAC-SHA256 for the manifest.
	SuiteAES256GCM = 1
)

// Envelope layout: fixed-size fields at fixed offsets, big-endian.
const (
	offVersion    = 0
	offSuite      = 1
	offFlags      = 2
	offTenant     = 3
	offKeyVersion = offTenant + 16
	offOID        = offKeyVersion + 16
	offSize       = offOID + oidSize
	offCommitment = offSize + 8
	offWrapSalt   = offCommitment + keySize
	offWrapNonce  = offWrapSalt + wrapSaltSize
	offWrapped    = offWrapNonce + wrapNonceSize
	envelopeSize  = offWrapped + keySize + tagSize

	wrapSaltSize  = 16
	wrapNonceSize = 12

	// flagMultipart marks an envelope made at CreateMultipartUpload: the
	// size is unknown then, and the manifest carries the part sizes.
	flagMultipart = 0x01
)

// EncodedSize is the length of the envelope's metadata value (unpadded
// base64url of the binary envelope). It counts against the backend's 2 KiB
// user-metadata budget with the key it is stored under.
// It is 223: unpadded base64 of 167 bytes, ceil(167*8/6).
const EncodedSize = (envelopeSize*8 + 5) / 6

// maxEncodedSize bounds the envelope values parse looks at.
const maxEncodedSize = 1024

// encoding is base64url without padding: no '+', '/' or '=' to trip any
// HTTP header or S3 metadata handling, and 2 bytes shorter than padded.
// Strict rejects non-canonical trailing bits, so each envelope has exactly
// one encoding.
var encoding = base64.RawURLEncoding.Strict()

// decode decodes a base64url value and accepts it only in its canonical
// form. encoding/base64 skips '\r' and '\n' even in Strict mode (FuzzParse
// found this), which would let one envelope have many encodings.
func decode(value string) ([]byte, error) {
	buf, err := encoding.DecodeString(value)
	if err != nil {
		return nil, err
	}
	if encoding.EncodedLen(len(buf)) != len(value) {
		return nil, fmt.Errorf("non-canonical base64url (line breaks)")
	}
	return buf, nil
}

// Binding names where an object lives. The DEK wrap authenticates it, so an
// envelope or ciphertext moved to another tenant, bucket or key fails.
type Binding struct {
	Tenant [16]byte
	Bucket string
	Key    string
}

// Envelope is an object's opened envelope: its identity, its layout kind and
// its DEK. It is created by New, NewMultipart, Open or Rewrap and is
// immutable; it is safe for concurrent use.
type Envelope struct {
	binding    Binding
	flags      byte
	keyVersion [16]byte
	oid        [oidSize]byte
	size       int64
	commitment [keySize]byte
	wrapSalt   [wrapSaltSize]byte
	wrapNonce  [wrapNonceSize]byte
	wrapped    [keySize + tagSize]byte
	dek        [keySize]byte
}

// New creates the envelope of a single-part object of size plaintext bytes
// bound to b, with a fresh random DEK and OID, wrapped under the tenant's
// active key version.
func New(ctx context.Context, kr Keyring, b Binding, size int64) (*Envelope, error) {
	if size < 0 || size > MaxSize {
		return nil, fmt.Errorf("%w: object size %d", ErrTooLarge, size)
	}
	return create(ctx, kr, b, 0, size)
}

// NewMultipart creates the envelope of a multipart upload bound to b. Its
// size is unknown until completion; SealManifest records the parts' sizes.
func NewMultipart(ctx context.Context, kr Keyring, b Binding) (*Envelope, error) {
	return create(ctx, kr, b, flagMultipart, 0)
}

func create(ctx context.Context, kr Keyring, b Binding, flags byte, size int64) (*Envelope, error) {
	e := &Envelope{binding: b, flags: flags, size: size}
	if _, err := rand.Read(e.dek[:]); err != nil {
		return nil, fmt.Errorf("envelope: dek: %w", err)
	}
	if _, err := rand.Read(e.oid[:]); err != nil {
		return nil, fmt.Errorf("envelope: oid: %w", err)
	}
	copy(e.commitment[:], derive(e.dek[:], e.oid[:], labelCommitment))
	if err := e.wrap(ctx, kr); err != nil {
		return nil, err
	}
	return e, nil
}

// wrap wraps e.dek for e.binding under the tenant's active key version.
func (e *Envelope) wrap(ctx context.Context, kr Keyring) error {
	id, secret, err := kr.ActiveKey(ctx, e.binding.Tenant)
	if err != nil {
		return fmt.Errorf("envelope: active tenant key: %w", err)
	}
	if len(secret) != keySize {
		return fmt.Errorf("envelope: tenant key version is %d bytes, want %d", len(secret), keySize)
	}
	if _, err := rand.Read(e.wrapSalt[:]); err != nil {
		return fmt.Errorf("envelope: wrap salt: %w", err)
	}
	if _, err := rand.Read(e.wrapNonce[:]); err != nil {
		return fmt.Errorf("envelope: wrap nonce: %w", err)
	}
	e.keyVersion = id
	aad, err := e.wrapAAD()
	if err != nil {
		return err
	}
	aead := newGCM(derive(secret, e.wrapSalt[:], labelWrap))
	aead.Seal(e.wrapped[:0], e.wrapNonce[:], e.dek[:], aad)
	return nil
}

// wrapAAD returns the wrap's additional data: a label, every envelope field
// before the wrapped DEK, and the bucket and object key, length-prefixed.
func (e *Envelope) wrapAAD() ([]byte, error) {
	b := e.binding
	if len(b.Bucket) > math.MaxUint16 || len(b.Key) > math.MaxUint16 {
		return nil, fmt.Errorf("%w: bucket or key longer than 65535 bytes", ErrTooLarge)
	}
	hdr := e.marshal()
	aad := make([]byte, 0, len(labelWrap)+offWrapped+4+len(b.Bucket)+len(b.Key))
	aad = append(aad, labelWrap...)
	aad = append(aad, hdr[:offWrapped]...)
	return appendBinding(aad, b), nil
}

// appendBinding appends uint16be(len(bucket)) || bucket || uint16be(len(key))
// || key. The tenant is not repeated: the envelope header carries it.
func appendBinding(dst []byte, b Binding) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b.Bucket)))
	dst = append(dst, b.Bucket...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b.Key)))
	return append(dst, b.Key...)
}

// marshal returns the binary envelope.
func (e *Envelope) marshal() []byte {
	buf := make([]byte, envelopeSize)
	buf[offVersion] = Version
	buf[offSuite] = SuiteAES256GCM
	buf[offFlags] = e.flags
	copy(buf[offTenant:], e.binding.Tenant[:])
	copy(buf[offKeyVersion:], e.keyVersion[:])
	copy(buf[offOID:], e.oid[:])
	binary.BigEndian.PutUint64(buf[offSize:], uint64(e.size))
	copy(buf[offCommitment:], e.commitment[:])
	copy(buf[offWrapSalt:], e.wrapSalt[:])
	copy(buf[offWrapNonce:], e.wrapNonce[:])
	copy(buf[offWrapped:], e.wrapped[:])
	return buf
}

// Marshal returns the envelope as the metadata value stored with the
// backend object (or the upload session): EncodedSize characters.
func (e *Envelope) Marshal() string { return encoding.EncodeToString(e.marshal()) }

// parse strictly parses an envelope value into e's public fields (all but
// the binding's bucket and key and the DEK). It is fed by the backend:
// exact length, known version and suite, no unknown flag, bounded size.
func parse(value string) (*Envelope, error) {
	// The bound keeps hostile input from costing more than a few hundred
	// bytes of work; the exact length is checked once the version is known.
	if len(value) > maxEncodedSize {
		return nil, fmt.Errorf("%w: envelope value is %d characters", ErrMalformed, len(value))
	}
	buf, err := decode(value)
	if err != nil {
		return nil, fmt.Errorf("%w: envelope encoding: %w", ErrMalformed, err)
	}
	if len(buf) < 2 {
		return nil, fmt.Errorf("%w: envelope is %d bytes", ErrMalformed, len(buf))
	}
	if buf[offVersion] != Version {
		return nil, fmt.Errorf("%w %d", ErrUnsupportedVersion, buf[offVersion])
	}
	if buf[offSuite] != SuiteAES256GCM {
		return nil, fmt.Errorf("%w %d", ErrUnsupportedSuite, buf[offSuite])
	}
	if len(buf) != envelopeSize {
		return nil, fmt.Errorf("%w: envelope is %d bytes, want %d", ErrMalformed, len(buf), envelopeSize)
	}
	e := &Envelope{flags: buf[offFlags]}
	if e.flags&^flagMultipart != 0 {
		return nil, fmt.Errorf("%w: unknown envelope flags %#x", ErrMalformed, e.flags)
	}
	size := binary.BigEndian.Uint64(buf[offSize:])
	if e.flags&flagMultipart != 0 && size != 0 {
		return nil, fmt.Errorf("%w: multipart envelope with size %d", ErrMalformed, size)
	}
	if size > MaxSize {
		return nil, fmt.Errorf("%w: envelope size %d", ErrMalformed, size)
	}
	e.size = int64(size)
	copy(e.binding.Tenant[:], buf[offTenant:])
	copy(e.keyVersion[:], buf[offKeyVersion:])
	copy(e.oid[:], buf[offOID:])
	copy(e.commitment[:], buf[offCommitment:])
	copy(e.wrapSalt[:], buf[offWrapSalt:])
	copy(e.wrapNonce[:], buf[offWrapNonce:])
	copy(e.wrapped[:], buf[offWrapped:])
	return e, nil
}

// Open parses an envelope value read from the backend (or an upload
// session), unwraps its DEK for binding b with the tenant key version it
// names, and checks the key commitment. An envelope of another tenant,
// bucket or key, or any altered bit, fails with an error wrapping
// ErrAuthentication.
func Open(ctx context.Context, kr Keyring, b Binding, value string) (*Envelope, error) {
	e, err := parse(value)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(e.binding.Tenant[:], b.Tenant[:]) != 1 {
		return nil, ErrWrongTenant
	}
	e.binding = b
	secret, err := kr.Key(ctx, b.Tenant, e.keyVersion)
	if err != nil {
		return nil, fmt.Errorf("envelope: tenant key version: %w", err)
	}
	if len(secret) != keySize {
		return nil, fmt.Errorf("envelope: tenant key version is %d bytes, want %d", len(secret), keySize)
	}
	aad, err := e.wrapAAD()
	if err != nil {
		return nil, err
	}
	aead := newGCM(derive(secret, e.wrapSalt[:], labelWrap))
	if _, err := aead.Open(e.dek[:0], e.wrapNonce[:], e.wrapped[:], aad); err != nil {
		return nil, fmt.Errorf("%w: DEK does not unwrap for this tenant key version, bucket and key", ErrAuthentication)
	}
	// GCM does not commit to its key; the commitment, derived from the DEK
	// and authenticated by the wrap, does, and is checked before the DEK
	// decrypts anything.
	want := derive(e.dek[:], e.oid[:], labelCommitment)
	if subtle.ConstantTimeCompare(want, e.commitment[:]) != 1 {
		clear(e.dek[:])
		return nil, ErrKeyCommitment
	}
	return e, nil
}

// Rewrap returns a copy of e bound to b: same DEK, OID and ciphertext, the
// DEK wrapped afresh under the tenant's active key version (which may be
// newer than e's). Server-side copy and rename inside a tenant use it, as
// does re-wrapping old objects after a key rotation. b must be of e's tenant.
func (e *Envelope) Rewrap(ctx context.Context, kr Keyring, b Binding) (*Envelope, error) {
	if subtle.ConstantTimeCompare(e.binding.Tenant[:], b.Tenant[:]) != 1 {
		return nil, ErrWrongTenant
	}
	n := *e
	n.binding = b
	if err := n.wrap(ctx, kr); err != nil {
		return nil, err
	}
	return &n, nil
}

// Binding returns the tenant, bucket and key the envelope is bound to.
func (e *Envelope) Binding() Binding { return e.binding }

// KeyVersion returns the id of the tenant key version the DEK is wrapped
// under, so a rotation job can find envelopes to re-wrap.
func (e *Envelope) KeyVersion() [16]byte { return e.keyVersion }

// OID returns the object id.
func (e *Envelope) OID() [16]byte { return e.oid }

// Multipart reports whether the envelope was made for a multipart upload;
// its layout then comes from OpenManifest.
func (e *Envelope) Multipart() bool { return e.flags&flagMultipart != 0 }

// Size returns a single-part object's plaintext size (0 for multipart).
func (e *Envelope) Size() int64 { return e.size }

// SingleLayout returns the layout of a single-part object: one DARE stream
// of Size bytes under part key 0. A multipart envelope has none: its layout
// comes from OpenManifest, and ErrLayout says so.
func (e *Envelope) SingleLayout() (Layout, error) {
	if e.Multipart() {
		return Layout{}, fmt.Errorf("%w: multipart object needs its manifest", ErrLayout)
	}
	return singleLayout(e.size), nil
}

// EncryptReader returns the ciphertext of a single-part object, read from
// plaintext, which must yield exactly Size bytes (else ErrSizeMismatch).
// The reader yields exactly CiphertextSize(Size) bytes.
func (e *Envelope) EncryptReader(plaintext io.Reader) io.Reader {
	if e.Multipart() {
		return &sealer{err: fmt.Errorf("%w: multipart object is encrypted by part", ErrLayout)}
	}
	return newSealer(partKey(&e.dek, &e.oid, 0), e.size, plaintext)
}

// EncryptPartReader returns the ciphertext of part n (1..10000) of a
// multipart upload, read from plaintext, which must yield exactly size bytes.
// The reader yields exactly CiphertextSize(size) bytes. Each call draws a
// fresh stream nonce, so uploading part n again never reuses one.
func (e *Envelope) EncryptPartReader(n int, size int64, plaintext io.Reader) io.Reader {
	if !e.Multipart() {
		return &sealer{err: fmt.Errorf("%w: single-part object has no parts", ErrLayout)}
	}
	if n < 1 || n > maxPartNumber {
		return &sealer{err: fmt.Errorf("%w: part number %d", ErrLayout, n)}
	}
	if size > MaxPartSize {
		return &sealer{err: fmt.Errorf("%w: part size %d", ErrTooLarge, size)}
	}
	return newSealer(partKey(&e.dek, &e.oid, n), size, plaintext)
}

// DecryptReader returns the plaintext slice plan selects, decrypted from
// ciphertext, which must be exactly the backend bytes
// [plan.CipherStart, plan.CipherEnd] of the object (the whole object when
// the plan starts at 0 and ends at its last byte). Any byte that fails to
// authenticate ends the stream with an error wrapping ErrAuthentication
// before any of that package's plaintext is handed out.
func (e *Envelope) DecryptReader(ciphertext io.Reader, plan Plan) (io.Reader, error) {
	if plan.err != nil {
		return nil, plan.err
	}
	if plan.multipart != e.Multipart() {
		return nil, fmt.Errorf("%w: plan and envelope disagree on multipart", ErrLayout)
	}
	segs := make([]segment, 0, len(plan.parts))
	for i, p := range plan.parts {
		if p.size == 0 {
			continue
		}
		s := segment{key: partKey(&e.dek, &e.oid, p.number), part: p.number, size: p.size,
			firstSeq: 0, lastSeq: packages(p.size) - 1}
		if i == 0 {
			off := plan.Start - p.plainOff
			s.firstSeq, s.skip = off/PackageSize, int(off%PackageSize)
		}
		if i == len(plan.parts)-1 {
			s.lastSeq = (plan.End - p.plainOff) / PackageSize
		}
		segs = append(segs, s)
	}
	return newOpener(ciphertext, segs, plan.Length()), nil
}
