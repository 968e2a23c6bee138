package keystore

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestBootstrapOperator_OnceAndAtomic(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	// Concurrent first starts: exactly one creates the operator.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created []Credentials
	)
	for range 4 {
		wg.Go(func() {
			c, err := s.BootstrapOperator(ctx)
			switch {
			case err == nil:
				mu.Lock()
				created = append(created, c)
				mu.Unlock()
			default:
				wantErr(t, "BootstrapOperator", err, ErrExists)
			}
		})
	}
	wg.Wait()
	if len(created) != 1 {
		t.Fatalf("%d bootstraps created an operator, want 1", len(created))
	}
	c := created[0]
	ops, err := s.Operators(ctx)
	if err != nil || len(ops) != 1 || ops[0].Name != DefaultOperatorName || ops[0].Role != RoleOperator || ops[0].ID != c.User {
		t.Fatalf("Operators = %+v, %v", ops, err)
	}
	ak, err := s.OperatorKey(ctx, c.AccessKeyID)
	if err != nil || ak.Secret != c.SecretAccessKey || !ak.IsOperator() {
		t.Fatalf("OperatorKey = %+v, %v", ak, err)
	}
	// The S3 path's lookup does not know operator keys.
	if _, err := s.AccessKey(ctx, c.AccessKeyID); err == nil {
		t.Fatal("AccessKey resolved an operator's key")
	}
	wantErr(t, "AccessKey", func() error { _, err := s.AccessKey(ctx, c.AccessKeyID); return err }(), ErrNotFound)
}

func TestOperatorKey(t *testing.T) {
	s, clk := newStore(t)
	ctx := context.Background()
	op, err := s.CreateOperator(ctx, "ops-alice")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateOperator(ctx, "ops-alice")
	wantErr(t, "CreateOperator twice", err, ErrExists)
	tn := mustTenant(t, s, "acme")
	u := mustUser(t, s, tn.ID, "bob", RoleAdmin)
	tenantKey, err := s.CreateAccessKey(ctx, u.ID, noExpiry)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.CreateOperatorKey(ctx, op.User, clk.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateOperatorKey(ctx, u.ID, noExpiry)
	wantErr(t, "CreateOperatorKey for a tenant user", err, ErrNotFound)
	_, err = s.CreateAccessKey(ctx, op.User, noExpiry)
	wantErr(t, "CreateAccessKey for an operator", err, ErrNotFound)
	_, err = s.CreateUser(ctx, OperatorScope, "sneaky", RoleAdmin)
	wantErr(t, "CreateUser in the operator scope", err, ErrNotFound)
	wantErr(t, "SetUserRole operator", s.SetUserRole(ctx, u.ID, RoleOperator), ErrInvalid)

	tests := []struct {
		name  string
		setup func()
		id    string
		want  error
	}{
		{"first key", func() {}, op.AccessKeyID, nil},
		{"second key", func() {}, second.ID, nil},
		{"tenant user's key", func() {}, tenantKey.ID, ErrNotFound},
		{"unknown", func() {}, "TRSRAAAAAAAAAAAAAAAA", ErrNotFound},
		{"malformed", func() {}, "AKIA", ErrNotFound},
		{"disabled", func() {
			if err := s.SetAccessKeyState(ctx, op.AccessKeyID, AccessKeyDisabled); err != nil {
				t.Fatal(err)
			}
		}, op.AccessKeyID, ErrDisabled},
		{"expired", func() { clk.Advance(2 * time.Hour) }, second.ID, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			ak, err := s.OperatorKey(ctx, tt.id)
			wantErr(t, "OperatorKey", err, tt.want)
			if err == nil && (ak.Secret == "" || !ak.IsOperator()) {
				t.Fatalf("OperatorKey = %+v", ak)
			}
			if err != nil && ak.Secret != "" {
				t.Fatal("a refused key came back with its secret")
			}
		})
	}
	keys, err := s.AccessKeys(ctx, op.User)
	if err != nil || len(keys) != 2 {
		t.Fatalf("AccessKeys(operator) = %+v, %v", keys, err)
	}
}
