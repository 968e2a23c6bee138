package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Errors callers decide on.
var (
	// ErrNoLeader: no leader is known right now (an election is running or
	// the node is cut off). Nothing was proposed; retry.
	ErrNoLeader = errors.New("replication: no leader")
	// ErrNotLeader: the operation needs the leader and the node asked is
	// not (any more). Nothing was proposed; retry, or ask the leader.
	ErrNotLeader = errors.New("replication: not the leader")
	// ErrStale: the node has not heard from a leader within the allowed
	// staleness, so its local state may be too old to serve.
	ErrStale = errors.New("replication: local state is stale")
	// ErrBootstrapped: the node already holds raft state; a cluster is
	// bootstrapped exactly once.
	ErrBootstrapped = errors.New("replication: already bootstrapped")
	// ErrTrust: a joining node did not prove it holds the cluster's root of
	// trust.
	ErrTrust = errors.New("replication: root of trust not proven")
	// ErrClosed: the node was closed.
	ErrClosed = errors.New("replication: node closed")
)

// Node is one member of a tresor cluster: a raft instance replicating an
// FSM, its zone label, and the calls that reach the leader from any node
// (write forwarding and read index).
type Node struct {
	cfg     Config
	logger  *slog.Logger
	raft    *raft.Raft
	fsm     *fsmAdapter
	fwd     forwarder
	layer   *tlsLayer // nil in the in-memory cluster
	closers []func() error

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
	// closeCtx ends when the node closes: the control calls it serves
	// run under it.
	closeCtx    context.Context
	cancelClose context.CancelFunc
}

// forwarder reaches another node: the TLS control client, or the in-memory
// cluster's direct calls in tests.
type forwarder interface {
	forward(ctx context.Context, to raft.ServerAddress, data []byte) ([]byte, uint64, error)
	readIndex(ctx context.Context, to raft.ServerAddress) (uint64, error)
}

// Server describes one member of the cluster.
type Server struct {
	ID      string
	Address string
	Zone    string
	Voter   bool
	Leader  bool
}

// stores is what raft persists to.
type stores struct {
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
}

func raftConfig(cfg Config, logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	// The leader gathers concurrent proposals into one append (group
	// commit); the keystore FSM applies them in one Badger transaction.
	rc.BatchApplyCh = true
	rc.Logger = logger
	return rc
}

func newNode(cfg Config, fsm FSM, st stores, trans raft.Transport, fwd forwarder, hl hclog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node", cfg.ID, "zone", cfg.Zone)
	if hl == nil {
		hl = hclogFor(cfg.Logger, cfg.ID)
	}
	n := &Node{cfg: cfg, logger: logger, fsm: newFSMAdapter(fsm, cfg.ClusterID), fwd: fwd, closed: make(chan struct{})}
	n.closeCtx, n.cancelClose = context.WithCancel(context.Background())
	r, err := raft.NewRaft(raftConfig(cfg, hl), n.fsm, st.logs, st.stable, st.snaps, trans)
	if err != nil {
		n.cancelClose()
		return nil, fmt.Errorf("replication: start raft: %w", err)
	}
	n.raft = r
	return n, nil
}

// hclogFor routes raft's hclog lines to slog (warnings and errors only:
// raft's info lines are per-election chatter).
func hclogFor(l *slog.Logger, id string) hclog.Logger {
	if l == nil {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Warn,
		Output: newSlogWriter(l.With("component", "raft", "node", id), time.Now),
	})
}

// slogWriter turns raft's hclog lines into slog records. raft repeats
// itself while a peer is down (a failed heartbeat or append every few
// hundred milliseconds, for as long as the peer stays away: a sealed or
// stopped node): a line seen within repeatWindow is counted instead of
// logged, and the count goes with the next one logged.
type slogWriter struct {
	l   *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	seen map[string]*repeat
}

type repeat struct {
	last       time.Time // last logged
	suppressed int
}

// repeatWindow is how long a repeated raft line stays quiet.
const repeatWindow = 30 * time.Second

