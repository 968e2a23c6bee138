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
	// RecoveryKeyID and RecoverySecret are the tenant's recovery key
	// (recovery.go), which Bootstrap issues and BootstrapOperator does not.
	RecoveryKeyID  string
	RecoverySecret string
}

type bootstrapPayload struct {
	Tenant createTenantPayload `json:"tenant"`
	User   User                `json:"user"`
	Key    accessKeyRecord     `json:"key"`
	// Recovery is the tenant's recovery key. Bootstraps logged before
	// recovery keys existed have none, and apply leaves their tenant as it
	// did then.
	Recovery recoveryRecord `json:"recovery,omitzero"`
}

// Bootstrap prepares an empty keystore for use: it creates the tenant
// "default" with its first key version, its user "admin" with RoleAdmin and
// one access key, and the tenant's recovery key, in one command, so a crash
// never leaves a tenant without its admin. It returns the secrets, which
// are not shown again.
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
	rk, rsecret, err := s.newRecoveryKey(tp.Tenant)
	if err != nil {
		return Credentials{}, err
	}
	if err := s.propose(ctx, OpBootstrap, bootstrapPayload{Tenant: tp, User: u, Key: rec, Recovery: rk}, nil); err != nil {
		return Credentials{}, err
	}
	s.logger.Info("keystore bootstrapped", "tenant", tp.Tenant, "user", u.ID)
	return Credentials{
		Tenant: tp.Tenant, TenantName: tp.Name, User: u.ID, UserName: u.Name,
		AccessKeyID: rec.ID, SecretAccessKey: secret, RecoveryKeyID: rk.ID, RecoverySecret: rsecret,
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
	if p.Recovery.ID != "" {
		if p.Recovery.Tenant != p.Tenant.Tenant {
			return nil, reject(CodeInvalid, "bootstrap records disagree on tenant")
		}
		if err := putRecoveryKey(a, p.Recovery); err != nil {
			return nil, err
		}
		t, err := liveTenant(a, p.Tenant.Tenant)
		if err != nil {
			return nil, err
		}
		t.Onboarded = true
		a.put(tenantKey(t.ID), t)
	}
	return nil, nil
}
