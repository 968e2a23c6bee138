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
	// Confined users reach only the buckets in Grants, each with a role
	// (RoleWriter or RoleReader) of which the weaker of it and Role
	// applies; other users' Role applies to every bucket of the tenant.
	// The first grant confines a user, revoking grants never lifts the
	// confinement (ClearGrants does). Admins take no grants: they manage
	// the team and could lift them anyway.
	Confined bool            `json:"confined,omitempty"`
	Grants   map[string]Role `json:"grants,omitempty"`
	// Created is the proposer's clock at creation.
	Created time.Time `json:"created"`
}

// MaxUserGrants bounds a user's per-bucket grants: the grants travel with
// every access key lookup.
const MaxUserGrants = 100

// BucketRole is the role u has on bucket, "" for none.
func (u User) BucketRole(bucket string) Role { return BucketRole(u.Role, u.Confined, u.Grants, bucket) }

// BucketRole is the role on bucket of a user with role, confinement and
// grants: role if not confined, else the weaker of role and the bucket's
// grant, and "" (no access) for a bucket not granted. It is generic so that
// auth.Principal, which carries roles as strings, shares the rule.
func BucketRole[R ~string](role R, confined bool, grants map[string]R, bucket string) R {
	if !confined {
		return role
	}
	g, ok := grants[bucket]
	if !ok {
		return ""
	}
	if role == R(RoleReader) || g == R(RoleReader) {
		return R(RoleReader)
	}
	return g
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

type setUserGrantPayload struct {
	User   ID     `json:"user"`
	Bucket string `json:"bucket"` // "" with Role "": clear every grant and the confinement
	Role   Role   `json:"role"`   // "" revokes
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

// GrantBucket gives user role (RoleWriter or RoleReader) on bucket and
// confines it to its granted buckets; the grant applies to its access keys
// at once. The bucket need not exist yet, but only a bucket of the user's
// own tenant is ever reachable through it.
func (s *Store) GrantBucket(ctx context.Context, user ID, bucket string, role Role) (User, error) {
	return s.setGrant(ctx, setUserGrantPayload{User: user, Bucket: bucket, Role: role})
}

// RevokeBucket removes user's grant on bucket. The user stays confined:
// revoking its last grant leaves it no bucket at all.
func (s *Store) RevokeBucket(ctx context.Context, user ID, bucket string) (User, error) {
	if bucket == "" {
		return User{}, fmt.Errorf("%w: revoke needs a bucket", ErrInvalid)
	}
	return s.setGrant(ctx, setUserGrantPayload{User: user, Bucket: bucket})
}

// ClearGrants removes user's grants and confinement: its role applies to
// every bucket of the tenant again.
func (s *Store) ClearGrants(ctx context.Context, user ID) (User, error) {
	return s.setGrant(ctx, setUserGrantPayload{User: user})
}

func (s *Store) setGrant(ctx context.Context, p setUserGrantPayload) (User, error) {
	var u User
	err := s.propose(ctx, OpSetUserGrant, p, &u)
	return u, err
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
	if p.Role == RoleAdmin && u.Confined {
		return nil, reject(CodeState, "user %s is confined to granted buckets: clear its grants before making it an admin", u.Name)
	}
	u.Role = p.Role
	a.put(userKey(u.ID), u)
	return u, nil
}

func applySetUserGrant(a *applyCtx, p setUserGrantPayload) (any, error) {
	var u User
	if !a.get(userKey(p.User), &u) {
		return nil, reject(CodeNotFound, "user %s", p.User)
	}
	switch {
	case p.Bucket == "" && p.Role == "":
		u.Confined, u.Grants = false, nil
	case p.Role == "":
		if _, ok := u.Grants[p.Bucket]; !ok {
			return nil, reject(CodeNotFound, "user %s has no grant on bucket %s", u.Name, p.Bucket)
		}
		delete(u.Grants, p.Bucket)
	default:
		if err := validBucketName(p.Bucket); err != nil {
			return nil, err
		}
		if p.Role != RoleWriter && p.Role != RoleReader {
			return nil, reject(CodeInvalid, "grant role %q: want %q or %q", p.Role, RoleWriter, RoleReader)
		}
		if u.Role == RoleAdmin {
			return nil, reject(CodeState, "user %s is an admin: admins take no bucket grants", u.Name)
		}
		if _, ok := u.Grants[p.Bucket]; !ok && len(u.Grants) >= MaxUserGrants {
			return nil, reject(CodeInvalid, "user %s has %d grants, the most a user may have", u.Name, MaxUserGrants)
		}
		if u.Grants == nil {
			u.Grants = map[string]Role{}
		}
		u.Confined, u.Grants[p.Bucket] = true, p.Role
	}
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
