package keystore

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// OpenTest opens a Store in a fresh temporary directory with a random root
// key held in memory, and closes it when the test ends; configure, if
// given, adjusts the Config first (a TestClock as Config.Now, say). Other
// packages' tests (gateway, auth, cmd) use it instead of building their own
// keystore.
func OpenTest(tb testing.TB, configure ...func(*Config)) *Store {
	tb.Helper()
	cfg := DefaultConfig(tb.TempDir())
	cfg.RootKey = make([]byte, RootKeySize)
	rand.Read(cfg.RootKey)
	cfg.Logger = slog.New(slog.DiscardHandler)
	for _, f := range configure {
		f(&cfg)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("keystore.OpenTest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("keystore.OpenTest: close: %v", err)
		}
	})
	return s
}

// TestClock is a settable clock for Config.Now, so that tests of expiry
// and of a destruction's grace period need not wait. It is safe for
// concurrent use.
type TestClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewTestClock returns a clock standing at t.
func NewTestClock(t time.Time) *TestClock { return &TestClock{t: t} }

// Now returns the clock's time.
func (c *TestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *TestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
