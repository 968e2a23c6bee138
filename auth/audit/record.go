package audit

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Kind says what a record is about.
type Kind uint8

// Record kinds. The numbers are written into the log: never renumber one.
const (
	AuthSuccess   Kind = 1 // a request authenticated
	AuthFailure   Kind = 2 // a request failed authentication; Reason says why
	AllowlistDeny Kind = 3 // a source address outside an IP allowlist
	AdminAction   Kind = 4 // an administrative change; Operation names it
	RateLimited   Kind = 5 // refused by the failed-authentication limiter
	// Aggregated stands for Count records of kind Of that were counted
	// instead of written (Record.Aggregate, Config.Aggregation). Only the
	// log writes it.
	Aggregated Kind = 6
)

var kindNames = map[Kind]string{
	AuthSuccess: "auth_success", AuthFailure: "auth_failure", AllowlistDeny: "allowlist_deny",
	AdminAction: "admin_action", RateLimited: "rate_limited", Aggregated: "aggregated",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MarshalText writes the kind's name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name, so that a JSON review (Summary.ByKind)
// reads back.
func (k *Kind) UnmarshalText(b []byte) error {
	for kind, name := range kindNames {
		if name == string(b) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("audit: unknown record kind %q", b)
}

// Record is one audit event as the gateway reports it. AccessKeyID, User,
// SourceAddr and Bucket identify people and are stored encrypted under the
// tenant's audit key; the other fields are stored in clear.
type Record struct {
	// Seq is the record's position in the log, set by Append.
	Seq  uint64
	Time time.Time
	Kind Kind
	// Reason explains a failure or denial ("signature mismatch",
	// "unknown access key"). It must not hold personal data.
	Reason string
	// Operation is the S3 operation or admin action ("PutObject",
	// "create-user").
	Operation string
	// Tenant is the tenant's id, zero when no tenant is known (an unknown
	// access key, an operator's action, a denial before authentication).
	Tenant      [16]byte
	AccessKeyID string
	User        string
	SourceAddr  string
	Bucket      string
	RequestID   string
	NodeID      string
	// Aggregate lets the log count the record into a summary instead of
	// writing it, once its source address has had its share of full
	// records in the current interval (Config.Aggregation). Set it for
	// refusals of requests that proved nothing and cost their sender
	// nothing (no signature, a malformed one, an unknown access key, the
	// limiter's and the listener allowlist's refusals), so that a flood of
	// them cannot fill the disk. Append returns nil for a counted record:
	// its request is refused anyway.
	Aggregate bool
	// Of and Count describe an Aggregated record: Count records of kind Of
	// from SourceAddr (empty: from addresses past Config.Aggregation's
	// MaxGroups) with this Tenant and Reason, in the interval that ended
	// by Time.
	Of    Kind
	Count uint64
}

// TenantKeys gives the secret a tenant's audit fields are sealed under.
// keystore.Store satisfies it: the audit key of a record is derived with
// HKDF from the tenant key version that was active when it was written, so
// destroying the tenant's key versions (crypto-shredding) makes its audit
// fields unreadable too.
type TenantKeys interface {
	// ActiveKey returns the tenant's current key version and secret.
	ActiveKey(ctx context.Context, tenant [16]byte) (id [16]byte, secret []byte, err error)
	// Key returns the secret of key version id, or an error once it is
	// disabled or destroyed.
	Key(ctx context.Context, tenant, id [16]byte) ([]byte, error)
}

// HKDF labels. The audit keys are separated from the object DEK wrapping
// that uses the same tenant secrets.
const (
	labelSeal  = "tresor audit seal v1"
	labelToken = "tresor audit token v1"
)

// recordKeys are the keys derived from one tenant key version (or from the
// log's system key).
type recordKeys struct {
	seal  cipher.AEAD
	token []byte
}

func deriveKeys(secret []byte) (*recordKeys, error) {
	sk, err := hkdf.Key(sha256.New, secret, nil, labelSeal, 32)
	if err != nil {
		return nil, err
	}
	tk, err := hkdf.Key(sha256.New, secret, nil, labelToken, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sk)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &recordKeys{seal: aead, token: tk}, nil
}

// Token is an opaque, keyed pseudonym of a personal field (HMAC-SHA256 under
// the tenant's audit token key, 16 bytes). Equal values of one field under
// one tenant key version give equal tokens, so a review without keys can
// still count failures per access key or address; without the key a token
// cannot be reversed, not even by trying all 2^32 IPv4 addresses.
type Token [16]byte

// IsZero reports whether t stands for an empty field.
func (t Token) IsZero() bool { return t == Token{} }

func (t Token) String() string { return hex.EncodeToString(t[:]) }

// MarshalText writes the token in hex.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (k *recordKeys) tokenOf(field byte, v string) Token {
	if v == "" {
		return Token{}
	}
	m := hmac.New(sha256.New, k.token)
	m.Write([]byte{field})
	m.Write([]byte(v))
	var t Token
	copy(t[:], m.Sum(nil))
	return t
}

// Field ids inside tokens.
const (
	fieldAccessKey = 1
	fieldAddr      = 2
	fieldUser      = 3
)

// Entry is a record as stored: clear fields, tokens of the personal fields,
// and the personal fields sealed. It is what verification and a review
// without keys see.
type Entry struct {
	Seq    uint64
	Time   time.Time
	Kind   Kind
	Tenant [16]byte
	// KeyVersion is the tenant key version the fields are sealed under;
	// zero means the log's system key (records without a tenant, or whose
	// tenant key could not be fetched).
	KeyVersion [16]byte
	AccessKey  Token
	Addr       Token
	User       Token
	Reason     string
	Operation  string
	RequestID  string
	NodeID     string
	// Sealed is nonce || AES-256-GCM(accessKeyID, user, sourceAddr, bucket).
	Sealed []byte
	// Of and Count: see Record (Aggregated records only).
	Of    Kind
	Count uint64
}

// Encoding, version 1 (see FORMAT.md):
//
//	version 1 | seq 8 | time 8 | kind 1 | tenant 16 | key version 16 |
//	token access key 16 | token addr 16 | token user 16 |
//	reason | operation | request id | node id | sealed
//
// integers big endian, strings and sealed as uvarint length || bytes.
const (
	recordVersion  = 1
	seqOffset      = 1
	fixedPartSize  = 1 + 8 + 8 + 1 + 16 + 16 + 3*16
	maxStringField = 1024
	// MaxRecordSize bounds an encoded record; Append refuses larger ones.
	MaxRecordSize = 16 << 10
)

// aggregatedVersion is the version of Aggregated records: version 1's
// fields, then of 1 | count uvarint.
const aggregatedVersion = 2

func (e *Entry) marshal() []byte {
	b := make([]byte, 0, fixedPartSize+64+len(e.Sealed))
	if e.Kind == Aggregated {
		b = append(b, aggregatedVersion)
	} else {
		b = append(b, recordVersion)
	}
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = append(b, byte(e.Kind))
	b = append(b, e.Tenant[:]...)
	b = append(b, e.KeyVersion[:]...)
	b = append(b, e.AccessKey[:]...)
	b = append(b, e.Addr[:]...)
	b = append(b, e.User[:]...)
	for _, s := range []string{e.Reason, e.Operation, e.RequestID, e.NodeID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Sealed)))
	b = append(b, e.Sealed...)
	if e.Kind == Aggregated {
		b = append(b, byte(e.Of))
		b = binary.AppendUvarint(b, e.Count)
	}
	return b
}

