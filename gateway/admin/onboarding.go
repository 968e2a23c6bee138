package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// An operator processes a tenant's data on the tenant's behalf and must
// never be able to read it (doc.go). Through the admin API an operator
// could read it only by holding a working access key of the tenant, so
// every endpoint that creates, enables or hands out one refuses operators,
// with one exception made safe: the onboarding of a tenant's first admin.
//
//   - The first admin is created once per tenant (keystore.CreateFirstAdmin):
//     never again once the tenant has had an admin, has a user or owns a
//     bucket, whatever happened to its admins since. An operator who
//     deletes a tenant's admins locks the tenant out (visibly: the tenant's
//     audit has it) but does not get in.
//   - The operator gives the future admin's public key, and the answer
//     carries the admin's access key and the tenant's recovery key sealed
//     to it: the operator relays a ciphertext it cannot open. Without a
//     public key the onboarding is refused, unless operator_is_tenant says
//     the operator is the tenant too; then the secrets come in clear and a
//     record in the tenant's own login audit says the operator saw them.
//   - A tenant left without a usable admin recovers on its own: its
//     recovery key signs POST /tenants/{tenant}/recover, which creates a
//     new admin, answers sealed to the new admin's public key, and replaces
//     the recovery key. The recovery key signs nothing else.
//
// What stays with operators: suspending and resuming a tenant, listing its
// users, keys and key versions, disabling and deleting its users' keys and
// deleting its users (incident response: destructive and visible, never a
// way in), rotating its key version (a new key nobody sees), and its
// allowlist.

var (
	errOperatorKey = apiError(http.StatusForbidden, "AccessDenied",
		"Operators cannot issue access keys to a tenant's users: only the tenant's admins do.")
	errOperatorEnable = apiError(http.StatusForbidden, "AccessDenied",
		"Operators may disable or delete a tenant's access keys, never enable one: that is the tenant's admins' decision.")
	errOperatorRole = apiError(http.StatusForbidden, "AccessDenied",
		"Operators cannot change roles: a tenant's team is its admins' business.")
	errOperatorGrants = apiError(http.StatusForbidden, "AccessDenied",
		"Operators cannot grant or revoke buckets: a tenant's team is its admins' business.")
	errOperatorKeyVersion = apiError(http.StatusForbidden, "AccessDenied",
		"Only the tenant's admins change its key versions' states; operators list and rotate them.")
	errOperatorAdminOnly = apiError(http.StatusForbidden, "AccessDenied",
		"Operators create only a tenant's first admin; its admins manage the team.")
	errOperatorClear = apiError(http.StatusForbidden, "AccessDenied",
		"An operator onboards a tenant's first admin with the admin's public key (tresor admin keygen), so that it never sees the secrets; "+
			"set operator_is_tenant only if the operator is the tenant too.")
	errOperatorRecoveryKey = apiError(http.StatusForbidden, "AccessDenied",
		"A tenant's recovery key is the tenant's: only its admins rotate it.")
	errNotRecovery = apiError(http.StatusForbidden, "AccessDenied",
		"Only the tenant's recovery key signs a recovery.")
)

// errOperatorNoEntry refuses an operator a second onboarding of tenant.
func errOperatorNoEntry(tenant string) *Error {
	return apiError(http.StatusForbidden, "AccessDenied", fmt.Sprintf(
		"Tenant %s has had an admin, users or buckets: an operator can suspend it, never create an admin or a key in it. "+
			"A tenant that lost its admins recovers with its recovery key (tresor admin tenant recover).", tenant))
}

// handleRecovery registers an endpoint that a tenant's recovery key may
// sign too; every other endpoint refuses it as a writer.
func (h *Handler) handleRecovery(pattern, action string, fn func(c *call) (int, any, error)) {
	h.mux.Handle(pattern, h.wrap(endpoint{action: action, recovery: true, serve: fn}))
}

func (c caller) recovery() bool {
	return keystore.ID(c.Tenant) != keystore.OperatorScope && keystore.Role(c.Role) == keystore.RoleRecovery
}

// checkOnboarding checks an operator's request for a tenant's first admin
// and parses its public key (nil for operator_is_tenant).
func (c *call) checkOnboarding(req CreateUserRequest) (*PublicKey, error) {
	if req.Role != "" && req.Role != keystore.RoleAdmin {
		return nil, errOperatorAdminOnly
	}
	if err := c.checkExpiry(req.Expires); err != nil {
		return nil, err
	}
	pk, err := c.publicKey(req.PublicKey)
	switch {
	case err != nil:
		return nil, err
	case pk == nil && !req.OperatorIsTenant:
		return nil, errOperatorClear
	}
	return pk, nil
}

// onboard creates tenant t's first admin for an operator, sealed to pk or,
// for an operator who is the tenant (pk nil), in clear and audited as such.
func (c *call) onboard(t keystore.Tenant, req CreateUserRequest, pk *PublicKey) (NewAccessKey, error) {
	// The keystore refuses the same in the command, whatever raced it;
	// asking first gives the operator the reason.
	us, err := c.h.store.Users(c.ctx, t.ID)
	if err != nil {
		return NewAccessKey{}, err
	}
	bs, err := c.h.store.Buckets(c.ctx, t.ID)
	if err != nil {
		return NewAccessKey{}, err
	}
	if t.Onboarded || len(us) > 0 || len(bs) > 0 {
		return NewAccessKey{}, errOperatorNoEntry(t.Name)
	}
	if pk == nil {
		// In the tenant's own audit, so that the tenant sees it.
		rec := audit.Record{Kind: audit.AdminAction, Operation: "first-admin-secret-to-operator", Reason: "operator_is_tenant"}
		if err := c.h.auditRecord(c.r.Context(), c, rec, c.who.accessKey, c.who.ip, &auth.Principal{Tenant: t.ID, User: c.who.User}); err != nil {
			return NewAccessKey{}, err
		}
		c.h.log.Warn("an operator receives a tenant's first admin secret in clear (operator_is_tenant)",
			"request_id", c.id, "tenant", t.ID, "operator", keystore.ID(c.who.User))
	}
	creds, err := c.h.store.CreateFirstAdmin(c.ctx, t.ID, req.Name, req.Expires)
	if errors.Is(err, keystore.ErrState) {
		return NewAccessKey{}, errOperatorNoEntry(t.Name)
	}
	if err != nil {
		return NewAccessKey{}, err
	}
	return adminAnswer(t, creds, pk)
}

