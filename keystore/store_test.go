package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

func testConfig(t testing.TB) Config {
	cfg := DefaultConfig(t.TempDir())
	cfg.RootKey = make([]byte, RootKeySize)
	rand.Read(cfg.RootKey)
	cfg.Logger = slog.New(slog.DiscardHandler)
	// fsync per batch buys nothing in tests and costs seconds on slow disks.
	cfg.SyncWrites = false
	return cfg
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newStore opens a store with a fake clock.
func newStore(t testing.TB) (*Store, *TestClock) {
	t.Helper()
	c := NewTestClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	cfg := testConfig(t)
	cfg.Now = c.Now
	return openStore(t, cfg), c
}

func mustTenant(t testing.TB, s *Store, name string) Tenant {
	t.Helper()
	tn, err := s.CreateTenant(context.Background(), name, []string{"EU"})
	if err != nil {
		t.Fatalf("CreateTenant(%q): %v", name, err)
	}
	return tn
}

func mustUser(t testing.TB, s *Store, tenant ID, name string, role Role) User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), tenant, name, role)
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

func mustBucket(t testing.TB, s *Store, tenant ID, name string) Bucket {
	t.Helper()
	b, err := s.CreateBucket(context.Background(), tenant, name)
	if err != nil {
		t.Fatalf("CreateBucket(%q): %v", name, err)
	}
	return b
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func TestOpen_ReopenKeepsStateAndAppliedIndex(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := s.CreateTenant(ctx, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := s.ActiveKey(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustBucket(t, s, tn.ID, "acme-data")
	idx := s.AppliedIndex()
	if idx != 2 {
		t.Fatalf("applied index %d after two commands, want 2", idx)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tenant(ctx, tn.ID); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v, want ErrClosed", err)
	}

	s2 := openStore(t, cfg)
	if got := s2.AppliedIndex(); got != idx {
		t.Fatalf("applied index after reopen %d, want %d", got, idx)
	}
	_, secret2, err := s2.ActiveKey(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(secret) != string(secret2) {
		t.Fatal("active key changed across reopen")
	}
	if _, err := s2.CreateBucket(ctx, tn.ID, "acme-more"); err != nil {
		t.Fatal(err)
	}
	if got := s2.AppliedIndex(); got != idx+1 {
		t.Fatalf("applied index %d, want %d", got, idx+1)
	}
}

func TestOpen_WrongRootKeyFailsToOpenBadger(t *testing.T) {
	cfg := testConfig(t)
	s := openStore(t, cfg)
	mustTenant(t, s, "acme")
	s.Close()
	cfg.RootKey = make([]byte, RootKeySize) // a different key
	if s2, err := Open(context.Background(), cfg); err == nil {
		s2.Close()
		t.Fatal("Open with another root key succeeded")
	}
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		ok     bool
	}{
		{"default", func(*Config) {}, true},
		{"no data dir", func(c *Config) { c.DataDir = "" }, false},
		{"short root key", func(c *Config) { c.RootKey = make([]byte, 16) }, false},
		{"huge cache ttl", func(c *Config) { c.KeyCacheTTL = time.Hour }, false},
		{"no rotation", func(c *Config) { c.EncryptionKeyRotation = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig("/tmp/x")
			tt.modify(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestOpen_BadgerDataKeyRotationSurvivesReopen makes Badger draw a new data
// key for every file it writes, then reopens: data keys are stored under the
// Badger master key, which must therefore stay intact for the store's life.
func TestOpen_BadgerDataKeyRotationSurvivesReopen(t *testing.T) {
	cfg := testConfig(t)
	cfg.EncryptionKeyRotation = time.Nanosecond
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var tenants []Tenant
	for i := 0; i < 3; i++ {
		tenants = append(tenants, mustTenant(t, s, fmt.Sprintf("t%d", i)))
		if err := s.db.Flatten(1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		s, err = Open(ctx, cfg)
		if err != nil {
			t.Fatalf("reopen %d: %v", round, err)
		}
		for _, tn := range tenants {
			if _, _, err := s.ActiveKey(ctx, tn.ID); err != nil {
				t.Fatalf("reopen %d: %v", round, err)
			}
		}
		tenants = append(tenants, mustTenant(t, s, fmt.Sprintf("r%d", round)))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