// ParseEntry decodes a record as stored. It refuses trailing bytes, so one
// record has exactly one encoding.
func ParseEntry(b []byte) (Entry, error) {
	var e Entry
	if len(b) < fixedPartSize || b[0] != recordVersion && b[0] != aggregatedVersion {
		return e, fmt.Errorf("%w: record header", ErrCorrupt)
	}
	e.Seq = binary.BigEndian.Uint64(b[1:])
	e.Time = time.Unix(0, int64(binary.BigEndian.Uint64(b[9:]))).UTC()
	e.Kind = Kind(b[17])
	copy(e.Tenant[:], b[18:])
	copy(e.KeyVersion[:], b[34:])
	copy(e.AccessKey[:], b[50:])
	copy(e.Addr[:], b[66:])
	copy(e.User[:], b[82:])
	rest := b[fixedPartSize:]
	next := func() ([]byte, error) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) || k != uvarintLen(n) {
			return nil, fmt.Errorf("%w: record field length", ErrCorrupt)
		}
		v := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		return v, nil
	}
	for _, p := range []*string{&e.Reason, &e.Operation, &e.RequestID, &e.NodeID} {
		v, err := next()
		if err != nil {
			return e, err
		}
		*p = string(v)
	}
	v, err := next()
	if err != nil {
		return e, err
	}
	if len(v) > 0 {
		e.Sealed = append([]byte(nil), v...)
	}
	if (b[0] == aggregatedVersion) != (e.Kind == Aggregated) {
		return e, fmt.Errorf("%w: record version %d for kind %s", ErrCorrupt, b[0], e.Kind)
	}
	if e.Kind == Aggregated {
		if len(rest) < 2 {
			return e, fmt.Errorf("%w: aggregated record cut short", ErrCorrupt)
		}
		e.Of = Kind(rest[0])
		n, k := binary.Uvarint(rest[1:])
		if k <= 0 || k != uvarintLen(n) || n == 0 || !aggregatable(e.Of) {
			return e, fmt.Errorf("%w: aggregate of %d records of kind %s", ErrCorrupt, n, e.Of)
		}
		e.Count, rest = n, rest[1+k:]
	}
	if len(rest) != 0 {
		return e, fmt.Errorf("%w: %d trailing bytes in record", ErrCorrupt, len(rest))
	}
	return e, nil
}

