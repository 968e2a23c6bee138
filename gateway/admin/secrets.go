package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/keystore"
)

// Secrets returns the auth.Secrets of the admin API: operators' access
// keys (keystore.OperatorKey) and tenant users' (keystore.AccessKey).
// Disabled and expired keys, and keys of suspended tenants, are unknown.
// The S3 API uses gateway.Secrets, which knows no operator key.
func Secrets(store *keystore.Store, now func() time.Time) auth.Secrets {
	if now == nil {
		now = time.Now
	}
	return secrets{store: store, now: now}
}

type secrets struct {
	store *keystore.Store
	now   func() time.Time
}

func (s secrets) Secret(ctx context.Context, id string) ([]byte, auth.Principal, error) {
	if strings.HasPrefix(id, keystore.RecoveryKeyPrefix) {
		return s.recoveryKey(ctx, id)
	}
	ak, err := s.store.OperatorKey(ctx, id)
	if errors.Is(err, keystore.ErrNotFound) {
		ak, err = s.store.AccessKey(ctx, id)
	}
	switch {
	case errors.Is(err, keystore.ErrNotFound), errors.Is(err, keystore.ErrDisabled), errors.Is(err, keystore.ErrExpired):
		return nil, auth.Principal{}, fmt.Errorf("%w: %w", auth.ErrUnknownAccessKey, err)
	case err != nil:
		return nil, auth.Principal{}, err
	}
	if ak.State != keystore.AccessKeyActive || (!ak.Expires.IsZero() && !s.now().Before(ak.Expires)) || ak.Secret == "" {
		return nil, auth.Principal{}, auth.ErrUnknownAccessKey
	}
	return []byte(ak.Secret), auth.Principal{Tenant: ak.Tenant, User: ak.User, Role: string(ak.Role)}, nil
}

// recoveryKey resolves a tenant's recovery key, which signs for the
// tenant with keystore.RoleRecovery: the admin API admits it to the
// recovery endpoint alone.
func (s secrets) recoveryKey(ctx context.Context, id string) ([]byte, auth.Principal, error) {
	rk, err := s.store.RecoveryKey(ctx, id)
	switch {
	case errors.Is(err, keystore.ErrNotFound), errors.Is(err, keystore.ErrDisabled):
		return nil, auth.Principal{}, fmt.Errorf("%w: %w", auth.ErrUnknownAccessKey, err)
	case err != nil:
		return nil, auth.Principal{}, err
	}
	return []byte(rk.Secret), auth.Principal{Tenant: rk.Tenant, Role: string(keystore.RoleRecovery)}, nil
}

// AllowlistLoader returns an auth.AllowlistLoader reading the keystore's
// replicated allowlists from the local replica, for auth.NewAllowlists:
//
//	lists := auth.NewAllowlists(admin.AllowlistLoader(store), 0)
func AllowlistLoader(store *keystore.Store) auth.AllowlistLoader {
	return func(ctx context.Context, scope string) (auth.CIDRs, error) {
		al, err := store.Allowlist(ctx, scope)
		if err != nil {
			return nil, err
		}
		return auth.CIDRs(al.Prefixes), nil
	}
}
