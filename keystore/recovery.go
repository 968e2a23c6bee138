package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// A tenant's admins are its own: once its first admin exists, nobody but
// the tenant creates another. Two commands create admins besides a tenant
// admin's own CreateUser:
//
//   - CreateFirstAdmin, the operator's onboarding, works once per tenant: on
//     a tenant that has never had an admin (Tenant.Onboarded), has no user
//     and owns no bucket. So an operator who deletes a tenant's admins
//     cannot onboard itself a new one and read the tenant's data.
//   - RecoverTenant creates an admin for a tenant left without one, on the
//     strength of the tenant's recovery key: a credential issued once,
//     with the first admin, to the tenant alone (the admin API seals it to
//     the admin's public key), that signs nothing but a recovery, and that
//     is replaced by a new one each time it is used.
//
// A recovery key is a SigV4 credential (RecoveryKeyPrefix and 16 base32
// characters, a 40-character secret, the access key format), so that the
// recovery request is signed as any admin request and its body, the new
// admin's name and public key, cannot be changed by whoever relays it. Its
// secret is sealed under the storage key like an access key's (SigV4 needs
// it in clear), and it is kept apart from access keys: Store.AccessKey and
// Store.OperatorKey never resolve it, so it signs nothing on the S3 API and
// nothing but a recovery on the admin API (RecoveryKey is its lookup).
//
// Records: rk/<tenant id> holds the tenant's one recovery key (sealed),
// rki/<recovery key id> the tenant id it belongs to.
const (
	pfxRecovery   = "rk/"
	pfxRecoveryID = "rki/"
)

// RecoveryKeyPrefix starts every recovery key id.
const RecoveryKeyPrefix = "TRRC"

// RoleRecovery is the role of a principal signing with a tenant's recovery
// key. No user has it (CreateUser refuses it), and the S3 API never meets
// it.
const RoleRecovery Role = "recovery"

// kindRecoveryKey is the sealed record kind of a recovery key's secret.
const kindRecoveryKey = "recovery-key"

// RecoveryKey is a tenant's recovery key. Secret is filled only by the
// commands that issue one and by the RecoveryKey lookup.
type RecoveryKey struct {
	ID      string    `json:"id"`
	Secret  string    `json:"-"`
	Tenant  ID        `json:"tenant"`
	Created time.Time `json:"created"`
}

type recoveryRecord struct {
	ID      string    `json:"id"`
	Tenant  ID        `json:"tenant"`
	Created time.Time `json:"created"`
	Sealed  []byte    `json:"sealed"`
}

// AdminCredentials answer the creation of a tenant admin by CreateFirstAdmin
// or RecoverTenant: the user, its access key and the tenant's new recovery
// key, both with their secrets, which are not shown again.
type AdminCredentials struct {
	User     User
	Key      AccessKey
	Recovery RecoveryKey
}

type createFirstAdminPayload struct {
	User     User            `json:"user"`
	Key      accessKeyRecord `json:"key"`
	Recovery recoveryRecord  `json:"recovery"`
}

type recoverTenantPayload struct {
	// Used is the recovery key the request was signed with: the recovery
	// is refused unless it is still the tenant's.
	Used string `json:"used"`
	// At is the proposer's clock, against which admins' access keys are
	// judged usable.
	At       time.Time       `json:"at"`
	User     User            `json:"user"`
	Key      accessKeyRecord `json:"key"`
	Recovery recoveryRecord  `json:"recovery"`
}

type rotateRecoveryKeyPayload struct {
	Recovery recoveryRecord `json:"recovery"`
}

// CreateFirstAdmin creates the first admin of tenant, named name, with one
// access key (a zero expires never expires) and the tenant's recovery key,
// in one command. It is refused (ErrState) on a tenant that has ever had
// an admin, has any user or owns any bucket: an operator onboards a tenant
// once, and cannot come back into it later.
func (s *Store) CreateFirstAdmin(ctx context.Context, tenant ID, name string, expires time.Time) (AdminCredentials, error) {
	u, rec, secret, err := s.newAdmin(tenant, name, expires)
	if err != nil {
		return AdminCredentials{}, err
	}
	rk, rsecret, err := s.newRecoveryKey(tenant)
	if err != nil {
		return AdminCredentials{}, err
	}
	if err := s.propose(ctx, OpCreateFirstAdmin, createFirstAdminPayload{User: u, Key: rec, Recovery: rk}, nil); err != nil {
		return AdminCredentials{}, err
	}
	return adminCredentials(u, rec, secret, rk, rsecret), nil
}

