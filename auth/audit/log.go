package audit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tresor-gw/tresor/internal/atomicfile"
)

// Config configures a Log.
type Config struct {
	// Dir holds the log's files (FORMAT.md); created 0700 if missing.
	// The gateway uses <data dir>/audit.
	Dir string
	// NodeID names the node in records and checkpoints.
	NodeID string
	// Logger receives operational messages (never record contents).
	Logger *slog.Logger
	// Checkpoints keeps signed checkpoints off the node (replicated). Nil
	// runs without: the log is then only as trustworthy as this disk.
	Checkpoints CheckpointStore
	// TenantKeys seals tenant-identifying fields. Nil seals every record
	// under the log's system key.
	TenantKeys TenantKeys
	// SystemKey seals the fields of records without a tenant (and of
	// records whose tenant key cannot be fetched). Nil: a random key kept
	// in Dir/system.key (0600), created on first start.
	SystemKey []byte
	// CheckpointEvery signs a checkpoint after this many new records...
	CheckpointEvery int
	// ...or this long after the first record not yet signed, whichever
	// comes first.
	CheckpointInterval time.Duration
	// QueueSize bounds the records waiting to be written; Append blocks
	// while it is full.
	QueueSize int
	// SegmentBytes starts a new segment file once the current one is
	// larger; a new segment also starts with every UTC day, so retention
	// can remove whole days.
	SegmentBytes int64
	// ShipInterval is the least time between two checkpoints shipped to
	// Checkpoints (the latest is shipped; it covers the ones skipped, and
	// Close ships the final one). The store keeps what it is sent, so this
	// sets its growth: about 3.5 KB per shipment. Zero ships every one.
	ShipInterval time.Duration
	// ShipTimeout bounds one PutCheckpoint.
	ShipTimeout time.Duration
	// Clock returns the time; nil means time.Now.
	Clock func() time.Time
	// RetryInterval is how long the log waits, after a write failed (a
	// full disk, an I/O error), before it tries to write again; the wait
	// doubles after every attempt that fails, up to MaxRetryInterval.
	// Zero means 100 ms and 5 s.
	RetryInterval, MaxRetryInterval time.Duration
	// Aggregation bounds the records of refusals that cost their sender
	// nothing (Record.Aggregate); zero fields take
	// DefaultAggregationConfig's values.
	Aggregation AggregationConfig

	disk disk // nil: the real one (osDisk); tests set a FaultyDisk
}

// DefaultConfig returns a Config for dir with a checkpoint every 1,000
// records or 30 seconds, a queue of 4,096 records, 16 MiB segments, and a
// checkpoint shipped at most every 10 minutes (about 500 KB a day per node
// in the replicated store before pruning).
func DefaultConfig(dir, nodeID string) Config {
	return Config{
		Dir: dir, NodeID: nodeID, Logger: slog.Default(),
		CheckpointEvery: 1000, CheckpointInterval: 30 * time.Second,
		QueueSize: 4096, SegmentBytes: 16 << 20,
		ShipInterval: 10 * time.Minute, ShipTimeout: 10 * time.Second,
	}
}

// Validate explains what is wrong with c.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: config: Dir is empty", ErrInvalid)
	case len(c.NodeID) > maxStringField:
		return fmt.Errorf("%w: config: NodeID too long", ErrInvalid)
	case c.CheckpointEvery < 1:
		return fmt.Errorf("%w: config: CheckpointEvery must be at least 1", ErrInvalid)
	case c.CheckpointInterval <= 0:
		return fmt.Errorf("%w: config: CheckpointInterval must be positive", ErrInvalid)
	case c.QueueSize < 1:
		return fmt.Errorf("%w: config: QueueSize must be at least 1", ErrInvalid)
	case c.SegmentBytes < 1:
		return fmt.Errorf("%w: config: SegmentBytes must be positive", ErrInvalid)
	case c.ShipInterval < 0:
		return fmt.Errorf("%w: config: ShipInterval is negative", ErrInvalid)
	case c.SystemKey != nil && len(c.SystemKey) != 32:
		return fmt.Errorf("%w: config: SystemKey must be 32 bytes", ErrInvalid)
	case c.RetryInterval < 0 || c.MaxRetryInterval < 0:
		return fmt.Errorf("%w: config: RetryInterval and MaxRetryInterval must not be negative", ErrInvalid)
	}
	return c.Aggregation.validate()
}

