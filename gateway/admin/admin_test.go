package admin

import (
	"bytes"
	"context"
	"encoding/json"
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
// tenant's admin, the tenant's writer, another tenant's admin and the
// tenant's recovery key, each on a fresh tenant so that one caller's
// change does not feed the next; then it has an operator delete a tenant's
// only admin and try every way the API has to a working key of the tenant
// (operatorReentry).
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
		// and the tenant's recovery key (0: any 2xx).
		want [5]int
	}
	cidrs := AllowlistRequest{CIDRs: []string{"10.0.0.0/8", "2001:db8::/32"}}
	rows := []row{
		{"GET", "whoami", nil, [5]int{200, 200, 403, 200, 403}},
		{"GET", "tenants", nil, [5]int{200, 403, 403, 403, 403}},
		{"POST", "tenants", CreateTenantRequest{Name: "new-{n}"}, [5]int{201, 403, 403, 403, 403}},
		{"GET", "tenants/{t}", nil, [5]int{200, 200, 403, 404, 403}},
		{"POST", "tenants/{t}/suspend", nil, [5]int{200, 403, 403, 403, 403}},
		{"POST", "tenants/{t}/resume", nil, [5]int{200, 403, 403, 403, 403}},
		{"GET", "tenants/{t}/recovery-key", nil, [5]int{200, 200, 403, 404, 403}},
		{"POST", "tenants/{t}/recovery-key", nil, [5]int{403, 201, 403, 404, 403}},
		// The tenant has a working admin: its recovery key is refused
		// (409), everyone else's key too, before anything is looked at.
		{"POST", "tenants/{t}/recover", RecoverRequest{Name: "eve", PublicKey: "{pk}"}, [5]int{403, 403, 403, 403, 409}},
		{"GET", "tenants/{t}/users", nil, [5]int{200, 200, 403, 404, 403}},
		{"POST", "tenants/{t}/users", CreateUserRequest{Name: "carol", Role: keystore.RoleReader}, [5]int{403, 201, 403, 404, 403}},
		{"POST", "tenants/{t}/users", CreateUserRequest{Name: "carol", Role: keystore.RoleAdmin}, [5]int{403, 201, 403, 404, 403}},
		{"GET", "tenants/{t}/users/victim", nil, [5]int{200, 200, 403, 404, 403}},
		{"PUT", "tenants/{t}/users/victim/role", SetRoleRequest{Role: keystore.RoleWriter}, [5]int{403, 200, 403, 404, 403}},
		{"PUT", "tenants/{t}/users/victim/grants/photos", GrantRequest{Role: keystore.RoleReader}, [5]int{403, 200, 403, 404, 403}},
		{"DELETE", "tenants/{t}/users/victim/grants/granted", nil, [5]int{403, 200, 403, 404, 403}},
		{"DELETE", "tenants/{t}/users/victim/grants", nil, [5]int{403, 200, 403, 404, 403}},
		{"DELETE", "tenants/{t}/users/victim", nil, [5]int{204, 204, 403, 404, 403}},
		{"GET", "tenants/{t}/users/victim/keys", nil, [5]int{200, 200, 403, 404, 403}},
		{"POST", "tenants/{t}/users/victim/keys", CreateKeyRequest{}, [5]int{403, 201, 403, 404, 403}},
		{"POST", "tenants/{t}/users/victim/keys/{k}/disable", nil, [5]int{200, 200, 403, 404, 403}},
		{"POST", "tenants/{t}/users/victim/keys/{k}/enable", nil, [5]int{403, 200, 403, 404, 403}},
		{"DELETE", "tenants/{t}/users/victim/keys/{k}", nil, [5]int{204, 204, 403, 404, 403}},
		{"GET", "tenants/{t}/allowlist", nil, [5]int{200, 200, 403, 404, 403}},
		{"PUT", "tenants/{t}/allowlist", cidrs, [5]int{200, 200, 403, 404, 403}},
		{"DELETE", "tenants/{t}/allowlist", nil, [5]int{200, 200, 403, 404, 403}},
		{"GET", "tenants/{t}/key-versions", nil, [5]int{200, 200, 403, 404, 403}},
		{"POST", "tenants/{t}/key-versions/rotate", nil, [5]int{201, 201, 403, 404, 403}},
		// {v} is the tenant's first key version, brought to the state its
		// action starts from (prepareKeyVersion).
		{"POST", "tenants/{t}/key-versions/{v}/disable", nil, [5]int{403, 200, 403, 404, 403}},
		{"POST", "tenants/{t}/key-versions/{v}/enable", nil, [5]int{403, 200, 403, 404, 403}},
		{"POST", "tenants/{t}/key-versions/{v}/schedule-destroy", ScheduleDestroyRequest{Grace: "48h"}, [5]int{403, 200, 403, 404, 403}},
		{"POST", "tenants/{t}/key-versions/{v}/cancel-destroy", nil, [5]int{403, 200, 403, 404, 403}},
		{"POST", "tenants/{t}/key-versions/{v}/destroy", nil, [5]int{403, 200, 403, 404, 403}},
		{"POST", "cluster/transfer-leadership", nil, [5]int{501, 403, 403, 403, 403}}, // the fixture runs alone
		{"GET", "audit/review", nil, [5]int{200, 403, 403, 403, 403}},
		{"GET", "tenants/{t}/audit/review", nil, [5]int{403, 200, 403, 404, 403}},
		{"GET", "allowlists", nil, [5]int{200, 403, 403, 403, 403}},
		{"GET", "allowlists/s3", nil, [5]int{200, 403, 403, 403, 403}},
		{"PUT", "allowlists/cluster", cidrs, [5]int{200, 403, 403, 403, 403}},
		{"DELETE", "allowlists/cluster", nil, [5]int{200, 403, 403, 403, 403}},
		{"GET", "allowlists/bogus", nil, [5]int{404, 403, 403, 403, 403}},
		{"GET", "nonsense", nil, [5]int{404, 404, 403, 404, 403}},
	}
	callers := []string{"operator", "admin", "writer", "other-admin", "recovery-key"}
	pk := newRecipient(t).PublicKey().String()
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
				rk, err := f.store.RotateRecoveryKey(ctx, tn.ID)
				if err != nil {
					t.Fatal(err)
				}
				recovery := &Client{Endpoint: f.srv.URL, AccessKeyID: rk.ID, SecretAccessKey: rk.Secret}
				c := []*Client{f.operator, admin, writer, otherAdmin, recovery}[ci]
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
				if rr, ok := body.(RecoverRequest); ok {
					rr.PublicKey = pk
					body = rr
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
	t.Run("operator deletes the only admin, then tries every way back in", func(t *testing.T) { operatorReentry(t, f) })
}

