package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// This file exports an in-memory cluster for tests, here and in the
// keystore: raft's InmemTransport between nodes, raft's in-memory log and
// snapshot stores as each node's "disk" (they survive Kill and Restart),
// links that can be cut and healed, and write forwarding and read index as
// direct calls that honour the cut links. Run it under testing/synctest and
// raft's timers run in virtual time: a failover costs microseconds of CPU.

// ClusterConfig configures NewCluster.
type ClusterConfig struct {
	// Zones gives each node's zone; its length is the node count.
	Zones []string
	// NonVoters is how many of the last nodes start as non-voters.
	NonVoters int
	// FSM returns node i's state machine. It is called at every start of
	// the node, so a test chooses whether the state survives a Kill
	// (return the same durable FSM) or not (return a fresh one).
	FSM func(i int) FSM
	// Tune adjusts each node's Config (timeouts, snapshot thresholds).
	Tune func(*Config)
	// Logger receives the nodes' messages. Nil discards.
	Logger *slog.Logger
}

// TestConfig returns a Config for in-memory clusters: timeouts ten times
// shorter than production, small snapshot thresholds so snapshots and their
// installation happen within a test.
func TestConfig(id, zone string) Config {
	c := DefaultConfig(id, zone, "", "")
	c.ClusterID = "test-cluster"
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.SnapshotInterval = time.Second
	c.SnapshotThreshold = 64
	c.TrailingLogs = 32
	return c
}

// Cluster is an in-memory cluster.
type Cluster struct {
	cc    ClusterConfig
	mu    sync.Mutex
	nodes []*clusterNode
	cut   map[[2]int]bool
}

type clusterNode struct {
	id, zone string
	addr     raft.ServerAddress
	st       stores
	trans    *raft.InmemTransport
	node     *Node // nil while down
}

// NewCluster starts len(cc.Zones) nodes, bootstraps them as one cluster
// with their zones recorded, and waits for a leader.
func NewCluster(ctx context.Context, cc ClusterConfig) (*Cluster, error) {
	c := &Cluster{cc: cc, cut: map[[2]int]bool{}}
	var servers []Server
	for i, z := range cc.Zones {
		cn := c.newClusterNode(i, z)
		c.nodes = append(c.nodes, cn)
		servers = append(servers, Server{ID: cn.id, Address: string(cn.addr), Zone: z, Voter: i < len(cc.Zones)-cc.NonVoters})
	}
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.nodes[0].node.Bootstrap(ctx, servers...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) newClusterNode(i int, zone string) *clusterNode {
	st := raft.NewInmemStore()
	return &clusterNode{
		id: fmt.Sprintf("node%d", i), zone: zone, addr: raft.ServerAddress(fmt.Sprintf("node%d", i)),
		st: stores{logs: st, stable: st, snaps: raft.NewInmemSnapshotStore()},
	}
}

// start starts node i on its stores with a fresh transport.
func (c *Cluster) start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cn := c.nodes[i]
	if cn.node != nil {
		return fmt.Errorf("replication: node %d is running", i)
	}
	cfg := TestConfig(cn.id, cn.zone)
	cfg.Logger = c.cc.Logger
	if c.cc.Tune != nil {
		c.cc.Tune(&cfg)
	}
	_, cn.trans = raft.NewInmemTransportWithTimeout(cn.addr, 50*time.Millisecond)
	n, err := newNode(cfg, c.cc.FSM(i), cn.st, cn.trans, &inmemForwarder{c: c, from: i}, nil)
	if err != nil {
		return err
	}
	cn.node = n
	c.relinkLocked()
	return nil
}

// relinkLocked connects every pair of running nodes whose link is not cut
// and disconnects the others.
func (c *Cluster) relinkLocked() {
	for i, a := range c.nodes {
		for j, b := range c.nodes {
			if i == j || a.trans == nil || b.trans == nil {
				continue
			}
			if a.node != nil && b.node != nil && !c.cut[pair(i, j)] {
				a.trans.Connect(b.addr, b.trans)
			} else {
				a.trans.Disconnect(b.addr)
			}
		}
	}
}

func pair(i, j int) [2]int {
	if i > j {
		i, j = j, i
	}
	return [2]int{i, j}
}

// N returns the number of nodes, running or not.
func (c *Cluster) N() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// Node returns node i, or nil while it is down.
func (c *Cluster) Node(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].node
}

// ID returns node i's id.
func (c *Cluster) ID(i int) string { return c.nodes[i].id }

// Zone returns node i's zone.
func (c *Cluster) Zone(i int) string { return c.nodes[i].zone }

// Leader returns the index of a running node that believes it leads, or
// -1. During a partition two nodes may believe so; Leader returns the one
// with the highest term.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	best, term := -1, uint64(0)
	for i, cn := range c.nodes {
		if cn.node != nil && cn.node.IsLeader() && cn.node.raft.CurrentTerm() >= term {
			best, term = i, cn.node.raft.CurrentTerm()
		}
	}
	return best
}

// WaitLeader polls until some node leads, or ctx ends.
func (c *Cluster) WaitLeader(ctx context.Context) (int, error) {
	for {
		if l := c.Leader(); l >= 0 {
			return l, nil
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return -1, fmt.Errorf("replication: no leader: %w", err)
		}
	}
}

// Cut cuts the link between nodes i and j, both ways.
func (c *Cluster) Cut(i, j int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut[pair(i, j)] = true
	c.relinkLocked()
}

// Link restores the link between nodes i and j.
func (c *Cluster) Link(i, j int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cut, pair(i, j))
	c.relinkLocked()
}

