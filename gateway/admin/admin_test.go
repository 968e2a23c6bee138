package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// fixture is one store behind the admin API with an operator and two
// tenants.
type fixture struct {
	store    *keystore.Store
	clock    *keystore.TestClock
	srv      *httptest.Server
	operator *Client
	audit    *recorder
}

type recorder struct {
	mu   sync.Mutex
	recs []audit.Record
	fail atomic.Bool
}

func (r *recorder) Append(_ context.Context, rec audit.Record) error {
	if r.fail.Load() {
		return errors.New("audit disk full")
	}
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	return nil
}

func (r *recorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var as []string
	for _, rec := range r.recs {
		if rec.Kind == audit.AdminAction {
			as = append(as, rec.Operation)
		}
	}
	return as
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := keystore.NewTestClock(time.Now().UTC())
	store := openStore(t, clk.Now)
	rec := &recorder{}
	h, err := New(store, Config{Auditor: rec, AuditDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	op, err := store.BootstrapOperator(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, clock: clk, srv: srv, audit: rec,
		operator: &Client{Endpoint: srv.URL, AccessKeyID: op.AccessKeyID, SecretAccessKey: op.SecretAccessKey}}
}

// member creates a user of tenant with role and returns a client signing
// with its new key, and the key id.
func (f *fixture) member(t *testing.T, tenant keystore.ID, name string, role keystore.Role) (*Client, string) {
	t.Helper()
	ctx := context.Background()
	u, err := f.store.CreateUser(ctx, tenant, name, role)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := f.store.CreateAccessKey(ctx, u.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return &Client{Endpoint: f.srv.URL, AccessKeyID: ak.ID, SecretAccessKey: ak.Secret}, ak.ID
}

func status(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return -1
}

// TestAuthorizationMatrix calls every endpoint as an operator, the
// tenant's admin, the tenant's writer and another tenant's admin, each on
// a fresh tenant so that one caller's change does not feed the next.
func TestAuthorizationMatrix(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other, err := f.store.CreateTenant(ctx, "globex", nil)
	if err != nil {
		t.Fatal(err)
	}
	otherAdmin, _ := f.member(t, other.ID, "boss", keystore.RoleAdmin)

	type row struct {
		method, path string
		body         any
		// want is the status for operator, admin, writer, other admin
		// (0: any 2xx).
		want [4]int
	}
	cidrs := AllowlistRequest{CIDRs: []string{"10.0.0.0/8", "2001:db8::/32"}}
	rows := []row{
		{"GET", "whoami", nil, [4]int{200, 200, 403, 200}},
		{"GET", "tenants", nil, [4]int{200, 403, 403, 403}},
		{"POST", "tenants", CreateTenantRequest{Name: "new-{n}"}, [4]int{201, 403, 403, 403}},
		{"GET", "tenants/{t}", nil, [4]int{200, 200, 403, 404}},
		{"POST", "tenants/{t}/suspend", nil, [4]int{200, 403, 403, 403}},
		{"POST", "tenants/{t}/resume", nil, [4]int{200, 403, 403, 403}},
		{"GET", "tenants/{t}/users", nil, [4]int{200, 200, 403, 404}},
		{"POST", "tenants/{t}/users", CreateUserRequest{Name: "carol", Role: keystore.RoleReader}, [4]int{403, 201, 403, 404}},
		{"POST", "tenants/{t}/users", CreateUserRequest{Name: "carol", Role: keystore.RoleAdmin}, [4]int{403, 201, 403, 404}},
		{"GET", "tenants/{t}/users/victim", nil, [4]int{200, 200, 403, 404}},
		{"PUT", "tenants/{t}/users/victim/role", SetRoleRequest{Role: keystore.RoleWriter}, [4]int{403, 200, 403, 404}},
		{"PUT", "tenants/{t}/users/victim/grants/photos", GrantRequest{Role: keystore.RoleReader}, [4]int{403, 200, 403, 404}},
		{"DELETE", "tenants/{t}/users/victim/grants/granted", nil, [4]int{403, 200, 403, 404}},
		{"DELETE", "tenants/{t}/users/victim/grants", nil, [4]int{403, 200, 403, 404}},
		{"DELETE", "tenants/{t}/users/victim", nil, [4]int{204, 204, 403, 404}},
		{"GET", "tenants/{t}/users/victim/keys", nil, [4]int{200, 200, 403, 404}},
		{"POST", "tenants/{t}/users/victim/keys", CreateKeyRequest{}, [4]int{403, 201, 403, 404}},
		{"POST", "tenants/{t}/users/victim/keys/{k}/disable", nil, [4]int{200, 200, 403, 404}},
		{"POST", "tenants/{t}/users/victim/keys/{k}/enable", nil, [4]int{200, 200, 403, 404}},
		{"DELETE", "tenants/{t}/users/victim/keys/{k}", nil, [4]int{204, 204, 403, 404}},
		{"GET", "tenants/{t}/allowlist", nil, [4]int{200, 200, 403, 404}},
		{"PUT", "tenants/{t}/allowlist", cidrs, [4]int{200, 200, 403, 404}},
		{"DELETE", "tenants/{t}/allowlist", nil, [4]int{200, 200, 403, 404}},
		{"GET", "tenants/{t}/key-versions", nil, [4]int{200, 200, 403, 404}},
		{"POST", "tenants/{t}/key-versions/rotate", nil, [4]int{201, 201, 403, 404}},
		// {v} is the tenant's first key version, brought to the state its
		// action starts from (prepareKeyVersion).
		{"POST", "tenants/{t}/key-versions/{v}/disable", nil, [4]int{403, 200, 403, 404}},
		{"POST", "tenants/{t}/key-versions/{v}/enable", nil, [4]int{403, 200, 403, 404}},
		{"POST", "tenants/{t}/key-versions/{v}/schedule-destroy", ScheduleDestroyRequest{Grace: "48h"}, [4]int{403, 200, 403, 404}},
		{"POST", "tenants/{t}/key-versions/{v}/cancel-destroy", nil, [4]int{403, 200, 403, 404}},
		{"POST", "tenants/{t}/key-versions/{v}/destroy", nil, [4]int{403, 200, 403, 404}},
		{"POST", "cluster/transfer-leadership", nil, [4]int{501, 403, 403, 403}}, // the fixture runs alone
		{"GET", "audit/review", nil, [4]int{200, 403, 403, 403}},
		{"GET", "tenants/{t}/audit/review", nil, [4]int{403, 200, 403, 404}},
		{"GET", "allowlists", nil, [4]int{200, 403, 403, 403}},
		{"GET", "allowlists/s3", nil, [4]int{200, 403, 403, 403}},
		{"PUT", "allowlists/cluster", cidrs, [4]int{200, 403, 403, 403}},
		{"DELETE", "allowlists/cluster", nil, [4]int{200, 403, 403, 403}},
		{"GET", "allowlists/bogus", nil, [4]int{404, 403, 403, 403}},
		{"GET", "nonsense", nil, [4]int{404, 404, 403, 404}},
	}
	callers := []string{"operator", "admin", "writer", "other-admin"}
	n := 0
	for _, r := range rows {
		for ci, who := range callers {
			n++
			t.Run(fmt.Sprintf("%s %s as %s", r.method, r.path, who), func(t *testing.T) {
				tn, err := f.store.CreateTenant(ctx, fmt.Sprintf("t%d", n), nil)
				if err != nil {
					t.Fatal(err)
				}
				admin, _ := f.member(t, tn.ID, "boss", keystore.RoleAdmin)
				writer, _ := f.member(t, tn.ID, "wr", keystore.RoleWriter)
				_, victimKey := f.member(t, tn.ID, "victim", keystore.RoleReader)
				if strings.Contains(r.path, "/grants/granted") {
					victim, err := f.store.UserByName(ctx, tn.ID, "victim")
					if err != nil {
						t.Fatal(err)
					}
					if _, err := f.store.GrantBucket(ctx, victim.ID, "granted", keystore.RoleReader); err != nil {
						t.Fatal(err)
					}
				}
				c := []*Client{f.operator, admin, writer, otherAdmin}[ci]
				var version keystore.ID
				if strings.Contains(r.path, "{v}") {
					version = f.prepareKeyVersion(t, tn.ID, r.path[strings.LastIndex(r.path, "/")+1:])
				}
				path := strings.NewReplacer("{t}", tn.Name, "{k}", victimKey, "{v}", version.String()).Replace(r.path)
				body := r.body
				if ct, ok := body.(CreateTenantRequest); ok {
					ct.Name = strings.ReplaceAll(ct.Name, "{n}", fmt.Sprint(n))
					body = ct
				}
				err = c.Do(ctx, r.method, path, body, nil)
				got, want := status(err), r.want[ci]
				if want < 300 {
					if err != nil {
						t.Fatalf("got %v, want %d", err, want)
					}
					return
				}
				if got != want {
					t.Fatalf("got status %d (%v), want %d", got, err, want)
				}
				var e *Error
				if !errors.As(err, &e) || e.Code == "" || e.Message == "" {
					t.Fatalf("error %#v lacks a code or message", err)
				}
			})
		}
	}
}

func TestUnauthenticated(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	resp, err := http.Get(f.srv.URL + "/admin/v1/tenants")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("anonymous: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	bad := *f.operator
	bad.SecretAccessKey = strings.Repeat("x", 40)
	var e *Error
	if err := bad.Do(ctx, "GET", "tenants", nil, nil); !errors.As(err, &e) || e.Status != 403 || e.Code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
	unknown := *f.operator
	unknown.AccessKeyID = "TRSRAAAAAAAAAAAAAAAA"
	if err := unknown.Do(ctx, "GET", "tenants", nil, nil); !errors.As(err, &e) || e.Code != "InvalidAccessKeyId" {
		t.Fatalf("unknown key: %v", err)
	}
	// A disabled operator key stops working on the next request.
	ak, _ := f.store.OperatorKey(ctx, f.operator.AccessKeyID)
	if err := f.store.SetAccessKeyState(ctx, ak.ID, keystore.AccessKeyDisabled); err != nil {
		t.Fatal(err)
	}
	if err := f.operator.Do(ctx, "GET", "tenants", nil, nil); status(err) != 403 {
		t.Fatalf("disabled operator key: %v", err)
	}
}

func TestTenantLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var tn keystore.Tenant
	if err := f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: "acme", Jurisdictions: []string{"EU"}}, &tn); err != nil {
		t.Fatal(err)
	}
	if err := f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: "acme"}, nil); status(err) != 409 {
		t.Fatalf("duplicate tenant: %v", err)
	}
	if err := f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: "Bad Name"}, nil); status(err) != 400 {
		t.Fatalf("bad name: %v", err)
	}
	var nk NewAccessKey
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := f.operator.Do(ctx, "POST", "tenants/acme/users", CreateUserRequest{Name: "alice", Role: keystore.RoleAdmin, Expires: exp}, &nk); err != nil {
		t.Fatal(err)
	}
	if nk.AccessKeyID == "" || len(nk.SecretAccessKey) != keystore.SecretKeyLength || !nk.Expires.Equal(exp) || nk.User.Tenant != tn.ID {
		t.Fatalf("created user answer %+v", nk)
	}
	alice := &Client{Endpoint: f.srv.URL, AccessKeyID: nk.AccessKeyID, SecretAccessKey: nk.SecretAccessKey}
	var me Whoami
	if err := alice.Do(ctx, "GET", "whoami", nil, &me); err != nil || me.Tenant != "acme" || me.User != "alice" || me.Role != "admin" {
		t.Fatalf("whoami = %+v, %v", me, err)
	}
	// Suspension locks the tenant's own admin out, resume lets it in.
	if err := f.operator.Do(ctx, "POST", "tenants/acme/suspend", nil, &tn); err != nil || tn.State != keystore.TenantSuspended {
		t.Fatalf("suspend: %+v, %v", tn, err)
	}
	if err := alice.Do(ctx, "GET", "whoami", nil, nil); status(err) != 403 {
		t.Fatalf("suspended tenant's admin: %v", err)
	}
	if err := f.operator.Do(ctx, "POST", "tenants/acme/resume", nil, &tn); err != nil || tn.State != keystore.TenantActive {
		t.Fatalf("resume: %+v, %v", tn, err)
	}
	// Rotation: a new active version, the old one decrypt-only.
	var kv keystore.KeyVersion
	if err := alice.Do(ctx, "POST", "tenants/acme/key-versions/rotate", nil, &kv); err != nil || kv.State != keystore.KeyActive {
		t.Fatalf("rotate: %+v, %v", kv, err)
	}
	var kvs []keystore.KeyVersion
	if err := alice.Do(ctx, "GET", "tenants/acme/key-versions", nil, &kvs); err != nil || len(kvs) != 2 {
		t.Fatalf("key versions: %+v, %v", kvs, err)
	}
	// Allowlists: bad CIDRs are refused, good ones stored masked.
	if err := alice.Do(ctx, "PUT", "tenants/acme/allowlist", AllowlistRequest{CIDRs: []string{"10.0.0.0/33"}}, nil); status(err) != 400 {
		t.Fatalf("bad CIDR: %v", err)
	}
	var al Allowlist
	if err := alice.Do(ctx, "PUT", "tenants/acme/allowlist", AllowlistRequest{CIDRs: []string{"10.1.2.3/16", "2001:db8::1"}}, &al); err != nil ||
		strings.Join(al.CIDRs, ",") != "10.1.0.0/16,2001:db8::1/128" || al.Tenant != "acme" {
		t.Fatalf("set allowlist: %+v, %v", al, err)
	}
	var all []Allowlist
	if err := f.operator.Do(ctx, "GET", "allowlists", nil, &all); err != nil || len(all) != 1 || all[0].Tenant != "acme" {
		t.Fatalf("allowlists: %+v, %v", all, err)
	}
	want := []string{"create-tenant", "create-tenant", "create-tenant", "create-user", "suspend-tenant", "resume-tenant", "rotate-key", "set-allowlist", "set-allowlist"}
	if got := f.audit.actions(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("audited actions %v, want %v", got, want)
	}
}

