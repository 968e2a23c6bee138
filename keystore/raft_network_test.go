package keystore

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/tresor-gw/tresor/replication"
)

// TestRaftNetwork_KeystoreOverTLS runs three Stores on real replication
// nodes: raft-boltdb on disk, mutual TLS on 127.0.0.1, join as non-voters
// with the trust key derived from the root key, promotion, writes through a
// follower, a node restarted from disk, and a snapshot installed.
func TestRaftNetwork_KeystoreOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("real network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ca, err := replication.NewCA("tresor test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	root := make([]byte, RootKeySize)
	rand.Read(root)
	trustKey, err := DeriveTrustKey(root)
	if err != nil {
		t.Fatal(err)
	}
	type member struct {
		dir   string
		rcfg  replication.Config
		store *Store
		node  *replication.Node
	}
	open := func(m *member) {
		t.Helper()
		cfg := DefaultConfig(m.dir)
		cfg.RootKey = root
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.SyncWrites = false
		cfg.NewLog = RaftConfig{
			ClusterID: ca.ClusterID(),
			Start: func(fsm replication.FSM) (Replicator, error) {
				n, err := replication.Open(ctx, m.rcfg, fsm)
				m.node = n
				return n, err
			},
		}.NewLog()
		s, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.store = s
		m.rcfg.BindAddr = m.node.Addr()
	}
	zones := []string{"eu-a", "eu-b", "eu-c"}
	ms := make([]*member, 3)
	for i := range ms {
		id := fmt.Sprintf("n%d", i)
		creds, err := ca.Issue(id, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		rcfg := replication.DefaultConfig(id, zones[i], t.TempDir(), "127.0.0.1:0")
		rcfg.TLS, rcfg.TrustKey = creds, trustKey
		rcfg.HeartbeatTimeout, rcfg.ElectionTimeout, rcfg.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
		rcfg.SnapshotThreshold, rcfg.TrailingLogs = 16, 8
		ms[i] = &member{dir: t.TempDir(), rcfg: rcfg}
		open(ms[i])
	}
	t.Cleanup(func() {
		for _, m := range ms {
			m.store.Close()
		}
	})
	if err := ms[0].node.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[1:] {
		if err := m.node.Join(ctx, ms[0].node.Addr()); err != nil {
			t.Fatal(err)
		}
		if err := ms[0].node.Promote(ctx, m.rcfg.ID); err != nil {
			t.Fatal(err)
		}
	}
	creds, err := ms[1].store.Bootstrap(ctx) // through a follower
	if err != nil {
		t.Fatal(err)
	}
	var idx uint64
	acme, err := ms[2].store.CreateTenant(RecordIndex(ctx, &idx), "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if _, err := m.store.TenantByName(ReadAfter(ctx, idx), "acme"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.store.AccessKey(WithReadLevel(ctx, ReadLinearizable), creds.AccessKeyID); err != nil {
			t.Fatal(err)
		}
	}

	// n2 goes down; the others write past their trailing logs and
	// snapshot; n2 comes back from its disk and catches up by snapshot.
	if err := ms[2].store.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := ms[i%2].store.CreateTenant(RecordIndex(ctx, &idx), fmt.Sprintf("t%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ms[0].node.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ms[1].node.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	open(ms[2])
	ts, err := ms[2].store.Tenants(ReadAfter(ctx, idx))
	if err != nil || len(ts) != 42 {
		t.Fatalf("restarted replica holds %d tenants: %v", len(ts), err)
	}
	if _, _, err := ms[2].store.ActiveKey(ReadAfter(ctx, idx), acme.ID); err != nil {
		t.Fatalf("restarted replica cannot unseal a key: %v", err)
	}
}