// Partition cuts every link between nodes of different groups; nodes in
// no group are cut off from all. Links inside a group are restored.
func (c *Cluster) Partition(groups ...[]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	group := map[int]int{}
	for g, ns := range groups {
		for _, i := range ns {
			group[i] = g + 1
		}
	}
	for i := range c.nodes {
		for j := i + 1; j < len(c.nodes); j++ {
			if group[i] != 0 && group[i] == group[j] {
				delete(c.cut, pair(i, j))
			} else {
				c.cut[pair(i, j)] = true
			}
		}
	}
	c.relinkLocked()
}

// Isolate cuts node i off from every other node.
func (c *Cluster) Isolate(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for j := range c.nodes {
		if j != i {
			c.cut[pair(i, j)] = true
		}
	}
	c.relinkLocked()
}

// CutZone cuts every node of zone off from the nodes of other zones.
func (c *Cluster) CutZone(zone string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, a := range c.nodes {
		for j, b := range c.nodes {
			if i < j && (a.zone == zone) != (b.zone == zone) {
				c.cut[pair(i, j)] = true
			}
		}
	}
	c.relinkLocked()
}

// Heal restores every link.
func (c *Cluster) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.cut)
	c.relinkLocked()
}

// Connected reports whether nodes i and j can talk now.
func (c *Cluster) Connected(i, j int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return i == j || (c.nodes[i].node != nil && c.nodes[j].node != nil && !c.cut[pair(i, j)])
}

// Kill stops node i as a crash would, keeping its stores.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	cn := c.nodes[i]
	n := cn.node
	cn.node = nil
	c.relinkLocked()
	c.mu.Unlock()
	if n == nil {
		return nil
	}
	return n.Close()
}

// Restart starts a killed node again on its stores.
func (c *Cluster) Restart(i int) error { return c.start(i) }

// Add starts a new node in zone, not yet a member: the leader admits it
// with AddNonvoter. It returns the node's index.
func (c *Cluster) Add(zone string) (int, error) {
	c.mu.Lock()
	i := len(c.nodes)
	c.nodes = append(c.nodes, c.newClusterNode(i, zone))
	c.mu.Unlock()
	return i, c.start(i)
}

// Addr returns node i's address.
func (c *Cluster) Addr(i int) string { return string(c.nodes[i].addr) }

// Close stops every running node.
func (c *Cluster) Close() error {
	var errs []error
	for i := range c.nodes {
		errs = append(errs, c.Kill(i))
	}
	return errors.Join(errs...)
}

// errResponseLost is a forwarded call whose answer was cut off: the
// outcome is unknown, as over a real network.
var errResponseLost = errors.New("replication: response lost to a partition")

// inmemForwarder forwards to the leader by direct call, if the link is up.
type inmemForwarder struct {
	c    *Cluster
	from int
}

func (f *inmemForwarder) target(to raft.ServerAddress) (*Node, int, error) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	for j, cn := range f.c.nodes {
		if cn.addr == to {
			if cn.node == nil || f.c.cut[pair(f.from, j)] {
				return nil, j, fmt.Errorf("%w: %s unreachable", ErrNoLeader, to)
			}
			return cn.node, j, nil
		}
	}
	return nil, -1, fmt.Errorf("%w: unknown address %s", ErrNoLeader, to)
}

func (f *inmemForwarder) forward(ctx context.Context, to raft.ServerAddress, data []byte) ([]byte, uint64, error) {
	n, j, err := f.target(to)
	if err != nil {
		return nil, 0, err
	}
	res, idx, err := n.applyLocal(ctx, data)
	if !f.c.Connected(f.from, j) {
		return nil, 0, errResponseLost
	}
	return res, idx, err
}

func (f *inmemForwarder) readIndex(ctx context.Context, to raft.ServerAddress) (uint64, error) {
	n, j, err := f.target(to)
	if err != nil {
		return 0, err
	}
	idx, err := n.readIndexLocal(ctx)
	if !f.c.Connected(f.from, j) {
		return 0, errResponseLost
	}
	return idx, err
}

// History records a concurrent history of operations for a
// linearizability checker (github.com/anishathalye/porcupine): each
// operation's call and return are stamped from one logical clock, so the
// real-time order the checker relies on is exactly the order observed.
type History struct {
	mu    sync.Mutex
	clock int64
	ops   []HistoryOp
}

// HistoryOp is one recorded operation. Return is Pending for an operation
// whose outcome is unknown (it may take effect at any later time).
type HistoryOp struct {
	Client int
	Input  any
	Output any
	Call   int64
	Return int64
}

// Pending is the Return of an operation with unknown outcome.
const Pending = int64(1) << 62

// OpRecord is an operation in flight.
type OpRecord struct {
	h    *History
	op   HistoryOp
	done bool
}

// Begin records the call of an operation.
func (h *History) Begin(client int, input any) *OpRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock++
	return &OpRecord{h: h, op: HistoryOp{Client: client, Input: input, Call: h.clock}}
}

// End records the operation's return with output.
func (r *OpRecord) End(output any) { r.finish(output, false) }

// Unknown records an operation whose effect is unknown (an ambiguous
// write): it may be linearized at any point after its call.
func (r *OpRecord) Unknown(output any) { r.finish(output, true) }

// Drop forgets an operation that certainly had no effect (a failed read).
func (r *OpRecord) Drop() { r.done = true }

func (r *OpRecord) finish(output any, unknown bool) {
	if r.done {
		return
	}
	r.done = true
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	r.h.clock++
	r.op.Output = output
	r.op.Return = r.h.clock
	if unknown {
		r.op.Return = Pending
	}
	r.h.ops = append(r.h.ops, r.op)
}

// Ops returns the recorded operations.
func (h *History) Ops() []HistoryOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HistoryOp(nil), h.ops...)
}
