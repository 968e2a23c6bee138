package keystore

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// keyProvider is the envelope package's key interface, restated here so the
// compiler checks that Store satisfies it without importing the envelope.
type keyProvider interface {
	ActiveKey(ctx context.Context, tenant [16]byte) (id [16]byte, secret []byte, err error)
	Key(ctx context.Context, tenant, id [16]byte) (secret []byte, err error)
}

var _ keyProvider = (*Store)(nil)

func TestActiveKey_AndRotate(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	id1, sec1, err := s.ActiveKey(ctx, tn.ID)
	if err != nil || ID(id1) != tn.ActiveKey || len(sec1) != 32 {
		t.Fatalf("ActiveKey = %x, %d bytes, %v", id1, len(sec1), err)
	}
	// Callers may wipe what they get: the cache holds its own copy.
	clear(sec1)
	_, again, _ := s.ActiveKey(ctx, tn.ID)
	if bytes.Equal(again, sec1) {
		t.Fatal("wiping a returned secret wiped the cached one")
	}
	sec1 = again

	kv, err := s.RotateKey(ctx, tn.ID)
	if err != nil || kv.State != KeyActive || kv.ID == tn.ActiveKey {
		t.Fatalf("RotateKey = %+v, %v", kv, err)
	}
	id2, sec2, err := s.ActiveKey(ctx, tn.ID)
	if err != nil || ID(id2) != kv.ID || bytes.Equal(sec1, sec2) {
		t.Fatalf("ActiveKey after rotation = %x, %v (the cache must not serve the old key)", id2, err)
	}
	old, err := s.Key(ctx, tn.ID, id1)
	if err != nil || !bytes.Equal(old, sec1) {
		t.Fatalf("Key(old) = %v: the previous version must still decrypt", err)
	}
	kvs, err := s.KeyVersions(ctx, tn.ID)
	if err != nil || len(kvs) != 2 {
		t.Fatalf("KeyVersions = %+v, %v", kvs, err)
	}
	states := map[ID]KeyState{}
	for _, k := range kvs {
		states[k.ID] = k.State
	}
	if states[id1] != KeyDecryptOnly || states[id2] != KeyActive {
		t.Fatalf("states %v", states)
	}
	_, err = s.RotateKey(ctx, ID{42})
	wantErr(t, "RotateKey of an unknown tenant", err, ErrNotFound)
	_, err = s.Key(ctx, tn.ID, ID{42})
	wantErr(t, "Key of an unknown version", err, ErrNotFound)
	_, _, err = s.ActiveKey(ctx, ID{42})
	wantErr(t, "ActiveKey of an unknown tenant", err, ErrNotFound)
}

func TestKeyLifecycle(t *testing.T) {
	s, clk := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	old := tn.ActiveKey
	if _, err := s.Key(ctx, tn.ID, old); err != nil { // warm the cache
		t.Fatal(err)
	}
	wantErr(t, "disable the active version", s.DisableKey(ctx, tn.ID, old), ErrState)
	if _, err := s.RotateKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		do      func() error
		want    error
		keyWant error // what Key(old) returns afterwards
	}{
		{"schedule before disable", func() error { return s.ScheduleKeyDestroy(ctx, tn.ID, old, 48*time.Hour) }, ErrState, nil},
		{"disable", func() error { return s.DisableKey(ctx, tn.ID, old) }, nil, ErrDisabled},
		{"enable", func() error { return s.EnableKey(ctx, tn.ID, old) }, nil, nil},
		{"disable again", func() error { return s.DisableKey(ctx, tn.ID, old) }, nil, ErrDisabled},
		{"schedule without grace", func() error { return s.ScheduleKeyDestroy(ctx, tn.ID, old, time.Hour) }, ErrInvalid, ErrDisabled},
		{"schedule", func() error { return s.ScheduleKeyDestroy(ctx, tn.ID, old, MinDestroyGrace) }, nil, ErrDisabled},
		{"destroy too early", func() error { return s.DestroyKey(ctx, tn.ID, old) }, ErrState, ErrDisabled},
		{"cancel", func() error { return s.CancelKeyDestroy(ctx, tn.ID, old) }, nil, ErrDisabled},
		{"destroy unscheduled", func() error { return s.DestroyKey(ctx, tn.ID, old) }, ErrState, ErrDisabled},
		{"schedule again", func() error { return s.ScheduleKeyDestroy(ctx, tn.ID, old, MinDestroyGrace) }, nil, ErrDisabled},
		{"destroy after grace", func() error { clk.Advance(MinDestroyGrace); return s.DestroyKey(ctx, tn.ID, old) }, nil, ErrDestroyed},
		{"enable destroyed", func() error { return s.EnableKey(ctx, tn.ID, old) }, ErrState, ErrDestroyed},
		{"unknown version", func() error { return s.DisableKey(ctx, tn.ID, ID{1}) }, ErrNotFound, ErrDestroyed},
	}
	for _, st := range steps {
		wantErr(t, st.name, st.do(), st.want)
		_, err := s.Key(ctx, tn.ID, old)
		wantErr(t, st.name+": Key(old)", err, st.keyWant)
	}
	var r keyRecord
	s.db.View(func(txn *badger.Txn) error { _, err := read(txn, keyVersionKey(tn.ID, old), &r); return err })
	if r.State != KeyDestroyed || r.Sealed != nil {
		t.Fatalf("destroyed record %+v still holds its sealed secret", r)
	}
}