// adminAnswer is the answer of a request that created a tenant admin with
// the tenant's new recovery key, sealed to pk unless it is nil.
func adminAnswer(t keystore.Tenant, creds keystore.AdminCredentials, pk *PublicKey) (NewAccessKey, error) {
	nk := newAccessKey(creds.User, creds.Key)
	nk.RecoveryKeyID, nk.RecoverySecret = creds.Recovery.ID, creds.Recovery.Secret
	if pk != nil {
		if err := nk.seal(*pk, t.Name); err != nil {
			return NewAccessKey{}, err
		}
	}
	return nk, nil
}

// publicKey parses an optional public key from a request.
func (c *call) publicKey(s string) (*PublicKey, error) {
	if s == "" {
		return nil, nil
	}
	pk, err := ParsePublicKey(s)
	if err != nil {
		return nil, apiError(http.StatusBadRequest, "InvalidArgument", "public_key: "+err.Error())
	}
	return &pk, nil
}

// seal replaces nk's secrets by their seal to pk.
func (nk *NewAccessKey) seal(pk PublicKey, tenant string) error {
	s, err := pk.Seal(Credentials{
		Tenant: tenant, User: nk.User.Name, Role: nk.User.Role,
		AccessKeyID: nk.AccessKeyID, SecretAccessKey: nk.SecretAccessKey, Expires: nk.Expires,
		RecoveryKeyID: nk.RecoveryKeyID, RecoverySecret: nk.RecoverySecret,
	})
	if err != nil {
		return err
	}
	nk.Sealed, nk.SecretAccessKey, nk.RecoverySecret = s, "", ""
	return nil
}

// RecoverRequest is POST /tenants/{tenant}/recover, signed with the
// tenant's recovery key: a new admin named Name, whose credentials and the
// tenant's next recovery key are answered sealed to PublicKey (required,
// so that whoever relays the request learns nothing).
type RecoverRequest struct {
	Name      string    `json:"name"`
	PublicKey string    `json:"public_key"`
	Expires   time.Time `json:"expires,omitzero"`
}

func recoverTenant(c *call) (int, any, error) {
	if !c.who.recovery() {
		return 0, nil, errNotRecovery
	}
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	var req RecoverRequest
	if err := c.decode(&req); err != nil {
		return 0, nil, err
	}
	if err := c.checkExpiry(req.Expires); err != nil {
		return 0, nil, err
	}
	if req.PublicKey == "" {
		return 0, nil, apiError(http.StatusBadRequest, "InvalidArgument", "public_key is required: a recovery answers sealed to the new admin's key (tresor admin keygen).")
	}
	pk, err := c.publicKey(req.PublicKey)
	if err != nil {
		return 0, nil, err
	}
	creds, err := c.h.store.RecoverTenant(c.ctx, t.ID, c.who.accessKey, req.Name, req.Expires)
	if err != nil {
		return 0, nil, err
	}
	nk, err := adminAnswer(t, creds, pk)
	return http.StatusCreated, nk, err
}

// RecoveryKeyRequest is POST /tenants/{tenant}/recovery-key, by a tenant
// admin; the body is optional. With PublicKey the new recovery key is
// answered sealed to it.
type RecoveryKeyRequest struct {
	PublicKey string `json:"public_key,omitempty"`
}

// NewRecoveryKey answers POST /tenants/{tenant}/recovery-key: the only
// time the recovery secret is shown (in clear, or in Sealed).
type NewRecoveryKey struct {
	Tenant         string             `json:"tenant"`
	RecoveryKeyID  string             `json:"recovery_key_id"`
	RecoverySecret string             `json:"recovery_secret,omitempty"`
	Created        time.Time          `json:"created"`
	Sealed         *SealedCredentials `json:"sealed,omitempty"`
}

func showRecoveryKey(c *call) (int, any, error) {
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	rk, err := c.h.store.TenantRecoveryKey(c.ctx, t.ID)
	return http.StatusOK, rk, err
}

func rotateRecoveryKey(c *call) (int, any, error) {
	if c.who.operator() {
		return 0, nil, errOperatorRecoveryKey
	}
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	var req RecoveryKeyRequest
	if len(c.body) > 0 {
		if err := c.decode(&req); err != nil {
			return 0, nil, err
		}
	}
	pk, err := c.publicKey(req.PublicKey)
	if err != nil {
		return 0, nil, err
	}
	rk, err := c.h.store.RotateRecoveryKey(c.ctx, t.ID)
	if err != nil {
		return 0, nil, err
	}
	out := NewRecoveryKey{Tenant: t.Name, RecoveryKeyID: rk.ID, RecoverySecret: rk.Secret, Created: rk.Created}
	if pk != nil {
		if out.Sealed, err = pk.Seal(Credentials{Tenant: t.Name, RecoveryKeyID: rk.ID, RecoverySecret: rk.Secret}); err != nil {
			return 0, nil, err
		}
		out.RecoverySecret = ""
	}
	return http.StatusCreated, out, nil
}
