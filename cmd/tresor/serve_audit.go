package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// auditRetention is how long login records are kept. Records are personal
// data (GDPR Art. 5(1)(e): no longer than necessary); 90 days covers a
// quarter's review and incident follow-up.
const auditRetention = 90 * 24 * time.Hour

// openAudit opens the login audit under <data-dir>/audit with its signed
// checkpoints shipped to the keystore, and prunes records past the
// retention period once a day until ctx ends. The caller closes the log.
func openAudit(ctx context.Context, dataDir, nodeID string, store *keystore.Store, log *slog.Logger) (*audit.Log, error) {
	cfg := audit.DefaultConfig(filepath.Join(dataDir, "audit"), nodeID)
	cfg.Logger = log
	cfg.TenantKeys = store
	cfg.Checkpoints = audit.EncodedCheckpoints(store)
	alog, err := audit.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	go func() {
		t := time.NewTicker(24 * time.Hour)
		defer t.Stop()
		for {
			if n, err := alog.Prune(ctx, time.Now().Add(-auditRetention)); err != nil {
				log.Error("audit retention", "error", err)
			} else if n > 0 {
				log.Info("audit retention removed old records", "records", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return alog, nil
}
