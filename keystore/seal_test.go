package keystore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func TestSealer_BindsKindAndIdentity(t *testing.T) {
	s, err := newSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	t1, k1, k2 := ID{1}, ID{2}, ID{3}
	sealed, err := s.seal(rand.Reader, kindTenantKey, tenantKeyIdentity(t1, k1), secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("secret in clear in sealed record")
	}
	got, err := s.open(kindTenantKey, tenantKeyIdentity(t1, k1), sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open = %q, %v", got, err)
	}
	other, _ := newSealer(bytes.Repeat([]byte{2}, 32))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name     string
		s        *sealer
		kind     string
		identity []byte
		sealed   []byte
	}{
		{"other key version", s, kindTenantKey, tenantKeyIdentity(t1, k2), sealed},
		{"other tenant", s, kindTenantKey, tenantKeyIdentity(k2, k1), sealed},
		{"other kind", s, kindAccessKey, tenantKeyIdentity(t1, k1), sealed},
		{"other storage key", other, kindTenantKey, tenantKeyIdentity(t1, k1), sealed},
		{"tampered", s, kindTenantKey, tenantKeyIdentity(t1, k1), flipped},
		{"truncated", s, kindTenantKey, tenantKeyIdentity(t1, k1), sealed[:10]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.s.open(tt.kind, tt.identity, tt.sealed); !errors.Is(err, ErrSealed) {
				t.Fatalf("open: %v, want ErrSealed", err)
			}
		})
	}
}

// TestKey_SealedSecretMovedToAnotherRecordFails copies one tenant's sealed
// key secret into another tenant's key record, as an attacker with write
// access to the store might, and expects the victim's key to stop opening
// rather than to yield the attacker's key.
func TestKey_SealedSecretMovedToAnotherRecordFails(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a, b := mustTenant(t, s, "alice"), mustTenant(t, s, "bob")
	var ra, rb keyRecord
	s.db.View(func(txn *badger.Txn) error {
		read(txn, keyVersionKey(a.ID, a.ActiveKey), &ra)
		read(txn, keyVersionKey(b.ID, b.ActiveKey), &rb)
		return nil
	})
	rb.Sealed = ra.Sealed
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(keyVersionKey(b.ID, b.ActiveKey), mustJSON(rb))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Key(ctx, b.ID, b.ActiveKey); !errors.Is(err, ErrSealed) {
		t.Fatalf("Key with a moved secret: %v, want ErrSealed", err)
	}
	if _, _, err := s.ActiveKey(ctx, b.ID); !errors.Is(err, ErrSealed) {
		t.Fatalf("ActiveKey with a moved secret: %v, want ErrSealed", err)
	}
	if _, err := s.Key(ctx, a.ID, a.ActiveKey); err != nil {
		t.Fatalf("the original still opens: %v", err)
	}
}

func TestAccessKey_SealedSecretMovedToAnotherKeyFails(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	u := mustUser(t, s, tn.ID, "ann", RoleWriter)
	k1, _ := s.CreateAccessKey(ctx, u.ID, noExpiry)
	k2, _ := s.CreateAccessKey(ctx, u.ID, noExpiry)
	var r1, r2 accessKeyRecord
	s.db.View(func(txn *badger.Txn) error {
		read(txn, accessKeyKey(k1.ID), &r1)
		read(txn, accessKeyKey(k2.ID), &r2)
		return nil
	})
	r2.Sealed = r1.Sealed
	s.db.Update(func(txn *badger.Txn) error { return txn.Set(accessKeyKey(k2.ID), mustJSON(r2)) })
	if _, err := s.AccessKey(ctx, k2.ID); !errors.Is(err, ErrSealed) {
		t.Fatalf("AccessKey with a moved secret: %v, want ErrSealed", err)
	}
}
