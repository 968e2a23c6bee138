package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anishathalye/porcupine"
)

// kvFSM is a tiny replicated map for the chaos suite: every put appends its
// value to the key's history, deduplicated by request id, so a lost,
// duplicated or reordered write shows in the history.
type kvFSM struct {
	mu       sync.Mutex
	state    kvState
	restores atomic.Int32
}

type kvState struct {
	Vals  map[string][]string `json:"vals"`
	Dedup map[string]bool     `json:"dedup"`
}

type kvCmd struct {
	Req string `json:"req"`
	Key string `json:"key"`
	Val string `json:"val"`
}

func newKV() *kvFSM {
	return &kvFSM{state: kvState{Vals: map[string][]string{}, Dedup: map[string]bool{}}}
}

func (f *kvFSM) ApplyBatch(entries []Entry) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]byte, len(entries))
	for i, e := range entries {
		var c kvCmd
		if err := json.Unmarshal(e.Data, &c); err != nil {
			panic(err)
		}
		if !f.state.Dedup[c.Req] {
			f.state.Dedup[c.Req] = true
			f.state.Vals[c.Key] = append(f.state.Vals[c.Key], c.Val)
		}
		out[i] = []byte(strconv.FormatUint(e.Index, 10))
	}
	return out
}

func (f *kvFSM) get(key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.state.Vals[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func (f *kvFSM) encode() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(f.state)
	return b
}

type kvSnapshot []byte

func (s kvSnapshot) WriteTo(w io.Writer) (int64, error) { n, err := w.Write(s); return int64(n), err }
func (s kvSnapshot) Release()                           {}

func (f *kvFSM) Snapshot() (Snapshot, error) { return kvSnapshot(f.encode()), nil }

func (f *kvFSM) Restore(r io.Reader) error {
	var st kvState
	if err := json.NewDecoder(r).Decode(&st); err != nil {
		return err
	}
	f.mu.Lock()
	f.state = st
	f.mu.Unlock()
	f.restores.Add(1)
	return nil
}

// kvInput and kvOutput are the porcupine model's operations.
type kvInput struct {
	Put      bool
	Key, Val string
}

type kvOutput struct{ Val string }

// kvModel is a register per key: a put sets it, a get returns it.
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(kvInput)
		if in.Put {
			return true, in.Val
		}
		return output.(kvOutput).Val == state.(string), state
	},
}

// Porcupine checks the recorded history against model.
func checkLinearizable(t *testing.T, model porcupine.Model, h *History) {
	t.Helper()
	var ops []porcupine.Operation
	for _, o := range h.Ops() {
		ops = append(ops, porcupine.Operation{ClientId: o.Client, Input: o.Input, Output: o.Output, Call: o.Call, Return: o.Return})
	}
	res := porcupine.CheckOperationsTimeout(model, ops, 30*time.Second)
	if res == porcupine.Illegal {
		t.Fatalf("history of %d operations is not linearizable", len(ops))
	}
	if res == porcupine.Unknown {
		t.Logf("porcupine timed out on %d operations", len(ops))
	}
}

// chaosSeeds is how many seeds each chaos scenario runs: a few under
// -short, CHAOS_SEEDS=n locally for more.
func chaosSeeds(t *testing.T, def int) int {
	if s := os.Getenv("CHAOS_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("CHAOS_SEEDS=%q: %v", s, err)
		}
		return n
	}
	if testing.Short() {
		return max(def/10, 2)
	}
	return def
}

// scenario is a fault schedule run against a loaded cluster.
type scenario struct {
	name  string
	zones []string
	run   func(ctx context.Context, t *testing.T, w *world)
	// snapshotInstall asks for a check that some node restored a snapshot.
	snapshotInstall bool
}

// world is one seed's cluster, its FSMs, clients and history.
type world struct {
	c       *Cluster
	rng     *rand.Rand
	mu      sync.Mutex
	fsms    map[int]*kvFSM
	removed map[int]bool
	hist    History
	acked   sync.Map // value -> key
	puts    atomic.Int64
}

func (w *world) fsm(i int) *kvFSM {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fsms[i]
}