// maxRepeatKeys bounds the lines remembered; past it the oldest go.
const maxRepeatKeys = 256

func newSlogWriter(l *slog.Logger, now func() time.Time) *slogWriter {
	return &slogWriter{l: l, now: now, seen: map[string]*repeat{}}
}

func (w *slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	// hclog writes "<time> [LEVEL] raft: message"; slog has its own time
	// and level.
	if i := strings.Index(line, " [ERROR] "); i >= 0 {
		level, line = slog.LevelError, strings.TrimSpace(line[i+len(" [ERROR] "):])
	} else if i := strings.Index(line, " [WARN] "); i >= 0 {
		line = strings.TrimSpace(line[i+len(" [WARN] "):])
	}
	now := w.now()
	w.mu.Lock()
	r := w.seen[line]
	if r != nil && now.Sub(r.last) < repeatWindow {
		r.suppressed++
		w.mu.Unlock()
		return len(p), nil
	}
	suppressed := 0
	if r != nil {
		suppressed = r.suppressed
	}
	if len(w.seen) >= maxRepeatKeys {
		for k, v := range w.seen {
			if now.Sub(v.last) >= repeatWindow {
				delete(w.seen, k)
			}
		}
		if len(w.seen) >= maxRepeatKeys {
			clear(w.seen)
		}
	}
	w.seen[line] = &repeat{last: now}
	w.mu.Unlock()
	if suppressed > 0 {
		w.l.Log(context.Background(), level, line, "repeated", suppressed)
	} else {
		w.l.Log(context.Background(), level, line)
	}
	return len(p), nil
}

// ID returns the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// Zone returns the node's zone label.
func (n *Node) Zone() string { return n.cfg.Zone }

// ClusterID returns the cluster's id.
func (n *Node) ClusterID() string { return n.cfg.ClusterID }

// Raft returns the underlying raft instance, for observation and tests.
func (n *Node) Raft() *raft.Raft { return n.raft }

// IsLeader reports whether the node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's id and address as this node knows
// them; both are empty when no leader is known.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// AppliedIndex returns the index of the last entry the FSM applied here.
func (n *Node) AppliedIndex() uint64 {
	i, _ := n.fsm.appliedIndex()
	return i
}

// LastContact returns when the node last heard from a leader; the zero
// time if never. On the leader it is the current time.
func (n *Node) LastContact() time.Time {
	if n.IsLeader() {
		return time.Now()
	}
	return n.raft.LastContact()
}

// CheckStaleness returns ErrStale unless the node is the leader or has
// heard from one within max. Local reads use it to stop serving from a
// replica cut off from the cluster (DESIGN.md section 4).
func (n *Node) CheckStaleness(max time.Duration) error {
	if n.IsLeader() {
		return nil
	}
	last := n.raft.LastContact()
	if last.IsZero() {
		return fmt.Errorf("%w: never heard from a leader", ErrStale)
	}
	if age := time.Since(last); age > max {
		return fmt.Errorf("%w: last heard from the leader %v ago (max %v)", ErrStale, age.Round(time.Millisecond), max)
	}
	return nil
}

// Propose replicates data as one FSM command and returns the FSM's
// response and the entry's index once the leader has applied it. A
// follower forwards the proposal to the leader and returns with the
// leader's answer: its own replica applies the entry once it learns of the
// commit, with the leader's next append (within twice
// Config.CommitTimeout when no other write follows), so a read on this
// node that must see the write waits for it with WaitApplied(index).
//
// ErrNoLeader and ErrNotLeader mean nothing was proposed. Any other error
// leaves the outcome unknown: the command may still be applied. Callers
// make commands idempotent (the keystore's request ids) and retry.
func (n *Node) Propose(ctx context.Context, data []byte) ([]byte, uint64, error) {
	b := make([]byte, 0, 1+len(data))
	return n.proposeRaw(ctx, append(append(b, kindCommand), data...))
}