func TestAuditUnavailable_NothingChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.audit.fail.Store(true)
	if err := f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: "acme"}, nil); status(err) != 503 {
		t.Fatalf("create with the audit down: %v", err)
	}
	f.audit.fail.Store(false)
	if _, err := f.store.TenantByName(ctx, "acme"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("tenant created although the audit refused: %v", err)
	}
}

// TestFailedSignatures_RateLimited checks that guessing an operator's
// secret is slowed down like on the S3 listener, and that the right
// secret is not confirmed during the lockout.
func TestFailedSignatures_RateLimited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bad := *f.operator
	bad.SecretAccessKey = strings.Repeat("y", 40)
	var last error
	for range 12 { // the per-pair burst is 10
		last = bad.Do(ctx, "GET", "whoami", nil, nil)
	}
	var e *Error
	if !errors.As(last, &e) || e.Status != http.StatusTooManyRequests || e.Code != "SlowDown" {
		t.Fatalf("after 12 failures: %v, want 429 SlowDown", last)
	}
	if err := f.operator.Do(ctx, "GET", "whoami", nil, nil); status(err) != http.StatusTooManyRequests {
		t.Fatalf("right secret during the lockout: %v, want 429", err)
	}
	var kinds []audit.Kind
	f.audit.mu.Lock()
	for _, r := range f.audit.recs {
		kinds = append(kinds, r.Kind)
	}
	f.audit.mu.Unlock()
	if len(kinds) != 13 || kinds[0] != audit.AuthFailure || kinds[12] != audit.RateLimited {
		t.Fatalf("audit kinds %v", kinds)
	}
}

