package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Keyring gives the envelope the tenant key versions it wraps DEKs under.
// The keystore satisfies it; it is defined here, where it is used, so that
// the keystore need not import this package.
type Keyring interface {
	// ActiveKey returns the id and 32-byte secret of the tenant's key version that takes new writes.
	ActiveKey(ctx context.Context, tenant [16]byte) (id [16]byte, secret []byte, err error)
	// Key returns the secret of key version id of tenant, if it may still decrypt.
	Key(ctx context.Context, tenant, id [16]byte) (secret []byte, err error)
}

// Key sizes of suite 1.
const (
	// keySize is the size of DEKs, tenant key secrets and every derived key:
	// 256 bits, the AES-256 key size.
	keySize = 32
	// oidSize is the size of the random object id: 128 bits, enough that two
	// objects never draw the same one (birthday bound 2^64).
	oidSize = 16
)

// Key derivation labels (HKDF-SHA256 info strings, FORMAT.md section 3).
// Every label starts with "tresor/v1 " so that keys of a future format
// version can never collide with these.
const (
	labelPart       = "tresor/v1 part"       // || uint32be(part number)
	labelMetadata   = "tresor/v1 metadata"   // metadata blob key
	labelManifest   = "tresor/v1 manifest"   // manifest MAC key
	labelCommitment = "tresor/v1 commitment" // key commitment value
	labelWrap       = "tresor/v1 wrap"       // per-wrap key from the tenant key
)

// derive returns HKDF-SHA256(ikm, salt, info) of keySize bytes.
func derive(ikm, salt []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, ikm, salt, info, keySize)
	if err != nil {
		// Only a FIPS-only mode rejecting these inputs gets here: a
		// misconfigured process, not a runtime condition.
		panic(fmt.Sprintf("envelope: hkdf: %v", err))
	}
	return k
}

// partKey derives the DARE key of part n (0 for a single PUT, 1..10000 for
// multipart parts). A distinct key per part keeps parts from being spliced
// into one another and keeps DARE's per-stream key uniqueness.
func partKey(dek *[keySize]byte, oid *[oidSize]byte, n int) []byte {
	var info [len(labelPart) + 4]byte
	copy(info[:], labelPart)
	binary.BigEndian.PutUint32(info[len(labelPart):], uint32(n))
	return derive(dek[:], oid[:], string(info[:]))
}

// newGCM returns AES-256-GCM under key.
func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("envelope: aes: %v", err)) // key is always 32 bytes here
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("envelope: gcm: %v", err))
	}
	return aead
}
