package keystore

import (
	"context"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// KeyState is a tenant key version's place in its lifecycle (DESIGN.md
// section 4):
//
//	active -> decrypt-only -> disabled <-> scheduled-for-destroy -> destroyed
//	                 ^------------'
//
// Exactly one version per tenant is active (takes new writes); RotateKey
// makes a new one active and the previous one decrypt-only. Disabling is
// immediate and reversible; destruction needs a schedule at least
// MinDestroyGrace ahead, and erases the sealed secret.
type KeyState string

// Key version states.
const (
	KeyActive      KeyState = "active"
	KeyDecryptOnly KeyState = "decrypt-only"
	KeyDisabled    KeyState = "disabled"
	KeyScheduled   KeyState = "scheduled-for-destroy"
	KeyDestroyed   KeyState = "destroyed"
)

// MinDestroyGrace is the shortest time between scheduling a key version's
// destruction and carrying it out, so a mistaken shred can be cancelled
// (DESIGN.md section 8, trap 7). Apply enforces it.
const MinDestroyGrace = 24 * time.Hour

// KeyVersion describes a tenant key version; its secret never leaves the
// store except through ActiveKey and Key.
type KeyVersion struct {
	Tenant  ID        `json:"tenant"`
	ID      ID        `json:"id"`
	State   KeyState  `json:"state"`
	Created time.Time `json:"created"`
	// Changed is when the state last changed (the proposer's clock).
	Changed time.Time `json:"changed"`
	// DestroyAfter is when a scheduled destruction may be carried out.
	DestroyAfter time.Time `json:"destroy_after,omitzero"`
}

// keyRecord is a key version as stored, with its sealed secret (nil once
// destroyed).
type keyRecord struct {
	KeyVersion
	Sealed []byte `json:"sealed,omitempty"`
}

type rotateKeyPayload struct {
	Tenant ID        `json:"tenant"`
	Key    ID        `json:"key"`
	Sealed []byte    `json:"sealed"`
	At     time.Time `json:"at"`
}

type setKeyStatePayload struct {
	Tenant       ID        `json:"tenant"`
	Key          ID        `json:"key"`
	State        KeyState  `json:"state"`
	At           time.Time `json:"at"`
	DestroyAfter time.Time `json:"destroy_after,omitzero"`
}

// newTenantKey draws a key version id and a 256-bit secret and seals it for
// tenant. The clear secret is wiped before return: it exists only here and,
// later, in the cache of nodes that unseal it.
func (s *Store) newTenantKey(tenant ID) (ID, []byte, error) {
	id, err := randomID(s.rand)
	if err != nil {
		return ID{}, nil, err
	}
	secret, err := randomBytes(s.rand, tenantKeySecretLen)
	if err != nil {
		return ID{}, nil, err
	}
	defer clear(secret)
	sealed, err := s.sealer.seal(s.rand, kindTenantKey, tenantKeyIdentity(tenant, id), secret)
	if err != nil {
		return ID{}, nil, err
	}
	return id, sealed, nil
}

// RotateKey makes a new key version the tenant's active one; the previous
// active version becomes decrypt-only.
func (s *Store) RotateKey(ctx context.Context, tenant ID) (KeyVersion, error) {
	id, sealed, err := s.newTenantKey(tenant)
	if err != nil {
		return KeyVersion{}, err
	}
	var kv KeyVersion
	err = s.propose(ctx, OpRotateKey, rotateKeyPayload{Tenant: tenant, Key: id, Sealed: sealed, At: s.now().UTC()}, &kv)
	return kv, err
}

// DisableKey stops a decrypt-only key version from decrypting, at once and
// reversibly (EnableKey). The active version cannot be disabled (ErrState):
// rotate first.
func (s *Store) DisableKey(ctx context.Context, tenant, id ID) error {
	return s.setKeyState(ctx, tenant, id, KeyDisabled)
}

// EnableKey returns a disabled key version to decrypt-only.
func (s *Store) EnableKey(ctx context.Context, tenant, id ID) error {
	return s.setKeyState(ctx, tenant, id, KeyDecryptOnly)
}

// ScheduleKeyDestroy schedules a disabled key version for destruction after
// grace (at least MinDestroyGrace). CancelKeyDestroy undoes it.
//
// The clock is read once, for both the command's time and the destruction
// time that apply compares with it: read twice, a grace of exactly
// MinDestroyGrace (the default) came out short by the nanoseconds between
// the reads and was refused.
func (s *Store) ScheduleKeyDestroy(ctx context.Context, tenant, id ID, grace time.Duration) error {
	now := s.now().UTC()
	p := setKeyStatePayload{Tenant: tenant, Key: id, State: KeyScheduled, At: now, DestroyAfter: now.Add(grace)}
	return s.propose(ctx, OpSetKeyState, p, nil)
}

// CancelKeyDestroy returns a scheduled key version to disabled.
func (s *Store) CancelKeyDestroy(ctx context.Context, tenant, id ID) error {
	return s.setKeyState(ctx, tenant, id, KeyDisabled)
}

// DestroyKey crypto-shreds a key version whose scheduled time has passed:
// its sealed secret is erased from the current state, and everything
// encrypted under it is unreadable for good.
//
// TODO(shred): append to the signed shred ledger; remnants in older Badger
// tables vanish with compaction and become unreadable when the storage epoch
// they were sealed under is retired.
func (s *Store) DestroyKey(ctx context.Context, tenant, id ID) error {
	return s.setKeyState(ctx, tenant, id, KeyDestroyed)
}

func (s *Store) setKeyState(ctx context.Context, tenant, id ID, state KeyState) error {
	return s.propose(ctx, OpSetKeyState, setKeyStatePayload{Tenant: tenant, Key: id, State: state, At: s.now().UTC()}, nil)
}

// KeyVersions lists a tenant's key versions, in id order. Unlike other
// reads it answers for deleted tenants too, whose versions remain to be
// destroyed.
func (s *Store) KeyVersions(ctx context.Context, tenant ID) ([]KeyVersion, error) {
	var kvs []KeyVersion
	err := s.view(ctx, func(txn *badger.Txn) error {
		var t Tenant
		ok, err := read(txn, tenantKey(tenant), &t)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: tenant %s", ErrNotFound, tenant)
		}
		return scan(txn, key(pfxKey, tenant[:]), func(_, v []byte) (bool, error) {
			var r keyRecord
			if err := jsonDecode(v, &r); err != nil {
				return false, err
			}
			kvs = append(kvs, r.KeyVersion)
			return true, nil
		})
	})
	return kvs, err
}

