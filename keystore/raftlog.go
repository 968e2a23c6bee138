package keystore

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tresor-gw/tresor/replication"
)

// The keystore on Raft. The replication package runs a raft node over
// RaftFSM, which applies committed commands to the FSM in batches (one
// Badger transaction per raft batch, the applied index in it), and the
// Store proposes through RaftLog:
//
//	Store.propose -> RaftLog.Propose -> Replicator.Propose (forwarded to the
//	leader from a follower) -> raft log -> RaftFSM.ApplyBatch on every node
//
// A proposal whose outcome is unknown (leadership lost mid-apply, a
// forwarded call cut off) is retried with the very same encoded command:
// its request id makes FSM.ApplyBatch answer the retry from the dedup table
// if the first attempt was applied after all, so the write happens once.
//
// Reads go to the local Badger after RaftLog.Barrier for the context's
// level:
//
//	ReadLocal        served while the node is the leader or heard from one
//	                 within MaxStaleness (raft's LastContact); else ErrStale
//	ReadAfterIndex   waits until the local replica applied the index given
//	                 by ReadAfter (read your writes, on any node)
//	ReadLinearizable asks the leader for a read index (VerifyLeader, then a
//	                 raft Barrier) and waits until the local replica
//	                 applied it (admin reads)

// Replicator is what the keystore needs from its replication node;
// *replication.Node implements it.
type Replicator interface {
	// Propose replicates data and returns the FSM's response and the
	// entry's index, forwarding to the leader from a follower.
	Propose(ctx context.Context, data []byte) ([]byte, uint64, error)
	// ReadIndex returns a linearizable read index.
	ReadIndex(ctx context.Context) (uint64, error)
	// WaitApplied waits until the local FSM applied index.
	WaitApplied(ctx context.Context, index uint64) error
	// CheckStaleness fails unless the node leads or heard from the
	// leader within max.
	CheckStaleness(max time.Duration) error
}

// ErrStale: a local read was refused because the node has been cut off
// from the leader for longer than MaxStaleness.
var ErrStale = replication.ErrStale

// DefaultMaxStaleness bounds how long a node cut off from the leader keeps
// serving local reads: a few election timeouts, so a leader change does not
// interrupt the hot path, while a node left in a minority stops serving
// (and a destroyed key stops decrypting) soon after (DESIGN.md section 4).
const DefaultMaxStaleness = 5 * time.Second

// RaftConfig configures the keystore on Raft.
type RaftConfig struct {
	// ClusterID binds snapshots to the cluster (replication.ClusterID).
	ClusterID string
	// MaxStaleness bounds ReadLocal on a follower; zero means
	// DefaultMaxStaleness.
	MaxStaleness time.Duration
	// Start starts the replication node over the keystore's state machine,
	// typically
	//
	//	func(fsm replication.FSM) (keystore.Replicator, error) {
	//		return replication.Open(ctx, nodeConfig, fsm)
	//	}
	//
	// If the returned Replicator is an io.Closer, the log closes it.
	Start func(fsm replication.FSM) (Replicator, error)
}

// NewLog returns a Config.NewLog that runs the store on Raft.
func (rc RaftConfig) NewLog() func(*FSM) (Log, error) {
	return func(f *FSM) (Log, error) {
		if rc.ClusterID == "" || rc.Start == nil {
			return nil, fmt.Errorf("%w: RaftConfig needs ClusterID and Start", ErrInvalid)
		}
		r, err := rc.Start(NewRaftFSM(f, rc.ClusterID))
		if err != nil {
			return nil, err
		}
		return NewRaftLog(r, rc.MaxStaleness), nil
	}
}

// RaftFSM adapts the FSM to replication.FSM: a raft batch is applied in one
// Badger transaction, results travel back JSON encoded, and snapshots are
// bound to the cluster.
type RaftFSM struct {
	fsm     *FSM
	cluster string
}

// NewRaftFSM returns the replication state machine over f for cluster.
func NewRaftFSM(f *FSM, clusterID string) *RaftFSM { return &RaftFSM{fsm: f, cluster: clusterID} }

// ApplyBatch applies entries in as few transactions as Badger's
// transaction limit allows: a raft batch (up to MaxAppendEntries entries)
// is split where its commands pass MaxCommandSize, the bound LocalLog
// keeps too, so a batch of large manifests never meets ErrTxnTooBig. Each
// entry has its own index, so the split does not change what is applied.
// An entry that does not decode as a command panics: the log is newer than
// this binary or corrupt, and the replica must stop rather than diverge.
func (r *RaftFSM) ApplyBatch(entries []replication.Entry) [][]byte {
	out := make([][]byte, 0, len(entries))
	var batch []Entry
	size := 0
	flush := func() {
		for _, res := range r.fsm.ApplyBatch(batch) {
			out = append(out, mustJSON(res))
		}
		batch, size = batch[:0], 0
	}
	for _, e := range entries {
		var c Command
		if err := c.UnmarshalBinary(e.Data); err != nil {
			panic(fmt.Sprintf("keystore: raft entry %d: %v", e.Index, err))
		}
		if len(batch) > 0 && size+len(c.Payload) > MaxCommandSize {
			flush()
		}
		batch = append(batch, Entry{Index: e.Index, Command: c})
		size += len(c.Payload)
	}
	if len(batch) > 0 {
		flush()
	}
	return out
}