// operatorReentry onboards a tenant as it should be (the admin's secrets
// sealed to its public key), lets its admin give it a writer whose key the
// admin then disables, and has the operator delete the admin and try every
// way the admin API offers to a working key of the tenant: each is
// refused, no answer carries a secret, and the tenant is left with no
// active key at all. The tenant then recovers on its own, with its
// recovery key.
func operatorReentry(t *testing.T, f *fixture) {
	ctx := context.Background()
	aliceKey := newRecipient(t)
	var nt NewTenant
	if err := f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: "acme",
		Admin: &CreateUserRequest{Name: "alice", PublicKey: aliceKey.PublicKey().String()}}, &nt); err != nil {
		t.Fatal(err)
	}
	if nt.Admin == nil || nt.Admin.SecretAccessKey != "" || nt.Admin.RecoverySecret != "" || nt.Admin.Sealed == nil || !nt.Onboarded {
		t.Fatalf("onboarding answer %+v: want the secrets sealed only", nt)
	}
	alice := open(t, aliceKey, nt.Admin.Sealed)
	aliceC := &Client{Endpoint: f.srv.URL, AccessKeyID: alice.AccessKeyID, SecretAccessKey: alice.SecretAccessKey}
	var wr NewAccessKey
	if err := aliceC.Do(ctx, "POST", "tenants/acme/users", CreateUserRequest{Name: "wr"}, &wr); err != nil {
		t.Fatal(err)
	}
	if err := aliceC.Do(ctx, "POST", "tenants/acme/users/wr/keys/"+wr.AccessKeyID+"/disable", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateBucket(ctx, nt.ID, "acme-data"); err != nil {
		t.Fatal(err)
	}
	if err := f.operator.Do(ctx, "DELETE", "tenants/acme/users/alice", nil, nil); err != nil {
		t.Fatalf("operator deletes the only admin: %v", err)
	}

	opKey := newRecipient(t).PublicKey().String()
	attempts := []struct {
		name, method, path string
		body               any
		want               int // 0: allowed, but no key comes of it
	}{
		{"create an admin sealed to itself", "POST", "tenants/acme/users", CreateUserRequest{Name: "mallory", PublicKey: opKey}, 403},
		{"create an admin in clear", "POST", "tenants/acme/users", CreateUserRequest{Name: "mallory", OperatorIsTenant: true}, 403},
		{"create an admin, default role", "POST", "tenants/acme/users", CreateUserRequest{Name: "mallory", PublicKey: opKey}, 403},
		{"create a writer", "POST", "tenants/acme/users", CreateUserRequest{Name: "mallory", Role: keystore.RoleWriter, OperatorIsTenant: true}, 403},
		{"create a reader", "POST", "tenants/acme/users", CreateUserRequest{Name: "mallory", Role: keystore.RoleReader, PublicKey: opKey}, 403},
		{"re-create the tenant with an admin", "POST", "tenants", CreateTenantRequest{Name: "acme", Admin: &CreateUserRequest{Name: "mallory", PublicKey: opKey}}, 409},
		{"create a key for the writer", "POST", "tenants/acme/users/wr/keys", CreateKeyRequest{}, 403},
		{"create a key for the writer, no body", "POST", "tenants/acme/users/wr/keys", nil, 403},
		{"re-enable the writer's disabled key", "POST", "tenants/acme/users/wr/keys/" + wr.AccessKeyID + "/enable", nil, 403},
		{"make the writer an admin", "PUT", "tenants/acme/users/wr/role", SetRoleRequest{Role: keystore.RoleAdmin}, 403},
		{"unconfine the writer", "DELETE", "tenants/acme/users/wr/grants", nil, 403},
		{"rotate the recovery key", "POST", "tenants/acme/recovery-key", RecoveryKeyRequest{PublicKey: opKey}, 403},
		{"recover the tenant", "POST", "tenants/acme/recover", RecoverRequest{Name: "mallory", PublicKey: opKey}, 403},
		{"enable a key version", "POST", "tenants/acme/key-versions/" + nt.ActiveKey.String() + "/enable", nil, 403},
		{"rotate the tenant key", "POST", "tenants/acme/key-versions/rotate", nil, 0},
		{"look at the recovery key", "GET", "tenants/acme/recovery-key", nil, 0},
		{"list the writer's keys", "GET", "tenants/acme/users/wr/keys", nil, 0},
	}
	for _, a := range attempts {
		var raw json.RawMessage
		err := f.operator.Do(ctx, a.method, a.path, a.body, &raw)
		if a.want == 0 {
			if err != nil {
				t.Fatalf("%s: %v", a.name, err)
			}
		} else {
			var e *Error
			if !errors.As(err, &e) || e.Status != a.want || (a.want == 403 && e.Code != "AccessDenied") || e.Message == "" || e.Message == errForbidden.Message {
				t.Fatalf("%s: got %v, want %d with a message that says why", a.name, err, a.want)
			}
		}
		if bytes.Contains(raw, []byte("secret")) || bytes.Contains(raw, []byte("sealed")) {
			t.Fatalf("%s: the answer carries a secret: %s", a.name, raw)
		}
	}
	us, err := f.store.Users(ctx, nt.ID)
	if err != nil || len(us) != 1 || us[0].Name != "wr" {
		t.Fatalf("users after the attempts: %+v, %v", us, err)
	}
	for _, u := range us {
		keys, err := f.store.AccessKeys(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k.State == keystore.AccessKeyActive {
				t.Fatalf("the tenant has an active key after the operator's attempts: %+v", k)
			}
		}
	}

	// The tenant recovers with its own recovery key; the answer is sealed
	// to the new admin's key, and the recovery key rotates.
	recovery := &Client{Endpoint: f.srv.URL, AccessKeyID: alice.RecoveryKeyID, SecretAccessKey: alice.RecoverySecret}
	if err := recovery.Do(ctx, "GET", "whoami", nil, nil); status(err) != 403 {
		t.Fatalf("the recovery key on whoami: %v", err)
	}
	if err := recovery.Do(ctx, "POST", "tenants/acme/recover", RecoverRequest{Name: "bob"}, nil); status(err) != 400 {
		t.Fatalf("a recovery without a public key: %v", err)
	}
	bobKey := newRecipient(t)
	var nk NewAccessKey
	if err := recovery.Do(ctx, "POST", "tenants/acme/recover", RecoverRequest{Name: "bob", PublicKey: bobKey.PublicKey().String()}, &nk); err != nil {
		t.Fatalf("recovery: %v", err)
	}
	if nk.SecretAccessKey != "" || nk.RecoverySecret != "" || nk.Sealed == nil || nk.RecoveryKeyID == alice.RecoveryKeyID {
		t.Fatalf("recovery answer %+v", nk)
	}
	if _, err := aliceKey.Open(nk.Sealed); err == nil {
		t.Fatal("the recovery answer opens with another key")
	}
	bob := open(t, bobKey, nk.Sealed)
	var me Whoami
	bobC := &Client{Endpoint: f.srv.URL, AccessKeyID: bob.AccessKeyID, SecretAccessKey: bob.SecretAccessKey}
	if err := bobC.Do(ctx, "GET", "whoami", nil, &me); err != nil || me.Tenant != "acme" || me.User != "bob" || me.Role != "admin" {
		t.Fatalf("the recovered admin: %+v, %v", me, err)
	}
	if err := recovery.Do(ctx, "POST", "tenants/acme/recover", RecoverRequest{Name: "carol", PublicKey: bobKey.PublicKey().String()}, nil); status(err) != 403 {
		t.Fatalf("the used recovery key again: %v", err)
	}
	if bob.RecoveryKeyID == "" || bob.RecoverySecret == "" {
		t.Fatalf("the recovery answer lacks the next recovery key: %+v", bob)
	}
}