// RecoverTenant creates an admin named name for tenant on the authority of
// its recovery key used (the one the request was signed with), and replaces
// that key with a new one, returned with the admin's access key. It is
// refused (ErrState) if used is no longer the tenant's recovery key, or if
// the tenant still has an admin with a usable access key (its admins
// manage the team; an operator may disable or delete the keys of admins
// who are gone, at the tenant's request).
func (s *Store) RecoverTenant(ctx context.Context, tenant ID, used, name string, expires time.Time) (AdminCredentials, error) {
	u, rec, secret, err := s.newAdmin(tenant, name, expires)
	if err != nil {
		return AdminCredentials{}, err
	}
	rk, rsecret, err := s.newRecoveryKey(tenant)
	if err != nil {
		return AdminCredentials{}, err
	}
	p := recoverTenantPayload{Used: used, At: s.now().UTC(), User: u, Key: rec, Recovery: rk}
	if err := s.propose(ctx, OpRecoverTenant, p, nil); err != nil {
		return AdminCredentials{}, err
	}
	s.logger.Info("tenant recovered with its recovery key", "tenant", tenant, "user", u.ID)
	return adminCredentials(u, rec, secret, rk, rsecret), nil
}

// RotateRecoveryKey issues tenant a new recovery key, which replaces the
// one it had (if any: tenants created before recovery keys existed get
// their first this way), and returns it with its secret.
func (s *Store) RotateRecoveryKey(ctx context.Context, tenant ID) (RecoveryKey, error) {
	rk, secret, err := s.newRecoveryKey(tenant)
	if err != nil {
		return RecoveryKey{}, err
	}
	if err := s.propose(ctx, OpRotateRecoveryKey, rotateRecoveryKeyPayload{Recovery: rk}, nil); err != nil {
		return RecoveryKey{}, err
	}
	out := rk.public()
	out.Secret = secret
	return out, nil
}

// TenantRecoveryKey returns tenant's recovery key without its secret;
// ErrNotFound if it has none.
func (s *Store) TenantRecoveryKey(ctx context.Context, tenant ID) (RecoveryKey, error) {
	var r recoveryRecord
	err := s.view(ctx, func(txn *badger.Txn) error {
		if _, err := readTenant(txn, tenant); err != nil {
			return err
		}
		ok, err := read(txn, recoveryKey(tenant), &r)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: recovery key of tenant %s", ErrNotFound, tenant)
		}
		return nil
	})
	if err != nil {
		return RecoveryKey{}, err
	}
	return r.public(), nil
}

