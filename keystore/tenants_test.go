package keystore

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCreateTenant(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustTenant(t, s, "taken")
	tests := []struct {
		name          string
		tenant        string
		jurisdictions []string
		want          error
	}{
		{"ok", "acme", []string{"EU", "DE"}, nil},
		{"ok with digits and dash", "acme-2", nil, nil},
		{"taken", "taken", nil, ErrExists},
		{"empty", "", nil, ErrInvalid},
		{"upper case", "Acme", nil, ErrInvalid},
		{"leading dash", "-acme", nil, ErrInvalid},
		{"too long", strings.Repeat("a", 64), nil, ErrInvalid},
		{"empty jurisdiction", "acme-3", []string{""}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn, err := s.CreateTenant(ctx, tt.tenant, tt.jurisdictions)
			wantErr(t, "CreateTenant", err, tt.want)
			if err != nil {
				return
			}
			if tn.Name != tt.tenant || tn.State != TenantActive || tn.ID.IsZero() || tn.ActiveKey.IsZero() {
				t.Fatalf("tenant %+v", tn)
			}
			got, err := s.TenantByName(ctx, tt.tenant)
			if err != nil || got.ID != tn.ID || len(got.Jurisdictions) != len(tt.jurisdictions) {
				t.Fatalf("TenantByName = %+v, %v", got, err)
			}
		})
	}
}

func TestDeleteTenant_NameRetiredAndIDGone(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	b := mustBucket(t, s, tn.ID, "acme-bucket")
	wantErr(t, "DeleteTenant with a bucket", s.DeleteTenant(ctx, tn.ID), ErrNotEmpty)
	wantErr(t, "DeleteBucket", s.DeleteBucket(ctx, tn.ID, b.Name), nil)
	wantErr(t, "DeleteTenant", s.DeleteTenant(ctx, tn.ID), nil)
	wantErr(t, "DeleteTenant twice", s.DeleteTenant(ctx, tn.ID), ErrNotFound)

	_, err := s.TenantByName(ctx, "acme")
	wantErr(t, "TenantByName of a deleted tenant", err, ErrNotFound)
	_, err = s.Tenant(ctx, tn.ID)
	wantErr(t, "Tenant of a deleted tenant", err, ErrNotFound)
	_, err = s.CreateTenant(ctx, "acme", nil)
	wantErr(t, "re-creating a deleted tenant's name", err, ErrExists)
	_, _, err = s.ActiveKey(ctx, tn.ID)
	wantErr(t, "ActiveKey of a deleted tenant", err, ErrNotFound)
	ts, err := s.Tenants(ctx)
	if err != nil || len(ts) != 0 {
		t.Fatalf("Tenants = %v, %v; want none", ts, err)
	}
}

func TestSetTenantState_SuspendBlocksKeysAndAccessKeys(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	u := mustUser(t, s, tn.ID, "ann", RoleAdmin)
	ak, err := s.CreateAccessKey(ctx, u.ID, noExpiry)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ActiveKey(ctx, tn.ID); err != nil { // warm the cache
		t.Fatal(err)
	}
	wantErr(t, "suspend", s.SetTenantState(ctx, tn.ID, TenantSuspended), nil)
	_, _, err = s.ActiveKey(ctx, tn.ID)
	wantErr(t, "ActiveKey while suspended", err, ErrDisabled)
	_, err = s.Key(ctx, tn.ID, tn.ActiveKey)
	wantErr(t, "Key while suspended", err, ErrDisabled)
	got, err := s.AccessKey(ctx, ak.ID)
	wantErr(t, "AccessKey while suspended", err, ErrDisabled)
	if got.Secret != "" || got.User != u.ID {
		t.Fatalf("refused access key %+v: want identity without secret", got)
	}
	_, err = s.CreateBucket(ctx, tn.ID, "new-bucket")
	wantErr(t, "CreateBucket while suspended", err, ErrDisabled)
	wantErr(t, "bad state", s.SetTenantState(ctx, tn.ID, TenantDeleted), ErrInvalid)
	wantErr(t, "unknown tenant", s.SetTenantState(ctx, ID{9}, TenantActive), ErrNotFound)

	wantErr(t, "resume", s.SetTenantState(ctx, tn.ID, TenantActive), nil)
	if _, err := s.AccessKey(ctx, ak.ID); err != nil {
		t.Fatalf("AccessKey after resume: %v", err)
	}
	if ts, _ := s.Tenants(ctx); len(ts) != 1 || ts[0].ID != tn.ID {
		t.Fatalf("Tenants = %+v", ts)
	}
}

func TestTenantByName_Unknown(t *testing.T) {
	s, _ := newStore(t)
	_, err := s.TenantByName(context.Background(), "nobody")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v", err)
	}
}
