package keystore

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
)

// Root-key custody: the root key held as M-of-N Shamir shares with Feldman
// commitments (DESIGN.md section 4), for `tresor operator init` and a node
// that starts sealed.
//
// Scalar mapping. The secret that is shared is a uniformly random scalar s
// of ristretto255 (prime order of about 2^252; circl's ristretto255
// arithmetic is constant time, unlike its P-256 one). The root key is not s
// itself but HKDF-SHA256(s, salt empty, info labelCustodyRootKey), 32 bytes:
// the root key then stays uniformly random bytes, which deriveKeys assumes,
// and s never leaves this file. A consequence: an existing root.key cannot be
// put under custody (it has no scalar behind it); custody starts on a new
// data directory.
//
// The commitments are g^a_i for the coefficients a_0 = s, a_1..a_{t-1} of the
// sharing polynomial. They are public: they let every share be checked on its
// own, before any combination, so a wrong or tampered share is named instead
// of silently producing a wrong key. The key check value lets a node confirm
// the combined key before it opens the keystore.

// Custody limits.
const (
	// MaxCustodyShares is the most shares a split makes: a share's index
	// is one byte in its text form.
	MaxCustodyShares = 255
	// CustodyFileName is the custody record's file name in the data dir.
	CustodyFileName = "root.custody.json"
)

const (
	// labelCustodyRootKey derives the root key from the shared scalar.
	labelCustodyRootKey = "tresor/custody/root-key/1"
	// labelKeyCheck is the fixed message of the key check value.
	labelKeyCheck = "tresor/custody/key-check/1"
	// labelShareChecksum prefixes the data a share's checksum covers.
	labelShareChecksum = "tresor/custody/share/1"
	// sharePrefix starts every share's text form; "1" is the format version.
	sharePrefix = "tresor-share1-"
	// custodyGroup names the group in the custody record.
	custodyGroup = "ristretto255"
	scalarSize   = 32
	setIDSize    = 4
	checksumSize = 4
)

var custodyG = group.Ristretto255

// Custody errors. A ShareError wraps ErrShareInvalid or ErrShareForeign.
var (
	// ErrCustody reports an unusable custody record or split request.
	ErrCustody = errors.New("keystore: root-key custody")
	// ErrShareFormat reports share text that does not parse or whose
	// checksum does not match (a typo, a truncated copy).
	ErrShareFormat = errors.New("keystore: malformed share")
	// ErrShareInvalid reports a share that fails the Feldman check
	// against the commitments: tampered, or for another key.
	ErrShareInvalid = errors.New("keystore: share does not match the custody commitments")
	// ErrShareForeign reports a share from another split (its set id differs).
	ErrShareForeign = errors.New("keystore: share belongs to another custody split")
	// ErrShareDuplicate reports two shares with the same index.
	ErrShareDuplicate = errors.New("keystore: duplicate share index")
	// ErrTooFewShares reports fewer shares than the threshold.
	ErrTooFewShares = errors.New("keystore: fewer shares than the threshold")
	// ErrKeyCheck reports a combined key whose key check value differs.
	ErrKeyCheck = errors.New("keystore: combined root key fails the key check value")
)

// ShareError names the share (by index) that was refused.
type ShareError struct {
	Index int
	Err   error
}

func (e *ShareError) Error() string { return fmt.Sprintf("share %d: %v", e.Index, e.Err) }
func (e *ShareError) Unwrap() error { return e.Err }

// Share is one custody share: its index (1..N), the id of the split it
// belongs to, and its value, a ristretto255 scalar.
type Share struct {
	Index int
	SetID [setIDSize]byte
	Value [scalarSize]byte
}

// String encodes s for an operator to keep:
//
//	tresor-share1-<index>-<base32(set id | value | checksum)>
//
// The checksum is the first 4 bytes of SHA-256(label | index | set id |
// value); it catches copying mistakes, not forgeries (the commitments do).
func (s Share) String() string {
	var b []byte
	b = append(b, s.SetID[:]...)
	b = append(b, s.Value[:]...)
	sum := s.checksum()
	b = append(b, sum[:]...)
	return sharePrefix + strconv.Itoa(s.Index) + "-" + shareEncoding.EncodeToString(b)
}

var shareEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func (s Share) checksum() [checksumSize]byte {
	h := sha256.New()
	h.Write([]byte(labelShareChecksum))
	h.Write([]byte{byte(s.Index)})
	h.Write(s.SetID[:])
	h.Write(s.Value[:])
	var out [checksumSize]byte
	copy(out[:], h.Sum(nil))
	return out
}

