package keystore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// DedupWindow is how many log indexes a request id is remembered for. A
// proposer retries an ambiguous proposal within seconds; 65,536 indexes is
// hours of admin traffic and bounds the dedup table. It is part of apply's
// semantics (replicas must prune identically): change it only with a new
// schema version.
const DedupWindow = 1 << 16

// maxPrunePerBatch bounds the dedup records one batch deletes, so pruning
// never swells a transaction.
const maxPrunePerBatch = 1024

// Entry is one log entry for ApplyBatch: a command at its log index.
type Entry struct {
	Index   uint64
	Command Command
}

// FSM is the keystore's state machine over Badger. Apply and ApplyBatch are
// what a log (LocalLog today, Raft's FSM adapter later) calls; reads go to the
// same Badger directly. An FSM has exactly one driver: the log that numbers
// its entries.
type FSM struct {
	db      *badger.DB
	logger  *slog.Logger
	mu      sync.Mutex // one batch at a time
	applied atomic.Uint64
	// cache is told which tenants' keys or state a batch changed, after
	// commit, so the node drops them at once (the cache TTL only bounds
	// what a missed notification could leave).
	cache *keyCache
	// snapshotKey encrypts snapshots (snapshot.go).
	snapshotKey []byte
}

func newFSM(db *badger.DB, logger *slog.Logger, cache *keyCache, snapshotKey []byte) (*FSM, error) {
	f := &FSM{db: db, logger: logger, cache: cache, snapshotKey: snapshotKey}
	err := db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(keySchema)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			return txn.Set(keySchema, u64(schemaVersion))
		case err != nil:
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 || binary.BigEndian.Uint64(v) != schemaVersion {
				return fmt.Errorf("keystore: unsupported schema version %x", v)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("keystore: check schema: %w", err)
	}
	if err := f.loadApplied(); err != nil {
		return nil, err
	}
	return f, nil
}

// loadApplied reads the applied index from the store.
func (f *FSM) loadApplied() error {
	var applied uint64
	err := f.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyApplied)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("keystore: corrupt applied index %x", v)
			}
			applied = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("keystore: read applied index: %w", err)
	}
	f.applied.Store(applied)
	return nil
}

// AppliedIndex returns the index of the last applied log entry, as persisted
// with the data it produced.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Apply applies cmds, all at log index index, in one transaction. It is
// ApplyBatch for a log whose entries carry several commands.
func (f *FSM) Apply(index uint64, cmds ...Command) []Result {
	entries := make([]Entry, len(cmds))
	for i, c := range cmds {
		entries[i] = Entry{Index: index, Command: c}
	}
	return f.ApplyBatch(entries)
}

// ApplyBatch applies entries in one Badger transaction that also records the
// highest index, and returns one Result per entry. Indexes must not decrease
// within a batch. Entries at or below the already applied index are skipped
// (a log replayed over a store that holds it changes nothing); a command whose
// request id is in the dedup window returns its earlier Result unchanged.
//
// ApplyBatch panics if the store cannot be read or written: the replica must
// stop rather than diverge from the others.
func (f *FSM) ApplyBatch(entries []Entry) []Result {
	if len(entries) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()

	txn := f.db.NewTransaction(true)
	defer txn.Discard()
	start := f.applied.Load()
	last := start
	results := make([]Result, len(entries))
	var changed []ID
	// pos numbers the commands sharing one index. It must not depend on
	// how entries were grouped into batches, which differs between
	// replicas.
	var pos uint32
	for i, e := range entries {
		if e.Index < last && e.Index > start {
			panic(fmt.Sprintf("keystore: apply: index %d after %d in one batch", e.Index, last))
		}
		if e.Index <= start {
			results[i] = replayed(txn, e)
			continue
		}
		if e.Index == last {
			pos++
		} else {
			pos = 0
		}
		last = e.Index
		a := &applyCtx{txn: txn, index: e.Index}
		results[i] = a.apply(e.Command, pos)
		changed = append(changed, a.changed...)
	}
	if last == start {
		return results
	}
	must(txn.Set(keyApplied, u64(last)), "write applied index")
	pruneDedup(txn, last)
	if err := txn.Commit(); err != nil {
		panic(fmt.Sprintf("keystore: apply: commit at index %d: %v", last, err))
	}
	f.applied.Store(last)
	if len(changed) > 0 {
		f.cache.forgetTenants(changed)
	}
	return results
}

