package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tresor-gw/tresor/replication"
)

func TestRestoreCluster_RefusesAnotherCluster(t *testing.T) {
	cfg := testConfig(t)
	a := openStore(t, cfg)
	mustTenant(t, a, "acme")
	snap := a.FSM().Snapshot()
	defer snap.Release()
	var bound, plain bytes.Buffer
	if _, err := snap.WriteToCluster(&bound, "cluster-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.WriteTo(&plain); err != nil {
		t.Fatal(err)
	}
	c := testConfig(t)
	c.RootKey = cfg.RootKey // same root key: only the cluster id differs
	b := openStore(t, c)
	mustTenant(t, b, "local")

	tampered := bytes.Clone(bound.Bytes())
	copy(tampered[len(snapshotMagic)+2:], "cluster-b")
	for name, tc := range map[string]struct {
		snap    []byte
		cluster string
		want    error
	}{
		"another cluster":          {bound.Bytes(), "cluster-b", ErrOtherCluster},
		"unbound snapshot":         {plain.Bytes(), "cluster-b", ErrOtherCluster},
		"cluster id edited to fit": {tampered, "cluster-b", ErrSnapshot},
	} {
		t.Run(name, func(t *testing.T) {
			err := b.FSM().RestoreCluster(bytes.NewReader(tc.snap), tc.cluster)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrSnapshot) {
				t.Fatalf("restore: %v, want %v", err, tc.want)
			}
			if _, err := b.TenantByName(context.Background(), "local"); err != nil {
				t.Fatal("a refused snapshot changed the store")
			}
		})
	}
	if err := b.FSM().Restore(bytes.NewReader(bound.Bytes())); !errors.Is(err, ErrOtherCluster) {
		t.Fatalf("plain Restore of a bound snapshot: %v", err)
	}
	if err := b.FSM().RestoreCluster(bytes.NewReader(bound.Bytes()), "cluster-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.TenantByName(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
}

func TestRaftLog_RetryWithSameRequestIDAppliesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := newRaftCluster(t, []string{"eu-a", "eu-b", "eu-c"}, nil)
		defer rc.close(t)
		ctx := context.Background()
		s := rc.stores[1]
		p, err := s.newTenantPayload("once", nil)
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := newCommand(OpCreateTenant, [16]byte{1, 2, 3}, p)
		if err != nil {
			t.Fatal(err)
		}
		log := s.log.(*RaftLog)
		r1, i1, err := log.Propose(ctx, cmd)
		if err != nil || r1.Err() != nil {
			t.Fatal(err, r1.Err())
		}
		// The same proposal again, as after an ambiguous failure, through
		// another node: the first Result, no second tenant.
		r2, i2, err := rc.stores[2].log.Propose(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r1.Value, r2.Value) || r2.Code != CodeOK || i2 <= i1 {
			t.Fatalf("retry: %+v at %d, first %+v at %d", r2, i2, r1, i1)
		}
		ts, err := rc.stores[0].Tenants(ReadAfter(ctx, i2))
		if err != nil || len(ts) != 1 {
			t.Fatalf("tenants %v, %v", ts, err)
		}
	})
}

func TestRaftLog_ReadLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := newRaftCluster(t, []string{"eu-a", "eu-b", "eu-c"}, nil)
		defer rc.close(t)
		ctx := context.Background()
		l := leaderOf(ctx, t, rc.c)
		f := (l + 1) % 3

		// Read your writes: a write's index makes any node's read see it.
		var idx uint64
		if _, err := rc.stores[l].CreateTenant(RecordIndex(ctx, &idx), "acme", nil); err != nil {
			t.Fatal(err)
		}
		if idx == 0 {
			t.Fatal("no write index recorded")
		}
		if _, err := rc.stores[f].TenantByName(ReadAfter(ctx, idx), "acme"); err != nil {
			t.Fatal(err)
		}

		// A follower cut off from the leader serves local reads for
		// MaxStaleness (1 s here), then refuses them; linearizable reads
		// fail at once (no leader reachable) while writes go on elsewhere.
		rc.c.Isolate(f)
		if _, err := rc.stores[f].Tenants(ctx); err != nil {
			t.Fatalf("local read right after the cut: %v", err)
		}
		time.Sleep(1500 * time.Millisecond)
		if _, err := rc.stores[f].Tenants(ctx); !errors.Is(err, ErrStale) {
			t.Fatalf("local read on a cut-off follower: %v, want ErrStale", err)
		}
		lctx, cancel := context.WithTimeout(WithReadLevel(ctx, ReadLinearizable), 500*time.Millisecond)
		defer cancel()
		if _, err := rc.stores[f].Tenants(lctx); err == nil {
			t.Fatal("linearizable read on a cut-off follower succeeded")
		}
		// The majority goes on; its linearizable reads see new writes.
		l = leaderOf(ctx, t, rc.c)
		if _, err := rc.stores[l].CreateTenant(ctx, "beta", nil); err != nil {
			t.Fatal(err)
		}
		other := 3 - l - f
		ts, err := rc.stores[other].Tenants(WithReadLevel(ctx, ReadLinearizable))
		if err != nil || len(ts) != 2 {
			t.Fatalf("linearizable read on the majority: %v %v", ts, err)
		}
		rc.c.Heal()
		ts, err = rc.stores[f].Tenants(WithReadLevel(ctx, ReadLinearizable))
		if err != nil || len(ts) != 2 {
			t.Fatalf("after healing: %v %v", ts, err)
		}
	})
}

