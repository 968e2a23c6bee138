package admin

import (
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tresor-gw/tresor/keystore"
)

// Sealed credentials let an operator create a tenant's admin without ever
// seeing its secret. The future admin generates a key pair
// (GenerateRecipientKey, `tresor admin keygen`) and hands the operator its
// public key; the admin API answers the new credentials sealed to that
// key, and the operator relays a ciphertext it cannot open
// (RecipientKey.Open, `tresor admin open-credentials`).
//
// The seal is HPKE (RFC 9180, Go's crypto/hpke) in base mode with the
// hybrid post-quantum KEM MLKEM768-X25519 (X-Wing, KEM id 0x647a),
// HKDF-SHA256 and AES-256-GCM: the suite DESIGN.md picks for backups. The
// plaintext is the JSON of Credentials. The HPKE info binds every field of
// the sealed object but the ciphertext (sealInfo), so a relay cannot pass
// one tenant's or user's credentials off as another's, nor retarget them.
//
// A public key travels as one line, PublicKeyPrefix and the KEM's 1,216
// byte public key in unpadded URL-safe base64. A private key is a PEM block
// of type RecipientKeyPEMType holding the KEM's 32-byte seed.
const (
	SealedFormat        = "tresor-sealed-credentials-1"
	SealedSuite         = "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM"
	PublicKeyPrefix     = "tresor-admin-pk-1:"
	RecipientKeyPEMType = "TRESOR ADMIN PRIVATE KEY"
)

var (
	sealKEM  = hpke.MLKEM768X25519()
	sealKDF  = hpke.HKDFSHA256()
	sealAEAD = hpke.AES256GCM()
)

// ErrPublicKey: a public key that is not one tresor admin keygen wrote.
var ErrPublicKey = errors.New("admin: not a tresor admin public key")

// Credentials are what a sealed answer carries: an access key, the
// tenant's recovery key, or both.
type Credentials struct {
	Tenant          string        `json:"tenant"`
	User            string        `json:"user,omitempty"`
	Role            keystore.Role `json:"role,omitempty"`
	AccessKeyID     string        `json:"access_key_id,omitempty"`
	SecretAccessKey string        `json:"secret_access_key,omitempty"`
	Expires         time.Time     `json:"expires,omitzero"`
	RecoveryKeyID   string        `json:"recovery_key_id,omitempty"`
	RecoverySecret  string        `json:"recovery_secret,omitempty"`
}

// SealedCredentials is Credentials sealed to a public key. The fields
// besides Ciphertext say, in clear and authenticated, what is inside and
// for whom (Recipient is the public key's Fingerprint).
type SealedCredentials struct {
	Format        string `json:"format"`
	Suite         string `json:"suite"`
	Recipient     string `json:"recipient"`
	Tenant        string `json:"tenant"`
	User          string `json:"user,omitempty"`
	AccessKeyID   string `json:"access_key_id,omitempty"`
	RecoveryKeyID string `json:"recovery_key_id,omitempty"`
	// Ciphertext is HPKE's encapsulated key followed by the AEAD
	// ciphertext (hpke.Seal's output).
	Ciphertext []byte `json:"ciphertext"`
}

