package keystore

import (
	"context"
	"crypto/rand"
	"log/slog"
	"testing"
)

// OpenTest opens a Store in a fresh temporary directory with a random root
// key held in memory, and closes it when the test ends. Other packages'
// tests (gateway, auth) use it instead of building their own keystore.
func OpenTest(tb testing.TB) *Store {
	tb.Helper()
	cfg := DefaultConfig(tb.TempDir())
	cfg.RootKey = make([]byte, RootKeySize)
	rand.Read(cfg.RootKey)
	cfg.Logger = slog.New(slog.DiscardHandler)
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
