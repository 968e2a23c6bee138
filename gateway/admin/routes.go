package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/keystore"
)

func (h *Handler) routes() {
	const p = "/admin/v1"
	h.handle("GET "+p+"/whoami", "", whoami)

	h.handle("GET "+p+"/tenants", "", listTenants)
	h.handle("POST "+p+"/tenants", "create-tenant", createTenant)
	h.handle("GET "+p+"/tenants/{tenant}", "", showTenant)
	h.handle("POST "+p+"/tenants/{tenant}/suspend", "suspend-tenant", setTenantState(keystore.TenantSuspended))
	h.handle("POST "+p+"/tenants/{tenant}/resume", "resume-tenant", setTenantState(keystore.TenantActive))

	h.handle("GET "+p+"/tenants/{tenant}/recovery-key", "", showRecoveryKey)
	h.handle("POST "+p+"/tenants/{tenant}/recovery-key", "rotate-recovery-key", rotateRecoveryKey)
	h.handleRecovery("POST "+p+"/tenants/{tenant}/recover", "recover-tenant", recoverTenant)

	h.handle("GET "+p+"/tenants/{tenant}/users", "", listUsers)
	h.handle("POST "+p+"/tenants/{tenant}/users", "create-user", createUser)
	h.handle("GET "+p+"/tenants/{tenant}/users/{user}", "", showUser)
	h.handle("DELETE "+p+"/tenants/{tenant}/users/{user}", "delete-user", deleteUser)
	h.handle("PUT "+p+"/tenants/{tenant}/users/{user}/role", "set-user-role", setUserRole)
	h.handle("PUT "+p+"/tenants/{tenant}/users/{user}/grants/{bucket}", "grant-bucket", grantBucket)
	h.handle("DELETE "+p+"/tenants/{tenant}/users/{user}/grants/{bucket}", "revoke-bucket", revokeBucket)
	h.handle("DELETE "+p+"/tenants/{tenant}/users/{user}/grants", "clear-grants", clearGrants)

	h.handle("GET "+p+"/tenants/{tenant}/users/{user}/keys", "", listKeys)
	h.handle("POST "+p+"/tenants/{tenant}/users/{user}/keys", "create-access-key", createKey)
	h.handle("POST "+p+"/tenants/{tenant}/users/{user}/keys/{key}/disable", "disable-access-key", setKeyState(keystore.AccessKeyDisabled))
	h.handle("POST "+p+"/tenants/{tenant}/users/{user}/keys/{key}/enable", "enable-access-key", setKeyState(keystore.AccessKeyActive))
	h.handle("DELETE "+p+"/tenants/{tenant}/users/{user}/keys/{key}", "delete-access-key", deleteKey)

	h.handle("GET "+p+"/tenants/{tenant}/allowlist", "", showTenantAllowlist)
	h.handle("PUT "+p+"/tenants/{tenant}/allowlist", "set-allowlist", setTenantAllowlist)
	h.handle("DELETE "+p+"/tenants/{tenant}/allowlist", "clear-allowlist", clearTenantAllowlist)

	h.handle("GET "+p+"/tenants/{tenant}/key-versions", "", listKeyVersions)
	h.handle("POST "+p+"/tenants/{tenant}/key-versions/rotate", "rotate-key", rotateKey)
	h.handle("POST "+p+"/tenants/{tenant}/key-versions/{version}/disable", "disable-key-version", disableKeyVersion)
	h.handle("POST "+p+"/tenants/{tenant}/key-versions/{version}/enable", "enable-key-version", enableKeyVersion)
	h.handle("POST "+p+"/tenants/{tenant}/key-versions/{version}/schedule-destroy", "schedule-key-version-destroy", scheduleKeyVersionDestroy)
	h.handle("POST "+p+"/tenants/{tenant}/key-versions/{version}/cancel-destroy", "cancel-key-version-destroy", cancelKeyVersionDestroy)
	h.handle("POST "+p+"/tenants/{tenant}/key-versions/{version}/destroy", "destroy-key-version", destroyKeyVersion)

	h.handle("POST "+p+"/cluster/promote", "cluster-promote", clusterChange("promote"))
	h.handle("POST "+p+"/cluster/remove", "cluster-remove", clusterChange("remove"))
	h.handle("POST "+p+"/cluster/transfer-leadership", "cluster-transfer-leadership", clusterChange("transfer-leadership"))

	h.handle("GET "+p+"/audit/review", "", reviewAll)
	h.handle("GET "+p+"/tenants/{tenant}/audit/review", "", reviewTenant)

	h.handle("GET "+p+"/allowlists", "", listAllowlists)
	h.handle("GET "+p+"/allowlists/{scope}", "", showAllowlist)
	h.handle("PUT "+p+"/allowlists/{scope}", "set-allowlist", setAllowlist)
	h.handle("DELETE "+p+"/allowlists/{scope}", "clear-allowlist", clearAllowlist)

	h.handle("GET "+p+"/operators", "", listOperators)
	h.handle("POST "+p+"/operators", "create-operator", createOperator)
	h.handle("DELETE "+p+"/operators/{user}", "delete-operator", deleteOperator)
	h.handle("GET "+p+"/operators/{user}/keys", "", listOperatorKeys)
	h.handle("POST "+p+"/operators/{user}/keys", "create-operator-key", createOperatorKey)
	h.handle("POST "+p+"/operators/{user}/keys/{key}/disable", "disable-operator-key", setOperatorKeyState(keystore.AccessKeyDisabled))
	h.handle("POST "+p+"/operators/{user}/keys/{key}/enable", "enable-operator-key", setOperatorKeyState(keystore.AccessKeyActive))
	h.handle("DELETE "+p+"/operators/{user}/keys/{key}", "delete-operator-key", deleteOperatorKey)

	// Anything else under the prefix is answered in JSON too, after
	// authentication, so the API's shape is not visible to strangers.
	h.handle(p+"/", "", func(*call) (int, any, error) { return 0, nil, errNotFound })
}

