package keystore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Audit checkpoints: the signed tree heads of each node's login audit log
// (package auth/audit), kept in the replicated store so that one node's
// disk cannot rewrite its audit history. The keystore treats a checkpoint
// as opaque bytes with a log id, a tree size and a time; it enforces only
// that a log's sizes never go back and that one size has one checkpoint.
// Verification (signatures, roots) is the audit package's.
//
//	ac/<log id><size BE8>   auditCheckpointRecord (JSON)
//	acl/<log id>            size of the log's latest checkpoint, BE8
//
// Op numbers 30 to 39 are reserved for the audit log.
const (
	OpPutAuditCheckpoint    Op = 30 // putAuditCheckpointPayload
	OpPruneAuditCheckpoints Op = 31 // pruneAuditCheckpointsPayload
)

const (
	pfxAuditCheckpoint     = "ac/"
	pfxAuditCheckpointLast = "acl/"
)

// MaxAuditCheckpointSize bounds one encoded checkpoint (an ML-DSA-65
// signature is 3,309 bytes; the whole checkpoint about 3.5 KB).
const MaxAuditCheckpointSize = 8 << 10

type auditCheckpointRecord struct {
	Time   time.Time `json:"time"`
	Signed []byte    `json:"signed"`
}

type putAuditCheckpointPayload struct {
	Log    ID        `json:"log"`
	Size   uint64    `json:"size"`
	Time   time.Time `json:"time"`
	Signed []byte    `json:"signed"`
}

type pruneAuditCheckpointsPayload struct {
	Log    ID        `json:"log"`
	Before time.Time `json:"before"`
}

func init() {
	opNames[OpPutAuditCheckpoint] = "put-audit-checkpoint"
	opNames[OpPruneAuditCheckpoints] = "prune-audit-checkpoints"
}

func auditCheckpointKey(log ID, size uint64) []byte {
	return key(pfxAuditCheckpoint, log[:], u64(size))
}

// PutAuditCheckpoint stores an audit log's signed checkpoint of size
// records, taken at t. A size below the log's latest is refused
// (ErrState), as is a different checkpoint for a size already stored
// (ErrExists); storing the same one again is a no-op.
func (s *Store) PutAuditCheckpoint(ctx context.Context, log [16]byte, size uint64, t time.Time, signed []byte) error {
	return s.propose(ctx, OpPutAuditCheckpoint, putAuditCheckpointPayload{Log: log, Size: size, Time: t.UTC(), Signed: signed}, nil)
}

// PruneAuditCheckpoints removes a log's checkpoints taken before before,
// except its latest, which alone pins every record before it.
func (s *Store) PruneAuditCheckpoints(ctx context.Context, log [16]byte, before time.Time) error {
	return s.propose(ctx, OpPruneAuditCheckpoints, pruneAuditCheckpointsPayload{Log: log, Before: before.UTC()}, nil)
}

// AuditCheckpoints returns a log's stored checkpoints, smallest size first.
func (s *Store) AuditCheckpoints(ctx context.Context, log [16]byte) ([][]byte, error) {
	var out [][]byte
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: key(pfxAuditCheckpoint, log[:]), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var r auditCheckpointRecord
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return fmt.Errorf("keystore: read audit checkpoint: %w", err)
			}
			out = append(out, r.Signed)
		}
		return nil
	})
	return out, err
}

func applyPutAuditCheckpoint(a *applyCtx, p putAuditCheckpointPayload) (any, error) {
	if len(p.Signed) == 0 || len(p.Signed) > MaxAuditCheckpointSize {
		return nil, reject(CodeInvalid, "audit checkpoint of %d bytes", len(p.Signed))
	}
	lastKey := key(pfxAuditCheckpointLast, p.Log[:])
	if v, ok := a.getRaw(lastKey); ok && len(v) == 8 && binary.BigEndian.Uint64(v) > p.Size {
		return nil, reject(CodeState, "audit checkpoint of size %d after size %d", p.Size, binary.BigEndian.Uint64(v))
	}
	k := auditCheckpointKey(p.Log, p.Size)
	var old auditCheckpointRecord
	if a.get(k, &old) {
		if bytes.Equal(old.Signed, p.Signed) {
			return nil, nil
		}
		return nil, reject(CodeExists, "another audit checkpoint of size %d is stored", p.Size)
	}
	a.put(k, auditCheckpointRecord{Time: p.Time, Signed: p.Signed})
	a.putRaw(lastKey, u64(p.Size))
	return nil, nil
}

func applyPruneAuditCheckpoints(a *applyCtx, p pruneAuditCheckpointsPayload) (any, error) {
	keys := a.keysWithPrefix(key(pfxAuditCheckpoint, p.Log[:]))
	for i, k := range keys {
		if i == len(keys)-1 {
			break // the latest stays
		}
		var r auditCheckpointRecord
		if a.get(k, &r) && r.Time.Before(p.Before) {
			a.del(k)
		}
	}
	return nil, nil
}

// getRaw reads the raw value at k, seeing the command's own writes.
func (a *applyCtx) getRaw(k []byte) ([]byte, bool) {
	if w, ok := a.staged(k); ok {
		return w.value, !w.del
	}
	item, err := a.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false
	}
	must(err, "get")
	v, err := item.ValueCopy(nil)
	must(err, "read")
	return v, true
}