// ParseShare decodes a share's text form, case-insensitively and ignoring
// surrounding white space, and checks its checksum.
func ParseShare(text string) (Share, error) {
	t := strings.ToLower(strings.TrimSpace(text))
	rest, ok := strings.CutPrefix(t, sharePrefix)
	if !ok {
		return Share{}, fmt.Errorf("%w: does not start with %q", ErrShareFormat, sharePrefix)
	}
	idx, body, ok := strings.Cut(rest, "-")
	if !ok {
		return Share{}, fmt.Errorf("%w: no index", ErrShareFormat)
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i < 1 || i > MaxCustodyShares {
		return Share{}, fmt.Errorf("%w: index %q", ErrShareFormat, idx)
	}
	raw, err := shareEncoding.DecodeString(strings.ToUpper(body))
	if err != nil || len(raw) != setIDSize+scalarSize+checksumSize {
		return Share{}, fmt.Errorf("%w: share %d: bad encoding or length", ErrShareFormat, i)
	}
	s := Share{Index: i}
	copy(s.SetID[:], raw)
	copy(s.Value[:], raw[setIDSize:])
	sum := s.checksum()
	if subtle.ConstantTimeCompare(sum[:], raw[setIDSize+scalarSize:]) != 1 {
		return Share{}, fmt.Errorf("%w: share %d: checksum mismatch (mistyped?)", ErrShareFormat, i)
	}
	return s, nil
}

// Custody is the public custody record, <data-dir>/root.custody.json. It
// holds no secret: the commitments reveal nothing of the key below the
// discrete-log problem, and the key check is an HMAC of a fixed label.
type Custody struct {
	Version   int    `json:"version"`
	Group     string `json:"group"`
	Threshold int    `json:"threshold"`
	Shares    int    `json:"shares"`
	// Commitments are the Feldman commitments g^a_0 .. g^a_{T-1}, each a
	// 32-byte compressed ristretto255 element (base64 in JSON).
	Commitments [][]byte `json:"commitments"`
	// KeyCheck is HMAC-SHA256(root key, labelKeyCheck).
	KeyCheck []byte `json:"key_check"`
}

// SetID identifies the split: the first 4 bytes of SHA-256 over the
// commitments. Every share carries it.
func (c *Custody) SetID() [setIDSize]byte {
	h := sha256.New()
	for _, e := range c.Commitments {
		h.Write(e)
	}
	var id [setIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// Validate explains what is wrong with c.
func (c *Custody) Validate() error {
	switch {
	case c.Version != 1 || c.Group != custodyGroup:
		return fmt.Errorf("%w: version %d group %q unsupported (want 1, %s)", ErrCustody, c.Version, c.Group, custodyGroup)
	case c.Threshold < 1 || c.Threshold > c.Shares || c.Shares > MaxCustodyShares:
		return fmt.Errorf("%w: threshold %d of %d shares", ErrCustody, c.Threshold, c.Shares)
	case len(c.Commitments) != c.Threshold:
		return fmt.Errorf("%w: %d commitments for threshold %d", ErrCustody, len(c.Commitments), c.Threshold)
	case len(c.KeyCheck) != sha256.Size:
		return fmt.Errorf("%w: key check value has %d bytes", ErrCustody, len(c.KeyCheck))
	}
	_, err := c.elements()
	return err
}

func (c *Custody) elements() (secretsharing.SecretCommitment, error) {
	out := make(secretsharing.SecretCommitment, len(c.Commitments))
	for i, b := range c.Commitments {
		e := custodyG.NewElement()
		if err := e.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("%w: commitment %d: %w", ErrCustody, i, err)
		}
		out[i] = e
	}
	return out, nil
}

// SplitRootKey draws a new root key and splits it into n shares, any t of
// which recover it. It returns the key (for the caller to use once and wipe),
// the shares and the public custody record.
func SplitRootKey(rnd io.Reader, n, t int) (rootKey []byte, shares []Share, c *Custody, err error) {
	if t < 1 || t > n || n > MaxCustodyShares {
		return nil, nil, nil, fmt.Errorf("%w: threshold %d of %d shares: want 1 <= threshold <= shares <= %d", ErrCustody, t, n, MaxCustodyShares)
	}
	secret := custodyG.RandomScalar(rnd)
	if secret.IsZero() {
		return nil, nil, nil, fmt.Errorf("%w: zero secret drawn", ErrCustody)
	}
	ss := secretsharing.New(rnd, uint(t-1), secret)
	c = &Custody{Version: 1, Group: custodyGroup, Threshold: t, Shares: n}
	for _, e := range ss.CommitSecret() {
		b, err := e.MarshalBinaryCompress()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %w", ErrCustody, err)
		}
		c.Commitments = append(c.Commitments, b)
	}
	if rootKey, err = rootKeyFromScalar(secret); err != nil {
		return nil, nil, nil, err
	}
	c.KeyCheck = KeyCheckValue(rootKey)
	setID := c.SetID()
	for i, sh := range ss.Share(uint(n)) {
		v, err := sh.Value.MarshalBinary()
		if err != nil || len(v) != scalarSize {
			clear(rootKey)
			return nil, nil, nil, fmt.Errorf("%w: share value: %v", ErrCustody, err)
		}
		s := Share{Index: i + 1, SetID: setID}
		copy(s.Value[:], v)
		clear(v)
		shares = append(shares, s)
	}
	secret.SetUint64(0)
	return rootKey, shares, c, nil
}

func rootKeyFromScalar(s group.Scalar) ([]byte, error) {
	b, err := s.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCustody, err)
	}
	defer clear(b)
	k, err := hkdf.Key(sha256.New, b, nil, labelCustodyRootKey, RootKeySize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCustody, err)
	}
	return k, nil
}

