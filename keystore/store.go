package keystore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Config configures a Store. DefaultConfig fills the defaults; Validate
// explains what is wrong.
type Config struct {
	// DataDir is the data directory. Badger lives in <DataDir>/keystore and,
	// unless RootKeyFile or RootKey say otherwise, the root key in
	// <DataDir>/root.key, created on first start.
	DataDir string
	// RootKeyFile is the root key's path. Empty means <DataDir>/root.key,
	// created if missing; a path given here must already exist.
	RootKeyFile string
	// RootKey, if set, is the root key itself (unsealed from shares, or in
	// tests) and no file is read. The store keeps only keys derived from
	// it; wiping the slice after Open is the caller's choice.
	RootKey []byte
	// Logger receives the keystore's and Badger's messages. Nil discards.
	Logger *slog.Logger
	// KeyCacheTTL is how long an unsealed tenant key version is kept in
	// memory. A disabled or destroyed key version stops decrypting on a node
	// within replication lag plus this TTL (DESIGN.md section 4). The node
	// that applies the change drops its cache at once; the TTL is the bound
	// for anything that misses that.
	KeyCacheTTL time.Duration
	// SyncWrites makes every applied batch durable before it is
	// acknowledged. Keep it on without Raft; under Raft the log is durable.
	SyncWrites bool
	// EncryptionKeyRotation is how often Badger draws a new data key under
	// its master key.
	EncryptionKeyRotation time.Duration
	// NewLog builds the log commands go through. Nil means NewLocalLog. The
	// store closes the log on Close if it implements io.Closer.
	NewLog func(*FSM) (Log, error)
	// Now and Rand are the proposer's clock and randomness; nil means the
	// system's. Apply never uses them. Tests set them.
	Now  func() time.Time
	Rand io.Reader
}

// DefaultKeyCacheTTL is short enough that a shred reaches every node within
// a minute, long enough that the hot path rarely unseals.
const DefaultKeyCacheTTL = 30 * time.Second

// DefaultConfig returns a single-node configuration for dataDir.
func DefaultConfig(dataDir string) Config {
	return Config{
		DataDir:               dataDir,
		KeyCacheTTL:           DefaultKeyCacheTTL,
		SyncWrites:            true,
		EncryptionKeyRotation: 7 * 24 * time.Hour,
	}
}

// Validate explains what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("keystore: DataDir is empty"))
	}
	if c.RootKey != nil && len(c.RootKey) != RootKeySize {
		errs = append(errs, fmt.Errorf("keystore: RootKey has %d bytes, want %d", len(c.RootKey), RootKeySize))
	}
	if c.KeyCacheTTL < 0 || c.KeyCacheTTL > 10*time.Minute {
		errs = append(errs, fmt.Errorf("keystore: KeyCacheTTL %v is outside 0..10m (it bounds crypto-shredding)", c.KeyCacheTTL))
	}
	if c.EncryptionKeyRotation <= 0 {
		errs = append(errs, errors.New("keystore: EncryptionKeyRotation must be positive"))
	}
	return errors.Join(errs...)
}

