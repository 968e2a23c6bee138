package keystore

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// ID is a random 128-bit identifier of a tenant, key version or user. Ids
// are drawn by the proposer and never reused: records of deleted tenants and
// destroyed key versions stay behind as tombstones holding their id.
//
// ID's underlying type is [16]byte, so an ID passes where [16]byte is asked
// (the envelope's key provider interface) without conversion.
type ID [16]byte

// String returns the id as 32 lowercase hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero id, which no record has.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes id as hex, so records and command payloads stay
// readable.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes hex written by MarshalText.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses 32 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return ID{}, fmt.Errorf("%w: id %q is not 32 hex digits", ErrInvalid, s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("%w: id %q: %w", ErrInvalid, s, err)
	}
	return id, nil
}

// Access key format. AWS access key ids are 20 upper-case characters with a
// four-letter prefix naming their kind (AKIA, ASIA); tresor's use the prefix
// AccessKeyPrefix and 16 base32 characters (80 random bits), so they fit
// every client's validation of the AWS shape and are recognisable in logs.
// Secrets are 40 characters like AWS's: 30 random bytes (240 bits) in
// URL-safe base64, which needs no quoting in shells or INI files.
const (
	AccessKeyPrefix    = "TRSR"
	AccessKeyIDLength  = 20
	SecretKeyLength    = 40
	accessKeyIDRandom  = 10
	secretKeyRandom    = 30
	uploadIDRandom     = 24
	tenantKeySecretLen = 32
)

var accessKeyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// randomID draws a fresh id.
func randomID(r io.Reader) (ID, error) {
	var id ID
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return ID{}, fmt.Errorf("keystore: random id: %w", err)
	}
	return id, nil
}

func randomBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("keystore: random: %w", err)
	}
	return b, nil
}

func randomAccessKeyID(r io.Reader) (string, error) {
	b, err := randomBytes(r, accessKeyIDRandom)
	if err != nil {
		return "", err
	}
	return AccessKeyPrefix + accessKeyEncoding.EncodeToString(b), nil
}

func randomSecretKey(r io.Reader) (string, error) {
	b, err := randomBytes(r, secretKeyRandom)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// randomUploadID draws a multipart upload id: 24 random bytes in URL-safe
// base64 (32 characters), safe in a query string without escaping.
func randomUploadID(r io.Reader) (string, error) {
	b, err := randomBytes(r, uploadIDRandom)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