// Log is a node's append-only audit log. Append is safe for concurrent use.
type Log struct {
	cfg    Config
	logger *slog.Logger
	signer *Signer
	system *recordKeys
	now    func() time.Time
	agg    *aggregator

	queue     chan *pending
	stop      chan struct{}
	done      chan struct{}
	ship      chan SignedCheckpoint // latest checkpoint not yet shipped, 1 slot
	shipDone  chan struct{}
	closeOnce sync.Once
	// shipCtx is every shipment's context; Close cancels it finalShipGrace
	// after it began.
	shipCtx     context.Context
	cancelShips context.CancelFunc

	// failed is set while the log cannot write: Append refuses (fail
	// closed) and the writer tries to write again (resume). broken: the
	// files do not hold what was written, and trying again cannot help.
	failMu   sync.Mutex
	failed   error
	failedAt time.Time
	broken   bool
	attempts int
	wake     chan struct{} // fail tells the writer to schedule a retry
	stats    stats

	// Owned by the writer goroutine, and by Prune under writeMu.
	writeMu       sync.Mutex
	disk          disk
	frontier      Frontier
	seg           file
	segStart      Frontier // frontier before the first record of seg
	segFirst      uint64
	segSize       int64
	segDay        int64
	ckFile        file
	lastCk        Checkpoint
	unsigned      int
	firstUnsigned time.Time
	// good is the state of the files after the last write known durable:
	// a failed write is rolled back to it.
	good       mark
	rolledBack bool // the failed write is rolled back; space is missing
}

// mark is a position in the log the files can be rolled back to.
type mark struct {
	frontier, segStart Frontier
	segFirst           uint64
	segSize, segDay    int64
}

// stats are the counters behind Collectors.
type stats struct {
	failures, refused, aggregated atomic.Int64
}

type pending struct {
	entry Entry
	done  chan error
}

