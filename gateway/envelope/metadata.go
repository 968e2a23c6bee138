package envelope

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
)

// MaxBackendMetadata is S3's limit on user metadata: 2 KiB for all keys and
// values together, counted as their UTF-8 bytes (AWS S3 user guide, "Working
// with object metadata"). The envelope and the sealed blob must fit in it,
// else the gateway answers MetadataTooLarge.
const MaxBackendMetadata = 2048

// Metadata blob format (FORMAT.md section 8):
//
//	version(1) = 1 || nonce(12) || AES-256-GCM(metadata key, nonce, entries, AAD)
//	entries = count(2) || count × (len(2) || name || len(2) || value), names strictly ascending
//	AAD = "tresor/v1 metadata" || uint16be(len(bucket)) || bucket || uint16be(len(key)) || key
const (
	metadataVersion = 1
	gcmNonceSize    = 12
	// maxMetadataValue bounds the sealed values OpenMetadata decodes: no
	// backend stores more than MaxBackendMetadata bytes of metadata.
	maxMetadataValue = MaxBackendMetadata
)

// MetadataSize returns the size S3 counts for a set of user metadata: the
// bytes of every key and value. Compare it with MaxBackendMetadata.
func MetadataSize(meta map[string]string) int {
	n := 0
	for k, v := range meta {
		n += len(k) + len(v)
	}
	return n
}

// SealedMetadataSize returns the length of SealMetadata's value for meta,
// so callers can check the budget before sealing.
func SealedMetadataSize(meta map[string]string) int {
	n := 2
	for k, v := range meta {
		n += 4 + len(k) + len(v)
	}
	return encoding.EncodedLen(1 + gcmNonceSize + n + tagSize)
}

// SealMetadata seals the tenant's own metadata of the object (user
// x-amz-meta-* entries and content headers such as Content-Type,
// Content-Disposition, Content-Encoding, Content-Language, Cache-Control,
// Expires, under whatever names the gateway gives them) as one AEAD blob,
// bound to the object's binding, for one backend metadata value. An empty
// map is sealed too, so a removed blob is an error rather than "no metadata".
func (e *Envelope) SealMetadata(meta map[string]string) (string, error) {
	if len(meta) > math.MaxUint16 || MetadataSize(meta) > MaxBackendMetadata {
		return "", fmt.Errorf("%w: metadata of %d bytes", ErrTooLarge, MetadataSize(meta))
	}
	plain := make([]byte, 0, 2+4*len(meta)+MetadataSize(meta))
	plain = binary.BigEndian.AppendUint16(plain, uint16(len(meta)))
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		plain = binary.BigEndian.AppendUint16(plain, uint16(len(k)))
		plain = append(plain, k...)
		plain = binary.BigEndian.AppendUint16(plain, uint16(len(meta[k])))
		plain = append(plain, meta[k]...)
	}
	out := make([]byte, 1+gcmNonceSize, 1+gcmNonceSize+len(plain)+tagSize)
	out[0] = metadataVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return "", fmt.Errorf("envelope: metadata nonce: %w", err)
	}
	out = e.metadataAEAD().Seal(out, out[1:1+gcmNonceSize], plain, e.metadataAAD())
	return encoding.EncodeToString(out), nil
}

func (e *Envelope) metadataAAD() []byte {
	return appendBinding([]byte(labelMetadata), e.binding)
}

func (e *Envelope) metadataAEAD() cipher.AEAD {
	return newGCM(derive(e.dek[:], e.oid[:], labelMetadata))
}

// OpenMetadata opens a value made by SealMetadata for this object and
// binding. A blob of another object or binding, or any altered bit, fails
// with an error wrapping ErrAuthentication.
func (e *Envelope) OpenMetadata(value string) (map[string]string, error) {
	if len(value) > encoding.EncodedLen(maxMetadataValue) {
		return nil, fmt.Errorf("%w: metadata value of %d characters", ErrMalformed, len(value))
	}
	raw, err := decode(value)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata encoding: %w", ErrMalformed, err)
	}
	if len(raw) < 1+gcmNonceSize+tagSize {
		return nil, fmt.Errorf("%w: metadata blob of %d bytes", ErrMalformed, len(raw))
	}
	if raw[0] != metadataVersion {
		return nil, fmt.Errorf("%w: metadata version %d", ErrUnsupportedVersion, raw[0])
	}
	plain, err := e.metadataAEAD().Open(nil, raw[1:1+gcmNonceSize], raw[1+gcmNonceSize:], e.metadataAAD())
	if err != nil {
		return nil, fmt.Errorf("%w: metadata blob", ErrAuthentication)
	}
	return parseMetadata(plain)
}

// parseMetadata decodes authenticated entries; it is strict all the same.
func parseMetadata(b []byte) (map[string]string, error) {
	bad := func(what string) (map[string]string, error) {
		return nil, fmt.Errorf("%w: metadata entries: %s", ErrMalformed, what)
	}
	if len(b) < 2 {
		return bad("no count")
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	meta := make(map[string]string, min(n, 64))
	prev := ""
	field := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			return "", false
		}
		s := string(b[2 : 2+l])
		b = b[2+l:]
		return s, true
	}
	for i := range n {
		k, ok := field()
		if !ok {
			return bad("short name")
		}
		v, ok := field()
		if !ok {
			return bad("short value")
		}
		if i > 0 && k <= prev {
			return bad("names not strictly ascending")
		}
		meta[k], prev = v, k
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return meta, nil
}