// Whoami is who the request's key signs for.
type Whoami struct {
	AccessKeyID string `json:"access_key_id"`
	Role        string `json:"role"`
	Tenant      string `json:"tenant,omitempty"`
	User        string `json:"user"`
}

func whoami(c *call) (int, any, error) {
	u, err := c.h.store.User(c.ctx, keystore.ID(c.who.User))
	if err != nil {
		return 0, nil, err
	}
	w := Whoami{AccessKeyID: c.who.accessKey, Role: c.who.Role, User: u.Name}
	if !c.who.operator() {
		t, err := c.h.store.Tenant(c.ctx, keystore.ID(c.who.Tenant))
		if err != nil {
			return 0, nil, err
		}
		w.Tenant = t.Name
	}
	return http.StatusOK, w, nil
}

// CreateTenantRequest is POST /tenants. Admin, if set, onboards the
// tenant's first admin in the same request, as POST
// /tenants/{tenant}/users would (its role must be admin or empty).
type CreateTenantRequest struct {
	Name          string             `json:"name"`
	Jurisdictions []string           `json:"jurisdictions,omitempty"`
	Admin         *CreateUserRequest `json:"admin,omitempty"`
}

// NewTenant answers POST /tenants: the tenant and, if one was asked for,
// its first admin.
type NewTenant struct {
	keystore.Tenant
	Admin *NewAccessKey `json:"admin,omitempty"`
}

func listTenants(c *call) (int, any, error) {
	if err := c.requireOperator(); err != nil {
		return 0, nil, err
	}
	ts, err := c.h.store.Tenants(c.ctx)
	if ts == nil {
		ts = []keystore.Tenant{}
	}
	return http.StatusOK, ts, err
}

func createTenant(c *call) (int, any, error) {
	if err := c.requireOperator(); err != nil {
		return 0, nil, err
	}
	var req CreateTenantRequest
	if err := c.decode(&req); err != nil {
		return 0, nil, err
	}
	var pk *PublicKey
	if req.Admin != nil {
		var err error
		if pk, err = c.checkOnboarding(*req.Admin); err != nil {
			return 0, nil, err // before the tenant exists
		}
	}
	t, err := c.h.store.CreateTenant(c.ctx, req.Name, req.Jurisdictions)
	if err != nil || req.Admin == nil {
		return http.StatusCreated, NewTenant{Tenant: t}, err
	}
	// Two commands: if the second fails, the tenant exists without an
	// admin and POST /tenants/{tenant}/users onboards one.
	nk, err := c.onboard(t, *req.Admin, pk)
	if err != nil {
		return 0, nil, err
	}
	t.Onboarded = true
	return http.StatusCreated, NewTenant{Tenant: t, Admin: &nk}, nil
}

