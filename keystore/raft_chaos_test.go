package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/tresor-gw/tresor/replication"
)

// raftCluster is a keystore of n Stores on Badger over an in-memory raft
// cluster (replication.Cluster): the stores survive a node's Kill, as a
// disk would, and raft restores and replays into them on Restart.
type raftCluster struct {
	root   []byte
	c      *replication.Cluster
	stores []*Store
	fsms   []*RaftFSM
	// configure, if set, adjusts store i's Config before it opens.
	configure func(i int, cfg *Config)
}

// nodeRef is the Replicator of store i: whichever raft node runs as node i
// now (nil while it is down).
type nodeRef struct {
	rc *raftCluster
	i  int
}

func (r nodeRef) node() *replication.Node {
	if r.rc.c == nil {
		return nil
	}
	return r.rc.c.Node(r.i)
}

func (r nodeRef) Propose(ctx context.Context, data []byte) ([]byte, uint64, error) {
	if n := r.node(); n != nil {
		return n.Propose(ctx, data)
	}
	return nil, 0, replication.ErrNoLeader
}

func (r nodeRef) ReadIndex(ctx context.Context) (uint64, error) {
	if n := r.node(); n != nil {
		return n.ReadIndex(ctx)
	}
	return 0, replication.ErrNoLeader
}

