package keystore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// AccessKeyState says whether an access key may sign requests.
type AccessKeyState string

// Access key states.
const (
	AccessKeyActive   AccessKeyState = "active"
	AccessKeyDisabled AccessKeyState = "disabled"
)

// AccessKey is a SigV4 credential of a user, with what the verifier needs
// to authorise the request it signed.
type AccessKey struct {
	ID string `json:"id"`
	// Secret is the secret access key. SigV4 needs it in clear, so it is
	// sealed, not hashed, in the store. Only CreateAccessKey and the
	// AccessKey lookup fill it.
	Secret   string `json:"-"`
	Tenant   ID     `json:"tenant"`
	User     ID     `json:"user"`
	UserName string `json:"user_name"`
	Role     Role   `json:"role"`
	// Confined and Grants are the user's (User.Confined, User.Grants).
	Confined bool            `json:"confined,omitempty"`
	Grants   map[string]Role `json:"grants,omitempty"`
	State    AccessKeyState  `json:"state"`
	Created  time.Time       `json:"created"`
	// Expires is when the key stops working; zero means never.
	Expires time.Time `json:"expires,omitzero"`
}

// accessKeyRecord is an access key as stored.
type accessKeyRecord struct {
	ID      string         `json:"id"`
	Tenant  ID             `json:"tenant"`
	User    ID             `json:"user"`
	State   AccessKeyState `json:"state"`
	Created time.Time      `json:"created"`
	Expires time.Time      `json:"expires,omitzero"`
	Sealed  []byte         `json:"sealed"`
}

func (r accessKeyRecord) public(u User) AccessKey {
	return AccessKey{
		ID: r.ID, Tenant: r.Tenant, User: r.User, UserName: u.Name, Role: u.Role, Confined: u.Confined, Grants: u.Grants,
		State: r.State, Created: r.Created, Expires: r.Expires,
	}
}

type createAccessKeyPayload struct {
	Key accessKeyRecord `json:"key"`
}

type setAccessKeyStatePayload struct {
	ID    string         `json:"id"`
	State AccessKeyState `json:"state"`
}

type deleteAccessKeyPayload struct {
	ID string `json:"id"`
}

// CreateAccessKey issues an access key for user. A zero expires means it
// never expires. The returned AccessKey carries the secret: it is the only
// time the caller sees it besides the verifier's lookups.
func (s *Store) CreateAccessKey(ctx context.Context, user ID, expires time.Time) (AccessKey, error) {
	u, err := s.User(ctx, user)
	if err != nil {
		return AccessKey{}, err
	}
	rec, secret, err := s.newAccessKey(u, expires)
	if err != nil {
		return AccessKey{}, err
	}
	var ak AccessKey
	if err := s.propose(ctx, OpCreateAccessKey, createAccessKeyPayload{Key: rec}, &ak); err != nil {
		return AccessKey{}, err
	}
	ak.Secret = secret
	return ak, nil
}

// newAccessKey draws an access key id and secret for u and seals the secret.
func (s *Store) newAccessKey(u User, expires time.Time) (accessKeyRecord, string, error) {
	id, err := randomAccessKeyID(s.rand)
	if err != nil {
		return accessKeyRecord{}, "", err
	}
	secret, err := randomSecretKey(s.rand)
	if err != nil {
		return accessKeyRecord{}, "", err
	}
	sealed, err := s.sealer.seal(s.rand, kindAccessKey, accessKeyIdentity(id, u.Tenant, u.ID), []byte(secret))
	if err != nil {
		return accessKeyRecord{}, "", err
	}
	if !expires.IsZero() {
		expires = expires.UTC()
	}
	return accessKeyRecord{
		ID: id, Tenant: u.Tenant, User: u.ID, State: AccessKeyActive,
		Created: s.now().UTC(), Expires: expires, Sealed: sealed,
	}, secret, nil
}

// AccessKey looks up an access key for the SigV4 verifier and returns it
// with its secret. It is on every request's path: one read transaction,
// three point reads and one AES-GCM open.
//
// An unknown id is ErrNotFound. A key that exists but must not sign is
// returned without its secret together with ErrDisabled (the key, or its
// tenant, is disabled or suspended) or ErrExpired, so the caller can audit
// whose key it was.
func (s *Store) AccessKey(ctx context.Context, id string) (AccessKey, error) {
	if len(id) != AccessKeyIDLength || !strings.HasPrefix(id, AccessKeyPrefix) {
		return AccessKey{}, fmt.Errorf("%w: access key %q", ErrNotFound, id)
	}
	var (
		rec accessKeyRecord
		u   User
		t   Tenant
	)
	err := s.view(ctx, func(txn *badger.Txn) error {
		ok, err := read(txn, accessKeyKey(id), &rec)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: access key %q", ErrNotFound, id)
		}
		if u, err = readUser(txn, rec.User); err != nil {
			return err
		}
		t, err = readTenant(txn, rec.Tenant)
		return err
	})
	if err != nil {
		return AccessKey{}, err
	}
	ak := rec.public(u)
	switch {
	case t.State != TenantActive:
		return ak, fmt.Errorf("%w: access key %q: tenant is %s", ErrDisabled, id, t.State)
	case rec.State != AccessKeyActive:
		return ak, fmt.Errorf("%w: access key %q", ErrDisabled, id)
	case !rec.Expires.IsZero() && !s.now().Before(rec.Expires):
		return ak, fmt.Errorf("%w: access key %q expired at %s", ErrExpired, id, rec.Expires.Format(time.RFC3339))
	}
	secret, err := s.sealer.open(kindAccessKey, accessKeyIdentity(rec.ID, rec.Tenant, rec.User), rec.Sealed)
	if err != nil {
		return AccessKey{}, err
	}
	ak.Secret = string(secret)
	return ak, nil
}

