package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tresor-gw/tresor/keystore"
)

// TestKeystore_Wiring runs the log as the gateway will: tenant keys and
// replicated checkpoints from a keystore.Store.
func TestKeystore_Wiring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ks := keystore.OpenTest(t)
	tenant, err := ks.CreateTenant(ctx, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := EncodedCheckpoints(ks)
	cfg := testConfig(dir, 3, ks, store, nil)
	l := openLog(t, cfg)
	for i := range 10 {
		r := Record{Kind: AuthSuccess, Tenant: [16]byte(tenant.ID), User: "alice", AccessKeyID: "TRSRALICE", SourceAddr: "192.0.2.1", RequestID: string(rune('a' + i))}
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	pub := l.PublicKeys()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	replicated, err := store.Checkpoints(ctx, pub.LogID)
	if err != nil || len(replicated) == 0 {
		t.Fatalf("replicated %d: %v", len(replicated), err)
	}
	if rep, _ := Verify(ctx, dir, pub, VerifyOptions{Replicated: replicated}); !rep.OK() || rep.Replicated != len(replicated) {
		t.Fatalf("verify: %+v", rep)
	}
	s, err := Review(ctx, dir, ReviewConfig{Since: t0, Keys: ks})
	if err != nil || s.Opaque != 0 || s.ByKind[AuthSuccess] != 10 {
		t.Fatalf("review with the keystore's keys: %v %+v", err, s)
	}

	// The keystore keeps sizes from going back and one checkpoint per size.
	last := replicated[len(replicated)-1]
	older := replicated[0]
	older.Size = last.Size - 1
	if err := store.PutCheckpoint(ctx, older); !errors.Is(err, keystore.ErrState) {
		t.Fatalf("smaller size accepted: %v", err)
	}
	forged := last
	forged.Root[0] ^= 1
	if err := store.PutCheckpoint(ctx, forged); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("second checkpoint for one size accepted: %v", err)
	}
	if err := store.PutCheckpoint(ctx, last); err != nil {
		t.Fatalf("re-shipping the same checkpoint: %v", err)
	}
	// Pruning keeps the latest.
	if err := ks.PruneAuditCheckpoints(ctx, pub.LogID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	after, _ := store.Checkpoints(ctx, pub.LogID)
	if len(after) != 1 || after[0].Size != last.Size {
		t.Fatalf("after pruning: %d checkpoints", len(after))
	}
}