func showTenant(c *call) (int, any, error) {
	t, err := c.tenant()
	return http.StatusOK, t, err
}

func setTenantState(state keystore.TenantState) func(*call) (int, any, error) {
	return func(c *call) (int, any, error) {
		if err := c.requireOperator(); err != nil {
			return 0, nil, err
		}
		t, err := c.tenant()
		if err != nil {
			return 0, nil, err
		}
		if err := c.h.store.SetTenantState(c.ctx, t.ID, state); err != nil {
			return 0, nil, err
		}
		t, err = c.h.store.Tenant(c.ctx, t.ID)
		return http.StatusOK, t, err
	}
}

func listUsers(c *call) (int, any, error) {
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	us, err := c.h.store.Users(c.ctx, t.ID)
	if us == nil {
		us = []keystore.User{}
	}
	return http.StatusOK, us, err
}

// CreateUserRequest is POST /tenants/{tenant}/users. Expires, if set, is
// when the user's first access key stops working. An empty role means
// writer, or admin when an operator onboards a tenant's admin.
type CreateUserRequest struct {
	Name    string        `json:"name"`
	Role    keystore.Role `json:"role"`
	Expires time.Time     `json:"expires,omitzero"`
	// PublicKey, if set, is the new user's public key (`tresor admin
	// keygen`, ParsePublicKey): the answer then carries the credentials
	// sealed to it (NewAccessKey.Sealed) and no secret in clear. An
	// operator onboarding a tenant's first admin must give it, unless
	// OperatorIsTenant.
	PublicKey string `json:"public_key,omitempty"`
	// OperatorIsTenant lets an operator onboard a tenant's first admin
	// without a public key and receive its secrets in clear: for an
	// operator who is the tenant too. The login audit records that the
	// operator saw them.
	OperatorIsTenant bool `json:"operator_is_tenant,omitempty"`
}

// NewAccessKey answers a request that created an access key: the only
// time its secret is shown. With a public key in the request, the secrets
// are in Sealed only and SecretAccessKey and RecoverySecret are empty.
// RecoveryKeyID is set when the request issued the tenant a recovery key
// (a first admin's onboarding, a recovery).
type NewAccessKey struct {
	User            keystore.User           `json:"user"`
	AccessKeyID     string                  `json:"access_key_id"`
	SecretAccessKey string                  `json:"secret_access_key,omitempty"`
	State           keystore.AccessKeyState `json:"state"`
	Created         time.Time               `json:"created"`
	Expires         time.Time               `json:"expires,omitzero"`
	RecoveryKeyID   string                  `json:"recovery_key_id,omitempty"`
	RecoverySecret  string                  `json:"recovery_secret,omitempty"`
	Sealed          *SealedCredentials      `json:"sealed,omitempty"`
}

func newAccessKey(u keystore.User, ak keystore.AccessKey) NewAccessKey {
	return NewAccessKey{User: u, AccessKeyID: ak.ID, SecretAccessKey: ak.Secret, State: ak.State, Created: ak.Created, Expires: ak.Expires}
}

func createUser(c *call) (int, any, error) {
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	var req CreateUserRequest
	if err := c.decode(&req); err != nil {
		return 0, nil, err
	}
	if c.who.operator() {
		// Operators onboard a tenant's first admin, once (onboarding.go).
		pk, err := c.checkOnboarding(req)
		if err != nil {
			return 0, nil, err
		}
		nk, err := c.onboard(t, req, pk)
		return http.StatusCreated, nk, err
	}
	if err := c.checkExpiry(req.Expires); err != nil {
		return 0, nil, err
	}
	if req.OperatorIsTenant {
		return 0, nil, apiError(http.StatusBadRequest, "InvalidArgument", "operator_is_tenant is for operators.")
	}
	pk, err := c.publicKey(req.PublicKey)
	if err != nil {
		return 0, nil, err
	}
	if req.Role == "" {
		req.Role = keystore.RoleWriter
	}
	u, err := c.h.store.CreateUser(c.ctx, t.ID, req.Name, req.Role)
	if err != nil {
		return 0, nil, err
	}
	ak, err := c.h.store.CreateAccessKey(c.ctx, u.ID, req.Expires)
	if err != nil {
		// The user exists without a key; an admin can add one or delete it.
		return 0, nil, err
	}
	nk := newAccessKey(u, ak)
	if pk != nil {
		if err := nk.seal(*pk, t.Name); err != nil {
			return 0, nil, err
		}
	}
	return http.StatusCreated, nk, nil
}

