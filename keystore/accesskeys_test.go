package keystore

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

var noExpiry time.Time

func TestCreateUser(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a, b := mustTenant(t, s, "alice"), mustTenant(t, s, "bob")
	mustUser(t, s, a.ID, "taken", RoleReader)
	tests := []struct {
		name   string
		tenant ID
		user   string
		role   Role
		want   error
	}{
		{"ok", a.ID, "ann@example.com", RoleWriter, nil},
		{"same name in another tenant", b.ID, "taken", RoleAdmin, nil},
		{"taken", a.ID, "taken", RoleAdmin, ErrExists},
		{"bad role", a.ID, "carl", Role("root"), ErrInvalid},
		{"bad name", a.ID, "carl smith", RoleReader, ErrInvalid},
		{"empty name", a.ID, "", RoleReader, ErrInvalid},
		{"unknown tenant", ID{7}, "carl", RoleReader, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := s.CreateUser(ctx, tt.tenant, tt.user, tt.role)
			wantErr(t, "CreateUser", err, tt.want)
			if err != nil {
				return
			}
			got, err := s.UserByName(ctx, tt.tenant, tt.user)
			if err != nil || !reflect.DeepEqual(got, u) || u.Role != tt.role || u.Tenant != tt.tenant {
				t.Fatalf("UserByName = %+v, %v; created %+v", got, err, u)
			}
		})
	}
	us, err := s.Users(ctx, a.ID)
	if err != nil || len(us) != 2 || us[0].Name != "ann@example.com" || us[1].Name != "taken" {
		t.Fatalf("Users = %+v, %v", us, err)
	}
}