// Store is the keystore: the proposer side builds commands and submits them
// to the Log; reads go straight to the local Badger.
type Store struct {
	cfg    Config
	logger *slog.Logger
	db     *badger.DB
	fsm    *FSM
	log    Log
	sealer *sealer
	keys   *keyCache
	now    func() time.Time
	rand   io.Reader

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating on first start) the keystore in cfg.DataDir.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("keystore: data dir: %w", err)
	}
	root := cfg.RootKey
	if root == nil {
		path, create := cfg.RootKeyFile, false
		if path == "" {
			path, create = filepath.Join(cfg.DataDir, RootKeyFileName), true
		}
		var err error
		if root, err = LoadRootKey(path, create); err != nil {
			return nil, err
		}
	}
	keys, err := deriveKeys(root)
	if root != nil && cfg.RootKey == nil {
		clear(root)
	}
	if err != nil {
		return nil, err
	}
	cfg.RootKey = nil // the store keeps derived keys only
	sl, err := newSealer(keys.storage)
	clear(keys.storage)
	if err != nil {
		return nil, err
	}

	s := &Store{
		cfg:    cfg,
		logger: logger,
		sealer: sl,
		keys:   newKeyCache(cfg.KeyCacheTTL),
		now:    cfg.Now,
		rand:   cfg.Rand,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}

	dir := filepath.Join(cfg.DataDir, "keystore")
	opts := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{logger}).
		WithSyncWrites(cfg.SyncWrites).
		WithEncryptionKey(keys.badger).
		WithEncryptionKeyRotationDuration(cfg.EncryptionKeyRotation).
		// Encrypted tables need an index cache, else Badger panics in
		// the background when it evicts table indexes.
		WithIndexCacheSize(16 << 20).
		WithBlockCacheSize(32 << 20).
		// Badger caps a transaction at 15% of the memtable size; 64 MiB
		// memtables allow 9.6 MB, more than LocalLog's largest batch
		// (about 2 * MaxCommandSize) so apply never meets ErrTxnTooBig.
		// Records are small otherwise: two memtables and 64 MiB value log
		// files keep memory and sparse files modest.
		WithMemTableSize(64 << 20).
		WithNumMemtables(2).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		// Apply is the only writer and is serialized by FSM.mu.
		WithDetectConflicts(false).
		WithMetricsEnabled(false)
	// keys.badger is not wiped: Badger keeps the slice and encrypts every
	// data key it rotates in under it for as long as the DB is open.
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("keystore: open badger in %s: %w", dir, err)
	}
	s.db = db
	fsm, err := newFSM(db, logger, s.keys, keys.snapshot)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.fsm = fsm
	newLog := cfg.NewLog
	if newLog == nil {
		newLog = func(f *FSM) (Log, error) { return NewLocalLog(f), nil }
	}
	if s.log, err = newLog(fsm); err != nil {
		db.Close()
		return nil, fmt.Errorf("keystore: start log: %w", err)
	}
	logger.Info("keystore open", "dir", dir, "applied_index", fsm.AppliedIndex())
	return s, nil
}

// FSM returns the state machine, for the replication layer's snapshot and
// restore and for tests.
func (s *Store) FSM() *FSM { return s.fsm }

// AppliedIndex returns the local replica's applied log index.
func (s *Store) AppliedIndex() uint64 { return s.fsm.AppliedIndex() }

// Close stops the log and closes Badger. Keys in memory are dropped.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if c, ok := s.log.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
		s.keys.forgetAll()
		errs = append(errs, s.db.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// propose submits op with payload p and decodes the Result's value into out.
func (s *Store) propose(ctx context.Context, op Op, p any, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var req [16]byte
	if _, err := io.ReadFull(s.rand, req[:]); err != nil {
		return fmt.Errorf("keystore: request id: %w", err)
	}
	cmd, err := newCommand(op, req, p)
	if err != nil {
		return err
	}
	res, index, err := s.log.Propose(ctx, cmd)
	if err != nil {
		return fmt.Errorf("keystore: %v: %w", op, err)
	}
	if p, ok := ctx.Value(recordIndexKey{}).(*uint64); ok && p != nil {
		*p = index
	}
	if err := res.Err(); err != nil {
		return err
	}
	if out != nil && len(res.Value) > 0 {
		if err := json.Unmarshal(res.Value, out); err != nil {
			return fmt.Errorf("keystore: %v: decode result: %w", op, err)
		}
	}
	return nil
}

// view runs fn in a Badger read transaction after the log's barrier for the
// context's read level.
func (s *Store) view(ctx context.Context, fn func(txn *badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.log.Barrier(ctx, readLevel(ctx)); err != nil {
		return fmt.Errorf("keystore: read barrier: %w", err)
	}
	if err := s.db.View(fn); err != nil {
		if errors.Is(err, badger.ErrDBClosed) {
			return ErrClosed
		}
		return err
	}
	return nil
}

// read decodes the JSON record at k into v, reporting whether it exists.
func read(txn *badger.Txn, k []byte, v any) (bool, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("keystore: read: %w", err)
	}
	if err := item.Value(func(b []byte) error { return json.Unmarshal(b, v) }); err != nil {
		return false, fmt.Errorf("keystore: decode record: %w", err)
	}
	return true, nil
}

func jsonDecode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("keystore: decode record: %w", err)
	}
	return nil
}

// scan calls fn for each key with prefix, in key order, until fn returns
// false. Values are only valid during the call.
func scan(txn *badger.Txn, prefix []byte, fn func(k, v []byte) (bool, error)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		var more bool
		err := item.Value(func(v []byte) error {
			var err error
			more, err = fn(item.Key(), v)
			return err
		})
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	return nil
}

// badgerLogger routes Badger's log lines to slog. Badger's INFO lines
// (compactions, value log GC) are debug noise for tresor's operators.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