// ActiveKey returns the id and 32-byte secret of the tenant's key version
// that takes new writes. It is the envelope's key provider method. A
// suspended tenant gets ErrDisabled, an unknown or deleted one ErrNotFound.
// The caller may keep and wipe the returned secret: it is a copy.
func (s *Store) ActiveKey(ctx context.Context, tenant [16]byte) (id [16]byte, secret []byte, err error) {
	now := s.now()
	if ok, err := s.cacheServes(ctx); err != nil {
		return [16]byte{}, nil, err
	} else if ok {
		if id, secret, ok := s.keys.getActive(tenant, now); ok {
			return id, secret, nil
		}
	}
	gen := s.keys.generation()
	var r keyRecord
	err = s.view(ctx, func(txn *badger.Txn) error {
		t, err := readUsableTenant(txn, tenant)
		if err != nil {
			return err
		}
		ok, err := read(txn, keyVersionKey(tenant, t.ActiveKey), &r)
		if err != nil {
			return err
		}
		if !ok || r.State != KeyActive {
			return fmt.Errorf("keystore: tenant %s: active key version %s missing or not active (corrupt store)", ID(tenant), t.ActiveKey)
		}
		return nil
	})
	if err != nil {
		return [16]byte{}, nil, err
	}
	secret, err = s.sealer.open(kindTenantKey, tenantKeyIdentity(tenant, r.ID), r.Sealed)
	if err != nil {
		return [16]byte{}, nil, err
	}
	s.keys.putActive(gen, tenant, r.ID, secret, now)
	s.keys.putSecret(gen, tenant, r.ID, secret, now)
	return r.ID, secret, nil
}