func (c *call) checkExpiry(t time.Time) error {
	if !t.IsZero() && !t.After(c.h.cfg.Clock()) {
		return apiError(http.StatusBadRequest, "InvalidArgument", "expires lies in the past.")
	}
	return nil
}

func showUser(c *call) (int, any, error) {
	_, u, err := c.user()
	return http.StatusOK, u, err
}

func deleteUser(c *call) (int, any, error) {
	_, u, err := c.user()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, c.h.store.DeleteUser(c.ctx, u.ID)
}

// SetRoleRequest is PUT /tenants/{tenant}/users/{user}/role.
type SetRoleRequest struct {
	Role keystore.Role `json:"role"`
}

func setUserRole(c *call) (int, any, error) {
	if c.who.operator() {
		return 0, nil, errOperatorRole
	}
	_, u, err := c.user()
	if err != nil {
		return 0, nil, err
	}
	var req SetRoleRequest
	if err := c.decode(&req); err != nil {
		return 0, nil, err
	}
	if err := c.h.store.SetUserRole(c.ctx, u.ID, req.Role); err != nil {
		return 0, nil, err
	}
	u, err = c.h.store.User(c.ctx, u.ID)
	return http.StatusOK, u, err
}

func listKeys(c *call) (int, any, error) {
	_, u, err := c.user()
	if err != nil {
		return 0, nil, err
	}
	keys, err := c.h.store.AccessKeys(c.ctx, u.ID)
	if keys == nil {
		keys = []keystore.AccessKey{}
	}
	return http.StatusOK, keys, err
}

// CreateKeyRequest is POST /tenants/{tenant}/users/{user}/keys; the body is
// optional.
type CreateKeyRequest struct {
	Expires time.Time `json:"expires,omitzero"`
}

func createKey(c *call) (int, any, error) {
	if c.who.operator() {
		// A key for an existing user would let the operator sign as that
		// user: only the tenant's admins issue those.
		return 0, nil, errOperatorKey
	}
	_, u, err := c.user()
	if err != nil {
		return 0, nil, err
	}
	req, err := c.createKeyRequest()
	if err != nil {
		return 0, nil, err
	}
	ak, err := c.h.store.CreateAccessKey(c.ctx, u.ID, req.Expires)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, newAccessKey(u, ak), nil
}

// createKeyRequest reads a key creation's optional body and checks its
// expiry.
func (c *call) createKeyRequest() (CreateKeyRequest, error) {
	var req CreateKeyRequest
	if len(c.body) > 0 {
		if err := c.decode(&req); err != nil {
			return req, err
		}
	}
	return req, c.checkExpiry(req.Expires)
}

func setKeyState(state keystore.AccessKeyState) func(*call) (int, any, error) {
	return func(c *call) (int, any, error) {
		if c.who.operator() && state == keystore.AccessKeyActive {
			// Disabling is incident response; enabling would hand back a
			// key its tenant shut, perhaps one the operator once saw.
			return 0, nil, errOperatorEnable
		}
		_, ak, err := c.accessKey()
		if err != nil {
			return 0, nil, err
		}
		if err := c.h.store.SetAccessKeyState(c.ctx, ak.ID, state); err != nil {
			return 0, nil, err
		}
		ak.State = state
		return http.StatusOK, ak, nil
	}
}

func deleteKey(c *call) (int, any, error) {
	_, ak, err := c.accessKey()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, c.h.store.DeleteAccessKey(c.ctx, ak.ID)
}

// AllowlistRequest is PUT on an allowlist: CIDR prefixes or addresses,
// IPv4 or IPv6. An empty list clears it.
type AllowlistRequest struct {
	CIDRs []string `json:"cidrs"`
}

// Allowlist is an allowlist as the API shows it. An empty list allows
// every address.
type Allowlist struct {
	Scope   string    `json:"scope"`
	Tenant  string    `json:"tenant,omitempty"`
	CIDRs   []string  `json:"cidrs"`
	Changed time.Time `json:"changed,omitzero"`
}

func (c *call) showAllowlist(scope, tenant string) (int, any, error) {
	al, err := c.h.store.Allowlist(c.ctx, scope)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toAllowlist(al, tenant), nil
}

