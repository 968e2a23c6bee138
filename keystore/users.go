package keystore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Role is what a user may do inside its tenant. auth maps roles to S3
// actions; the keystore only stores them.
type Role string

// Roles.
const (
	RoleAdmin  Role = "admin"  // everything, including the tenant's users and keys
	RoleWriter Role = "writer" // read and write objects and buckets
	RoleReader Role = "reader" // read only
)

func (r Role) valid() bool { return r == RoleAdmin || r == RoleWriter || r == RoleReader }

// User is a team member of one tenant.
type User struct {
	ID     ID     `json:"id"`
	Tenant ID     `json:"tenant"`
	Name   string `json:"name"`
	Role   Role   `json:"role"`
	// Created is the proposer's clock at creation.
	Created time.Time `json:"created"`
}

type createUserPayload struct {
	User User `json:"user"`
}

type deleteUserPayload struct {
	User ID `json:"user"`
}

type setUserRolePayload struct {
	User ID   `json:"user"`
	Role Role `json:"role"`
}

// CreateUser adds a user to tenant. Names are unique within the tenant, 1 to
// 64 characters of letters, digits and . _ @ + -.
func (s *Store) CreateUser(ctx context.Context, tenant ID, name string, role Role) (User, error) {
	id, err := randomID(s.rand)
	if err != nil {
		return User{}, err
	}
	u := User{ID: id, Tenant: tenant, Name: name, Role: role, Created: s.now().UTC()}
	var out User
	err = s.propose(ctx, OpCreateUser, createUserPayload{User: u}, &out)
	return out, err
}

// User returns the user with id.
func (s *Store) User(ctx context.Context, id ID) (User, error) {
	var u User
	err := s.view(ctx, func(txn *badger.Txn) error {
		var err error
		u, err = readUser(txn, id)
		return err
	})
	return u, err
}

// UserByName returns tenant's user named name.
func (s *Store) UserByName(ctx context.Context, tenant ID, name string) (User, error) {
	var u User
	err := s.view(ctx, func(txn *badger.Txn) error {
		item, err := txn.Get(userNameKey(tenant, name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: user %q of tenant %s", ErrNotFound, name, tenant)
		}
		if err != nil {
			return fmt.Errorf("keystore: read: %w", err)
		}
		var id ID
		if err := item.Value(func(v []byte) error { copy(id[:], v); return nil }); err != nil {
			return fmt.Errorf("keystore: read: %w", err)
		}
		u, err = readUser(txn, id)
		return err
	})
	return u, err
}

// Users lists tenant's users in name order.
func (s *Store) Users(ctx context.Context, tenant ID) ([]User, error) {
	var us []User
	err := s.view(ctx, func(txn *badger.Txn) error {
		return scan(txn, key(pfxUserName, tenant[:]), func(k, v []byte) (bool, error) {
			if len(v) != len(ID{}) {
				return false, fmt.Errorf("keystore: user index %q holds %d bytes (corrupt store)", k, len(v))
			}
			u, err := readUser(txn, ID(v))
			if err != nil {
				return false, err
			}
			us = append(us, u)
			return true, nil
		})
	})
	return us, err
}

// DeleteUser removes a user and all its access keys.
func (s *Store) DeleteUser(ctx context.Context, id ID) error {
	return s.propose(ctx, OpDeleteUser, deleteUserPayload{User: id}, nil)
}

// SetUserRole changes a user's role; it applies to its access keys at once.
func (s *Store) SetUserRole(ctx context.Context, id ID, role Role) error {
	return s.propose(ctx, OpSetUserRole, setUserRolePayload{User: id, Role: role}, nil)
}

func readUser(txn *badger.Txn, id ID) (User, error) {
	var u User
	ok, err := read(txn, userKey(id), &u)
	if err != nil {
		return User{}, err
	}
	if !ok {
		return User{}, fmt.Errorf("%w: user %s", ErrNotFound, id)
	}
	return u, nil
}

func applyCreateUser(a *applyCtx, p createUserPayload) (any, error) {
	return createUser(a, p.User)
}

func createUser(a *applyCtx, u User) (User, error) {
	if _, err := liveTenant(a, u.Tenant); err != nil {
		return User{}, err
	}
	if err := validUserName(u.Name); err != nil {
		return User{}, err
	}
	if !u.Role.valid() {
		return User{}, reject(CodeInvalid, "role %q: want %q, %q or %q", u.Role, RoleAdmin, RoleWriter, RoleReader)
	}
	if u.ID.IsZero() {
		return User{}, reject(CodeInvalid, "zero user id")
	}
	if a.exists(userKey(u.ID)) {
		return User{}, reject(CodeExists, "user id %s is taken", u.ID)
	}
	if a.exists(userNameKey(u.Tenant, u.Name)) {
		return User{}, reject(CodeExists, "user name %q is taken", u.Name)
	}
	a.put(userKey(u.ID), u)
	a.putRaw(userNameKey(u.Tenant, u.Name), u.ID[:])
	return u, nil
}

func applyDeleteUser(a *applyCtx, p deleteUserPayload) (any, error) {
	var u User
	if !a.get(userKey(p.User), &u) {
		return nil, reject(CodeNotFound, "user %s", p.User)
	}
	prefix := key(pfxUserAccess, u.ID[:])
	for _, k := range a.keysWithPrefix(prefix) {
		a.del(k)
		a.del(accessKeyKey(string(k[len(prefix):])))
	}
	a.del(userKey(u.ID))
	a.del(userNameKey(u.Tenant, u.Name))
	return nil, nil
}

func applySetUserRole(a *applyCtx, p setUserRolePayload) (any, error) {
	var u User
	if !a.get(userKey(p.User), &u) {
		return nil, reject(CodeNotFound, "user %s", p.User)
	}
	if !p.Role.valid() {
		return nil, reject(CodeInvalid, "role %q: want %q, %q or %q", p.Role, RoleAdmin, RoleWriter, RoleReader)
	}
	u.Role = p.Role
	a.put(userKey(u.ID), u)
	return u, nil
}

func validUserName(name string) error {
	if len(name) < 1 || len(name) > 64 {
		return reject(CodeInvalid, "user name %q must be 1 to 64 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '@' || c == '+' || c == '-':
		default:
			return reject(CodeInvalid, "user name %q: only letters, digits and . _ @ + - are allowed", name)
		}
	}
	return nil
}