// replayed answers an entry at or below the applied index from the dedup
// table; without a record the entry is too old to answer.
func replayed(txn *badger.Txn, e Entry) Result {
	if r, ok := dedupResult(txn, e.Command.RequestID); ok {
		return r
	}
	return Result{Code: CodeState, Message: fmt.Sprintf("log index %d was applied before", e.Index)}
}

type dedupRecord struct {
	Index  uint64 `json:"i"`
	Result Result `json:"r"`
}

func dedupResult(txn *badger.Txn, req [16]byte) (Result, bool) {
	var d dedupRecord
	if !getJSON(txn, dedupKey(req), &d) {
		return Result{}, false
	}
	return d.Result, true
}

// pruneDedup forgets request ids applied more than DedupWindow indexes
// before last. It depends on last alone, so every replica prunes alike.
func pruneDedup(txn *badger.Txn, last uint64) {
	if last <= DedupWindow {
		return
	}
	cutoff := dedupQueueKey(last-DedupWindow, 0)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxDedupQueue)})
	var dels [][]byte
	for it.Rewind(); it.Valid() && len(dels) < 2*maxPrunePerBatch; it.Next() {
		item := it.Item()
		if bytes.Compare(item.Key(), cutoff) >= 0 {
			break
		}
		req, err := item.ValueCopy(nil)
		must(err, "read dedup queue")
		dels = append(dels, item.KeyCopy(nil), key(pfxDedup, req))
	}
	it.Close()
	for _, k := range dels {
		must(txn.Delete(k), "prune dedup")
	}
}

// handler applies one op's payload. It returns the op's outcome (encoded
// into the Result) or a rejection; any other error panics.
type handler func(a *applyCtx, payload []byte) (any, error)

var handlers map[Op]handler

func init() {
	handlers = map[Op]handler{
		OpBootstrap:         decode(applyBootstrap),
		OpCreateTenant:      decode(applyCreateTenant),
		OpSetTenantState:    decode(applySetTenantState),
		OpDeleteTenant:      decode(applyDeleteTenant),
		OpRotateKey:         decode(applyRotateKey),
		OpSetKeyState:       decode(applySetKeyState),
		OpCreateUser:        decode(applyCreateUser),
		OpDeleteUser:        decode(applyDeleteUser),
		OpSetUserRole:       decode(applySetUserRole),
		OpSetUserGrant:      decode(applySetUserGrant),
		OpCreateAccessKey:   decode(applyCreateAccessKey),
		OpSetAccessKeyState: decode(applySetAccessKeyState),
		OpDeleteAccessKey:   decode(applyDeleteAccessKey),
		OpCreateBucket:      decode(applyCreateBucket),
		OpDeleteBucket:      decode(applyDeleteBucket),
		OpPutUpload:         decode(applyPutUpload),
		OpCompleteUpload:    decode(applyCompleteUpload),
		OpPrepareUpload:     decode(applyPrepareUpload),
		OpAbortUpload:       decode(applyAbortUpload),
		OpPutManifest:       decode(applyPutManifest),
		OpDeleteManifest:    decode(applyDeleteManifest),

		// operators.go, allowlists.go
		OpCreateOperator:    decode(applyCreateOperator),
		OpCreateOperatorKey: decode(applyCreateOperatorKey),
		OpSetAllowlist:      decode(applySetAllowlist),

		// recovery.go
		OpCreateFirstAdmin:  decode(applyCreateFirstAdmin),
		OpRecoverTenant:     decode(applyRecoverTenant),
		OpRotateRecoveryKey: decode(applyRotateRecoveryKey),

		// audit.go
		OpPutAuditCheckpoint:    decode(applyPutAuditCheckpoint),
		OpPruneAuditCheckpoints: decode(applyPruneAuditCheckpoints),
	}
}

// decode adapts a typed handler: a payload that does not decode is the
// command's fault, so it is rejected (identically everywhere), not a panic.
func decode[P any](fn func(a *applyCtx, p P) (any, error)) handler {
	return func(a *applyCtx, payload []byte) (any, error) {
		var p P
		if err := json.Unmarshal(payload, &p); err != nil {
			return nil, reject(CodeInvalid, "malformed payload: %v", err)
		}
		return fn(a, p)
	}
}

