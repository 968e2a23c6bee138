package keystore

import (
	"context"
	"testing"
	"time"
)

// TestCreateFirstAdmin_OncePerTenant checks that a tenant's first admin is
// created once: not again after its admins are deleted (the operator's way
// back into a tenant's data, issue 9), nor on a tenant that has users or
// buckets without ever having been onboarded (tenants older than
// Tenant.Onboarded).
func TestCreateFirstAdmin_OncePerTenant(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	first, err := s.CreateFirstAdmin(ctx, tn.ID, "alice", noExpiry)
	if err != nil {
		t.Fatal(err)
	}
	if first.User.Role != RoleAdmin || first.Key.Secret == "" || first.Recovery.Secret == "" || first.Recovery.Tenant != tn.ID {
		t.Fatalf("CreateFirstAdmin = %+v", first)
	}
	ak, err := s.AccessKey(ctx, first.Key.ID)
	if err != nil || ak.Secret != first.Key.Secret || ak.Role != RoleAdmin {
		t.Fatalf("the first admin's key: %+v, %v", ak, err)
	}
	rk, err := s.RecoveryKey(ctx, first.Recovery.ID)
	if err != nil || rk.Secret != first.Recovery.Secret || rk.Tenant != tn.ID {
		t.Fatalf("RecoveryKey = %+v, %v", rk, err)
	}
	if got, err := s.Tenant(ctx, tn.ID); err != nil || !got.Onboarded {
		t.Fatalf("tenant after onboarding: %+v, %v", got, err)
	}
	// The recovery key is no access key: neither lookup knows it.
	_, err = s.AccessKey(ctx, first.Recovery.ID)
	wantErr(t, "AccessKey(recovery key)", err, ErrNotFound)
	_, err = s.OperatorKey(ctx, first.Recovery.ID)
	wantErr(t, "OperatorKey(recovery key)", err, ErrNotFound)

	_, err = s.CreateFirstAdmin(ctx, tn.ID, "mallory", noExpiry)
	wantErr(t, "a second first admin", err, ErrState)
	wantErr(t, "delete the only admin", s.DeleteUser(ctx, first.User.ID), nil)
	_, err = s.CreateFirstAdmin(ctx, tn.ID, "mallory", noExpiry)
	wantErr(t, "a first admin after the admins were deleted", err, ErrState)

	legacy := mustTenant(t, s, "legacy")
	w := mustUser(t, s, legacy.ID, "writer", RoleWriter)
	_, err = s.CreateFirstAdmin(ctx, legacy.ID, "mallory", noExpiry)
	wantErr(t, "a first admin of a tenant with users", err, ErrState)
	wantErr(t, "delete the last user", s.DeleteUser(ctx, w.ID), nil)
	mustBucket(t, s, legacy.ID, "legacy-data")
	_, err = s.CreateFirstAdmin(ctx, legacy.ID, "mallory", noExpiry)
	wantErr(t, "a first admin of a tenant with buckets", err, ErrState)
	if us, err := s.Users(ctx, legacy.ID); err != nil || len(us) != 0 {
		t.Fatalf("refused onboardings left users %+v, %v", us, err)
	}
	_, err = s.CreateFirstAdmin(ctx, ID{42}, "alice", noExpiry)
	wantErr(t, "an unknown tenant", err, ErrNotFound)
}

