package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/tresor-gw/tresor/internal/atomicfile"
)

// Checkpoint is a signed tree head: the log's size and Merkle root at a
// time. A checkpoint commits to every record before Size: changing,
// removing or reordering any of them changes the root.
type Checkpoint struct {
	LogID  [16]byte
	NodeID string
	Size   uint64
	Root   Hash
	Time   time.Time
}

// SignedCheckpoint is a checkpoint with its two signatures. Both must
// verify: Ed25519 for today, ML-DSA-65 (FIPS 204) against a future quantum
// adversary; a forger has to break both.
type SignedCheckpoint struct {
	Checkpoint
	Ed25519 []byte
	MLDSA65 []byte
}

// mldsaContext is the FIPS 204 context string of checkpoint signatures, so
// a signature made for another purpose with the same key never verifies.
var mldsaContext = []byte("tresor audit checkpoint")

const checkpointMagic = "tresor audit checkpoint v1\x00"

// Message is the exact byte string both signatures cover:
//
//	"tresor audit checkpoint v1\x00" | log id 16 | size 8 | root 32 |
//	time (unix ns) 8 | node id length 2 | node id
func (c Checkpoint) Message() []byte {
	b := make([]byte, 0, len(checkpointMagic)+16+8+32+8+2+len(c.NodeID))
	b = append(b, checkpointMagic...)
	b = append(b, c.LogID[:]...)
	b = binary.BigEndian.AppendUint64(b, c.Size)
	b = append(b, c.Root[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixNano()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.NodeID)))
	return append(b, c.NodeID...)
}

// MarshalBinary encodes s as message | Ed25519 signature (64) | ML-DSA-65
// signature (3309), with the message length in front (2 bytes).
func (s SignedCheckpoint) MarshalBinary() ([]byte, error) {
	if len(s.NodeID) > maxStringField {
		return nil, fmt.Errorf("%w: node id too long", ErrInvalid)
	}
	m := s.Message()
	b := make([]byte, 0, 2+len(m)+len(s.Ed25519)+len(s.MLDSA65))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
	b = append(b, m...)
	b = append(b, s.Ed25519...)
	return append(b, s.MLDSA65...), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote. It does not check the
// signatures (PublicKeys.Verify does).
func (s *SignedCheckpoint) UnmarshalBinary(b []byte) error {
	bad := fmt.Errorf("%w: checkpoint encoding", ErrCorrupt)
	if len(b) < 2 {
		return bad
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	fixed := len(checkpointMagic) + 16 + 8 + 32 + 8 + 2
	if n < fixed || len(b) != n+ed25519.SignatureSize+mldsa65.SignatureSize || string(b[:len(checkpointMagic)]) != checkpointMagic {
		return bad
	}
	m := b[len(checkpointMagic):n]
	var c Checkpoint
	copy(c.LogID[:], m)
	c.Size = binary.BigEndian.Uint64(m[16:])
	copy(c.Root[:], m[24:])
	c.Time = time.Unix(0, int64(binary.BigEndian.Uint64(m[56:]))).UTC()
	if int(binary.BigEndian.Uint16(m[64:])) != len(m)-66 {
		return bad
	}
	c.NodeID = string(m[66:])
	s.Checkpoint = c
	s.Ed25519 = append([]byte(nil), b[n:n+ed25519.SignatureSize]...)
	s.MLDSA65 = append([]byte(nil), b[n+ed25519.SignatureSize:]...)
	return nil
}

// Signer holds a log's two signing keys.
type Signer struct {
	logID  [16]byte
	ed     ed25519.PrivateKey
	ml     *mldsa65.PrivateKey
	public PublicKeys
}

// Sign signs c with both keys.
func (s *Signer) Sign(c Checkpoint) (SignedCheckpoint, error) {
	m := c.Message()
	sc := SignedCheckpoint{Checkpoint: c, Ed25519: ed25519.Sign(s.ed, m), MLDSA65: make([]byte, mldsa65.SignatureSize)}
	if err := mldsa65.SignTo(s.ml, m, mldsaContext, true, sc.MLDSA65); err != nil {
		return SignedCheckpoint{}, fmt.Errorf("audit: ML-DSA-65 sign: %w", err)
	}
	return sc, nil
}

// PublicKeys are a log's verification keys, bound to its log id. Exported
// as JSON (pubkeys.json): keep a copy away from the node, since a verifier
// that takes the keys from the directory it checks trusts that directory.
type PublicKeys struct {
	LogID   [16]byte
	NodeID  string
	Ed25519 ed25519.PublicKey
	MLDSA65 *mldsa65.PublicKey
}

type publicKeysJSON struct {
	LogID   string `json:"log_id"`
	NodeID  string `json:"node_id"`
	Ed25519 string `json:"ed25519"`
	MLDSA65 string `json:"ml_dsa_65"`
}

// MarshalJSON writes the keys as base64 in JSON.
func (p PublicKeys) MarshalJSON() ([]byte, error) {
	return json.MarshalIndent(publicKeysJSON{
		LogID: hex.EncodeToString(p.LogID[:]), NodeID: p.NodeID,
		Ed25519: base64.StdEncoding.EncodeToString(p.Ed25519),
		MLDSA65: base64.StdEncoding.EncodeToString(p.MLDSA65.Bytes()),
	}, "", "  ")
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *PublicKeys) UnmarshalJSON(b []byte) error {
	var j publicKeysJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	id, err := hex.DecodeString(j.LogID)
	if err != nil || len(id) != 16 {
		return fmt.Errorf("%w: public keys: log id", ErrInvalid)
	}
	ed, err := base64.StdEncoding.DecodeString(j.Ed25519)
	if err != nil || len(ed) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public keys: ed25519", ErrInvalid)
	}
	ml, err := base64.StdEncoding.DecodeString(j.MLDSA65)
	if err != nil {
		return fmt.Errorf("%w: public keys: ml_dsa_65", ErrInvalid)
	}
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(ml); err != nil {
		return fmt.Errorf("%w: public keys: ml_dsa_65: %v", ErrInvalid, err)
	}
	copy(p.LogID[:], id)
	p.NodeID, p.Ed25519, p.MLDSA65 = j.NodeID, ed, &pk
	return nil
}

// ReadPublicKeys reads a pubkeys.json file.
func ReadPublicKeys(path string) (PublicKeys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return PublicKeys{}, err
	}
	var p PublicKeys
	if err := json.Unmarshal(b, &p); err != nil {
		return PublicKeys{}, fmt.Errorf("audit: %s: %w", path, err)
	}
	return p, nil
}