func TestAccessKey_Lookup(t *testing.T) {
	s, clk := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	u := mustUser(t, s, tn.ID, "ann", RoleWriter)
	ak, err := s.CreateAccessKey(ctx, u.ID, clk.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(ak.ID) != AccessKeyIDLength || !strings.HasPrefix(ak.ID, AccessKeyPrefix) || len(ak.Secret) != SecretKeyLength {
		t.Fatalf("access key shape %q / %d-char secret", ak.ID, len(ak.Secret))
	}
	got, err := s.AccessKey(ctx, ak.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Secret != ak.Secret || got.Tenant != tn.ID || got.User != u.ID || got.UserName != "ann" ||
		got.Role != RoleWriter || got.State != AccessKeyActive || !got.Expires.Equal(ak.Expires) {
		t.Fatalf("AccessKey = %+v, created %+v", got, ak)
	}

	wantErr(t, "role change", s.SetUserRole(ctx, u.ID, RoleReader), nil)
	if got, _ := s.AccessKey(ctx, ak.ID); got.Role != RoleReader {
		t.Fatalf("role after SetUserRole: %v", got.Role)
	}
	wantErr(t, "bad role", s.SetUserRole(ctx, u.ID, "boss"), ErrInvalid)

	wantErr(t, "disable", s.SetAccessKeyState(ctx, ak.ID, AccessKeyDisabled), nil)
	_, err = s.AccessKey(ctx, ak.ID)
	wantErr(t, "AccessKey of a disabled key", err, ErrDisabled)
	wantErr(t, "enable", s.SetAccessKeyState(ctx, ak.ID, AccessKeyActive), nil)
	wantErr(t, "bad state", s.SetAccessKeyState(ctx, ak.ID, "on"), ErrInvalid)
	wantErr(t, "unknown key state", s.SetAccessKeyState(ctx, "TRSRAAAAAAAAAAAAAAAA", AccessKeyActive), ErrNotFound)

	clk.Advance(time.Hour)
	_, err = s.AccessKey(ctx, ak.ID)
	wantErr(t, "AccessKey past expiry", err, ErrExpired)

	for _, id := range []string{"", "AKIAIOSFODNN7EXAMPLE", "TRSRAAAAAAAAAAAAAAAA", ak.ID + "X"} {
		_, err := s.AccessKey(ctx, id)
		wantErr(t, "AccessKey("+id+")", err, ErrNotFound)
	}

	_, err = s.CreateAccessKey(ctx, u.ID, clk.Now().Add(-time.Minute))
	wantErr(t, "CreateAccessKey expiring in the past", err, ErrInvalid)
	_, err = s.CreateAccessKey(ctx, ID{3}, noExpiry)
	wantErr(t, "CreateAccessKey for an unknown user", err, ErrNotFound)
}

func TestDeleteUser_RemovesAccessKeys(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	u := mustUser(t, s, tn.ID, "ann", RoleAdmin)
	k1, _ := s.CreateAccessKey(ctx, u.ID, noExpiry)
	k2, _ := s.CreateAccessKey(ctx, u.ID, noExpiry)
	aks, err := s.AccessKeys(ctx, u.ID)
	if err != nil || len(aks) != 2 || aks[0].Secret != "" {
		t.Fatalf("AccessKeys = %+v, %v (listed without secrets)", aks, err)
	}
	wantErr(t, "DeleteAccessKey", s.DeleteAccessKey(ctx, k1.ID), nil)
	wantErr(t, "DeleteAccessKey twice", s.DeleteAccessKey(ctx, k1.ID), ErrNotFound)
	_, err = s.AccessKey(ctx, k1.ID)
	wantErr(t, "AccessKey of a deleted key", err, ErrNotFound)

	wantErr(t, "DeleteUser", s.DeleteUser(ctx, u.ID), nil)
	_, err = s.AccessKey(ctx, k2.ID)
	wantErr(t, "AccessKey of a deleted user's key", err, ErrNotFound)
	_, err = s.User(ctx, u.ID)
	wantErr(t, "User after delete", err, ErrNotFound)
	_, err = s.UserByName(ctx, tn.ID, "ann")
	wantErr(t, "UserByName after delete", err, ErrNotFound)
	wantErr(t, "DeleteUser twice", s.DeleteUser(ctx, u.ID), ErrNotFound)
	// The name is free again inside the tenant (users, unlike tenants, are
	// not crypto-shredding boundaries).
	mustUser(t, s, tn.ID, "ann", RoleReader)
}

func TestBootstrap(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	cred, err := s.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := s.AccessKey(ctx, cred.AccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if ak.Secret != cred.SecretAccessKey || ak.Role != RoleAdmin || ak.UserName != DefaultAdminName || ak.Tenant != cred.Tenant {
		t.Fatalf("bootstrap key %+v, credentials %+v", ak, cred)
	}
	tn, err := s.TenantByName(ctx, DefaultTenantName)
	if err != nil || tn.ID != cred.Tenant {
		t.Fatalf("default tenant %+v, %v", tn, err)
	}
	if _, _, err := s.ActiveKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	before := s.AppliedIndex()
	_, err = s.Bootstrap(ctx)
	wantErr(t, "second Bootstrap", err, ErrExists)
	if ts, _ := s.Tenants(ctx); len(ts) != 1 {
		t.Fatalf("second Bootstrap changed tenants: %+v", ts)
	}
	if s.AppliedIndex() != before+1 {
		t.Fatal("a rejected command must still take a log index")
	}
}

func TestBootstrap_RefusedOnceATenantExists(t *testing.T) {
	s, _ := newStore(t)
	mustTenant(t, s, "acme")
	_, err := s.Bootstrap(context.Background())
	wantErr(t, "Bootstrap", err, ErrExists)
}

// BenchmarkAccessKey measures the verifier's lookup, done on every request.
func BenchmarkAccessKey(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	tn := mustTenant(b, s, "acme")
	u := mustUser(b, s, tn.ID, "ann", RoleWriter)
	ak, err := s.CreateAccessKey(ctx, u.ID, noExpiry)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.AccessKey(ctx, ak.ID); err != nil {
			b.Fatal(err)
		}
	}
}