func TestDeriveTrustKey(t *testing.T) {
	root := bytes.Repeat([]byte{7}, RootKeySize)
	a, err := DeriveTrustKey(root)
	if err != nil || len(a) != 32 {
		t.Fatal(err)
	}
	keys, _ := deriveKeys(root)
	for _, k := range [][]byte{keys.storage, keys.badger, keys.snapshot, root} {
		if bytes.Equal(a, k) {
			t.Fatal("trust key equals another key")
		}
	}
	if _, err := DeriveTrustKey(root[:5]); !errors.Is(err, ErrRootKey) {
		t.Fatal(err)
	}
}

var _ Replicator = (*replication.Node)(nil)

func TestRaftFSM_SplitsLargeBatches(t *testing.T) {
	s := openStore(t, testConfig(t))
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	if _, err := s.CreateBucket(ctx, tn.ID, "data"); err != nil {
		t.Fatal(err)
	}
	f := NewRaftFSM(s.FSM(), testCluster)
	// 64 manifests of 600 KiB (inline values, below Badger's value
	// threshold), one raft batch: one transaction would
	// exceed Badger's limit (and panic); the adapter must split.
	start := s.AppliedIndex()
	var entries []replication.Entry
	for i := range 64 {
		m := Manifest{ETag: "e", Data: bytes.Repeat([]byte{byte(i)}, 600<<10)}
		cmd, err := newCommand(OpPutManifest, [16]byte{byte(i + 1), 0xff}, putManifestPayload{Tenant: tn.ID, Bucket: "data", Key: fmt.Sprintf("k%d", i), Manifest: m})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := cmd.MarshalBinary()
		entries = append(entries, replication.Entry{Index: start + uint64(i) + 1, Data: b})
	}
	res := f.ApplyBatch(entries)
	if len(res) != 64 || s.AppliedIndex() != start+64 {
		t.Fatalf("%d results, applied %d", len(res), s.AppliedIndex())
	}
	for i, r := range res {
		var out Result
		if err := json.Unmarshal(r, &out); err != nil || out.Code != CodeOK {
			t.Fatalf("entry %d: code %d", i, out.Code)
		}
	}
}

// staleReplicator is stale until fresh is set.
type staleReplicator struct {
	Replicator
	fresh atomic.Bool
}

func (r *staleReplicator) CheckStaleness(time.Duration) error {
	if r.fresh.Load() {
		return nil
	}
	return ErrStale
}

// A local read on a node that is stale for a moment (a resumed process)
// waits up to staleGrace for the leader instead of failing at once; one
// that stays stale is refused once the grace is over, and never served.
func TestRaftLog_StaleGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		r := &staleReplicator{}
		l := NewRaftLog(r, time.Second)

		start := time.Now()
		time.AfterFunc(staleGrace/3, func() { r.fresh.Store(true) })
		if err := l.Barrier(ctx, ReadLocal); err != nil {
			t.Fatalf("heard from the leader within the grace: %v", err)
		}
		if d := time.Since(start); d < staleGrace/3 || d >= staleGrace {
			t.Fatalf("served after %v; contact came back after %v", d, staleGrace/3)
		}

		r.fresh.Store(false)
		start = time.Now()
		if err := l.Barrier(ctx, ReadLocal); !errors.Is(err, ErrStale) {
			t.Fatalf("stale past the grace: %v, want ErrStale", err)
		}
		if d := time.Since(start); d < staleGrace {
			t.Fatalf("refused after %v, before the grace of %v was over", d, staleGrace)
		}

		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(staleGrace/5, cancel)
		start = time.Now()
		if err := l.Barrier(cctx, ReadLocal); !errors.Is(err, ErrStale) {
			t.Fatalf("canceled while stale: %v, want ErrStale", err)
		}
		if d := time.Since(start); d > staleGrace/5+50*time.Millisecond {
			t.Fatalf("a canceled read waited %v", d)
		}
	})
}