// uvarintLen is the length of n's shortest uvarint, the only one accepted.
func uvarintLen(n uint64) int {
	k := 1
	for ; n >= 0x80; n >>= 7 {
		k++
	}
	return k
}

// aad binds the sealed fields to the clear ones that do not change after
// sealing (the sequence number is assigned later, by the writer; the Merkle
// tree binds it).
func (e *Entry) aad() []byte {
	b := make([]byte, 0, 64)
	b = append(b, "tresor audit record v1"...)
	b = append(b, e.Tenant[:]...)
	b = append(b, e.KeyVersion[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = append(b, byte(e.Kind))
	b = binary.AppendUvarint(b, uint64(len(e.RequestID)))
	b = append(b, e.RequestID...)
	if e.Kind == Aggregated {
		b = append(b, byte(e.Of))
		b = binary.AppendUvarint(b, e.Count)
	}
	return b
}

// seal builds the stored entry of r under keys k (key version kv).
func seal(r Record, kv [16]byte, k *recordKeys) (Entry, error) {
	e := Entry{
		Seq: r.Seq, Time: r.Time.UTC(), Kind: r.Kind, Tenant: r.Tenant, KeyVersion: kv,
		AccessKey: k.tokenOf(fieldAccessKey, r.AccessKeyID),
		Addr:      k.tokenOf(fieldAddr, r.SourceAddr),
		User:      k.tokenOf(fieldUser, r.User),
		Reason:    r.Reason, Operation: r.Operation, RequestID: r.RequestID, NodeID: r.NodeID,
		Of: r.Of, Count: r.Count,
	}
	var pt []byte
	for _, s := range []string{r.AccessKeyID, r.User, r.SourceAddr, r.Bucket} {
		pt = binary.AppendUvarint(pt, uint64(len(s)))
		pt = append(pt, s...)
	}
	nonce := make([]byte, k.seal.NonceSize(), k.seal.NonceSize()+len(pt)+k.seal.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Entry{}, err
	}
	e.Sealed = k.seal.Seal(nonce, nonce, pt, e.aad())
	return e, nil
}

// open decrypts e's personal fields with k.
func (e *Entry) open(k *recordKeys) (Record, error) {
	r := Record{
		Seq: e.Seq, Time: e.Time, Kind: e.Kind, Reason: e.Reason, Operation: e.Operation,
		Tenant: e.Tenant, RequestID: e.RequestID, NodeID: e.NodeID, Of: e.Of, Count: e.Count,
	}
	ns := k.seal.NonceSize()
	if len(e.Sealed) < ns {
		return r, fmt.Errorf("%w: sealed fields too short", ErrCorrupt)
	}
	pt, err := k.seal.Open(nil, e.Sealed[:ns], e.Sealed[ns:], e.aad())
	if err != nil {
		return r, fmt.Errorf("%w: record %d: sealed fields do not open", ErrCorrupt, e.Seq)
	}
	for _, p := range []*string{&r.AccessKeyID, &r.User, &r.SourceAddr, &r.Bucket} {
		n, k := binary.Uvarint(pt)
		if k <= 0 || n > uint64(len(pt)-k) {
			return r, fmt.Errorf("%w: record %d: sealed fields", ErrCorrupt, e.Seq)
		}
		*p = string(pt[k : k+int(n)])
		pt = pt[k+int(n):]
	}
	return r, nil
}

// aggregatable reports whether records of kind k may be counted into a
// summary: refusals, never a success or an admin action.
func aggregatable(k Kind) bool {
	return k == AuthFailure || k == AllowlistDeny || k == RateLimited
}

// validate checks a record given to Append (Aggregated ones are the
// log's own).
func validate(r Record) error {
	if r.Kind < AuthSuccess || r.Kind > RateLimited {
		return fmt.Errorf("%w: record kind %d", ErrInvalid, r.Kind)
	}
	if r.Of != 0 || r.Count != 0 {
		return fmt.Errorf("%w: Of and Count are for aggregated records", ErrInvalid)
	}
	if r.Aggregate && !aggregatable(r.Kind) {
		return fmt.Errorf("%w: a %s record cannot be aggregated", ErrInvalid, r.Kind)
	}
	for _, s := range []string{r.Reason, r.Operation, r.RequestID, r.NodeID, r.AccessKeyID, r.User, r.SourceAddr, r.Bucket} {
		if len(s) > maxStringField {
			return fmt.Errorf("%w: record field of %d bytes exceeds %d", ErrInvalid, len(s), maxStringField)
		}
	}
	return nil
}

// Opener decrypts entries' personal fields, caching the derived keys of
// each tenant key version it meets.
type Opener struct {
	keys   TenantKeys // nil: tenant fields stay sealed
	system *recordKeys
	cache  map[[32]byte]*recordKeys
}

// NewOpener returns an Opener over keys (may be nil) and the log's system
// key (may be nil: records without a tenant stay sealed).
func NewOpener(keys TenantKeys, systemKey []byte) (*Opener, error) {
	o := &Opener{keys: keys, cache: map[[32]byte]*recordKeys{}}
	if systemKey != nil {
		k, err := deriveKeys(systemKey)
		if err != nil {
			return nil, err
		}
		o.system = k
	}
	return o, nil
}

// Open decrypts e. Without the key it returns ErrNoKey and a Record with
// only the clear fields.
func (o *Opener) Open(ctx context.Context, e Entry) (Record, error) {
	k, err := o.keysFor(ctx, e.Tenant, e.KeyVersion)
	if err != nil {
		r := Record{Seq: e.Seq, Time: e.Time, Kind: e.Kind, Reason: e.Reason, Operation: e.Operation,
			Tenant: e.Tenant, RequestID: e.RequestID, NodeID: e.NodeID, Of: e.Of, Count: e.Count}
		return r, err
	}
	return e.open(k)
}

func (o *Opener) keysFor(ctx context.Context, tenant, version [16]byte) (*recordKeys, error) {
	if version == ([16]byte{}) {
		if o.system == nil {
			return nil, fmt.Errorf("%w: system key not given", ErrNoKey)
		}
		return o.system, nil
	}
	var ck [32]byte
	copy(ck[:], tenant[:])
	copy(ck[16:], version[:])
	if k, ok := o.cache[ck]; ok {
		if k == nil {
			return nil, ErrNoKey
		}
		return k, nil
	}
	if o.keys == nil {
		return nil, fmt.Errorf("%w: no tenant keys given", ErrNoKey)
	}
	secret, err := o.keys.Key(ctx, tenant, version)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		o.cache[ck] = nil
		return nil, errors.Join(ErrNoKey, err)
	}
	k, err := deriveKeys(secret)
	if err != nil {
		return nil, err
	}
	o.cache[ck] = k
	return k, nil
}