// proposeRaw proposes an entry that starts with its kind byte, forwarding
// it to the leader from a follower.
func (n *Node) proposeRaw(ctx context.Context, data []byte) ([]byte, uint64, error) {
	if n.IsLeader() {
		return n.applyLocal(ctx, data)
	}
	_, addr := n.Leader()
	if addr == "" {
		return nil, 0, ErrNoLeader
	}
	if n.fwd == nil {
		return nil, 0, ErrNotLeader
	}
	return n.fwd.forward(ctx, raft.ServerAddress(addr), data)
}

// applyLocal applies the raw entry data (kind byte first) through raft on
// the leader.
func (n *Node) applyLocal(ctx context.Context, data []byte) ([]byte, uint64, error) {
	if len(data) == 0 || (data[0] != kindCommand && data[0] != kindMeta) {
		return nil, 0, errors.New("replication: entry of unknown kind")
	}
	if n.raft.State() != raft.Leader {
		return nil, 0, ErrNotLeader
	}
	f := n.raft.Apply(data, enqueueTimeout(ctx))
	if err := wait(ctx, f); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return nil, 0, ErrNotLeader
		}
		return nil, 0, err
	}
	if data[0] == kindMeta {
		return nil, f.Index(), nil
	}
	cr, ok := f.Response().(commandResponse)
	if !ok {
		return nil, 0, fmt.Errorf("replication: unexpected response %T", f.Response())
	}
	return cr.data, f.Index(), nil
}

// ReadIndex returns an index such that a read served after WaitApplied of
// it observes every write acknowledged before ReadIndex was called. The
// leader confirms it still leads (VerifyLeader) and applies a barrier;
// a follower asks the leader. hashicorp/raft has no ReadIndex RPC, so the
// barrier is a log entry: linearizable reads cost one replication round.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if n.IsLeader() {
		return n.readIndexLocal(ctx)
	}
	_, addr := n.Leader()
	if addr == "" {
		return 0, ErrNoLeader
	}
	if n.fwd == nil {
		return 0, ErrNotLeader
	}
	return n.fwd.readIndex(ctx, raft.ServerAddress(addr))
}

func (n *Node) readIndexLocal(ctx context.Context) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	if err := wait(ctx, n.raft.VerifyLeader()); err != nil {
		return 0, leaderErr(err)
	}
	if err := wait(ctx, n.raft.Barrier(enqueueTimeout(ctx))); err != nil {
		return 0, leaderErr(err)
	}
	return n.AppliedIndex(), nil
}

func leaderErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return err
}

// LinearizableBarrier returns once the local FSM holds every write
// acknowledged before the call: ReadIndex, then WaitApplied.
func (n *Node) LinearizableBarrier(ctx context.Context) error {
	idx, err := n.ReadIndex(ctx)
	if err != nil {
		return err
	}
	return n.WaitApplied(ctx, idx)
}

// WaitApplied returns once the local FSM has applied index (read your
// writes on any node), or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		applied, advance := n.fsm.appliedIndex()
		if applied >= index {
			return nil
		}
		select {
		case <-advance:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.closed:
			return ErrClosed
		}
	}
}

// Snapshot makes raft snapshot the FSM now and truncate its log.
func (n *Node) Snapshot(ctx context.Context) error {
	err := wait(ctx, n.raft.Snapshot())
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return err
}

// enqueueTimeout is how long raft may wait to accept a future: until ctx's
// deadline, else 10 s.
func enqueueTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if t := time.Until(d); t > 0 {
			return t
		}
		return time.Millisecond
	}
	return 10 * time.Second
}

// wait waits for f or ctx. A future abandoned on ctx still completes: raft
// resolves every future, at the latest on shutdown.
func wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close shuts raft down and releases the transport and stores. A leader
// should TransferLeadership first (a planned restart).
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.closed)
		n.cancelClose()
		errs := []error{n.raft.Shutdown().Error()}
		for i := len(n.closers) - 1; i >= 0; i-- {
			errs = append(errs, n.closers[i]())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