// RecoveryKey looks up a recovery key by id for the admin API's verifier
// and returns it with its secret. An unknown or replaced key, or one of a
// deleted tenant, is ErrNotFound; one of a suspended tenant is returned
// without its secret with ErrDisabled.
func (s *Store) RecoveryKey(ctx context.Context, id string) (RecoveryKey, error) {
	if !validRecoveryKeyID(id) {
		return RecoveryKey{}, fmt.Errorf("%w: recovery key %q", ErrNotFound, id)
	}
	var (
		r recoveryRecord
		t Tenant
	)
	err := s.view(ctx, func(txn *badger.Txn) error {
		item, err := txn.Get(recoveryIDKey(id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: recovery key %q", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("keystore: read: %w", err)
		}
		var tenant ID
		if err := item.Value(func(v []byte) error { copy(tenant[:], v); return nil }); err != nil {
			return fmt.Errorf("keystore: read: %w", err)
		}
		if t, err = readTenant(txn, tenant); err != nil {
			return err
		}
		ok, err := read(txn, recoveryKey(tenant), &r)
		if err != nil {
			return err
		}
		if !ok || r.ID != id {
			return fmt.Errorf("keystore: recovery key index %q dangles (corrupt store)", id)
		}
		return nil
	})
	if err != nil {
		return RecoveryKey{}, err
	}
	rk := r.public()
	if t.State != TenantActive {
		return rk, fmt.Errorf("%w: recovery key %q: tenant is %s", ErrDisabled, id, t.State)
	}
	secret, err := s.sealer.open(kindRecoveryKey, recoveryKeyIdentity(r.ID, r.Tenant), r.Sealed)
	if err != nil {
		return RecoveryKey{}, err
	}
	rk.Secret = string(secret)
	return rk, nil
}

// newAdmin draws a tenant admin and its access key.
func (s *Store) newAdmin(tenant ID, name string, expires time.Time) (User, accessKeyRecord, string, error) {
	uid, err := randomID(s.rand)
	if err != nil {
		return User{}, accessKeyRecord{}, "", err
	}
	u := User{ID: uid, Tenant: tenant, Name: name, Role: RoleAdmin, Created: s.now().UTC()}
	rec, secret, err := s.newAccessKey(u, expires)
	return u, rec, secret, err
}

// newRecoveryKey draws a recovery key for tenant and seals its secret.
func (s *Store) newRecoveryKey(tenant ID) (recoveryRecord, string, error) {
	b, err := randomBytes(s.rand, accessKeyIDRandom)
	if err != nil {
		return recoveryRecord{}, "", err
	}
	id := RecoveryKeyPrefix + accessKeyEncoding.EncodeToString(b)
	secret, err := randomSecretKey(s.rand)
	if err != nil {
		return recoveryRecord{}, "", err
	}
	sealed, err := s.sealer.seal(s.rand, kindRecoveryKey, recoveryKeyIdentity(id, tenant), []byte(secret))
	if err != nil {
		return recoveryRecord{}, "", err
	}
	return recoveryRecord{ID: id, Tenant: tenant, Created: s.now().UTC(), Sealed: sealed}, secret, nil
}

func adminCredentials(u User, rec accessKeyRecord, secret string, rk recoveryRecord, rsecret string) AdminCredentials {
	ak := rec.public(u)
	ak.Secret = secret
	r := rk.public()
	r.Secret = rsecret
	return AdminCredentials{User: u, Key: ak, Recovery: r}
}

func (r recoveryRecord) public() RecoveryKey {
	return RecoveryKey{ID: r.ID, Tenant: r.Tenant, Created: r.Created}
}

func applyCreateFirstAdmin(a *applyCtx, p createFirstAdminPayload) (any, error) {
	t, err := liveTenant(a, p.User.Tenant)
	if err != nil {
		return nil, err
	}
	switch {
	case t.Onboarded:
		return nil, reject(CodeState, "tenant %s has had an admin: only its admins, or its recovery key, create admins now", t.Name)
	case a.anyWithPrefix(key(pfxUserName, t.ID[:])):
		return nil, reject(CodeState, "tenant %s has users: only its admins, or its recovery key, create admins", t.Name)
	case a.anyWithPrefix(key(pfxTenantBucket, t.ID[:])):
		return nil, reject(CodeState, "tenant %s owns buckets: only its recovery key creates an admin", t.Name)
	}
	if err := newAdminRecords(a, p.User, p.Key, p.Recovery); err != nil {
		return nil, err
	}
	t.Onboarded = true
	a.put(tenantKey(t.ID), t)
	return nil, nil
}

func applyRecoverTenant(a *applyCtx, p recoverTenantPayload) (any, error) {
	t, err := liveTenant(a, p.User.Tenant)
	if err != nil {
		return nil, err
	}
	if t.State != TenantActive {
		return nil, reject(CodeDisabled, "tenant %s is %s", t.Name, t.State)
	}
	var cur recoveryRecord
	if !a.get(recoveryKey(t.ID), &cur) || cur.ID != p.Used {
		return nil, reject(CodeState, "recovery key %q is not tenant %s's (used or replaced)", p.Used, t.Name)
	}
	if name, ok := usableAdmin(a, t.ID, p.At); ok {
		return nil, reject(CodeState, "tenant %s has an admin with a usable access key (%s): recovery is for a tenant that has none", t.Name, name)
	}
	if err := newAdminRecords(a, p.User, p.Key, p.Recovery); err != nil {
		return nil, err
	}
	if !t.Onboarded {
		t.Onboarded = true
		a.put(tenantKey(t.ID), t)
	}
	return nil, nil
}

func applyRotateRecoveryKey(a *applyCtx, p rotateRecoveryKeyPayload) (any, error) {
	if _, err := liveTenant(a, p.Recovery.Tenant); err != nil {
		return nil, err
	}
	return nil, putRecoveryKey(a, p.Recovery)
}

// newAdminRecords creates admin u of its tenant, its access key and the
// tenant's recovery key r, which replaces any other.
func newAdminRecords(a *applyCtx, u User, k accessKeyRecord, r recoveryRecord) error {
	if u.Role != RoleAdmin {
		return reject(CodeInvalid, "role %q: this command creates admins", u.Role)
	}
	if k.Tenant != u.Tenant || k.User != u.ID || r.Tenant != u.Tenant {
		return reject(CodeInvalid, "admin records disagree on tenant or user")
	}
	if _, err := createUser(a, u); err != nil {
		return err
	}
	if _, err := createAccessKey(a, k); err != nil {
		return err
	}
	return putRecoveryKey(a, r)
}

// putRecoveryKey makes r its tenant's recovery key; the one before it stops
// working.
func putRecoveryKey(a *applyCtx, r recoveryRecord) error {
	if !validRecoveryKeyID(r.ID) {
		return reject(CodeInvalid, "recovery key id %q: want %s and %d base32 characters", r.ID, RecoveryKeyPrefix, AccessKeyIDLength-len(RecoveryKeyPrefix))
	}
	if r.Tenant.IsZero() {
		return reject(CodeInvalid, "recovery key of the zero tenant")
	}
	if len(r.Sealed) != SecretKeyLength+sealOverhead {
		return reject(CodeInvalid, "sealed recovery secret of %d bytes, want %d", len(r.Sealed), SecretKeyLength+sealOverhead)
	}
	if a.exists(recoveryIDKey(r.ID)) {
		return reject(CodeExists, "recovery key %q is taken", r.ID)
	}
	var old recoveryRecord
	if a.get(recoveryKey(r.Tenant), &old) {
		a.del(recoveryIDKey(old.ID))
	}
	a.put(recoveryKey(r.Tenant), r)
	a.putRaw(recoveryIDKey(r.ID), r.Tenant[:])
	return nil
}

// usableAdmin returns the name of an admin of tenant holding an access key
// that is active and unexpired at at, if there is one.
func usableAdmin(a *applyCtx, tenant ID, at time.Time) (string, bool) {
	prefix := key(pfxUserName, tenant[:])
	for _, k := range a.keysWithPrefix(prefix) {
		item, err := a.txn.Get(k)
		must(err, "get user index")
		var id ID
		must(item.Value(func(v []byte) error { copy(id[:], v); return nil }), "read user index")
		var u User
		if !a.get(userKey(id), &u) || u.Role != RoleAdmin {
			continue
		}
		akPrefix := key(pfxUserAccess, id[:])
		for _, ak := range a.keysWithPrefix(akPrefix) {
			var r accessKeyRecord
			if a.get(accessKeyKey(string(ak[len(akPrefix):])), &r) && r.State == AccessKeyActive && (r.Expires.IsZero() || at.Before(r.Expires)) {
				return u.Name, true
			}
		}
	}
	return "", false
}

func recoveryKey(tenant ID) []byte   { return key(pfxRecovery, tenant[:]) }
func recoveryIDKey(id string) []byte { return key(pfxRecoveryID, []byte(id)) }

// recoveryKeyIdentity is the additional data identity of a recovery key's
// secret.
func recoveryKeyIdentity(id string, tenant ID) []byte {
	b := make([]byte, 0, len(id)+1+16)
	b = append(b, id...)
	b = append(b, 0)
	return append(b, tenant[:]...)
}

func validRecoveryKeyID(id string) bool {
	if len(id) != AccessKeyIDLength || !strings.HasPrefix(id, RecoveryKeyPrefix) {
		return false
	}
	_, err := accessKeyEncoding.DecodeString(id[len(RecoveryKeyPrefix):])
	return err == nil
}
