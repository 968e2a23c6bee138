package keystore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
)

func TestSnapshot_RestoreReproducesTheStore(t *testing.T) {
	cfg := testConfig(t)
	a := openStore(t, cfg)
	workload(t, a)
	ctx := context.Background()

	snap := a.FSM().Snapshot()
	want := dump(t, a)
	// Writes after the snapshot was taken are not in it.
	tn := mustTenant(t, a, "later")
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !bytes.Equal(u64(snap.Index()), want[string(keyApplied)]) {
		t.Fatalf("snapshot index %d, store had %x", snap.Index(), want[string(keyApplied)])
	}
	for _, needle := range []string{"acme", "ann", "acme-data"} {
		if bytes.Contains(buf.Bytes(), []byte(needle)) {
			t.Fatalf("snapshot holds %q in clear", needle)
		}
	}

	// Restore over a replica that has diverging data of its own.
	c := testConfig(t)
	c.RootKey = cfg.RootKey
	b := openStore(t, c)
	mustTenant(t, b, "stale")
	if _, _, err := b.ActiveKey(ctx, tn.ID); err == nil {
		t.Fatal("replica knows a tenant it never saw")
	}
	if err := b.FSM().Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if d := diffDumps(want, dump(t, b)); len(d) > 0 {
		t.Fatalf("restored store differs: %v", d)
	}
	if b.AppliedIndex() != snap.Index() {
		t.Fatalf("applied index %d, snapshot %d", b.AppliedIndex(), snap.Index())
	}
	if _, err := b.TenantByName(ctx, "stale"); err == nil {
		t.Fatal("restore kept the replica's own data")
	}
	acme, err := b.TenantByName(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.ActiveKey(ctx, acme.ID); err != nil {
		t.Fatal(err)
	}
	// The restored replica goes on applying from the snapshot's index.
	if _, err := b.CreateTenant(ctx, "after-restore", nil); err != nil {
		t.Fatal(err)
	}
	if b.AppliedIndex() != snap.Index()+1 {
		t.Fatalf("applied index after restore and one command: %d", b.AppliedIndex())
	}
}

func TestSnapshot_BadSnapshotLeavesStoreUntouched(t *testing.T) {
	cfg := testConfig(t)
	a := openStore(t, cfg)
	workload(t, a)
	snap := a.FSM().Snapshot()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	good := buf.Bytes()

	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 1
	salted := bytes.Clone(good)
	salted[len(snapshotMagic)+1] ^= 1
	tests := []struct {
		name string
		b    []byte
		key  []byte // root key of the restoring replica; nil means a's
	}{
		{"empty", nil, nil},
		{"wrong magic", append([]byte("NOTASNAP"), good[8:]...), nil},
		{"truncated", good[:len(good)-10], nil},
		{"header only", good[:len(snapshotMagic)+1+snapshotSaltSize], nil},
		{"flipped bit", flipped, nil},
		{"flipped salt", salted, nil},
		{"trailing garbage", append(bytes.Clone(good), 0), nil},
		{"other root key", good, make([]byte, RootKeySize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t)
			c.RootKey = cfg.RootKey
			if tt.key != nil {
				c.RootKey = tt.key
				rand.Read(c.RootKey)
			}
			b := openStore(t, c)
			mustTenant(t, b, "mine")
			before := dump(t, b)
			if err := b.FSM().Restore(bytes.NewReader(tt.b)); !errors.Is(err, ErrSnapshot) {
				t.Fatalf("Restore: %v, want ErrSnapshot", err)
			}
			if d := diffDumps(before, dump(t, b)); len(d) > 0 {
				t.Fatalf("a failed restore changed the store: %v", d)
			}
		})
	}
}