func toAllowlist(al keystore.Allowlist, tenant string) Allowlist {
	out := Allowlist{Scope: al.Scope, Tenant: tenant, CIDRs: auth.CIDRs(al.Prefixes).Strings(), Changed: al.Changed}
	return out
}

func (c *call) setAllowlist(scope, tenant string, clearIt bool) (int, any, error) {
	var prefixes []netip.Prefix
	if !clearIt {
		var req AllowlistRequest
		if err := c.decode(&req); err != nil {
			return 0, nil, err
		}
		cidrs, err := auth.ParseCIDRs(req.CIDRs)
		if err != nil {
			return 0, nil, apiError(http.StatusBadRequest, "InvalidArgument", err.Error())
		}
		prefixes = cidrs
	}
	al, err := c.h.store.SetAllowlist(c.ctx, scope, prefixes)
	if err != nil {
		return 0, nil, err
	}
	if c.h.cfg.Allowlists != nil {
		c.h.cfg.Allowlists.Forget()
	}
	return http.StatusOK, toAllowlist(al, tenant), nil
}

func showTenantAllowlist(c *call) (int, any, error) {
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	return c.showAllowlist(keystore.AllowlistTenant(t.ID), t.Name)
}

func setTenantAllowlist(c *call) (int, any, error) {
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	return c.setAllowlist(keystore.AllowlistTenant(t.ID), t.Name, false)
}

func clearTenantAllowlist(c *call) (int, any, error) {
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	return c.setAllowlist(keystore.AllowlistTenant(t.ID), t.Name, true)
}

// globalScope checks the {scope} path value: s3, admin or cluster.
func (c *call) globalScope() (string, error) {
	if err := c.requireOperator(); err != nil {
		return "", err
	}
	switch s := c.r.PathValue("scope"); s {
	case keystore.AllowlistS3, keystore.AllowlistAdmin, keystore.AllowlistCluster:
		return s, nil
	}
	return "", errNotFound
}

func listAllowlists(c *call) (int, any, error) {
	if err := c.requireOperator(); err != nil {
		return 0, nil, err
	}
	als, err := c.h.store.Allowlists(c.ctx)
	if err != nil {
		return 0, nil, err
	}
	out := []Allowlist{}
	for _, al := range als {
		name := ""
		if len(al.Scope) > len("tenant:") && al.Scope[:len("tenant:")] == "tenant:" {
			if id, err := keystore.ParseID(al.Scope[len("tenant:"):]); err == nil {
				if t, err := c.h.store.Tenant(c.ctx, id); err == nil {
					name = t.Name
				}
			}
		}
		out = append(out, toAllowlist(al, name))
	}
	return http.StatusOK, out, nil
}

func showAllowlist(c *call) (int, any, error) {
	s, err := c.globalScope()
	if err != nil {
		return 0, nil, err
	}
	return c.showAllowlist(s, "")
}

func setAllowlist(c *call) (int, any, error) {
	s, err := c.globalScope()
	if err != nil {
		return 0, nil, err
	}
	return c.setAllowlist(s, "", false)
}

func clearAllowlist(c *call) (int, any, error) {
	s, err := c.globalScope()
	if err != nil {
		return 0, nil, err
	}
	return c.setAllowlist(s, "", true)
}

func listKeyVersions(c *call) (int, any, error) {
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	kvs, err := c.h.store.KeyVersions(c.ctx, t.ID)
	if kvs == nil {
		kvs = []keystore.KeyVersion{}
	}
	return http.StatusOK, kvs, err
}

func rotateKey(c *call) (int, any, error) {
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	kv, err := c.h.store.RotateKey(c.ctx, t.ID)
	return http.StatusCreated, kv, err
}

// ScheduleDestroyRequest is POST
// /tenants/{tenant}/key-versions/{version}/schedule-destroy; the body is
// optional. Grace is a Go duration ("24h", "720h"): how long from now the
// destruction waits, during which cancel-destroy undoes it. Empty means
// keystore.MinDestroyGrace, which is also the least the keystore accepts.
type ScheduleDestroyRequest struct {
	Grace string `json:"grace,omitempty"`
}