func (r nodeRef) WaitApplied(ctx context.Context, index uint64) error {
	for {
		if n := r.node(); n != nil {
			err := n.WaitApplied(ctx, index)
			if !errors.Is(err, replication.ErrClosed) {
				return err
			}
		}
		if err := wait(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func (r nodeRef) CheckStaleness(max time.Duration) error {
	if n := r.node(); n != nil {
		return n.CheckStaleness(max)
	}
	return replication.ErrStale
}

const testCluster = "test-cluster"

// testMaxStaleness is RaftConfig.MaxStaleness of every test cluster's stores.
const testMaxStaleness = time.Second

func newRaftCluster(t *testing.T, zones []string, tune func(*replication.Config)) *raftCluster {
	t.Helper()
	return newConfiguredRaftCluster(t, zones, tune, nil)
}

// newConfiguredRaftCluster is newRaftCluster with configure applied to each
// store's Config.
func newConfiguredRaftCluster(t *testing.T, zones []string, tune func(*replication.Config), configure func(i int, cfg *Config)) *raftCluster {
	t.Helper()
	rc := &raftCluster{root: make([]byte, RootKeySize), configure: configure}
	rand.Read(rc.root)
	for range zones {
		rc.openStore(t)
	}
	c, err := replication.NewCluster(context.Background(), replication.ClusterConfig{
		Zones: zones,
		FSM:   func(i int) replication.FSM { return rc.fsms[i] },
		Tune:  tune,
	})
	if err != nil {
		t.Fatal(err)
	}
	rc.c = c
	if _, err := c.WaitLeader(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rc
}

// openStore opens the store of the next node index.
func (rc *raftCluster) openStore(t *testing.T) int {
	t.Helper()
	i := len(rc.stores)
	cfg := DefaultConfig(t.TempDir())
	cfg.RootKey = rc.root
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.SyncWrites = false
	cfg.NewLog = RaftConfig{
		ClusterID:    testCluster,
		MaxStaleness: testMaxStaleness,
		Start: func(fsm replication.FSM) (Replicator, error) {
			rc.fsms = append(rc.fsms, fsm.(*RaftFSM))
			return nodeRef{rc, i}, nil
		},
	}.NewLog()
	if rc.configure != nil {
		rc.configure(i, &cfg)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc.stores = append(rc.stores, s)
	return i
}

// close stops raft first, then the stores.
func (rc *raftCluster) close(t *testing.T) {
	if err := rc.c.Close(); err != nil {
		t.Error(err)
	}
	for _, s := range rc.stores {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
}

// names is the porcupine model's view of the tenant table: the sorted
// names, comma separated.
type tenantOp struct {
	Create bool
	Name   string
}

type tenantOut struct{ Names string }

var tenantModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, st := input.(tenantOp), state.(string)
		if in.Create {
			names := []string{}
			if st != "" {
				names = strings.Split(st, ",")
			}
			if !slices.Contains(names, in.Name) {
				names = append(names, in.Name)
				slices.Sort(names)
			}
			return true, strings.Join(names, ",")
		}
		return output.(tenantOut).Names == st, st
	},
}

func tenantNames(ts []Tenant) string {
	var names []string
	for _, t := range ts {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

type ksWorld struct {
	mu      sync.Mutex // guards rc.stores while a node is added
	rc      *raftCluster
	hist    replication.History
	acked   sync.Map // name -> struct{}
	writes  atomic.Int64
	ryw     atomic.Int64
	removed map[int]bool
}

func (w *ksWorld) client(ctx context.Context, t *testing.T, id int, seed uint64) {
	rng := mrand.New(mrand.NewPCG(seed, uint64(id)))
	for n := 0; ctx.Err() == nil; n++ {
		w.mu.Lock()
		stores := w.rc.stores
		w.mu.Unlock()
		s := stores[rng.IntN(len(stores))]
		if rng.IntN(2) == 0 {
			name := fmt.Sprintf("t%d-%d", id, n)
			rec := w.hist.Begin(id, tenantOp{Create: true, Name: name})
			w.writes.Add(1)
			var idx uint64
			opCtx, cancel := context.WithTimeout(RecordIndex(ctx, &idx), 2*time.Second)
			_, err := s.CreateTenant(opCtx, name, nil)
			cancel()
			if err != nil {
				rec.Unknown(tenantOut{})
				continue
			}
			rec.End(tenantOut{})
			w.acked.Store(name, struct{}{})
			// Read your writes on another node.
			j := rng.IntN(len(stores))
			rctx, cancel := context.WithTimeout(ReadAfter(ctx, idx), time.Second)
			if _, err := stores[j].TenantByName(rctx, name); err == nil {
				w.ryw.Add(1)
			} else if errors.Is(err, ErrNotFound) {
				t.Errorf("node %d at index >= %d does not see tenant %s written at %d", j, idx, name, idx)
			}
			cancel()
		} else {
			rec := w.hist.Begin(id, tenantOp{})
			opCtx, cancel := context.WithTimeout(WithReadLevel(ctx, ReadLinearizable), 500*time.Millisecond)
			ts, err := s.Tenants(opCtx)
			cancel()
			if err != nil {
				rec.Drop()
			} else {
				rec.End(tenantOut{Names: tenantNames(ts)})
			}
		}
		time.Sleep(time.Duration(5+rng.IntN(30)) * time.Millisecond)
	}
}

type ksScenario struct {
	name  string
	zones []string
	tune  func(*replication.Config)
	run   func(ctx context.Context, t *testing.T, w *ksWorld, rng *mrand.Rand)
}

func leaderOf(ctx context.Context, t *testing.T, c *replication.Cluster) int {
	l, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var ksScenarios = []ksScenario{
	{name: "leader-kill", zones: []string{"eu-a", "eu-b", "eu-c"}, run: func(ctx context.Context, t *testing.T, w *ksWorld, rng *mrand.Rand) {
		for range 2 {
			l := leaderOf(ctx, t, w.rc.c)
			w.rc.c.Kill(l)
			time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
			if err := w.rc.c.Restart(l); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		}
	}},
	{name: "majority-partition", zones: []string{"eu-a", "eu-a", "eu-b", "eu-b", "eu-c"}, run: func(ctx context.Context, t *testing.T, w *ksWorld, rng *mrand.Rand) {
		l := leaderOf(ctx, t, w.rc.c)
		var rest []int
		for i := range 5 {
			if i != l {
				rest = append(rest, i)
			}
		}
		rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
		w.rc.c.Partition([]int{l, rest[0]}, rest[1:])
		time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
		w.rc.c.Heal()
	}},
	{name: "zone-cut", zones: []string{"eu-a", "eu-b", "eu-c"}, run: func(ctx context.Context, t *testing.T, w *ksWorld, rng *mrand.Rand) {
		l := leaderOf(ctx, t, w.rc.c)
		w.rc.c.CutZone(w.rc.c.Zone(l))
		time.Sleep(time.Duration(300+rng.IntN(1000)) * time.Millisecond)
		w.rc.c.Heal()
	}},
	{name: "flapping", zones: []string{"eu-a", "eu-b", "eu-c"}, run: func(ctx context.Context, t *testing.T, w *ksWorld, rng *mrand.Rand) {
		for range 15 {
			i, j := rng.IntN(3), rng.IntN(3)
			if i == j {
				continue
			}
			w.rc.c.Cut(i, j)
			time.Sleep(time.Duration(20+rng.IntN(150)) * time.Millisecond)
			w.rc.c.Link(i, j)
			time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		}
	}},
	{name: "membership-under-load", zones: []string{"eu-a", "eu-b", "eu-c"}, run: func(ctx context.Context, t *testing.T, w *ksWorld, rng *mrand.Rand) {
		// A fourth node joins as a non-voter, catches up, is promoted,
		// and an old voter is removed, while clients write and read.
		zone := []string{"eu-a", "eu-b", "eu-c"}[rng.IntN(3)]
		w.mu.Lock()
		n := w.rc.openStore(t)
		w.mu.Unlock()
		if _, err := w.rc.c.Add(zone); err != nil {
			t.Fatal(err)
		}
		onLeader(ctx, t, w.rc.c, func(ln *replication.Node) error {
			return ln.AddNonvoter(ctx, w.rc.c.ID(n), w.rc.c.Addr(n), zone)
		})
		time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		onLeader(ctx, t, w.rc.c, func(ln *replication.Node) error { return ln.Promote(ctx, w.rc.c.ID(n)) })
		victim := rng.IntN(3)
		onLeader(ctx, t, w.rc.c, func(ln *replication.Node) error {
			if ln.ID() == w.rc.c.ID(victim) {
				if err := ln.TransferLeadership(ctx, ""); err != nil {
					return err
				}
				return replication.ErrNotLeader
			}
			return ln.Remove(ctx, w.rc.c.ID(victim))
		})
		w.mu.Lock()
		w.removed[victim] = true
		w.mu.Unlock()
		w.rc.c.Kill(victim)
	}},
	{name: "snapshot-install", zones: []string{"eu-a", "eu-b", "eu-c"}, run: func(ctx context.Context, t *testing.T, w *ksWorld, rng *mrand.Rand) {
		l := leaderOf(ctx, t, w.rc.c)
		lag := (l + 1 + rng.IntN(2)) % 3
		w.rc.c.Isolate(lag)
		for i := range 80 {
			name := fmt.Sprintf("s-%d", i)
			rec := w.hist.Begin(9, tenantOp{Create: true, Name: name})
			if _, err := w.rc.stores[l].CreateTenant(ctx, name, nil); err != nil {
				rec.Unknown(tenantOut{})
			} else {
				rec.End(tenantOut{})
				w.acked.Store(name, struct{}{})
			}
		}
		for i := range 3 {
			if n := w.rc.c.Node(i); n != nil && i != lag {
				if err := n.Snapshot(ctx); err != nil {
					t.Logf("snapshot on node %d: %v", i, err)
				}
			}
		}
		before := w.rc.c.Node(lag).Raft().Stats()["last_snapshot_index"]
		w.rc.c.Heal()
		// The lagging node must catch up through a snapshot install:
		// the others truncated their logs past what it holds.
		for ctx.Err() == nil {
			if after := w.rc.c.Node(lag).Raft().Stats()["last_snapshot_index"]; after != before {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("lagging node never installed a snapshot")
	}},
}

// onLeader runs op on the current leader until it succeeds.
func onLeader(ctx context.Context, t *testing.T, c *replication.Cluster, op func(*replication.Node) error) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	for rctx.Err() == nil {
		if l := c.Leader(); l >= 0 {
			if n := c.Node(l); n != nil {
				if err = op(n); err == nil {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("leader operation: %v", err)
}

func runKeystoreChaos(t *testing.T, sc ksScenario, seed uint64) {
	synctest.Test(t, func(t *testing.T) {
		rng := mrand.New(mrand.NewPCG(seed, 0xc1a05))
		rc := newRaftCluster(t, sc.zones, sc.tune)
		defer rc.close(t)
		w := &ksWorld{rc: rc, removed: map[int]bool{}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		load, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for id := range 3 {
			wg.Go(func() { w.client(load, t, id, seed) })
		}
		time.Sleep(time.Duration(100+rng.IntN(200)) * time.Millisecond)
		sc.run(ctx, t, w, rng)
		time.Sleep(time.Duration(200+rng.IntN(300)) * time.Millisecond)
		stop()
		wg.Wait()

		// Converge: heal, restart, and one linearizable write and read on
		// every node; then every replica's tenant table must be equal and
		// hold every acknowledged tenant exactly once.
		rc.c.Heal()
		for i := range rc.stores {
			if rc.c.Node(i) == nil && !w.removed[i] {
				if err := rc.c.Restart(i); err != nil {
					t.Fatal(err)
				}
			}
		}
		var idx uint64
		var live []int
		for i := range rc.stores {
			if !w.removed[i] {
				live = append(live, i)
			}
		}
		if _, err := rc.stores[live[0]].CreateTenant(RecordIndex(ctx, &idx), "final", nil); err != nil {
			t.Fatal(err)
		}
		var ref string
		for _, i := range live {
			s := rc.stores[i]
			ts, err := s.Tenants(ReadAfter(ctx, idx))
			if err != nil {
				t.Fatal(err)
			}
			names := tenantNames(ts)
			if i == live[0] {
				ref = names
			} else if names != ref {
				t.Fatalf("replica %d holds %s\nreplica 0 holds %s", i, names, ref)
			}
			if s.AppliedIndex() < idx {
				t.Fatalf("replica %d applied %d < %d", i, s.AppliedIndex(), idx)
			}
		}
		have := map[string]int{}
		for _, n := range strings.Split(ref, ",") {
			have[n]++
		}
		w.acked.Range(func(k, _ any) bool {
			if have[k.(string)] != 1 {
				t.Errorf("acknowledged tenant %s present %d times", k, have[k.(string)])
			}
			return true
		})
		var ops []porcupine.Operation
		for _, o := range w.hist.Ops() {
			ops = append(ops, porcupine.Operation{ClientId: o.Client, Input: o.Input, Output: o.Output, Call: o.Call, Return: o.Return})
		}
		if porcupine.CheckOperationsTimeout(tenantModel, ops, 30*time.Second) == porcupine.Illegal {
			t.Fatalf("keystore history of %d operations is not linearizable", len(ops))
		}
		if w.writes.Load() == 0 {
			t.Fatal("no writes")
		}
		t.Logf("%d operations, %d writes, %d read-your-writes checks", len(ops), w.writes.Load(), w.ryw.Load())
	})
}

func keystoreChaosSeeds(t *testing.T, def int) int {
	if s := os.Getenv("CHAOS_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if testing.Short() {
		return 1
	}
	return def
}

func TestRaftChaos(t *testing.T) {
	for _, sc := range ksScenarios {
		t.Run(sc.name, func(t *testing.T) {
			for seed := range uint64(keystoreChaosSeeds(t, 16)) {
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runKeystoreChaos(t, sc, seed) })
			}
		})
	}
}
