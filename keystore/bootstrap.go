package keystore

import (
	"context"
	"time"
)

// Names Bootstrap gives the first tenant and its admin.
const (
	DefaultTenantName = "default"
	DefaultAdminName  = "admin"
)

// Credentials are the first access key, for `tresor serve` to write to
// <data-dir>/credentials on first start.
type Credentials struct {
	Tenant          ID
	TenantName      string
	User            ID
	UserName        string
	AccessKeyID     string
	SecretAccessKey string
}

type bootstrapPayload struct {
	Tenant createTenantPayload `json:"tenant"`
	User   User                `json:"user"`
	Key    accessKeyRecord     `json:"key"`
}

// Bootstrap prepares an empty keystore for use: it creates the tenant
// "default" with its first key version, its user "admin" with RoleAdmin and
// one access key, in one command, so a crash never leaves a tenant without
// its admin. It returns the access key's secret, which is not shown again.
// On a keystore that has ever held a tenant it changes nothing and returns
// ErrExists.
func (s *Store) Bootstrap(ctx context.Context) (Credentials, error) {
	tp, err := s.newTenantPayload(DefaultTenantName, nil)
	if err != nil {
		return Credentials{}, err
	}
	uid, err := randomID(s.rand)
	if err != nil {
		return Credentials{}, err
	}
	u := User{ID: uid, Tenant: tp.Tenant, Name: DefaultAdminName, Role: RoleAdmin, Created: tp.Created}
	rec, secret, err := s.newAccessKey(u, time.Time{})
	if err != nil {
		return Credentials{}, err
	}
	if err := s.propose(ctx, OpBootstrap, bootstrapPayload{Tenant: tp, User: u, Key: rec}, nil); err != nil {
		return Credentials{}, err
	}
	s.logger.Info("keystore bootstrapped", "tenant", tp.Tenant, "user", u.ID)
	return Credentials{
		Tenant: tp.Tenant, TenantName: tp.Name, User: u.ID, UserName: u.Name,
		AccessKeyID: rec.ID, SecretAccessKey: secret,
	}, nil
}

func applyBootstrap(a *applyCtx, p bootstrapPayload) (any, error) {
	if a.anyWithPrefix([]byte(pfxTenant)) {
		return nil, reject(CodeExists, "keystore already bootstrapped")
	}
	if _, err := createTenant(a, p.Tenant); err != nil {
		return nil, err
	}
	if p.User.Tenant != p.Tenant.Tenant || p.Key.Tenant != p.Tenant.Tenant || p.Key.User != p.User.ID {
		return nil, reject(CodeInvalid, "bootstrap records disagree on tenant or user")
	}
	if _, err := createUser(a, p.User); err != nil {
		return nil, err
	}
	if _, err := createAccessKey(a, p.Key); err != nil {
		return nil, err
	}
	return nil, nil
}