// sealInfo is the HPKE info: a label and every field of s but the
// ciphertext, each length-prefixed (2 bytes big endian).
func sealInfo(s *SealedCredentials) []byte {
	b := []byte("tresor sealed credentials\x00")
	for _, f := range []string{s.Format, s.Suite, s.Recipient, s.Tenant, s.User, s.AccessKeyID, s.RecoveryKeyID} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

// PublicKey is a recipient's public key, parsed.
type PublicKey struct {
	pk hpke.PublicKey
}

// ParsePublicKey parses a public key in the form RecipientKey.PublicKey
// writes (surrounding white space is ignored).
func ParsePublicKey(s string) (PublicKey, error) {
	s = strings.TrimSpace(s)
	enc, ok := strings.CutPrefix(s, PublicKeyPrefix)
	if !ok {
		return PublicKey{}, fmt.Errorf("%w: want %s...", ErrPublicKey, PublicKeyPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %v", ErrPublicKey, err)
	}
	pk, err := sealKEM.NewPublicKey(b)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %v", ErrPublicKey, err)
	}
	return PublicKey{pk: pk}, nil
}

// String returns the key in its one-line form.
func (p PublicKey) String() string {
	return PublicKeyPrefix + base64.RawURLEncoding.EncodeToString(p.pk.Bytes())
}

// Fingerprint names the key in a sealed object: the first 16 bytes of the
// SHA-256 of its bytes, in hex.
func (p PublicKey) Fingerprint() string {
	sum := sha256.Sum256(p.pk.Bytes())
	return hex.EncodeToString(sum[:16])
}

// Seal seals c to p.
func (p PublicKey) Seal(c Credentials) (*SealedCredentials, error) {
	s := &SealedCredentials{
		Format: SealedFormat, Suite: SealedSuite, Recipient: p.Fingerprint(),
		Tenant: c.Tenant, User: c.User, AccessKeyID: c.AccessKeyID, RecoveryKeyID: c.RecoveryKeyID,
	}
	pt, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	s.Ciphertext, err = hpke.Seal(p.pk, sealKDF, sealAEAD, sealInfo(s), pt)
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("admin: seal credentials: %w", err)
	}
	return s, nil
}

// RecipientKey is the private key that opens credentials sealed to its
// PublicKey.
type RecipientKey struct {
	priv hpke.PrivateKey
}

// GenerateRecipientKey draws a new key pair.
func GenerateRecipientKey() (*RecipientKey, error) {
	priv, err := sealKEM.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("admin: generate key: %w", err)
	}
	return &RecipientKey{priv: priv}, nil
}

// ParseRecipientKey reads a private key written by MarshalPEM.
func ParseRecipientKey(b []byte) (*RecipientKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != RecipientKeyPEMType {
		return nil, fmt.Errorf("admin: not a %s PEM block", RecipientKeyPEMType)
	}
	priv, err := sealKEM.NewPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("admin: private key: %w", err)
	}
	return &RecipientKey{priv: priv}, nil
}

// MarshalPEM encodes the private key for a file only its owner reads.
func (k *RecipientKey) MarshalPEM() ([]byte, error) {
	b, err := k.priv.Bytes()
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: RecipientKeyPEMType, Headers: map[string]string{"Suite": SealedSuite}, Bytes: b}), nil
}

// PublicKey returns the key to hand to whoever seals credentials for k.
func (k *RecipientKey) PublicKey() PublicKey { return PublicKey{pk: k.priv.PublicKey()} }

// Open decrypts s. It fails if s was sealed to another key, or if any of
// its fields was changed.
func (k *RecipientKey) Open(s *SealedCredentials) (Credentials, error) {
	if s.Format != SealedFormat || s.Suite != SealedSuite {
		return Credentials{}, fmt.Errorf("admin: sealed credentials of format %q, suite %q: want %q, %q", s.Format, s.Suite, SealedFormat, SealedSuite)
	}
	if fp := k.PublicKey().Fingerprint(); s.Recipient != fp {
		return Credentials{}, fmt.Errorf("admin: the credentials are sealed to key %s, this key is %s", s.Recipient, fp)
	}
	pt, err := hpke.Open(k.priv, sealKDF, sealAEAD, sealInfo(s), s.Ciphertext)
	if err != nil {
		return Credentials{}, fmt.Errorf("admin: open sealed credentials: %w", err)
	}
	var c Credentials
	err = json.Unmarshal(pt, &c)
	clear(pt)
	if err != nil {
		return Credentials{}, fmt.Errorf("admin: sealed credentials: %w", err)
	}
	if c.Tenant != s.Tenant || c.User != s.User || c.AccessKeyID != s.AccessKeyID || c.RecoveryKeyID != s.RecoveryKeyID {
		return Credentials{}, errors.New("admin: sealed credentials disagree with their label")
	}
	return c, nil
}