// TestRecoverTenant walks a tenant through losing its admins and
// recovering with its recovery key, which rotates with each use.
func TestRecoverTenant(t *testing.T) {
	s, clk := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	first, err := s.CreateFirstAdmin(ctx, tn.ID, "alice", clk.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	used := first.Recovery.ID
	_, err = s.RecoverTenant(ctx, tn.ID, used, "bob", noExpiry)
	wantErr(t, "recover while an admin's key works", err, ErrState)
	// A writer's key does not count as an admin's.
	wr := mustUser(t, s, tn.ID, "wr", RoleWriter)
	if _, err := s.CreateAccessKey(ctx, wr.ID, noExpiry); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour) // alice's only key expires
	rec, err := s.RecoverTenant(ctx, tn.ID, used, "bob", noExpiry)
	if err != nil {
		t.Fatalf("recover once the admin's key expired: %v", err)
	}
	if rec.User.Role != RoleAdmin || rec.Key.Secret == "" || rec.Recovery.ID == used || rec.Recovery.Secret == "" {
		t.Fatalf("RecoverTenant = %+v", rec)
	}
	if ak, err := s.AccessKey(ctx, rec.Key.ID); err != nil || ak.UserName != "bob" {
		t.Fatalf("bob's key: %+v, %v", ak, err)
	}
	_, err = s.RecoveryKey(ctx, used)
	wantErr(t, "the used recovery key", err, ErrNotFound)
	if rk, err := s.TenantRecoveryKey(ctx, tn.ID); err != nil || rk.ID != rec.Recovery.ID || rk.Secret != "" {
		t.Fatalf("TenantRecoveryKey = %+v, %v", rk, err)
	}

	// bob's key disabled: the tenant has no usable admin again, and only
	// the new recovery key recovers it.
	wantErr(t, "disable bob's key", s.SetAccessKeyState(ctx, rec.Key.ID, AccessKeyDisabled), nil)
	_, err = s.RecoverTenant(ctx, tn.ID, used, "carol", noExpiry)
	wantErr(t, "recover with the used key", err, ErrState)
	wantErr(t, "suspend", s.SetTenantState(ctx, tn.ID, TenantSuspended), nil)
	_, err = s.RecoveryKey(ctx, rec.Recovery.ID)
	wantErr(t, "the recovery key of a suspended tenant", err, ErrDisabled)
	_, err = s.RecoverTenant(ctx, tn.ID, rec.Recovery.ID, "carol", noExpiry)
	wantErr(t, "recover a suspended tenant", err, ErrDisabled)
	wantErr(t, "resume", s.SetTenantState(ctx, tn.ID, TenantActive), nil)
	_, err = s.RecoverTenant(ctx, tn.ID, rec.Recovery.ID, "bob", noExpiry)
	wantErr(t, "recover with a taken name", err, ErrExists)
	if _, err := s.RecoverTenant(ctx, tn.ID, rec.Recovery.ID, "carol", noExpiry); err != nil {
		t.Fatalf("second recovery: %v", err)
	}
	// Another tenant's recovery key recovers nothing here.
	other := mustTenant(t, s, "globex")
	o, err := s.CreateFirstAdmin(ctx, other.ID, "boss", noExpiry)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete globex's admin", s.DeleteUser(ctx, o.User.ID), nil)
	_, err = s.RecoverTenant(ctx, tn.ID, o.Recovery.ID, "eve", noExpiry)
	wantErr(t, "recover acme with globex's key", err, ErrState)
}

// TestRotateRecoveryKey checks that a new recovery key replaces the old
// one, for tenants that had one and for tenants older than recovery keys.
func TestRotateRecoveryKey(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	_, err := s.TenantRecoveryKey(ctx, tn.ID)
	wantErr(t, "a tenant without a recovery key", err, ErrNotFound)
	a, err := s.RotateRecoveryKey(ctx, tn.ID)
	if err != nil || a.Secret == "" {
		t.Fatalf("first RotateRecoveryKey = %+v, %v", a, err)
	}
	b, err := s.RotateRecoveryKey(ctx, tn.ID)
	if err != nil || b.ID == a.ID {
		t.Fatalf("second RotateRecoveryKey = %+v, %v", b, err)
	}
	_, err = s.RecoveryKey(ctx, a.ID)
	wantErr(t, "the replaced key", err, ErrNotFound)
	if rk, err := s.RecoveryKey(ctx, b.ID); err != nil || rk.Secret != b.Secret {
		t.Fatalf("RecoveryKey(new) = %+v, %v", rk, err)
	}
	_, err = s.RotateRecoveryKey(ctx, ID{42})
	wantErr(t, "an unknown tenant", err, ErrNotFound)
}

// TestBootstrap_IssuesRecoveryKey checks that the default tenant is
// onboarded with a recovery key like any other.
func TestBootstrap_IssuesRecoveryKey(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	cred, err := s.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := s.RecoveryKey(ctx, cred.RecoveryKeyID)
	if err != nil || rk.Secret != cred.RecoverySecret || rk.Tenant != cred.Tenant {
		t.Fatalf("RecoveryKey(bootstrap's) = %+v, %v", rk, err)
	}
	tn, err := s.Tenant(ctx, cred.Tenant)
	if err != nil || !tn.Onboarded {
		t.Fatalf("default tenant %+v, %v", tn, err)
	}
	wantErr(t, "delete the default admin", s.DeleteUser(ctx, cred.User), nil)
	_, err = s.CreateFirstAdmin(ctx, cred.Tenant, "mallory", noExpiry)
	wantErr(t, "a first admin of the default tenant", err, ErrState)
}