// TestKeyCache_TTLBoundsStaleness changes a key version behind the cache's
// back (as a missed invalidation would) and expects the change to show once
// the TTL has passed, not before: the TTL is part of the shred bound.
func TestKeyCache_TTLBoundsStaleness(t *testing.T) {
	s, clk := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	if _, err := s.RotateKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Key(ctx, tn.ID, tn.ActiveKey); err != nil {
		t.Fatal(err)
	}
	var r keyRecord
	s.db.Update(func(txn *badger.Txn) error {
		read(txn, keyVersionKey(tn.ID, tn.ActiveKey), &r)
		r.State = KeyDisabled
		return txn.Set(keyVersionKey(tn.ID, tn.ActiveKey), mustJSON(r))
	})
	if _, err := s.Key(ctx, tn.ID, tn.ActiveKey); err != nil {
		t.Fatalf("within the TTL the cached key still serves: %v", err)
	}
	clk.Advance(s.cfg.KeyCacheTTL)
	_, err := s.Key(ctx, tn.ID, tn.ActiveKey)
	wantErr(t, "Key after the TTL", err, ErrDisabled)
}

func TestDestroyKey_OfDeletedTenant(t *testing.T) {
	s, clk := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	if _, err := s.RotateKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteTenant", s.DeleteTenant(ctx, tn.ID), nil)
	kvs, err := s.KeyVersions(ctx, tn.ID)
	if err != nil || len(kvs) != 2 {
		t.Fatalf("KeyVersions of a deleted tenant: %v, %v", kvs, err)
	}
	old := tn.ActiveKey
	wantErr(t, "disable", s.DisableKey(ctx, tn.ID, old), nil)
	wantErr(t, "schedule", s.ScheduleKeyDestroy(ctx, tn.ID, old, MinDestroyGrace), nil)
	clk.Advance(MinDestroyGrace)
	wantErr(t, "destroy", s.DestroyKey(ctx, tn.ID, old), nil)
}

// TestScheduleKeyDestroy_TickingClock schedules with exactly
// MinDestroyGrace under a clock that moves on every read, as a real one
// does: the grace must be measured from the instant it was scheduled at,
// not from a second, later reading (issue 10: the documented default and
// --grace 24h were refused, only 25h passed).
func TestScheduleKeyDestroy_TickingClock(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	)
	tick := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Microsecond)
		return now
	}
	cfg := testConfig(t)
	cfg.Now = tick
	s := openStore(t, cfg)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	if _, err := s.RotateKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "disable", s.DisableKey(ctx, tn.ID, tn.ActiveKey), nil)
	wantErr(t, "schedule with a grace just short of the minimum", s.ScheduleKeyDestroy(ctx, tn.ID, tn.ActiveKey, MinDestroyGrace-time.Nanosecond), ErrInvalid)
	wantErr(t, "schedule with exactly the minimum grace", s.ScheduleKeyDestroy(ctx, tn.ID, tn.ActiveKey, MinDestroyGrace), nil)
	kvs, err := s.KeyVersions(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		if kv.ID == tn.ActiveKey && (kv.State != KeyScheduled || kv.DestroyAfter.Sub(kv.Changed) != MinDestroyGrace) {
			t.Fatalf("scheduled version %+v: want destroy after exactly %v from the change", kv, MinDestroyGrace)
		}
	}
}

func BenchmarkActiveKey_Cached(b *testing.B) {
	s, _ := newStore(b)
	tn := mustTenant(b, s, "acme")
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := s.ActiveKey(ctx, tn.ID); err != nil {
			b.Fatal(err)
		}
	}
}
