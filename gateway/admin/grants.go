package admin

import (
	"net/http"

	"github.com/tresor-gw/tresor/keystore"
)

// Per-bucket grants (keystore.User.Confined): a tenant admin confines a
// writer or reader to the buckets it grants, each with a role. Like roles,
// grants are the tenant admins' business; operators are refused.

// GrantRequest is PUT /tenants/{tenant}/users/{user}/grants/{bucket}.
type GrantRequest struct {
	Role keystore.Role `json:"role"`
}

func grantBucket(c *call) (int, any, error) {
	u, err := c.grantee()
	if err != nil {
		return 0, nil, err
	}
	var req GrantRequest
	if err := c.decode(&req); err != nil {
		return 0, nil, err
	}
	u, err = c.h.store.GrantBucket(c.ctx, u.ID, c.r.PathValue("bucket"), req.Role)
	return http.StatusOK, u, err
}

func revokeBucket(c *call) (int, any, error) {
	u, err := c.grantee()
	if err != nil {
		return 0, nil, err
	}
	u, err = c.h.store.RevokeBucket(c.ctx, u.ID, c.r.PathValue("bucket"))
	return http.StatusOK, u, err
}

func clearGrants(c *call) (int, any, error) {
	u, err := c.grantee()
	if err != nil {
		return 0, nil, err
	}
	u, err = c.h.store.ClearGrants(c.ctx, u.ID)
	return http.StatusOK, u, err
}

// grantee resolves {tenant} and {user} for a tenant admin.
func (c *call) grantee() (keystore.User, error) {
	if c.who.operator() {
		return keystore.User{}, errOperatorGrants
	}
	_, u, err := c.user()
	return u, err
}