// Open opens or creates the log in cfg.Dir. It reads the whole log once to
// rebuild the Merkle frontier, checks it against its own checkpoints and
// against cfg.Checkpoints, and refuses (ErrTampered) a log that does not
// match; a record cut short by a crash after the last checkpoint is cut
// off. Time and memory: one pass over the files, O(log n) hashes kept.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShipTimeout <= 0 {
		cfg.ShipTimeout = 10 * time.Second
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 100 * time.Millisecond
	}
	if cfg.MaxRetryInterval == 0 {
		cfg.MaxRetryInterval = 5 * time.Second
	}
	cfg.MaxRetryInterval = max(cfg.MaxRetryInterval, cfg.RetryInterval)
	if cfg.disk == nil {
		cfg.disk = osDisk{}
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	signer, err := loadOrCreateSigner(filepath.Join(cfg.Dir, signingKeyFile), cfg.NodeID)
	if err != nil {
		return nil, fmt.Errorf("audit: signing keys: %w", err)
	}
	pub, err := json.Marshal(signer.public)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(cfg.Dir, pubKeysFile), pub, 0o644); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	sysKey := cfg.SystemKey
	if sysKey == nil {
		if sysKey, err = loadOrCreateKey(filepath.Join(cfg.Dir, systemKeyFile)); err != nil {
			return nil, fmt.Errorf("audit: system key: %w", err)
		}
	}
	system, err := deriveKeys(sysKey)
	if err != nil {
		return nil, err
	}
	var replicated []SignedCheckpoint
	if cfg.Checkpoints != nil {
		if replicated, err = cfg.Checkpoints.Checkpoints(ctx, signer.logID); err != nil {
			return nil, fmt.Errorf("audit: read replicated checkpoints: %w", err)
		}
	}
	st, err := scan(ctx, cfg.Dir, signer.public, VerifyOptions{Replicated: replicated, Live: true}, nil)
	if err != nil {
		return nil, err
	}
	if p, bad := st.report.First(); bad {
		return nil, fmt.Errorf("%w: %s (%d problems; run tresor audit verify)", ErrTampered, p, len(st.report.Problems))
	}
	l := &Log{
		cfg: cfg, logger: cfg.Logger, signer: signer, system: system, now: now,
		queue: make(chan *pending, cfg.QueueSize), stop: make(chan struct{}), done: make(chan struct{}),
		ship: make(chan SignedCheckpoint, 1), shipDone: make(chan struct{}),
		wake: make(chan struct{}, 1), disk: cfg.disk, frontier: st.frontier,
		agg: newAggregator(cfg.Aggregation.withDefaults()),
	}
	l.shipCtx, l.cancelShips = context.WithCancel(context.Background())
	if n := len(st.local); n > 0 {
		l.lastCk = st.local[n-1].Checkpoint
	}
	l.unsigned = int(l.frontier.Size - l.lastCk.Size)
	if l.unsigned > 0 {
		l.firstUnsigned = now()
	}
	if err := l.openTail(st); err != nil {
		return nil, err
	}
	if l.ckFile, err = l.disk.OpenFile(filepath.Join(cfg.Dir, checkpointsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		l.seg.Close()
		return nil, fmt.Errorf("audit: %w", err)
	}
	if st.checkpointsTorn {
		l.logger.Warn("audit: cutting off a checkpoint torn by a crash")
		if err := l.ckFile.Truncate(st.checkpointsEnd); err != nil {
			l.seg.Close()
			l.ckFile.Close()
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	l.good = l.mark()
	go l.writer()
	go l.shipper()
	if n := len(st.local); n > 0 && (len(replicated) == 0 || replicated[len(replicated)-1].Size < st.local[n-1].Size) {
		l.queueShip(st.local[n-1]) // shipping was behind when the node stopped
	}
	return l, nil
}

// openTail opens the last segment for appending (cutting a torn record
// off) or starts the first one.
func (l *Log) openTail(st *scanState) error {
	if st.tail.path == "" {
		return l.roll(l.now())
	}
	f, err := l.disk.OpenFile(st.tail.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if st.torn {
		l.logger.Warn("audit: cutting off a record torn by a crash", "segment", filepath.Base(st.tail.path), "offset", st.tailEnd)
		if err := f.Truncate(st.tailEnd); err != nil {
			f.Close()
			return fmt.Errorf("audit: %w", err)
		}
	}
	if _, err := f.Seek(st.tailEnd, 0); err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	l.seg, l.segFirst, l.segSize = f, st.tail.first, st.tailEnd
	l.segStart = st.tailStart
	// The segment's day is that of its newest record: a record of a
	// later day starts a new segment.
	l.segDay = day(st.lastTime)
	return nil
}

func day(t time.Time) int64 { return t.UTC().Unix() / 86400 }

func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		return b, atomicfile.WriteFile(path, b, 0o600)
	}
	if err != nil {
		return nil, err
	}
	if err := checkPrivate(path); err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("%w: %s is not 32 bytes", ErrCorrupt, path)
	}
	return b, nil
}

// PublicKeys returns the log's verification keys.
func (l *Log) PublicKeys() PublicKeys { return l.signer.public }

// LogID returns the log's id.
func (l *Log) LogID() [16]byte { return l.signer.logID }

