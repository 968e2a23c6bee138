package admin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// Login audit reviews over this node's log (audit.Review). The records
// are personal data of the tenants' teams, so who sees what follows who
// owns it: an operator reviews every record with tenant fields left
// opaque (stable tokens, so failures still group by key and address) and
// the node's own records opened; a tenant admin reviews its tenant's
// records, opened with its keys, and nothing of anyone else's. Each node
// keeps its own log: a review covers the node it is asked of.

func reviewAll(c *call) (int, any, error) {
	if err := c.requireOperator(); err != nil {
		return 0, nil, err
	}
	rc, err := c.reviewConfig()
	if err != nil {
		return 0, nil, err
	}
	rc.SystemKey = c.h.cfg.AuditSystemKey
	return c.review(rc)
}

func reviewTenant(c *call) (int, any, error) {
	if c.who.operator() {
		return 0, nil, errForbidden // operators review with /audit/review, opaque
	}
	t, err := c.tenant()
	if err != nil {
		return 0, nil, err
	}
	rc, err := c.reviewConfig()
	if err != nil {
		return 0, nil, err
	}
	rc.Tenant, rc.Keys = t.ID, tenantKeys{c.h.store, t.ID}
	return c.review(rc)
}

func (c *call) review(rc audit.ReviewConfig) (int, any, error) {
	if c.h.cfg.AuditDir == "" {
		return 0, nil, apiError(http.StatusNotImplemented, "NotImplemented", "This node keeps no login audit log.")
	}
	s, err := audit.Review(c.ctx, c.h.cfg.AuditDir, rc)
	return http.StatusOK, s, err
}

// reviewThresholds are a review's query parameters besides since (a
// duration, default 24h), named as `tresor audit review`'s flags.
var reviewThresholds = []struct {
	name string
	set  func(*audit.Thresholds, int)
}{
	{"max-failures-per-key", func(t *audit.Thresholds, n int) { t.MaxFailuresPerKey = n }},
	{"max-failures-per-addr", func(t *audit.Thresholds, n int) { t.MaxFailuresPerAddr = n }},
	{"max-denied", func(t *audit.Thresholds, n int) { t.MaxDenied = n }},
	{"max-new-addresses", func(t *audit.Thresholds, n int) { t.MaxNewAddresses = n }},
	{"max-rate-limited", func(t *audit.Thresholds, n int) { t.MaxRateLimited = n }},
	{"max-admin-actions", func(t *audit.Thresholds, n int) { t.MaxAdminActions = n }},
}

// maxReviewPeriod bounds since: retention removes older records anyway.
const maxReviewPeriod = 10 * 366 * 24 * time.Hour

func (c *call) reviewConfig() (audit.ReviewConfig, error) {
	q := c.r.URL.Query()
	since := 24 * time.Hour
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxReviewPeriod {
			return audit.ReviewConfig{}, apiError(http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("since %q: want a positive duration such as 24h.", v))
		}
		since = d
	}
	rc := audit.ReviewConfig{Since: c.h.cfg.Clock().Add(-since)}
	for _, th := range reviewThresholds {
		v := q.Get(th.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return audit.ReviewConfig{}, apiError(http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("%s %q: want a count.", th.name, v))
		}
		th.set(&rc.Thresholds, n)
	}
	return rc, nil
}

// tenantKeys opens the audit fields of one tenant only: a tenant's review
// never holds another's records, and this makes sure it could not open
// them either.
type tenantKeys struct {
	store  *keystore.Store
	tenant keystore.ID
}

func (k tenantKeys) ActiveKey(ctx context.Context, tenant [16]byte) ([16]byte, []byte, error) {
	if tenant != k.tenant {
		return [16]byte{}, nil, keystore.ErrNotFound
	}
	return k.store.ActiveKey(ctx, tenant)
}

func (k tenantKeys) Key(ctx context.Context, tenant, id [16]byte) ([]byte, error) {
	if tenant != k.tenant {
		return nil, keystore.ErrNotFound
	}
	return k.store.Key(ctx, tenant, id)
}
