package audit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// CheckpointStore keeps signed checkpoints off the node, so that the node's
// own disk cannot rewrite history: the lead backs it with the replicated
// keystore. The log ships each new checkpoint with PutCheckpoint (latest
// first; a later checkpoint commits to everything an earlier one did) and
// reads them back at Open to check its files.
//
// An implementation must keep what it accepted (append-only, replicated)
// and must refuse, for one log id, a checkpoint whose size is below the
// largest it holds. It may thin old checkpoints out, but must keep the
// latest of each log: that one alone pins every record before it.
type CheckpointStore interface {
	PutCheckpoint(ctx context.Context, c SignedCheckpoint) error
	// Checkpoints returns the checkpoints of logID, oldest first.
	Checkpoints(ctx context.Context, logID [16]byte) ([]SignedCheckpoint, error)
}

// MemoryCheckpoints is an in-memory CheckpointStore for tests and for a
// single node without replication (where it protects nothing).
type MemoryCheckpoints struct {
	mu   sync.Mutex
	logs map[[16]byte][]SignedCheckpoint
}

// PutCheckpoint implements CheckpointStore.
func (m *MemoryCheckpoints) PutCheckpoint(_ context.Context, c SignedCheckpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.logs == nil {
		m.logs = map[[16]byte][]SignedCheckpoint{}
	}
	l := m.logs[c.LogID]
	if n := len(l); n > 0 && l[n-1].Size > c.Size {
		return ErrInvalid
	}
	m.logs[c.LogID] = append(l, c)
	return nil
}

// Checkpoints implements CheckpointStore.
func (m *MemoryCheckpoints) Checkpoints(_ context.Context, logID [16]byte) ([]SignedCheckpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]SignedCheckpoint(nil), m.logs[logID]...), nil
}

// CheckpointPruner is implemented by a CheckpointStore that can forget
// old checkpoints; Log.Prune then drops the replicated checkpoints taken
// before the retention cut (the store keeps each log's latest).
type CheckpointPruner interface {
	PruneCheckpoints(ctx context.Context, logID [16]byte, before time.Time) error
}

// EncodedCheckpointStore keeps checkpoints as opaque bytes: keystore.Store
// satisfies it (ops 30 and 31 of the replicated state machine).
type EncodedCheckpointStore interface {
	PutAuditCheckpoint(ctx context.Context, logID [16]byte, size uint64, t time.Time, signed []byte) error
	AuditCheckpoints(ctx context.Context, logID [16]byte) ([][]byte, error)
	PruneAuditCheckpoints(ctx context.Context, logID [16]byte, before time.Time) error
}

// EncodedCheckpoints adapts an EncodedCheckpointStore (the replicated
// keystore) to CheckpointStore:
//
//	Checkpoints: audit.EncodedCheckpoints(store)
func EncodedCheckpoints(s EncodedCheckpointStore) CheckpointStore { return encodedStore{s} }

type encodedStore struct{ s EncodedCheckpointStore }

func (e encodedStore) PutCheckpoint(ctx context.Context, c SignedCheckpoint) error {
	b, err := c.MarshalBinary()
	if err != nil {
		return err
	}
	return e.s.PutAuditCheckpoint(ctx, c.LogID, c.Size, c.Time, b)
}

func (e encodedStore) Checkpoints(ctx context.Context, logID [16]byte) ([]SignedCheckpoint, error) {
	raw, err := e.s.AuditCheckpoints(ctx, logID)
	if err != nil {
		return nil, err
	}
	out := make([]SignedCheckpoint, 0, len(raw))
	for i, b := range raw {
		var c SignedCheckpoint
		if err := c.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("replicated checkpoint %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (e encodedStore) PruneCheckpoints(ctx context.Context, logID [16]byte, before time.Time) error {
	return e.s.PruneAuditCheckpoints(ctx, logID, before)
}