// pause waits d of virtual time.
func pause(d time.Duration) { time.Sleep(d) }

func (w *world) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

// client runs puts and linearizable gets through random nodes until ctx
// ends.
func (w *world) client(ctx context.Context, id int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	keys := []string{"a", "b", "c"}
	for n := 0; ctx.Err() == nil; n++ {
		i := rng.IntN(w.c.N())
		key := keys[rng.IntN(len(keys))]
		if rng.IntN(2) == 0 {
			val := fmt.Sprintf("c%d-%d", id, n)
			w.put(ctx, id, i, key, val)
		} else {
			w.get(ctx, id, i, key)
		}
		pause(time.Duration(5+rng.IntN(20)) * time.Millisecond)
	}
}

func (w *world) put(ctx context.Context, client, i int, key, val string) {
	cmd, _ := json.Marshal(kvCmd{Req: val, Key: key, Val: val})
	rec := w.hist.Begin(client, kvInput{Put: true, Key: key, Val: val})
	opCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	w.puts.Add(1)
	// Retry with the same request id until acknowledged: an ambiguous
	// failure must not apply the value twice.
	for opCtx.Err() == nil {
		n := w.c.Node(i)
		if n == nil {
			i = (i + 1) % w.c.N()
			pause(20 * time.Millisecond)
			continue
		}
		tryCtx, cancelTry := context.WithTimeout(opCtx, 300*time.Millisecond)
		_, _, err := n.Propose(tryCtx, cmd)
		cancelTry()
		if err == nil {
			w.acked.Store(val, key)
			rec.End(kvOutput{})
			return
		}
		// Retry through the next node, as a client behind a load balancer
		// would.
		i = (i + 1) % w.c.N()
		pause(20 * time.Millisecond)
	}
	rec.Unknown(kvOutput{})
}

func (w *world) get(ctx context.Context, client, i int, key string) {
	n, f := w.c.Node(i), w.fsm(i)
	if n == nil || f == nil {
		return
	}
	rec := w.hist.Begin(client, kvInput{Key: key})
	opCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := n.LinearizableBarrier(opCtx); err != nil {
		rec.Drop()
		return
	}
	// The node may have been restarted with a fresh FSM meanwhile; read
	// the one the barrier ran on only if it is still current.
	if w.fsm(i) != f || w.c.Node(i) != n {
		rec.Drop()
		return
	}
	rec.End(kvOutput{Val: f.get(key)})
}

