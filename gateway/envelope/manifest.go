package envelope

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Manifest format (FORMAT.md section 7):
//
//	version(1) = 1 || OID(16) || count(2) || count × (part number(2) || plaintext size(8)) || HMAC-SHA256(32)
//
// big-endian, the MAC over the label "tresor/v1 manifest" and every byte
// before it, keyed with HKDF(DEK, OID, "tresor/v1 manifest").
const (
	manifestVersion = 1
	manifestHead    = 1 + oidSize + 2
	manifestEntry   = 2 + 8
	macSize         = sha256.Size

	// maxPartNumber is S3's highest part number (and most parts per upload).
	maxPartNumber = 10000
)

// PartSize is one part of a completed multipart object: its S3 part number
// and its plaintext size.
type PartSize struct {
	Number int
	Size   int64
}

// SealManifest returns the manifest of a completed multipart upload with the
// given parts, in object order (ascending part numbers, 1..10000, each at
// most MaxPartSize, 10000 parts at most). The gateway stores it in the
// keystore; OpenManifest verifies it.
func (e *Envelope) SealManifest(parts []PartSize) ([]byte, error) {
	if !e.Multipart() {
		return nil, fmt.Errorf("%w: single-part object has no manifest", ErrLayout)
	}
	if err := checkParts(parts); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, manifestHead+len(parts)*manifestEntry+macSize)
	buf = append(buf, manifestVersion)
	buf = append(buf, e.oid[:]...)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(parts)))
	for _, p := range parts {
		buf = binary.BigEndian.AppendUint16(buf, uint16(p.Number))
		buf = binary.BigEndian.AppendUint64(buf, uint64(p.Size))
	}
	return append(buf, e.manifestMAC(buf)...), nil
}

// checkParts enforces what S3 enforces of a completed upload.
func checkParts(parts []PartSize) error {
	if len(parts) == 0 || len(parts) > maxPartNumber {
		return fmt.Errorf("%w: manifest of %d parts", ErrMalformed, len(parts))
	}
	var total int64
	for i, p := range parts {
		if p.Number < 1 || p.Number > maxPartNumber || (i > 0 && p.Number <= parts[i-1].Number) {
			return fmt.Errorf("%w: part number %d at position %d", ErrMalformed, p.Number, i)
		}
		if p.Size < 0 || p.Size > MaxPartSize {
			return fmt.Errorf("%w: part %d of %d bytes", ErrMalformed, p.Number, p.Size)
		}
		total += p.Size
	}
	if total > MaxSize {
		return fmt.Errorf("%w: object of %d bytes", ErrTooLarge, total)
	}
	return nil
}

func (e *Envelope) manifestMAC(body []byte) []byte {
	m := hmac.New(sha256.New, derive(e.dek[:], e.oid[:], labelManifest))
	m.Write([]byte(labelManifest))
	m.Write(body)
	return m.Sum(nil)
}

// parseManifest strictly parses a manifest without verifying its MAC.
func parseManifest(data []byte) (oid [oidSize]byte, parts []PartSize, err error) {
	if len(data) < manifestHead+macSize {
		return oid, nil, fmt.Errorf("%w: manifest of %d bytes", ErrMalformed, len(data))
	}
	if data[0] != manifestVersion {
		return oid, nil, fmt.Errorf("%w: manifest version %d", ErrUnsupportedVersion, data[0])
	}
	copy(oid[:], data[1:])
	n := int(binary.BigEndian.Uint16(data[1+oidSize:]))
	if len(data) != manifestHead+n*manifestEntry+macSize {
		return oid, nil, fmt.Errorf("%w: manifest of %d parts is %d bytes", ErrMalformed, n, len(data))
	}
	parts = make([]PartSize, n)
	for i := range parts {
		entry := data[manifestHead+i*manifestEntry:]
		size := binary.BigEndian.Uint64(entry[2:])
		if size > MaxPartSize {
			return oid, nil, fmt.Errorf("%w: manifest part of %d bytes", ErrMalformed, size)
		}
		parts[i] = PartSize{Number: int(binary.BigEndian.Uint16(entry)), Size: int64(size)}
	}
	if err := checkParts(parts); err != nil {
		return oid, nil, err
	}
	return oid, parts, nil
}

// OpenManifest verifies a manifest made by SealManifest for this object and
// returns the object's layout. A manifest of another object, or with any bit
// altered, fails with an error wrapping ErrAuthentication.
func (e *Envelope) OpenManifest(data []byte) (Layout, error) {
	if !e.Multipart() {
		return Layout{}, fmt.Errorf("%w: single-part object has no manifest", ErrLayout)
	}
	oid, parts, err := parseManifest(data)
	if err != nil {
		return Layout{}, err
	}
	body, mac := data[:len(data)-macSize], data[len(data)-macSize:]
	if !hmac.Equal(mac, e.manifestMAC(body)) {
		return Layout{}, fmt.Errorf("%w: manifest MAC", ErrAuthentication)
	}
	if oid != e.oid { // covered by the MAC key already; a clearer error
		return Layout{}, fmt.Errorf("%w: manifest of another object", ErrAuthentication)
	}
	return multipartLayout(parts), nil
}

// ManifestSize returns the plaintext size a manifest records without
// verifying its MAC, which needs the DEK. It is for LIST, which reads
// manifests from the trusted keystore replica in bulk and must not unwrap a
// DEK per object; GET and HEAD use OpenManifest.
func ManifestSize(data []byte) (int64, error) {
	_, parts, err := parseManifest(data)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range parts {
		total += p.Size
	}
	return total, nil
}
