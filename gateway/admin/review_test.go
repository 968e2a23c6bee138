package admin

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// Reviews of a real login audit: a tenant admin sees its own tenant's
// records, opened, and nothing of another tenant's; an operator sees
// every record with tenant fields opaque and its own actions opened.
func TestAuditReview(t *testing.T) {
	ctx := context.Background()
	clk := keystore.NewTestClock(time.Now().UTC())
	store := openStore(t, clk.Now)
	acfg := audit.DefaultConfig(t.TempDir(), "node-1")
	acfg.Logger = slog.New(slog.DiscardHandler)
	acfg.TenantKeys = store
	alog, err := audit.Open(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	sys, err := audit.ReadSystemKey(acfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(store, Config{Auditor: alog, AuditDir: acfg.Dir, AuditSystemKey: sys})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	op, err := store.BootstrapOperator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, clock: clk, srv: srv,
		operator: &Client{Endpoint: srv.URL, AccessKeyID: op.AccessKeyID, SecretAccessKey: op.SecretAccessKey}}

	acme, err := store.CreateTenant(ctx, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	globex, err := store.CreateTenant(ctx, "globex", nil)
	if err != nil {
		t.Fatal(err)
	}
	ann, annKey := f.member(t, acme.ID, "ann", keystore.RoleAdmin)
	gus, gusKey := f.member(t, globex.ID, "gus", keystore.RoleAdmin)

	// History: both admins work; two wrong signatures with ann's key id
	// and one with gus's; the operator creates a tenant.
	for _, c := range []*Client{ann, gus} {
		if err := c.Do(ctx, "GET", "whoami", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{annKey, annKey, gusKey} {
		bad := &Client{Endpoint: srv.URL, AccessKeyID: k, SecretAccessKey: strings.Repeat("x", 40)}
		if err := bad.Do(ctx, "GET", "whoami", nil, nil); status(err) != http.StatusForbidden {
			t.Fatalf("wrong secret: %v", err)
		}
	}
	if err := f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: "initech"}, nil); err != nil {
		t.Fatal(err)
	}

	var mine audit.Summary
	if err := ann.Do(ctx, "GET", "tenants/acme/audit/review?max-failures-per-key=1", nil, &mine); err != nil {
		t.Fatal(err)
	}
	acmeHex := hex.EncodeToString(acme.ID[:])
	if mine.Records == 0 || mine.Opaque != 0 {
		t.Fatalf("acme's review: %d records, %d opaque", mine.Records, mine.Opaque)
	}
	if len(mine.FailuresByKey) != 1 || mine.FailuresByKey[0].Value != annKey || mine.FailuresByKey[0].Count != 2 || mine.FailuresByKey[0].Tenant != acmeHex {
		t.Fatalf("acme's failures by key: %+v", mine.FailuresByKey)
	}
	if len(mine.Exceeded) != 1 || !strings.Contains(mine.Exceeded[0], "failures per access key: 2 > 1") {
		t.Fatalf("acme's exceeded thresholds: %v", mine.Exceeded)
	}
	for _, c := range append(mine.FailuresByKey, mine.FailuresByAddr...) {
		if c.Tenant != acmeHex || c.Value == gusKey {
			t.Fatalf("acme's review shows %+v", c)
		}
	}
	if len(mine.AdminActions) != 0 {
		t.Fatalf("acme's review shows admin actions %+v (the operator's)", mine.AdminActions)
	}

	var all audit.Summary
	if err := f.operator.Do(ctx, "GET", "audit/review?since=1h", nil, &all); err != nil {
		t.Fatal(err)
	}
	if all.Records <= mine.Records || all.Opaque == 0 {
		t.Fatalf("operator's review: %d records (acme alone %d), %d opaque", all.Records, mine.Records, all.Opaque)
	}
	for _, c := range all.FailuresByKey {
		if c.Tenant != "" && !strings.HasPrefix(c.Value, "~") {
			t.Fatalf("operator's review opened a tenant's field: %+v", c)
		}
	}
	found := false
	for _, e := range all.AdminActions {
		found = found || e.Operation == "create-tenant"
	}
	if !found {
		t.Fatalf("operator's review lacks its create-tenant: %+v", all.AdminActions)
	}

	// Tenants cannot read each other's review, operators use their own.
	if err := gus.Do(ctx, "GET", "tenants/acme/audit/review", nil, nil); status(err) != http.StatusNotFound {
		t.Fatalf("globex's admin on acme's review: %v", err)
	}
	if err := f.operator.Do(ctx, "GET", "tenants/acme/audit/review", nil, nil); status(err) != http.StatusForbidden {
		t.Fatalf("operator on acme's review: %v", err)
	}
	for _, q := range []string{"since=yesterday", "since=-1h", "max-denied=many"} {
		if err := ann.Do(ctx, "GET", "tenants/acme/audit/review?"+q, nil, nil); status(err) != http.StatusBadRequest {
			t.Fatalf("review?%s: %v, want 400", q, err)
		}
	}
}