// Signature failures, which Verify reports separately.
var (
	errBadEd25519 = errors.New("Ed25519 signature does not verify")
	errBadMLDSA   = errors.New("ML-DSA-65 signature does not verify")
	errWrongLog   = errors.New("checkpoint is for another log")
)

// Verify checks both signatures of s and that it belongs to p's log.
func (p PublicKeys) Verify(s SignedCheckpoint) error {
	if s.LogID != p.LogID {
		return errWrongLog
	}
	m := s.Message()
	if len(p.Ed25519) != ed25519.PublicKeySize || !ed25519.Verify(p.Ed25519, m, s.Ed25519) {
		return errBadEd25519
	}
	if p.MLDSA65 == nil || !mldsa65.Verify(p.MLDSA65, m, mldsaContext, s.MLDSA65) {
		return errBadMLDSA
	}
	return nil
}

// signingKeyFile layout: magic | log id 16 | Ed25519 seed 32 | ML-DSA-65
// seed 32 | node id. Mode 0600.
const signingKeyMagic = "tresor audit signing key v1\x00"

func newSigner(logID [16]byte, nodeID string, edSeed, mlSeed []byte) *Signer {
	ed := ed25519.NewKeyFromSeed(edSeed)
	var seed [mldsa65.SeedSize]byte
	copy(seed[:], mlSeed)
	mlPub, ml := mldsa65.NewKeyFromSeed(&seed)
	return &Signer{logID: logID, ed: ed, ml: ml, public: PublicKeys{
		LogID: logID, NodeID: nodeID, Ed25519: ed.Public().(ed25519.PublicKey), MLDSA65: mlPub,
	}}
}

// loadOrCreateSigner reads the signing keys at path or, if there is no such
// file, generates them with a fresh log id.
func loadOrCreateSigner(path, nodeID string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var buf [16 + 32 + mldsa65.SeedSize]byte
		if _, err := rand.Read(buf[:]); err != nil {
			return nil, err
		}
		out := append([]byte(signingKeyMagic), buf[:]...)
		out = append(out, nodeID...)
		if err := atomicfile.WriteFile(path, out, 0o600); err != nil {
			return nil, err
		}
		b = out
	} else if err != nil {
		return nil, err
	} else if err := checkPrivate(path); err != nil {
		return nil, err
	}
	fixed := len(signingKeyMagic) + 16 + 32 + mldsa65.SeedSize
	if len(b) < fixed || string(b[:len(signingKeyMagic)]) != signingKeyMagic {
		return nil, fmt.Errorf("%w: signing key file %s", ErrCorrupt, path)
	}
	b = b[len(signingKeyMagic):]
	var logID [16]byte
	copy(logID[:], b)
	s := newSigner(logID, string(b[fixed-len(signingKeyMagic):]), b[16:48], b[48:48+mldsa65.SeedSize])
	return s, nil
}

// checkPrivate refuses a key file that others can read.
func checkPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s is readable by others (mode %v); want 0600", ErrInvalid, path, fi.Mode().Perm())
	}
	return nil
}