// keyVersionChange resolves {tenant} and {version} for a change of a key
// version's state, makes it with change and answers the version as it is
// now.
//
// Only the tenant's own admins change a key version's state; operators get
// 403 (they keep listing and rotating, which make nothing unreadable).
// Disabling, scheduling and destroying decide whether the tenant's data can
// be read at all, and destroying is crypto-shredding: irreversible, and
// the tool a tenant uses to erase personal data for good (GDPR Art. 17).
// That decision is the data controller's, the tenant, not the gateway
// operator's, who processes the data on its behalf (Art. 28(3)) and must
// never read it nor decide its fate. Cancelling and enabling are kept from
// operators for the same reason: they would let an operator undo a
// tenant's erasure or make data readable again that the tenant shut. An
// operator who suspects a tenant admin's key is being abused to shred
// suspends the tenant: that freezes the tenant's access to the admin API,
// so nothing further is scheduled or destroyed, reversibly and visibly,
// while the grace period (keystore.MinDestroyGrace at least) leaves the
// tenant's other admins time to cancel. Writers and readers never reach
// the admin API; another tenant's admin gets 404 as for a missing tenant.
//
// The change is in the login audit (kind admin_action) before it is made,
// as every admin mutation.
func (c *call) keyVersionChange(change func(tenant, version keystore.ID) error) (int, any, error) {
	if c.who.operator() {
		return 0, nil, errOperatorKeyVersion
	}
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	v, err := keystore.ParseID(c.r.PathValue("version"))
	if err != nil {
		return 0, nil, err
	}
	if err := change(t.ID, v); err != nil {
		return 0, nil, err
	}
	kvs, err := c.h.store.KeyVersions(c.ctx, t.ID)
	if err != nil {
		return 0, nil, err
	}
	i := slices.IndexFunc(kvs, func(kv keystore.KeyVersion) bool { return kv.ID == v })
	if i < 0 {
		return 0, nil, errNotFound
	}
	return http.StatusOK, kvs[i], nil
}

func disableKeyVersion(c *call) (int, any, error) {
	return c.keyVersionChange(func(t, v keystore.ID) error { return c.h.store.DisableKey(c.ctx, t, v) })
}

func enableKeyVersion(c *call) (int, any, error) {
	return c.keyVersionChange(func(t, v keystore.ID) error { return c.h.store.EnableKey(c.ctx, t, v) })
}

func scheduleKeyVersionDestroy(c *call) (int, any, error) {
	return c.keyVersionChange(func(t, v keystore.ID) error {
		var req ScheduleDestroyRequest
		if len(c.body) > 0 {
			if err := c.decode(&req); err != nil {
				return err
			}
		}
		grace := keystore.MinDestroyGrace
		if req.Grace != "" {
			d, err := time.ParseDuration(req.Grace)
			if err != nil {
				return apiError(http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("grace %q is not a duration such as 24h.", req.Grace))
			}
			grace = d // the keystore refuses less than MinDestroyGrace
		}
		return c.h.store.ScheduleKeyDestroy(c.ctx, t, v, grace)
	})
}

func cancelKeyVersionDestroy(c *call) (int, any, error) {
	return c.keyVersionChange(func(t, v keystore.ID) error { return c.h.store.CancelKeyDestroy(c.ctx, t, v) })
}

func destroyKeyVersion(c *call) (int, any, error) {
	return c.keyVersionChange(func(t, v keystore.ID) error { return c.h.store.DestroyKey(c.ctx, t, v) })
}

// CreateOperatorRequest is POST /operators.
type CreateOperatorRequest struct {
	Name string `json:"name"`
}

func listOperators(c *call) (int, any, error) {
	if err := c.requireOperator(); err != nil {
		return 0, nil, err
	}
	ops, err := c.h.store.Operators(c.ctx)
	if ops == nil {
		ops = []keystore.User{}
	}
	return http.StatusOK, ops, err
}

func createOperator(c *call) (int, any, error) {
	if err := c.requireOperator(); err != nil {
		return 0, nil, err
	}
	var req CreateOperatorRequest
	if err := c.decode(&req); err != nil {
		return 0, nil, err
	}
	cr, err := c.h.store.CreateOperator(c.ctx, req.Name)
	if err != nil {
		return 0, nil, err
	}
	u, err := c.h.store.User(c.ctx, cr.User)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, NewAccessKey{User: u, AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.SecretAccessKey,
		State: keystore.AccessKeyActive, Created: u.Created}, nil
}