// Key returns the secret of key version id of tenant if it may still
// decrypt (active or decrypt-only). A disabled or scheduled version is
// ErrDisabled, a destroyed one ErrDestroyed, an unknown one ErrNotFound. It
// is the envelope's key provider method; the secret is a copy.
func (s *Store) Key(ctx context.Context, tenant, id [16]byte) (secret []byte, err error) {
	now := s.now()
	if ok, err := s.cacheServes(ctx); err != nil {
		return nil, err
	} else if ok {
		if secret, ok := s.keys.getSecret(tenant, id, now); ok {
			return secret, nil
		}
	}
	gen := s.keys.generation()
	var r keyRecord
	err = s.view(ctx, func(txn *badger.Txn) error {
		if _, err := readUsableTenant(txn, tenant); err != nil {
			return err
		}
		ok, err := read(txn, keyVersionKey(tenant, id), &r)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: key version %s of tenant %s", ErrNotFound, ID(id), ID(tenant))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch r.State {
	case KeyActive, KeyDecryptOnly:
	case KeyDestroyed:
		return nil, fmt.Errorf("%w: key version %s of tenant %s", ErrDestroyed, ID(id), ID(tenant))
	default:
		return nil, fmt.Errorf("%w: key version %s of tenant %s is %s", ErrDisabled, ID(id), ID(tenant), r.State)
	}
	secret, err = s.sealer.open(kindTenantKey, tenantKeyIdentity(tenant, id), r.Sealed)
	if err != nil {
		return nil, err
	}
	s.keys.putSecret(gen, tenant, id, secret, now)
	return secret, nil
}

// cacheServes reports whether the key cache may answer a read at ctx's
// level. The cache stands in for a local read, so it passes the same
// staleness barrier first: without it a node cut off from the leader would
// keep decrypting from warm entries for a whole KeyCacheTTL, past the
// MaxStaleness that the destroy bound promises (DESIGN.md section 4).
// Stricter levels skip the cache and read the store.
func (s *Store) cacheServes(ctx context.Context) (bool, error) {
	if readLevel(ctx) != ReadLocal {
		return false, nil
	}
	if err := s.log.Barrier(ctx, ReadLocal); err != nil {
		return false, fmt.Errorf("keystore: read barrier: %w", err)
	}
	return true, nil
}

// readUsableTenant reads a tenant whose keys may be used: active.
func readUsableTenant(txn *badger.Txn, id ID) (Tenant, error) {
	t, err := readTenant(txn, id)
	if err != nil {
		return Tenant{}, err
	}
	if t.State != TenantActive {
		return Tenant{}, fmt.Errorf("%w: tenant %s is %s", ErrDisabled, id, t.State)
	}
	return t, nil
}

// checkNewKey validates a new key version's id and sealed secret.
func checkNewKey(a *applyCtx, id ID, sealed []byte) error {
	if id.IsZero() {
		return reject(CodeInvalid, "zero key id")
	}
	if len(sealed) != tenantKeySecretLen+sealOverhead {
		return reject(CodeInvalid, "sealed key of %d bytes, want %d", len(sealed), tenantKeySecretLen+sealOverhead)
	}
	if a.exists(keyIDKey(id)) {
		return reject(CodeExists, "key id %s is taken", id)
	}
	return nil
}

func putKeyVersion(a *applyCtx, r keyRecord) {
	a.put(keyVersionKey(r.Tenant, r.ID), r)
	a.putRaw(keyIDKey(r.ID), r.Tenant[:])
}

func applyRotateKey(a *applyCtx, p rotateKeyPayload) (any, error) {
	t, err := liveTenant(a, p.Tenant)
	if err != nil {
		return nil, err
	}
	if err := checkNewKey(a, p.Key, p.Sealed); err != nil {
		return nil, err
	}
	var prev keyRecord
	if !a.get(keyVersionKey(t.ID, t.ActiveKey), &prev) {
		panic(fmt.Sprintf("keystore: apply: tenant %s has no active key record %s", t.ID, t.ActiveKey))
	}
	prev.State, prev.Changed = KeyDecryptOnly, p.At
	a.put(keyVersionKey(t.ID, prev.ID), prev)
	next := keyRecord{
		KeyVersion: KeyVersion{Tenant: t.ID, ID: p.Key, State: KeyActive, Created: p.At, Changed: p.At},
		Sealed:     p.Sealed,
	}
	putKeyVersion(a, next)
	t.ActiveKey = p.Key
	a.put(tenantKey(t.ID), t)
	a.changed = append(a.changed, t.ID)
	return next.KeyVersion, nil
}

// keyTransitions lists the allowed state changes; apply refuses the rest.
var keyTransitions = map[KeyState][]KeyState{
	KeyDecryptOnly: {KeyDisabled},
	KeyDisabled:    {KeyDecryptOnly, KeyScheduled},
	KeyScheduled:   {KeyDisabled, KeyDestroyed},
}

func applySetKeyState(a *applyCtx, p setKeyStatePayload) (any, error) {
	// Deleted tenants included: shredding their keys is what deletion
	// leads to.
	var t Tenant
	if !a.get(tenantKey(p.Tenant), &t) {
		return nil, reject(CodeNotFound, "tenant %s", p.Tenant)
	}
	var r keyRecord
	if !a.get(keyVersionKey(t.ID, p.Key), &r) {
		return nil, reject(CodeNotFound, "key version %s of tenant %s", p.Key, t.ID)
	}
	allowed := false
	for _, s := range keyTransitions[r.State] {
		allowed = allowed || s == p.State
	}
	if !allowed {
		if r.State == KeyActive {
			return nil, reject(CodeState, "key version %s is active: rotate before changing its state", p.Key)
		}
		return nil, reject(CodeState, "key version %s: %s -> %s is not allowed", p.Key, r.State, p.State)
	}
	switch p.State {
	case KeyScheduled:
		if p.DestroyAfter.Sub(p.At) < MinDestroyGrace {
			return nil, reject(CodeInvalid, "destruction must be scheduled at least %v ahead", MinDestroyGrace)
		}
		r.DestroyAfter = p.DestroyAfter
	case KeyDestroyed:
		if p.At.Before(r.DestroyAfter) {
			return nil, reject(CodeState, "key version %s may be destroyed after %s", p.Key, r.DestroyAfter.Format(time.RFC3339))
		}
		r.Sealed = nil
	default:
		r.DestroyAfter = time.Time{}
	}
	r.State, r.Changed = p.State, p.At
	a.put(keyVersionKey(t.ID, r.ID), r)
	a.changed = append(a.changed, t.ID)
	return r.KeyVersion, nil
}