// KeyCheckValue is HMAC-SHA256(rootKey, "tresor/custody/key-check/1"): it
// confirms a combined key without revealing it.
func KeyCheckValue(rootKey []byte) []byte {
	m := hmac.New(sha256.New, rootKey)
	m.Write([]byte(labelKeyCheck))
	return m.Sum(nil)
}

// VerifyShare checks one share against c: its set id, then the Feldman
// equation g^value == prod C_j^(index^j). Errors are *ShareError.
func (c *Custody) VerifyShare(s Share) error {
	if err := c.Validate(); err != nil {
		return err
	}
	_, err := c.share(s)
	return err
}

func (c *Custody) share(s Share) (secretsharing.Share, error) {
	if s.Index < 1 || s.Index > c.Shares {
		return secretsharing.Share{}, &ShareError{s.Index, fmt.Errorf("%w: index outside 1..%d", ErrShareInvalid, c.Shares)}
	}
	if id := c.SetID(); subtle.ConstantTimeCompare(id[:], s.SetID[:]) != 1 {
		return secretsharing.Share{}, &ShareError{s.Index, ErrShareForeign}
	}
	v := custodyG.NewScalar()
	if err := v.UnmarshalBinary(s.Value[:]); err != nil {
		return secretsharing.Share{}, &ShareError{s.Index, fmt.Errorf("%w: value is not a scalar", ErrShareInvalid)}
	}
	sh := secretsharing.Share{ID: custodyG.NewScalar().SetUint64(uint64(s.Index)), Value: v}
	com, err := c.elements()
	if err != nil {
		return secretsharing.Share{}, err
	}
	if !secretsharing.Verify(uint(c.Threshold-1), sh, com) {
		return secretsharing.Share{}, &ShareError{s.Index, ErrShareInvalid}
	}
	return sh, nil
}

// CombineRootKey verifies every share against c, refusing the first bad one
// by index, and recovers the root key from at least c.Threshold distinct
// shares; it then checks the key against c.KeyCheck.
func CombineRootKey(shares []Share, c *Custody) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	seen := make(map[int]bool, len(shares))
	ss := make([]secretsharing.Share, 0, len(shares))
	for _, s := range shares {
		if seen[s.Index] {
			return nil, &ShareError{s.Index, ErrShareDuplicate}
		}
		seen[s.Index] = true
		sh, err := c.share(s)
		if err != nil {
			return nil, err
		}
		ss = append(ss, sh)
	}
	if len(ss) < c.Threshold {
		return nil, fmt.Errorf("%w: %d of %d", ErrTooFewShares, len(ss), c.Threshold)
	}
	secret, err := secretsharing.Recover(uint(c.Threshold-1), ss)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCustody, err)
	}
	defer secret.SetUint64(0)
	for _, sh := range ss {
		sh.Value.SetUint64(0)
	}
	key, err := rootKeyFromScalar(secret)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(KeyCheckValue(key), c.KeyCheck) {
		clear(key)
		return nil, ErrKeyCheck
	}
	return key, nil
}

// MarshalCustody and ParseCustody read and write the custody record.
func MarshalCustody(c *Custody) ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	return append(b, '\n'), err
}

// ParseCustody parses and validates a custody record.
func ParseCustody(b []byte) (*Custody, error) {
	var c Custody
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCustody, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