// operator resolves the {user} path value to an operator.
func (c *call) operatorUser() (keystore.User, error) {
	if err := c.requireOperator(); err != nil {
		return keystore.User{}, err
	}
	return c.h.store.UserByName(c.ctx, keystore.OperatorScope, c.r.PathValue("user"))
}

// operatorKey resolves {user} and {key}; the key must be the operator's.
func (c *call) operatorKey() (keystore.AccessKey, error) {
	u, err := c.operatorUser()
	if err != nil {
		return keystore.AccessKey{}, err
	}
	keys, err := c.h.store.AccessKeys(c.ctx, u.ID)
	if err != nil {
		return keystore.AccessKey{}, err
	}
	for _, k := range keys {
		if k.ID == c.r.PathValue("key") {
			return k, nil
		}
	}
	return keystore.AccessKey{}, errNotFound
}

// errLastOperator refuses a change that would leave no operator able to
// sign: nobody could manage tenants any more.
var errLastOperator = apiError(http.StatusConflict, "InvalidState", "That would leave no operator with an active access key.")

// othersActive reports whether an operator key other than except (an
// access key id), or of another operator than exceptUser, is active.
func (c *call) othersActive(exceptUser keystore.ID, exceptKey string) (bool, error) {
	ops, err := c.h.store.Operators(c.ctx)
	if err != nil {
		return false, err
	}
	now := c.h.cfg.Clock()
	for _, op := range ops {
		if op.ID == exceptUser {
			continue
		}
		keys, err := c.h.store.AccessKeys(c.ctx, op.ID)
		if err != nil {
			return false, err
		}
		for _, k := range keys {
			if k.ID != exceptKey && k.State == keystore.AccessKeyActive && (k.Expires.IsZero() || now.Before(k.Expires)) {
				return true, nil
			}
		}
	}
	if exceptKey != "" {
		keys, err := c.h.store.AccessKeys(c.ctx, exceptUser)
		if err != nil {
			return false, err
		}
		for _, k := range keys {
			if k.ID != exceptKey && k.State == keystore.AccessKeyActive && (k.Expires.IsZero() || now.Before(k.Expires)) {
				return true, nil
			}
		}
	}
	return false, nil
}

func deleteOperator(c *call) (int, any, error) {
	u, err := c.operatorUser()
	if err != nil {
		return 0, nil, err
	}
	if ok, err := c.othersActive(u.ID, ""); err != nil || !ok {
		return 0, nil, cmpErr(err, errLastOperator)
	}
	return http.StatusNoContent, nil, c.h.store.DeleteUser(c.ctx, u.ID)
}

func listOperatorKeys(c *call) (int, any, error) {
	u, err := c.operatorUser()
	if err != nil {
		return 0, nil, err
	}
	keys, err := c.h.store.AccessKeys(c.ctx, u.ID)
	if keys == nil {
		keys = []keystore.AccessKey{}
	}
	return http.StatusOK, keys, err
}

func createOperatorKey(c *call) (int, any, error) {
	u, err := c.operatorUser()
	if err != nil {
		return 0, nil, err
	}
	req, err := c.createKeyRequest()
	if err != nil {
		return 0, nil, err
	}
	ak, err := c.h.store.CreateOperatorKey(c.ctx, u.ID, req.Expires)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, newAccessKey(u, ak), nil
}

func setOperatorKeyState(state keystore.AccessKeyState) func(*call) (int, any, error) {
	return func(c *call) (int, any, error) {
		k, err := c.operatorKey()
		if err != nil {
			return 0, nil, err
		}
		if state != keystore.AccessKeyActive {
			if ok, err := c.othersActive(k.User, k.ID); err != nil || !ok {
				return 0, nil, cmpErr(err, errLastOperator)
			}
		}
		if err := c.h.store.SetAccessKeyState(c.ctx, k.ID, state); err != nil {
			return 0, nil, err
		}
		k.State = state
		return http.StatusOK, k, nil
	}
}

func deleteOperatorKey(c *call) (int, any, error) {
	k, err := c.operatorKey()
	if err != nil {
		return 0, nil, err
	}
	if ok, err := c.othersActive(k.User, k.ID); err != nil || !ok {
		return 0, nil, cmpErr(err, errLastOperator)
	}
	return http.StatusNoContent, nil, c.h.store.DeleteAccessKey(c.ctx, k.ID)
}

// cmpErr returns err if set, else fallback.
func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