// applyCtx is one command's view of the batch transaction. Writes are
// staged and reach the transaction only if the command succeeds, so a
// rejected command leaves nothing behind however far its handler got.
// Point reads (get, exists) see earlier commands of the batch and the
// command's own writes; prefix scans see only the former.
type applyCtx struct {
	txn     *badger.Txn
	index   uint64
	writes  []write
	changed []ID
}

type write struct {
	key, value []byte
	del        bool
}

func (a *applyCtx) apply(c Command, pos uint32) Result {
	h, ok := handlers[c.Op]
	if !ok {
		panic(fmt.Sprintf("keystore: apply: unknown op %d at index %d (is this binary older than the log?)", c.Op, a.index))
	}
	if c.RequestID == ([16]byte{}) {
		// A zero id would make unrelated commands replays of each other.
		return Result{Code: CodeInvalid, Message: "zero request id"}
	}
	if r, ok := dedupResult(a.txn, c.RequestID); ok {
		return r
	}
	var res Result
	out, err := h(a, c.Payload)
	var rj *rejection
	switch {
	case errors.As(err, &rj):
		res = Result{Code: rj.code, Message: rj.msg}
		a.changed = nil
	case err != nil:
		panic(fmt.Sprintf("keystore: apply %v at index %d: %v", c.Op, a.index, err))
	default:
		for _, w := range a.writes {
			if w.del {
				must(a.txn.Delete(w.key), "delete")
			} else {
				must(a.txn.Set(w.key, w.value), "set")
			}
		}
		res = Result{Code: CodeOK}
		if out != nil {
			res.Value = mustJSON(out)
		}
	}
	must(a.txn.Set(dedupKey(c.RequestID), mustJSON(dedupRecord{Index: a.index, Result: res})), "write dedup")
	must(a.txn.Set(dedupQueueKey(a.index, pos), c.RequestID[:]), "write dedup queue")
	return res
}

// staged returns the command's own latest write to k, if any, so a command
// that creates several records (bootstrap) sees the ones it created.
func (a *applyCtx) staged(k []byte) (write, bool) {
	for i := len(a.writes) - 1; i >= 0; i-- {
		if bytes.Equal(a.writes[i].key, k) {
			return a.writes[i], true
		}
	}
	return write{}, false
}

// get decodes the JSON record at k into v and reports whether it exists.
func (a *applyCtx) get(k []byte, v any) bool {
	if w, ok := a.staged(k); ok {
		if w.del {
			return false
		}
		must(json.Unmarshal(w.value, v), "decode staged record")
		return true
	}
	return getJSON(a.txn, k, v)
}

// exists reports whether k exists.
func (a *applyCtx) exists(k []byte) bool {
	if w, ok := a.staged(k); ok {
		return !w.del
	}
	_, err := a.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false
	}
	must(err, "get")
	return true
}

// anyWithPrefix reports whether some committed or batch-earlier key starts
// with prefix.
func (a *applyCtx) anyWithPrefix(prefix []byte) bool {
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	it.Rewind()
	return it.Valid()
}

// keysWithPrefix returns copies of all keys starting with prefix.
func (a *applyCtx) keysWithPrefix(prefix []byte) [][]byte {
	it := a.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	return keys
}

func (a *applyCtx) put(k []byte, v any) {
	a.writes = append(a.writes, write{key: k, value: mustJSON(v)})
}
func (a *applyCtx) putRaw(k, v []byte) { a.writes = append(a.writes, write{key: k, value: v}) }
func (a *applyCtx) del(k []byte)       { a.writes = append(a.writes, write{key: k, del: true}) }

// getJSON reads the JSON record at k into v. A record that does not decode
// means a corrupt store: panic.
func getJSON(txn *badger.Txn, k []byte, v any) bool {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false
	}
	must(err, "get")
	must(item.Value(func(b []byte) error { return json.Unmarshal(b, v) }), "decode record")
	return true
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	must(err, "encode record")
	return b
}

// must panics on err: inside apply, an error that is not a rejection means
// the store is broken and the replica must stop.
func must(err error, what string) {
	if err != nil {
		panic(fmt.Sprintf("keystore: apply: %s: %v", what, err))
	}
}