// AccessKeys lists user's access keys, without secrets, in id order.
func (s *Store) AccessKeys(ctx context.Context, user ID) ([]AccessKey, error) {
	var aks []AccessKey
	err := s.view(ctx, func(txn *badger.Txn) error {
		u, err := readUser(txn, user)
		if err != nil {
			return err
		}
		prefix := key(pfxUserAccess, user[:])
		return scan(txn, prefix, func(k, _ []byte) (bool, error) {
			var rec accessKeyRecord
			ok, err := read(txn, accessKeyKey(string(k[len(prefix):])), &rec)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, fmt.Errorf("keystore: access key index %q dangles (corrupt store)", k[len(prefix):])
			}
			aks = append(aks, rec.public(u))
			return true, nil
		})
	})
	return aks, err
}

// SetAccessKeyState enables or disables an access key.
func (s *Store) SetAccessKeyState(ctx context.Context, id string, state AccessKeyState) error {
	return s.propose(ctx, OpSetAccessKeyState, setAccessKeyStatePayload{ID: id, State: state}, nil)
}

// DeleteAccessKey removes an access key for good.
func (s *Store) DeleteAccessKey(ctx context.Context, id string) error {
	return s.propose(ctx, OpDeleteAccessKey, deleteAccessKeyPayload{ID: id}, nil)
}

// validNew checks what a new access key record, a tenant user's or an
// operator's, must be.
func (r accessKeyRecord) validNew() error {
	if !validAccessKeyID(r.ID) {
		return reject(CodeInvalid, "access key id %q: want %s and %d base32 characters", r.ID, AccessKeyPrefix, AccessKeyIDLength-len(AccessKeyPrefix))
	}
	if r.State != AccessKeyActive {
		return reject(CodeInvalid, "a new access key must be active")
	}
	if len(r.Sealed) != SecretKeyLength+sealOverhead {
		return reject(CodeInvalid, "sealed secret of %d bytes, want %d", len(r.Sealed), SecretKeyLength+sealOverhead)
	}
	if !r.Expires.IsZero() && !r.Expires.After(r.Created) {
		return reject(CodeInvalid, "access key would expire before it is created")
	}
	return nil
}

func applyCreateAccessKey(a *applyCtx, p createAccessKeyPayload) (any, error) {
	return createAccessKey(a, p.Key)
}

func createAccessKey(a *applyCtx, r accessKeyRecord) (AccessKey, error) {
	if err := r.validNew(); err != nil {
		return AccessKey{}, err
	}
	var u User
	if !a.get(userKey(r.User), &u) || u.Tenant != r.Tenant {
		return AccessKey{}, reject(CodeNotFound, "user %s of tenant %s", r.User, r.Tenant)
	}
	if _, err := liveTenant(a, r.Tenant); err != nil {
		return AccessKey{}, err
	}
	if a.exists(accessKeyKey(r.ID)) {
		return AccessKey{}, reject(CodeExists, "access key %q is taken", r.ID)
	}
	a.put(accessKeyKey(r.ID), r)
	a.putRaw(userAccessKey(r.User, r.ID), nil)
	return r.public(u), nil
}

func applySetAccessKeyState(a *applyCtx, p setAccessKeyStatePayload) (any, error) {
	if p.State != AccessKeyActive && p.State != AccessKeyDisabled {
		return nil, reject(CodeInvalid, "access key state %q: want %q or %q", p.State, AccessKeyActive, AccessKeyDisabled)
	}
	var r accessKeyRecord
	if !a.get(accessKeyKey(p.ID), &r) {
		return nil, reject(CodeNotFound, "access key %q", p.ID)
	}
	r.State = p.State
	a.put(accessKeyKey(r.ID), r)
	return nil, nil
}

func applyDeleteAccessKey(a *applyCtx, p deleteAccessKeyPayload) (any, error) {
	var r accessKeyRecord
	if !a.get(accessKeyKey(p.ID), &r) {
		return nil, reject(CodeNotFound, "access key %q", p.ID)
	}
	a.del(accessKeyKey(r.ID))
	a.del(userAccessKey(r.User, r.ID))
	return nil, nil
}

func validAccessKeyID(id string) bool {
	if len(id) != AccessKeyIDLength || !strings.HasPrefix(id, AccessKeyPrefix) {
		return false
	}
	_, err := accessKeyEncoding.DecodeString(id[len(AccessKeyPrefix):])
	return err == nil
}
