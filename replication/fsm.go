package replication

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the state machine a Node replicates. The keystore's FSM sits behind
// it; tests use small in-memory ones. ApplyBatch runs on every replica in log
// order and must be deterministic; Snapshot and Restore move the whole state.
type FSM interface {
	// ApplyBatch applies committed entries, in log order with increasing
	// indexes, and returns one response per entry. The response reaches the
	// proposer (Node.Propose), also across a forward from a follower.
	ApplyBatch(entries []Entry) [][]byte
	// Snapshot captures the state cheaply; the returned Snapshot's WriteTo
	// does the copying, while later batches are applied.
	Snapshot() (Snapshot, error)
	// Restore replaces the whole state with one written by Snapshot.WriteTo.
	// It must reject a snapshot it cannot authenticate, leaving the state as
	// it was.
	Restore(r io.Reader) error
}

// Entry is one committed command for FSM.ApplyBatch.
type Entry struct {
	Index uint64
	Data  []byte
}

// Snapshot is a point-in-time copy of an FSM's state (keystore.Snapshot is
// one).
type Snapshot interface {
	io.WriterTo
	Release()
}

// Log entry kinds: the first byte of every raft command this package writes.
// They are part of the log format; never renumber.
const (
	kindCommand byte = 1 // the rest is the FSM's command
	kindMeta    byte = 2 // the rest is a JSON metaChange (zones)
)

// metaChange is a replicated change to node metadata. Zones live in the
// replicated log (not in raft's configuration, which has no room for labels)
// so every node knows every node's zone and a snapshot carries them.
type metaChange struct {
	ID     string `json:"id"`
	Zone   string `json:"zone,omitempty"`
	Delete bool   `json:"delete,omitempty"`
}

// Snapshot framing around the FSM's own snapshot:
//
//	magic "TRSRREPL" | version (1 byte, = 1) | uvarint len(meta) | meta JSON | FSM snapshot
//
// meta holds the cluster id and the zone map. The cluster id is checked on
// restore so a snapshot of another cluster is refused before the FSM sees it
// (the keystore additionally binds the id into its authenticated snapshot).
const (
	snapshotMagic   = "TRSRREPL"
	snapshotVersion = 1
	maxSnapshotMeta = 1 << 20
)

type snapshotMeta struct {
	Cluster string            `json:"cluster"`
	Applied uint64            `json:"applied"`
	Zones   map[string]string `json:"zones"`
}

// ErrOtherCluster is returned when a snapshot, a peer or a join request
// belongs to another cluster.
var ErrOtherCluster = errors.New("replication: belongs to another cluster")

// fsmAdapter is the raft.BatchingFSM over an FSM: it strips the entry kind,
// keeps the zone map, tracks the applied index and wakes waiters.
type fsmAdapter struct {
	fsm     FSM
	cluster string

	mu      sync.Mutex
	zones   map[string]string
	applied uint64
	advance chan struct{} // closed and replaced whenever applied grows
}

func newFSMAdapter(fsm FSM, cluster string) *fsmAdapter {
	return &fsmAdapter{fsm: fsm, cluster: cluster, zones: map[string]string{}, advance: make(chan struct{})}
}

// commandResponse is what Apply returns for a command entry, so Propose can
// tell it from raft's own nil responses.
type commandResponse struct{ data []byte }

func (a *fsmAdapter) Apply(l *raft.Log) any { return a.ApplyBatch([]*raft.Log{l})[0] }

func (a *fsmAdapter) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	var entries []Entry
	var pos []int
	var metas []metaChange
	for i, l := range logs {
		if l.Type != raft.LogCommand || len(l.Data) == 0 {
			continue
		}
		switch l.Data[0] {
		case kindCommand:
			entries = append(entries, Entry{Index: l.Index, Data: l.Data[1:]})
			pos = append(pos, i)
		case kindMeta:
			var m metaChange
			if err := json.Unmarshal(l.Data[1:], &m); err != nil {
				panic(fmt.Sprintf("replication: undecodable metadata entry at index %d: %v", l.Index, err))
			}
			metas = append(metas, m)
		default:
			// A binary older than the log: stop rather than diverge.
			panic(fmt.Sprintf("replication: unknown entry kind %d at index %d", l.Data[0], l.Index))
		}
	}
	if len(entries) > 0 {
		res := a.fsm.ApplyBatch(entries)
		if len(res) != len(entries) {
			panic(fmt.Sprintf("replication: FSM returned %d responses for %d entries", len(res), len(entries)))
		}
		for j, i := range pos {
			out[i] = commandResponse{res[j]}
		}
	}
	a.mu.Lock()
	for _, m := range metas {
		if m.Delete {
			delete(a.zones, m.ID)
		} else {
			a.zones[m.ID] = m.Zone
		}
	}
	if n := len(logs); n > 0 && logs[n-1].Index > a.applied {
		a.applied = logs[n-1].Index
		close(a.advance)
		a.advance = make(chan struct{})
	}
	a.mu.Unlock()
	return out
}

// appliedIndex returns the last index applied and a channel closed when it
// grows.
func (a *fsmAdapter) appliedIndex() (uint64, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied, a.advance
}

func (a *fsmAdapter) zoneMap() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]string, len(a.zones))
	for k, v := range a.zones {
		m[k] = v
	}
	return m
}

func (a *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
	s, err := a.fsm.Snapshot()
	if err != nil {
		return nil, err
	}
	applied, _ := a.appliedIndex()
	return &adapterSnapshot{inner: s, meta: snapshotMeta{Cluster: a.cluster, Applied: applied, Zones: a.zoneMap()}}, nil
}

func (a *fsmAdapter) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	head := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, head); err != nil {
		return fmt.Errorf("replication: snapshot header: %w", err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic || head[len(snapshotMagic)] != snapshotVersion {
		return errors.New("replication: snapshot: unknown magic or version")
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > maxSnapshotMeta {
		return fmt.Errorf("replication: snapshot metadata length: %w", err)
	}
	mb := make([]byte, n)
	if _, err := io.ReadFull(br, mb); err != nil {
		return fmt.Errorf("replication: snapshot metadata: %w", err)
	}
	var meta snapshotMeta
	if err := json.Unmarshal(mb, &meta); err != nil {
		return fmt.Errorf("replication: snapshot metadata: %w", err)
	}
	if meta.Cluster != a.cluster {
		return fmt.Errorf("%w: snapshot of cluster %q, this is %q", ErrOtherCluster, meta.Cluster, a.cluster)
	}
	if err := a.fsm.Restore(br); err != nil {
		return err
	}
	a.mu.Lock()
	a.zones = meta.Zones
	if a.zones == nil {
		a.zones = map[string]string{}
	}
	a.applied = meta.Applied
	close(a.advance)
	a.advance = make(chan struct{})
	a.mu.Unlock()
	return nil
}

type adapterSnapshot struct {
	inner Snapshot
	meta  snapshotMeta
}

func (s *adapterSnapshot) Persist(sink raft.SnapshotSink) error {
	mb, err := json.Marshal(s.meta)
	if err == nil {
		bw := bufio.NewWriterSize(sink, 64<<10)
		bw.WriteString(snapshotMagic)
		bw.WriteByte(snapshotVersion)
		bw.Write(binary.AppendUvarint(nil, uint64(len(mb))))
		bw.Write(mb)
		if _, err = s.inner.WriteTo(bw); err == nil {
			err = bw.Flush()
		}
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("replication: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *adapterSnapshot) Release() { s.inner.Release() }