func runChaos(t *testing.T, sc scenario, seed uint64) {
	synctest.Test(t, func(t *testing.T) {
		w := &world{rng: rand.New(rand.NewPCG(seed, 0x7e5)), fsms: map[int]*kvFSM{}, removed: map[int]bool{}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		c, err := NewCluster(ctx, ClusterConfig{
			Zones: sc.zones,
			FSM: func(i int) FSM {
				f := newKV()
				w.mu.Lock()
				w.fsms[i] = f
				w.mu.Unlock()
				return f
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		w.c = c
		defer c.Close()
		if _, err := c.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}

		load, stopLoad := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for id := range 3 {
			wg.Go(func() { w.client(load, id, seed) })
		}
		pause(w.dur(100*time.Millisecond, 300*time.Millisecond))
		sc.run(ctx, t, w)
		pause(w.dur(200*time.Millisecond, 500*time.Millisecond))
		stopLoad()
		wg.Wait()

		w.converge(ctx, t)
		if sc.snapshotInstall {
			restored := false
			for i := range c.N() {
				if f := w.fsm(i); f != nil && f.restores.Load() > 0 {
					restored = true
				}
			}
			if !restored {
				t.Errorf("no node installed a snapshot")
			}
		}
		acked := 0
		w.acked.Range(func(_, _ any) bool { acked++; return true })
		t.Logf("%d operations, %d puts, %d acknowledged", len(w.hist.Ops()), w.puts.Load(), acked)
		checkLinearizable(t, kvModel, &w.hist)
		if w.puts.Load() == 0 {
			t.Fatal("no writes were attempted")
		}
	})
}

// converge heals the cluster, restarts stopped members and checks that all
// members hold the same state, which holds every acknowledged write exactly
// once.
func (w *world) converge(ctx context.Context, t *testing.T) {
	t.Helper()
	c := w.c
	c.Heal()
	for i := range c.N() {
		if c.Node(i) == nil && !w.removed[i] {
			if err := c.Restart(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	l, err := c.WaitLeader(cctx)
	if err != nil {
		t.Fatal(err)
	}
	// A write through the leader that every member must then hold.
	var idx uint64
	for {
		ln := c.Node(l)
		var err error
		if ln != nil {
			cmd, _ := json.Marshal(kvCmd{Req: "final", Key: "final", Val: "final"})
			_, idx, err = ln.Propose(cctx, cmd)
			if err == nil {
				break
			}
		}
		if cctx.Err() != nil {
			t.Fatalf("final write: %v", err)
		}
		pause(50 * time.Millisecond)
		if l = c.Leader(); l < 0 {
			l = 0
		}
	}
	servers, err := c.Node(l).Servers(cctx)
	if err != nil {
		t.Fatal(err)
	}
	var ref []byte
	for _, s := range servers {
		i := -1
		for j := range c.N() {
			if c.ID(j) == s.ID {
				i = j
			}
		}
		n := c.Node(i)
		if n == nil {
			t.Fatalf("member %s is down", s.ID)
		}
		if err := n.WaitApplied(cctx, idx); err != nil {
			t.Fatalf("%s did not apply index %d: %v", s.ID, idx, err)
		}
		if s.Zone != c.Zone(i) {
			t.Errorf("%s: zone %q, want %q", s.ID, s.Zone, c.Zone(i))
		}
		st := w.fsm(i).encode()
		if ref == nil {
			ref = st
		} else if !bytes.Equal(ref, st) {
			t.Fatalf("replicas diverge: %s holds\n%s\nthe first member holds\n%s", s.ID, st, ref)
		}
	}
	var final kvState
	json.Unmarshal(ref, &final)
	seen := map[string]int{}
	for _, vals := range final.Vals {
		for _, v := range vals {
			seen[v]++
		}
	}
	lost := 0
	w.acked.Range(func(v, _ any) bool {
		if seen[v.(string)] == 0 {
			lost++
			t.Errorf("acknowledged write %s lost", v)
		}
		return true
	})
	for v, n := range seen {
		if n > 1 {
			t.Errorf("write %s applied %d times", v, n)
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged writes lost", lost)
	}
}

func (w *world) leader(ctx context.Context, t *testing.T) int {
	l, err := w.c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (w *world) others(not ...int) []int {
	var out []int
	for i := range w.c.N() {
		if !slices.Contains(not, i) && !w.removed[i] {
			out = append(out, i)
		}
	}
	return out
}

var zones3 = []string{"eu-a", "eu-b", "eu-c"}
var zones5 = []string{"eu-a", "eu-a", "eu-b", "eu-b", "eu-c"}

var scenarios = []scenario{
	{name: "leader-kill", zones: zones3, run: func(ctx context.Context, t *testing.T, w *world) {
		for range 2 {
			l := w.leader(ctx, t)
			w.c.Kill(l)
			pause(w.dur(200*time.Millisecond, time.Second))
			if err := w.c.Restart(l); err != nil {
				t.Fatal(err)
			}
			pause(w.dur(100*time.Millisecond, 500*time.Millisecond))
		}
	}},
	{name: "leader-kill-5", zones: zones5, run: func(ctx context.Context, t *testing.T, w *world) {
		l := w.leader(ctx, t)
		w.c.Kill(l)
		pause(w.dur(300*time.Millisecond, time.Second))
		l2 := w.leader(ctx, t)
		w.c.Kill(l2)
		pause(w.dur(300*time.Millisecond, time.Second))
		w.c.Restart(l)
		w.c.Restart(l2)
	}},
	{name: "minority-partition", zones: zones5, run: func(ctx context.Context, t *testing.T, w *world) {
		l := w.leader(ctx, t)
		rest := w.others(l)
		w.rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
		w.c.Partition(append([]int{l}, rest[:2]...), rest[2:])
		pause(w.dur(300*time.Millisecond, time.Second))
		w.c.Heal()
	}},
	{name: "majority-partition", zones: zones5, run: func(ctx context.Context, t *testing.T, w *world) {
		// The leader ends up in the minority: the majority elects another
		// while the old leader's pending writes must not be acknowledged.
		l := w.leader(ctx, t)
		rest := w.others(l)
		w.rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
		w.c.Partition([]int{l, rest[0]}, rest[1:])
		pause(w.dur(500*time.Millisecond, 1500*time.Millisecond))
		w.c.Heal()
	}},
	{name: "zone-cut", zones: zones5, run: func(ctx context.Context, t *testing.T, w *world) {
		l := w.leader(ctx, t)
		w.c.CutZone(w.c.Zone(l)) // the leader's zone first, then a random one
		pause(w.dur(300*time.Millisecond, time.Second))
		w.c.Heal()
		pause(w.dur(100*time.Millisecond, 300*time.Millisecond))
		w.c.CutZone(zones5[w.rng.IntN(len(zones5))])
		pause(w.dur(300*time.Millisecond, time.Second))
		w.c.Heal()
	}},
	{name: "flapping", zones: zones3, run: func(ctx context.Context, t *testing.T, w *world) {
		for range 20 {
			i, j := w.rng.IntN(3), w.rng.IntN(3)
			if i == j {
				continue
			}
			w.c.Cut(i, j)
			pause(w.dur(20*time.Millisecond, 150*time.Millisecond))
			w.c.Link(i, j)
			pause(w.dur(0, 100*time.Millisecond))
		}
	}},
	{name: "membership-under-load", zones: zones3, run: func(ctx context.Context, t *testing.T, w *world) {
		// A new node joins as a non-voter, is promoted, and an old voter
		// is removed, all while clients write.
		zone := zones3[w.rng.IntN(3)]
		n, err := w.c.Add(zone)
		if err != nil {
			t.Fatal(err)
		}
		retry(ctx, t, w, func(ln *Node) error { return ln.AddNonvoter(ctx, w.c.ID(n), w.c.Addr(n), zone) })
		pause(w.dur(100*time.Millisecond, 400*time.Millisecond))
		retry(ctx, t, w, func(ln *Node) error { return ln.Promote(ctx, w.c.ID(n)) })
		victim := w.rng.IntN(3)
		retry(ctx, t, w, func(ln *Node) error {
			if ln.ID() == w.c.ID(victim) {
				// Hand leadership over first, as before a planned stop.
				if err := ln.TransferLeadership(ctx, ""); err != nil {
					return err
				}
				return ErrNotLeader
			}
			return ln.Remove(ctx, w.c.ID(victim))
		})
		w.mu.Lock()
		w.removed[victim] = true
		w.mu.Unlock()
		w.c.Kill(victim)
	}},
	{name: "snapshot-install", zones: zones3, snapshotInstall: true, run: func(ctx context.Context, t *testing.T, w *world) {
		// A follower is cut off while the others write past their trailing
		// logs and snapshot: it can only catch up from a snapshot.
		l := w.leader(ctx, t)
		lag := w.others(l)[w.rng.IntN(2)]
		w.c.Isolate(lag)
		for i := 0; w.c.Node(l) != nil && w.c.Node(l).raft.LastIndex() < 200 && i < 400; i++ {
			w.put(ctx, 9, l, "s", fmt.Sprintf("s-%d", i))
		}
		for _, i := range w.others(lag) {
			if n := w.c.Node(i); n != nil {
				n.Snapshot(ctx)
			}
		}
		w.c.Heal()
	}},
}

// retry runs op on the current leader until it succeeds.
func retry(ctx context.Context, t *testing.T, w *world, op func(*Node) error) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	for rctx.Err() == nil {
		if l := w.c.Leader(); l >= 0 {
			if err = op(w.c.Node(l)); err == nil {
				return
			}
		}
		pause(50 * time.Millisecond)
	}
	t.Fatalf("leader operation: %v", err)
}

func TestChaos(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			n := chaosSeeds(t, 80)
			for seed := range uint64(n) {
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runChaos(t, sc, seed) })
			}
		})
	}
}