func newRecipient(t *testing.T) *RecipientKey {
	t.Helper()
	k, err := GenerateRecipientKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func open(t *testing.T, k *RecipientKey, s *SealedCredentials) Credentials {
	t.Helper()
	c, err := k.Open(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
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
	key := newRecipient(t)
	if err := f.operator.Do(ctx, "POST", "tenants/acme/users", CreateUserRequest{Name: "alice", Role: keystore.RoleAdmin, Expires: exp, PublicKey: key.PublicKey().String()}, &nk); err != nil {
		t.Fatal(err)
	}
	creds := open(t, key, nk.Sealed)
	if nk.AccessKeyID == "" || creds.AccessKeyID != nk.AccessKeyID || len(creds.SecretAccessKey) != keystore.SecretKeyLength ||
		!nk.Expires.Equal(exp) || !creds.Expires.Equal(exp) || nk.User.Tenant != tn.ID || creds.Tenant != "acme" || creds.User != "alice" {
		t.Fatalf("created user answer %+v, sealed %+v", nk, creds)
	}
	alice := &Client{Endpoint: f.srv.URL, AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}
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

// TestOperatorOnboarding checks that an operator creates the first admin
// of a tenant once, with the admin's public key (the answer sealed to it)
// or, declaring itself the tenant, in clear and recorded in the tenant's
// audit; and never again once the tenant's admins are gone (issue 9).
func TestOperatorOnboarding(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, name := range []string{"acme", "globex", "initech"} {
		if err := f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: name}, nil); err != nil {
			t.Fatal(err)
		}
	}
	key := newRecipient(t)
	pk := key.PublicKey().String()
	tests := []struct {
		name, tenant string
		req          CreateUserRequest
		want         int  // 0: created
		clear        bool // the secrets come in clear
	}{
		{"not an admin", "acme", CreateUserRequest{Name: "w", Role: keystore.RoleWriter, PublicKey: pk}, 403, false},
		{"no public key", "acme", CreateUserRequest{Name: "alice"}, 403, false},
		{"a malformed public key", "acme", CreateUserRequest{Name: "alice", PublicKey: PublicKeyPrefix + "AAAA"}, 400, false},
		{"a public key of another kind", "acme", CreateUserRequest{Name: "alice", PublicKey: "ssh-ed25519 AAAA"}, 400, false},
		{"expiry in the past", "acme", CreateUserRequest{Name: "alice", PublicKey: pk, Expires: time.Now().Add(-time.Hour)}, 400, false},
		{"first admin, role by default, sealed", "acme", CreateUserRequest{Name: "alice", PublicKey: pk}, 0, false},
		{"second admin", "acme", CreateUserRequest{Name: "mallory", Role: keystore.RoleAdmin, PublicKey: pk}, 403, false},
		{"second admin, in clear", "acme", CreateUserRequest{Name: "mallory", OperatorIsTenant: true}, 403, false},
		{"first admin, operator is the tenant", "globex", CreateUserRequest{Name: "boss", OperatorIsTenant: true}, 0, true},
		{"first admin in the tenant request", "", CreateUserRequest{Name: "root", PublicKey: pk}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nk NewAccessKey
			var err error
			if tt.tenant == "" {
				var nt NewTenant
				err = f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: "hooli", Admin: &tt.req}, &nt)
				if nt.Admin != nil {
					nk = *nt.Admin
				}
			} else {
				err = f.operator.Do(ctx, "POST", "tenants/"+tt.tenant+"/users", tt.req, &nk)
			}
			if status(err) != tt.want {
				t.Fatalf("got %v, want %d", err, tt.want)
			}
			if err != nil {
				return
			}
			if nk.User.Role != keystore.RoleAdmin || nk.RecoveryKeyID == "" {
				t.Fatalf("created %+v", nk)
			}
			if tt.clear {
				if nk.SecretAccessKey == "" || nk.RecoverySecret == "" || nk.Sealed != nil {
					t.Fatalf("operator_is_tenant answer %+v: want the secrets in clear", nk)
				}
				return
			}
			if nk.SecretAccessKey != "" || nk.RecoverySecret != "" {
				t.Fatalf("sealed answer %+v carries a secret in clear", nk)
			}
			c := open(t, key, nk.Sealed)
			if c.AccessKeyID != nk.AccessKeyID || c.SecretAccessKey == "" || c.RecoveryKeyID != nk.RecoveryKeyID || c.RecoverySecret == "" {
				t.Fatalf("sealed credentials %+v for %+v", c, nk)
			}
		})
	}
	// A refused request created nothing, and the clear-text onboarding is
	// in globex's own audit.
	if err := f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: "nokey", Admin: &CreateUserRequest{Name: "x"}}, nil); status(err) != 403 {
		t.Fatalf("a tenant with an admin and no public key: %v", err)
	}
	if _, err := f.store.TenantByName(ctx, "nokey"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("a refused tenant creation created the tenant: %v", err)
	}
	acme, _ := f.store.TenantByName(ctx, "acme")
	if us, err := f.store.Users(ctx, acme.ID); err != nil || len(us) != 1 {
		t.Fatalf("acme's users %+v, %v", us, err)
	}
	globex, _ := f.store.TenantByName(ctx, "globex")
	f.audit.mu.Lock()
	seen := 0
	for _, r := range f.audit.recs {
		if r.Operation == "first-admin-secret-to-operator" {
			seen++
			if r.Tenant != globex.ID || r.AccessKeyID != f.operator.AccessKeyID || r.Kind != audit.AdminAction {
				t.Errorf("audit record %+v: want globex's, with the operator's key", r)
			}
		}
	}
	f.audit.mu.Unlock()
	if seen != 1 {
		t.Fatalf("%d audit records of secrets shown to the operator, want 1", seen)
	}
	// Once the tenant's admins are gone, the operator cannot onboard a new
	// one: the tenant recovers with its recovery key.
	if err := f.operator.Do(ctx, "DELETE", "tenants/acme/users/alice", nil, nil); err != nil {
		t.Fatal(err)
	}
	var e *Error
	err := f.operator.Do(ctx, "POST", "tenants/acme/users", CreateUserRequest{Name: "bob", PublicKey: pk}, nil)
	if !errors.As(err, &e) || e.Status != 403 || !strings.Contains(e.Message, "recovery key") {
		t.Fatalf("onboarding after the admins were deleted: %v, want 403 pointing to the recovery key", err)
	}
}
