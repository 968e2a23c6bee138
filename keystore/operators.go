package keystore

import (
	"context"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Operators administer the gateway: they create, suspend and resume
// tenants and set the global IP allowlists, and they see no tenant data
// (DESIGN.md section 6).
//
// An operator is a User in the operator scope, OperatorScope: the zero
// tenant id, which no tenant can have (CreateTenant refuses zero ids), with
// RoleOperator. Operators therefore reuse the user and access key tables
// (u/, un/<zero id><name>, a/, ua/), so their names are unique among
// operators, their access key ids are unique across the gateway, and
// AccessKeys, SetAccessKeyState, DeleteAccessKey and DeleteUser work on
// them unchanged. What keeps them away from data:
//
//   - Store.AccessKey, the S3 path's lookup, resolves a key's tenant and
//     finds none for the operator scope, so an operator's key is unknown to
//     the S3 API (InvalidAccessKeyId) before any role check; and RoleOperator
//     is not a role the S3 authorizer knows either.
//   - CreateUser and CreateAccessKey need a live tenant, so nobody can add
//     users or keys to the operator scope except through the operator ops
//     below, and an operator can hold no tenant key.
//
// Only OperatorKey resolves an operator's access key, for the admin API.
const RoleOperator Role = "operator"

// OperatorScope is the tenant id operators belong to: the zero id.
var OperatorScope = ID{}

// DefaultOperatorName is the operator BootstrapOperator creates.
const DefaultOperatorName = "operator"

type createOperatorPayload struct {
	User User            `json:"user"`
	Key  accessKeyRecord `json:"key"`
	// First makes the command a bootstrap: it is refused (CodeExists) if
	// any operator exists, so that concurrent first starts create one.
	First bool `json:"first,omitempty"`
}

type createOperatorKeyPayload struct {
	Key accessKeyRecord `json:"key"`
}

// BootstrapOperator creates the first operator, DefaultOperatorName, with
// one access key, in one command, and returns its credentials; the secret
// is not shown again. If any operator exists it changes nothing and
// returns ErrExists, so every start of `tresor serve` may call it.
func (s *Store) BootstrapOperator(ctx context.Context) (Credentials, error) {
	return s.createOperator(ctx, DefaultOperatorName, true)
}

// CreateOperator adds an operator named name (the user name rules) with
// one access key, and returns its credentials.
func (s *Store) CreateOperator(ctx context.Context, name string) (Credentials, error) {
	return s.createOperator(ctx, name, false)
}

func (s *Store) createOperator(ctx context.Context, name string, first bool) (Credentials, error) {
	uid, err := randomID(s.rand)
	if err != nil {
		return Credentials{}, err
	}
	u := User{ID: uid, Tenant: OperatorScope, Name: name, Role: RoleOperator, Created: s.now().UTC()}
	rec, secret, err := s.newAccessKey(u, time.Time{})
	if err != nil {
		return Credentials{}, err
	}
	if err := s.propose(ctx, OpCreateOperator, createOperatorPayload{User: u, Key: rec, First: first}, nil); err != nil {
		return Credentials{}, err
	}
	s.logger.Info("operator created", "user", u.ID, "first", first)
	return Credentials{User: u.ID, UserName: u.Name, AccessKeyID: rec.ID, SecretAccessKey: secret}, nil
}

// CreateOperatorKey issues another access key for operator user. A zero
// expires means it never expires. The returned key carries its secret.
func (s *Store) CreateOperatorKey(ctx context.Context, user ID, expires time.Time) (AccessKey, error) {
	u, err := s.User(ctx, user)
	if err != nil {
		return AccessKey{}, err
	}
	if u.Tenant != OperatorScope || u.Role != RoleOperator {
		return AccessKey{}, fmt.Errorf("%w: user %s is not an operator", ErrNotFound, user)
	}
	rec, secret, err := s.newAccessKey(u, expires)
	if err != nil {
		return AccessKey{}, err
	}
	var ak AccessKey
	if err := s.propose(ctx, OpCreateOperatorKey, createOperatorKeyPayload{Key: rec}, &ak); err != nil {
		return AccessKey{}, err
	}
	ak.Secret = secret
	return ak, nil
}

// Operators lists the operators in name order.
func (s *Store) Operators(ctx context.Context) ([]User, error) {
	return s.Users(ctx, OperatorScope)
}

// OperatorKey looks up an operator's access key for the admin API's
// verifier and returns it with its secret. Keys of tenant users are
// ErrNotFound here (Store.AccessKey serves them); a disabled or expired
// operator key is returned without its secret with ErrDisabled or
// ErrExpired, as AccessKey does.
func (s *Store) OperatorKey(ctx context.Context, id string) (AccessKey, error) {
	if !validAccessKeyID(id) {
		return AccessKey{}, fmt.Errorf("%w: access key %q", ErrNotFound, id)
	}
	var (
		rec accessKeyRecord
		u   User
	)
	err := s.view(ctx, func(txn *badger.Txn) error {
		ok, err := read(txn, accessKeyKey(id), &rec)
		if err != nil {
			return err
		}
		if !ok || rec.Tenant != OperatorScope {
			return fmt.Errorf("%w: operator access key %q", ErrNotFound, id)
		}
		u, err = readUser(txn, rec.User)
		return err
	})
	if err != nil {
		return AccessKey{}, err
	}
	if u.Role != RoleOperator {
		return AccessKey{}, fmt.Errorf("%w: operator access key %q", ErrNotFound, id)
	}
	ak := rec.public(u)
	switch {
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

func applyCreateOperator(a *applyCtx, p createOperatorPayload) (any, error) {
	u := p.User
	if u.Tenant != OperatorScope || u.Role != RoleOperator {
		return nil, reject(CodeInvalid, "an operator has the operator scope and role")
	}
	if p.First && a.anyWithPrefix(key(pfxUserName, OperatorScope[:])) {
		return nil, reject(CodeExists, "an operator exists")
	}
	if err := validUserName(u.Name); err != nil {
		return nil, err
	}
	if u.ID.IsZero() {
		return nil, reject(CodeInvalid, "zero user id")
	}
	if a.exists(userKey(u.ID)) {
		return nil, reject(CodeExists, "user id %s is taken", u.ID)
	}
	if a.exists(userNameKey(OperatorScope, u.Name)) {
		return nil, reject(CodeExists, "operator name %q is taken", u.Name)
	}
	if p.Key.User != u.ID || p.Key.Tenant != OperatorScope {
		return nil, reject(CodeInvalid, "operator records disagree on user")
	}
	a.put(userKey(u.ID), u)
	a.putRaw(userNameKey(OperatorScope, u.Name), u.ID[:])
	return createOperatorKey(a, p.Key)
}

func applyCreateOperatorKey(a *applyCtx, p createOperatorKeyPayload) (any, error) {
	return createOperatorKey(a, p.Key)
}

// createOperatorKey is createAccessKey for the operator scope, which has
// no tenant record.
func createOperatorKey(a *applyCtx, r accessKeyRecord) (AccessKey, error) {
	if err := r.validNew(); err != nil {
		return AccessKey{}, err
	}
	var u User
	if r.Tenant != OperatorScope || !a.get(userKey(r.User), &u) || u.Tenant != OperatorScope || u.Role != RoleOperator {
		return AccessKey{}, reject(CodeNotFound, "operator %s", r.User)
	}
	if a.exists(accessKeyKey(r.ID)) {
		return AccessKey{}, reject(CodeExists, "access key %q is taken", r.ID)
	}
	a.put(accessKeyKey(r.ID), r)
	a.putRaw(userAccessKey(r.User, r.ID), nil)
	return r.public(u), nil
}

// IsOperator reports whether ak belongs to an operator.
func (ak AccessKey) IsOperator() bool {
	return ak.Tenant == OperatorScope && ak.Role == RoleOperator
}