func TestOperators(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tn, err := f.store.CreateTenant(ctx, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	tenantAdmin, _ := f.member(t, tn.ID, "boss", keystore.RoleAdmin)
	if err := tenantAdmin.Do(ctx, "GET", "operators", nil, nil); status(err) != 403 {
		t.Fatalf("tenant admin listed operators: %v", err)
	}
	if err := tenantAdmin.Do(ctx, "POST", "operators", CreateOperatorRequest{Name: "evil"}, nil); status(err) != 403 {
		t.Fatalf("tenant admin created an operator: %v", err)
	}
	// The only operator cannot lock itself out.
	first := f.operator.AccessKeyID
	if err := f.operator.Do(ctx, "POST", "operators/operator/keys/"+first+"/disable", nil, nil); status(err) != 409 {
		t.Fatalf("disabling the last operator key: %v", err)
	}
	var nk NewAccessKey
	if err := f.operator.Do(ctx, "POST", "operators", CreateOperatorRequest{Name: "ops2"}, &nk); err != nil {
		t.Fatal(err)
	}
	ops2 := &Client{Endpoint: f.srv.URL, AccessKeyID: nk.AccessKeyID, SecretAccessKey: nk.SecretAccessKey}
	var me Whoami
	if err := ops2.Do(ctx, "GET", "whoami", nil, &me); err != nil || me.Role != "operator" || me.User != "ops2" || me.Tenant != "" {
		t.Fatalf("whoami = %+v, %v", me, err)
	}
	// Rotation of the first operator's credentials: a new key, the old one
	// disabled.
	var second NewAccessKey
	if err := ops2.Do(ctx, "POST", "operators/operator/keys", CreateKeyRequest{}, &second); err != nil || second.SecretAccessKey == "" {
		t.Fatalf("operator key create: %+v, %v", second, err)
	}
	if err := ops2.Do(ctx, "POST", "operators/operator/keys/"+first+"/disable", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.operator.Do(ctx, "GET", "whoami", nil, nil); status(err) != 403 {
		t.Fatalf("disabled operator key: %v", err)
	}
	var ops []keystore.User
	if err := ops2.Do(ctx, "GET", "operators", nil, &ops); err != nil || len(ops) != 2 {
		t.Fatalf("operators = %+v, %v", ops, err)
	}
	if err := ops2.Do(ctx, "DELETE", "operators/operator", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := ops2.Do(ctx, "DELETE", "operators/ops2", nil, nil); status(err) != 409 {
		t.Fatalf("deleting the last operator: %v", err)
	}
	if err := ops2.Do(ctx, "GET", "operators/acme/keys", nil, nil); status(err) != 404 {
		t.Fatalf("a tenant's name as an operator: %v", err)
	}
}

// TestOperatorOnboarding checks that an operator creates the admin of a
// tenant that has none, and nothing else.
func TestOperatorOnboarding(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: "acme"}, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  CreateUserRequest
		want int // 0: created
	}{
		{"not an admin", CreateUserRequest{Name: "w", Role: keystore.RoleWriter}, 403},
		{"first admin, role by default", CreateUserRequest{Name: "alice"}, 0},
		{"second admin", CreateUserRequest{Name: "mallory", Role: keystore.RoleAdmin}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nk NewAccessKey
			err := f.operator.Do(ctx, "POST", "tenants/acme/users", tt.req, &nk)
			if status(err) != tt.want {
				t.Fatalf("got %v, want %d", err, tt.want)
			}
			if err == nil && nk.User.Role != keystore.RoleAdmin {
				t.Fatalf("created %+v", nk.User)
			}
		})
	}
	// Once the tenant's admins are gone, the operator may onboard a new one.
	if err := f.operator.Do(ctx, "DELETE", "tenants/acme/users/alice", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.operator.Do(ctx, "POST", "tenants/acme/users", CreateUserRequest{Name: "bob"}, nil); err != nil {
		t.Fatalf("onboarding after the admins were deleted: %v", err)
	}
}