// Append writes r and returns once it is on disk (written and fsynced, in
// a batch with whatever else is queued: group commit). r.Time defaults to
// now and r.NodeID to the log's node id; r.Seq is assigned here.
//
// Backpressure: while QueueSize records wait, Append blocks until there is
// room or ctx ends. Append never drops a record silently: it returns an
// error when the record is not known to be durable (ctx ended, the log is
// closed, or it cannot write: ErrUnavailable, at once, until the log has
// recovered, see Ready), and the caller must then fail its request
// closed. A ctx that ends after the record was queued may still see it
// written.
func (l *Log) Append(ctx context.Context, r Record) error {
	if err := l.failure(); err != nil {
		l.stats.refused.Add(1)
		return err
	}
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	if r.NodeID == "" {
		r.NodeID = l.cfg.NodeID
	}
	if err := validate(r); err != nil {
		return err
	}
	if r.Aggregate && l.agg.count(r) {
		l.stats.aggregated.Add(1)
		return nil
	}
	e, err := l.seal(ctx, r)
	if err != nil {
		return err
	}
	p := &pending{entry: e, done: make(chan error, 1)}
	select {
	case <-l.stop:
		return ErrClosed
	default:
	}
	select {
	case l.queue <- p:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.stop:
		return ErrClosed
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		// The writer stopped; it may have taken p before it did.
		select {
		case err := <-p.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// seal encrypts r's personal fields under its tenant's active key, or the
// system key for records without a tenant. A tenant whose key cannot be
// fetched (suspended, shredded, keystore unavailable) still gets its
// record, sealed under the system key: an audit record is never lost to a
// key problem.
func (l *Log) seal(ctx context.Context, r Record) (Entry, error) {
	if r.Tenant != ([16]byte{}) && l.cfg.TenantKeys != nil {
		id, secret, err := l.cfg.TenantKeys.ActiveKey(ctx, r.Tenant)
		if err == nil {
			k, err := deriveKeys(secret)
			if err != nil {
				return Entry{}, err
			}
			return seal(r, id, k)
		}
		if ctx.Err() != nil {
			return Entry{}, ctx.Err()
		}
		l.logger.Warn("audit: tenant key unavailable, sealing under the system key", "error", err)
	}
	return seal(r, [16]byte{}, l.system)
}

func (l *Log) failure() error {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	return l.failed
}

// fail makes the log refuse records from now on, until the writer has
// rolled the files back to the last durable write and can write again
// (resume).
func (l *Log) fail(err error) error {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	if l.failed == nil {
		l.logger.Error("audit: cannot write, refusing records until it can again", "error", err)
		l.failed = fmt.Errorf("%w: %v", ErrUnavailable, err)
		l.failedAt, l.attempts = l.now(), 0
		l.stats.failures.Add(1)
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return l.failed
}

// Ready reports whether the log takes records: nil, or why not. It is a
// readiness check (gateway.Check): while the log cannot write, every
// request that needs a record is refused, so a load balancer should send
// clients elsewhere.
func (l *Log) Ready(context.Context) error {
	select {
	case <-l.stop:
		return ErrClosed
	default:
	}
	l.failMu.Lock()
	defer l.failMu.Unlock()
	switch {
	case l.failed == nil:
		return nil
	case l.broken:
		return fmt.Errorf("%w (since %s); its files do not hold what was written, so it will not retry: run tresor audit verify, then restart", l.failed, l.failedAt.UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("%w (since %s, %d attempts to write again failed; retrying)", l.failed, l.failedAt.UTC().Format(time.RFC3339), l.attempts)
}

// maxBatch bounds the records written between two fsyncs.
const maxBatch = 1024

// writer owns the files: it writes queued records in batches, one fsync per
// batch, and signs checkpoints.
func (l *Log) writer() {
	defer close(l.done)
	tick := time.NewTicker(min(l.cfg.CheckpointInterval, time.Second))
	defer tick.Stop()
	batch := make([]*pending, 0, maxBatch)
	// After a failed write: retry fires the next attempt to write again,
	// delay doubles after each failed one.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	delay := l.cfg.RetryInterval
	for {
		select {
		case p := <-l.queue:
			batch = append(batch[:0], p)
		fill:
			for len(batch) < maxBatch {
				select {
				case p := <-l.queue:
					batch = append(batch, p)
				default:
					break fill
				}
			}
			l.writeMu.Lock()
			if l.writeBatch(batch) != nil {
				l.stats.refused.Add(int64(len(batch)))
			}
			if l.unsigned >= l.cfg.CheckpointEvery {
				l.checkpoint()
			}
			l.writeMu.Unlock()
		case <-tick.C:
			l.writeAggregated(false)
			l.writeMu.Lock()
			if l.unsigned > 0 && l.now().Sub(l.firstUnsigned) >= l.cfg.CheckpointInterval {
				l.checkpoint()
			}
			l.writeMu.Unlock()
		case <-l.wake:
			retry.Reset(delay)
		case <-retry.C:
			l.writeMu.Lock()
			err := l.resume()
			l.writeMu.Unlock()
			switch {
			case err == nil:
				delay = l.cfg.RetryInterval
			case !errors.Is(err, ErrCorrupt):
				delay = min(2*delay, l.cfg.MaxRetryInterval)
				retry.Reset(delay)
			}
		case <-l.stop:
			l.writeMu.Lock()
			// Leave the files as the last durable write left them, and
			// take the records still queued if the disk has room again.
			l.resume()
			for {
				select {
				case p := <-l.queue:
					if l.writeBatch([]*pending{p}) != nil {
						l.stats.refused.Add(1)
					}
					continue
				default:
				}
				break
			}
			l.writeMu.Unlock()
			l.writeAggregated(true)
			l.writeMu.Lock()
			if l.unsigned > 0 {
				l.checkpoint()
			}
			l.writeMu.Unlock()
			return
		}
	}
}

// writeBatch appends the batch and fsyncs once; every waiter learns the
// outcome, and so does the caller.
func (l *Log) writeBatch(batch []*pending) error {
	err := l.failure()
	if err == nil {
		err = l.writeRecords(batch)
		if err != nil {
			err = l.fail(err)
		}
	}
	for _, p := range batch {
		p.done <- err
	}
	return err
}

// writeAggregated writes the counts of the aggregation intervals that
// have ended (all of them if all). A count that cannot be written now
// waits for the next try: the log recovers, the counts stay. Called by the
// writer without writeMu (sealing may ask the keystore).
func (l *Log) writeAggregated(all bool) {
	rs := l.agg.take(l.now(), all)
	if len(rs) == 0 {
		return
	}
	if l.failure() != nil {
		l.agg.giveBack(rs)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.ShipTimeout)
	defer cancel()
	batch := make([]*pending, 0, len(rs))
	for _, r := range rs {
		r.NodeID = l.cfg.NodeID
		e, err := l.seal(ctx, r)
		if err != nil {
			l.logger.Error("audit: cannot seal aggregated records, will retry", "error", err)
			l.agg.giveBack(rs)
			return
		}
		batch = append(batch, &pending{entry: e, done: make(chan error, 1)})
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.writeBatch(batch) != nil {
		l.agg.giveBack(rs)
		return
	}
	if l.unsigned >= l.cfg.CheckpointEvery {
		l.checkpoint()
	}
}

func (l *Log) writeRecords(batch []*pending) error {
	var buf []byte
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := l.seg.Write(buf); err != nil {
			return err
		}
		l.segSize += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	for _, p := range batch {
		now := p.entry.Time
		if l.segSize > int64(segmentHeaderSize) && (l.segSize+int64(len(buf)) >= l.cfg.SegmentBytes || day(now) != l.segDay) {
			if err := flush(); err != nil {
				return err
			}
			if err := l.roll(now); err != nil {
				return err
			}
		}
		p.entry.Seq = l.frontier.Size
		rec := p.entry.marshal()
		if len(rec) > MaxRecordSize {
			return fmt.Errorf("%w: record of %d bytes", ErrInvalid, len(rec))
		}
		buf = appendFrame(buf, rec)
		l.frontier.Append(LeafHash(rec))
		if l.unsigned == 0 {
			l.firstUnsigned = l.now()
		}
		l.unsigned++
	}
	if err := flush(); err != nil {
		return err
	}
	if err := l.seg.Sync(); err != nil {
		return err
	}
	l.good = l.mark()
	return nil
}

// roll closes the current segment and starts a new one whose first record
// is the next to be written.
func (l *Log) roll(t time.Time) error {
	if l.seg != nil {
		if err := l.seg.Sync(); err != nil {
			return err
		}
		if err := l.seg.Close(); err != nil {
			return err
		}
		l.seg = nil
	}
	// The segment appears with its header already in it (write, sync,
	// rename), so a reader never meets a segment without one.
	first := l.frontier.Size
	path := filepath.Join(l.cfg.Dir, segmentName(first))
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%w: segment %s exists", ErrCorrupt, filepath.Base(path))
	}
	if err := l.disk.WriteFile(path, segmentHeader(first), 0o600); err != nil {
		return err
	}
	f, err := l.disk.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	l.seg, l.segFirst, l.segSize, l.segDay = f, first, int64(segmentHeaderSize), day(t)
	l.segStart = l.frontier.Clone()
	return nil
}

// checkpoint signs the current tree head, appends it to the checkpoints
// file and hands it to the shipper. Called with writeMu held.
func (l *Log) checkpoint() {
	if l.failure() != nil {
		return
	}
	c := Checkpoint{LogID: l.signer.logID, NodeID: l.signer.public.NodeID, Size: l.frontier.Size, Root: l.frontier.Root(), Time: l.now().UTC()}
	if c.Time.Before(l.lastCk.Time) {
		c.Time = l.lastCk.Time // checkpoint times never go back
	}
	sc, err := l.signer.Sign(c)
	if err != nil {
		l.fail(err)
		return
	}
	b, _ := sc.MarshalBinary()
	if _, err := l.ckFile.Write(appendFrame(nil, b)); err != nil {
		l.fail(err)
		return
	}
	if err := l.ckFile.Sync(); err != nil {
		l.fail(err)
		return
	}
	l.lastCk, l.unsigned = c, 0
	l.queueShip(sc)
}

// queueShip replaces any checkpoint waiting to be shipped by sc.
func (l *Log) queueShip(sc SignedCheckpoint) {
	if l.cfg.Checkpoints == nil {
		return
	}
	for {
		select {
		case l.ship <- sc:
			return
		default:
		}
		select {
		case <-l.ship:
		default:
		}
	}
}

// shipper sends checkpoints to the CheckpointStore, the latest at most
// every ShipInterval. A failed shipment is retried (with the latest
// checkpoint, which covers it) every second until Close.
func (l *Log) shipper() {
	defer close(l.shipDone)
	if l.cfg.Checkpoints == nil {
		<-l.done
		return
	}
	var pending *SignedCheckpoint
	var last time.Time
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	send := func(force bool) {
		if pending == nil || !force && time.Since(last) < l.cfg.ShipInterval {
			return
		}
		ctx, cancel := context.WithTimeout(l.shipCtx, l.cfg.ShipTimeout)
		defer cancel()
		if err := l.cfg.Checkpoints.PutCheckpoint(ctx, *pending); err != nil {
			l.logger.Warn("audit: shipping checkpoint failed, will retry", "size", pending.Size, "error", err)
			return
		}
		pending, last = nil, time.Now()
	}
	for {
		select {
		case sc := <-l.ship:
			pending = &sc
			send(false)
		case <-tick.C:
			send(false)
		case <-l.done:
			select {
			case sc := <-l.ship:
				pending = &sc
			default:
			}
			send(true)
			return
		}
	}
}

// finalShipGrace bounds how long Close waits for checkpoint shipments: a
// cluster that lost its quorum cannot take them and the node must still
// stop. The final checkpoint stays in the local checkpoint file, and Open
// ships it after the next start.
const finalShipGrace = 2 * time.Second

// Close writes what is queued, signs a final checkpoint, ships it (waiting
// at most finalShipGrace for the store) and closes the files. Appends after
// Close return ErrClosed.
func (l *Log) Close() error {
	l.closeOnce.Do(func() { close(l.stop) })
	giveUp := time.AfterFunc(finalShipGrace, l.cancelShips)
	<-l.done
	<-l.shipDone
	giveUp.Stop()
	l.cancelShips()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	var errs []error
	if l.seg != nil {
		errs = append(errs, l.seg.Close())
		l.seg = nil
	}
	if l.ckFile != nil {
		errs = append(errs, l.ckFile.Close())
		l.ckFile = nil
	}
	return errors.Join(errs...)
}

// Size returns the number of records written so far (including removed
// ones).
func (l *Log) Size() uint64 {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return l.frontier.Size
}
