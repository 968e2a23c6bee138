package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"
)

// Sealed record format, written by sealer.seal:
//
//	version (1 byte, = 1) | epoch (4 bytes BE) | nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// The additional data binds the record's kind and identity (for a tenant key
// version: tenant id and key id; for an access key: its id, tenant and user)
// together with the version and epoch, so a sealed secret copied into another
// record, or replayed under another kind, fails to open. Nonces are random:
// 96-bit random nonces are safe far beyond the number of secrets a keystore
// will ever seal (NIST SP 800-38D section 8.3 allows 2^32 per key).
const (
	sealVersion  = 1
	sealOverhead = 1 + 4 + 12 + 16
)

// Record kinds, part of the additional data.
const (
	kindTenantKey = "tenant-key"
	kindAccessKey = "access-key"
)

// sealer seals and opens secret records under the storage key.
type sealer struct {
	aead  cipher.AEAD
	epoch uint32
}

func newSealer(storageKey []byte) (*sealer, error) {
	block, err := aes.NewCipher(storageKey)
	if err != nil {
		return nil, fmt.Errorf("keystore: storage key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keystore: storage key: %w", err)
	}
	return &sealer{aead: aead, epoch: storageEpoch}, nil
}

func (s *sealer) ad(kind string, identity []byte, epoch uint32) []byte {
	ad := make([]byte, 0, 32+len(kind)+len(identity))
	ad = append(ad, "tresor/keystore/seal\x00"...)
	ad = append(ad, sealVersion)
	ad = binary.BigEndian.AppendUint32(ad, epoch)
	ad = append(ad, kind...)
	ad = append(ad, 0)
	return append(ad, identity...)
}

// seal encrypts secret for the record identified by kind and identity,
// drawing the nonce from rnd.
func (s *sealer) seal(rnd io.Reader, kind string, identity, secret []byte) ([]byte, error) {
	out := make([]byte, 5+12, sealOverhead+len(secret))
	out[0] = sealVersion
	binary.BigEndian.PutUint32(out[1:5], s.epoch)
	if _, err := io.ReadFull(rnd, out[5:17]); err != nil {
		return nil, fmt.Errorf("keystore: seal nonce: %w", err)
	}
	return s.aead.Seal(out, out[5:17], secret, s.ad(kind, identity, s.epoch)), nil
}

// open decrypts a record sealed by seal for the same kind and identity.
func (s *sealer) open(kind string, identity, sealed []byte) ([]byte, error) {
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: malformed %s record", ErrSealed, kind)
	}
	epoch := binary.BigEndian.Uint32(sealed[1:5])
	if epoch != s.epoch {
		return nil, fmt.Errorf("%w: %s record sealed under storage epoch %d, have %d", ErrSealed, kind, epoch, s.epoch)
	}
	secret, err := s.aead.Open(nil, sealed[5:17], sealed[17:], s.ad(kind, identity, epoch))
	if err != nil {
		return nil, fmt.Errorf("%w: %s record", ErrSealed, kind)
	}
	return secret, nil
}

// tenantKeyIdentity is the additional data identity of a tenant key version.
func tenantKeyIdentity(tenant, key ID) []byte {
	return append(append(make([]byte, 0, 32), tenant[:]...), key[:]...)
}

// accessKeyIdentity is the additional data identity of an access key secret.
func accessKeyIdentity(id string, tenant, user ID) []byte {
	b := make([]byte, 0, len(id)+1+32)
	b = append(b, id...)
	b = append(b, 0)
	b = append(b, tenant[:]...)
	return append(b, user[:]...)
}