// Snapshot captures the store for raft (encrypted, bound to the cluster).
func (r *RaftFSM) Snapshot() (replication.Snapshot, error) {
	return clusterSnapshot{r.fsm.Snapshot(), r.cluster}, nil
}

// Restore replaces the store with a snapshot of this cluster.
func (r *RaftFSM) Restore(rd io.Reader) error { return r.fsm.RestoreCluster(rd, r.cluster) }

type clusterSnapshot struct {
	*Snapshot
	cluster string
}

func (s clusterSnapshot) WriteTo(w io.Writer) (int64, error) { return s.WriteToCluster(w, s.cluster) }

// RaftLog is the Log of a replicated keystore.
type RaftLog struct {
	r            Replicator
	maxStaleness time.Duration
}

// NewRaftLog returns the Log proposing through r. maxStaleness bounds
// ReadLocal (zero: DefaultMaxStaleness).
func NewRaftLog(r Replicator, maxStaleness time.Duration) *RaftLog {
	if maxStaleness <= 0 {
		maxStaleness = DefaultMaxStaleness
	}
	return &RaftLog{r: r, maxStaleness: maxStaleness}
}

// Replicator returns the node the log proposes through.
func (l *RaftLog) Replicator() Replicator { return l.r }

// proposeBackoff is the pause between retries while an election runs.
const proposeBackoff = 50 * time.Millisecond

// Propose replicates cmd, retrying an unknown outcome with the same
// command until it is acknowledged or ctx ends.
func (l *RaftLog) Propose(ctx context.Context, cmd Command) (Result, uint64, error) {
	b, err := cmd.MarshalBinary()
	if err != nil {
		return Result{}, 0, err
	}
	for {
		resp, idx, err := l.r.Propose(ctx, b)
		if err == nil {
			var res Result
			if err := json.Unmarshal(resp, &res); err != nil {
				return Result{}, 0, fmt.Errorf("keystore: decode result: %w", err)
			}
			return res, idx, nil
		}
		if errors.Is(err, replication.ErrClosed) {
			return Result{}, 0, fmt.Errorf("%w: %w", ErrClosed, err)
		}
		if werr := wait(ctx, proposeBackoff); werr != nil {
			return Result{}, 0, fmt.Errorf("%w (last error: %v)", werr, err)
		}
	}
}

// Barrier waits until a read at level may be served locally.
func (l *RaftLog) Barrier(ctx context.Context, level ReadLevel) error {
	switch level {
	case ReadLocal:
		return l.checkFresh(ctx)
	case ReadAfterIndex:
		return l.r.WaitApplied(ctx, readAfter(ctx))
	case ReadLinearizable:
		for {
			idx, err := l.r.ReadIndex(ctx)
			if err == nil {
				return l.r.WaitApplied(ctx, idx)
			}
			if errors.Is(err, replication.ErrClosed) {
				return fmt.Errorf("%w: %w", ErrClosed, err)
			}
			if werr := wait(ctx, proposeBackoff); werr != nil {
				return fmt.Errorf("%w (last error: %v)", werr, err)
			}
		}
	}
	return fmt.Errorf("%w: read level %d", ErrInvalid, level)
}

// staleGrace is how long a local read that finds the node stale waits for
// the leader before it is refused. A node that was just out of touch for a
// moment (a paused process, a link that healed) hears from the leader within
// a heartbeat; waiting that long turns its first requests into answers
// instead of errors. Nothing stale is ever served: the wait ends in a fresh
// check.
const staleGrace = 500 * time.Millisecond

// checkFresh is the ReadLocal barrier: the node leads or heard from the
// leader within maxStaleness, at once or within staleGrace.
func (l *RaftLog) checkFresh(ctx context.Context) error {
	err := l.r.CheckStaleness(l.maxStaleness)
	if !errors.Is(err, ErrStale) {
		return err
	}
	deadline := time.Now().Add(staleGrace)
	for time.Now().Before(deadline) {
		if werr := wait(ctx, 20*time.Millisecond); werr != nil {
			return err
		}
		if err = l.r.CheckStaleness(l.maxStaleness); !errors.Is(err, ErrStale) {
			return err
		}
	}
	return err
}

// Close closes the replication node if the log owns it.
func (l *RaftLog) Close() error {
	if c, ok := l.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// labelTrustKey derives the key a node proves the cluster's root of trust
// with when it joins (replication.Config.TrustKey). Only holders of the
// root key (or of enough shares to rebuild it) can compute it. The label
// keeps its first name ("join-key"): it is a derivation constant, and
// changing it would change every cluster's key.
const labelTrustKey = "tresor/replication/join-key/1"

// DeriveTrustKey derives replication.Config.TrustKey from the root key.
func DeriveTrustKey(rootKey []byte) ([]byte, error) {
	if len(rootKey) != RootKeySize {
		return nil, fmt.Errorf("%w: root key has %d bytes, want %d", ErrRootKey, len(rootKey), RootKeySize)
	}
	return hkdf.Key(sha256.New, rootKey, nil, labelTrustKey, 32)
}
