package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tresor-gw/tresor/internal/atomicfile"
)

// Recovery from a failed write.
//
// A write that fails (ENOSPC on a full disk, an I/O error) may leave part
// of a batch on disk: whole records, a record cut short, a new segment, a
// checkpoint cut short. None of those records was acknowledged: every
// Append waiting on the batch got an error and its request was refused.
// So the log goes back to the last write known durable (Log.good): it cuts
// the active segment back to that length, removes segments begun since,
// cuts a torn checkpoint off, and then reads the active segment back from
// disk and checks that it holds exactly the records written, ending at
// the frontier the log keeps in memory (same size, same root). The log
// then has no gap and no torn record: `tresor audit verify` passes, and
// the next record takes the next sequence number.
//
// Records are refused (ErrUnavailable) until that is done and the disk has
// room again: resumeHeadroom bytes can be written and synced. Attempts
// start Config.RetryInterval after the failure and back off to
// Config.MaxRetryInterval. When the files do not hold what was written
// (ErrCorrupt), retrying cannot help and the log stays down (Ready says
// so): a restart runs Open's full check.

// resumeHeadroom is the free space a failed log needs before it takes
// records again: 1 MiB, about 4,000 records, so that a disk with a few
// bytes free does not let through one batch and fail again at once.
const resumeHeadroom = 1 << 20

// probeFile is written and removed to see that there is room again.
const probeFile = ".space-probe"

func (l *Log) mark() mark {
	return mark{
		frontier: l.frontier.Clone(), segStart: l.segStart.Clone(),
		segFirst: l.segFirst, segSize: l.segSize, segDay: l.segDay,
	}
}

// resume tries to make a failed log take records again. Called by the
// writer with writeMu held.
func (l *Log) resume() error {
	l.failMu.Lock()
	failed, broken := l.failed, l.broken
	l.attempts++
	l.failMu.Unlock()
	if failed == nil || broken {
		return failed
	}
	if !l.rolledBack {
		if err := l.rollback(); err != nil {
			if errors.Is(err, ErrCorrupt) {
				l.failMu.Lock()
				l.broken = true
				l.failed = fmt.Errorf("%w: %w", ErrUnavailable, err)
				l.failMu.Unlock()
				l.logger.Error("audit: the log's files do not hold what was written; not retrying", "error", err)
				return err
			}
			l.logger.Debug("audit: rolling back the failed write failed, will retry", "error", err)
			return err
		}
		l.rolledBack = true
	}
	if err := l.probe(); err != nil {
		l.logger.Debug("audit: no room to write yet, will retry", "error", err)
		return err
	}
	l.rolledBack = false
	l.failMu.Lock()
	l.failed = nil
	since := l.failedAt
	l.failMu.Unlock()
	l.logger.Info("audit: writing again", "down_since", since, "records", l.frontier.Size)
	return nil
}

// rollback returns the files and the writer's state to l.good.
func (l *Log) rollback() error {
	g := l.good
	dir := l.cfg.Dir
	if l.seg != nil {
		l.seg.Close() // its write failed; a new descriptor starts clean
		l.seg = nil
	}
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	removed := false
	for _, sg := range segs {
		if sg.first > g.segFirst { // begun by the failed batch
			if err := os.Remove(sg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			removed = true
		}
	}
	if removed {
		if err := atomicfile.SyncDir(dir); err != nil {
			return err
		}
	}
	path := filepath.Join(dir, segmentName(g.segFirst))
	f, err := l.disk.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(g.segSize); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := verifyTail(path, g); err != nil {
		f.Close()
		return err
	}
	ck, last, err := l.rollbackCheckpoints(g)
	if err != nil {
		f.Close()
		return err
	}
	if l.ckFile != nil {
		l.ckFile.Close()
	}
	l.ckFile = ck
	l.seg, l.segFirst, l.segSize, l.segDay = f, g.segFirst, g.segSize, g.segDay
	l.frontier, l.segStart = g.frontier.Clone(), g.segStart.Clone()
	l.lastCk = last
	l.unsigned = int(l.frontier.Size - last.Size)
	if l.unsigned > 0 {
		l.firstUnsigned = l.now()
	}
	return nil
}

// verifyTail reads the segment at path and checks that it holds exactly
// the records from g.segFirst to g.frontier.Size, nothing after them, and
// that they hash to g.frontier.
func verifyTail(path string, g mark) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	name := filepath.Base(path)
	first, err := readSegmentHeader(f)
	if err != nil {
		return fmt.Errorf("segment %s: %w", name, err)
	}
	if first != g.segFirst {
		return fmt.Errorf("%w: segment %s starts at record %d, expected %d", ErrCorrupt, name, first, g.segFirst)
	}
	front := g.segStart.Clone()
	if front.Size != g.segFirst {
		return fmt.Errorf("%w: segment %s: frontier of %d records before record %d", ErrCorrupt, name, front.Size, g.segFirst)
	}
	fr := newFrameReader(f, int64(segmentHeaderSize), MaxRecordSize)
	for {
		p, err := fr.next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errTorn) || errors.Is(err, errBadCRC) {
			return fmt.Errorf("%w: segment %s at record %d: %v", ErrCorrupt, name, front.Size, err)
		}
		if err != nil {
			return err // ErrCorrupt for a bad length, else a read error
		}
		e, err := ParseEntry(p)
		if err != nil {
			return fmt.Errorf("segment %s at record %d: %w", name, front.Size, err)
		}
		if e.Seq != front.Size {
			return fmt.Errorf("%w: segment %s: record %d at position %d", ErrCorrupt, name, e.Seq, front.Size)
		}
		front.Append(LeafHash(p))
	}
	if fr.off != g.segSize || front.Size != g.frontier.Size || front.Root() != g.frontier.Root() {
		return fmt.Errorf("%w: segment %s holds %d records (%d bytes), not the %d written (%d bytes), or other ones",
			ErrCorrupt, name, front.Size, fr.off, g.frontier.Size, g.segSize)
	}
	return nil
}

// rollbackCheckpoints cuts a checkpoint torn by the failed write off the
// checkpoints file, checks that the last one left is signed by this log
// and covers no record beyond g, and reopens the file for appending. A
// checkpoint written whole by the failed attempt stays: it signs records
// that were durable before it.
func (l *Log) rollbackCheckpoints(g mark) (file, Checkpoint, error) {
	path := filepath.Join(l.cfg.Dir, checkpointsFile)
	cps, end, err := readCheckpointFrames(path)
	if err != nil && !errors.Is(err, errTorn) {
		return nil, Checkpoint{}, err
	}
	var last Checkpoint
	if n := len(cps); n > 0 {
		sc := cps[n-1]
		if err := l.signer.public.Verify(sc); err != nil {
			return nil, Checkpoint{}, fmt.Errorf("%w: last checkpoint: %v", ErrCorrupt, err)
		}
		if sc.Size > g.frontier.Size || sc.Size == g.frontier.Size && sc.Root != g.frontier.Root() {
			return nil, Checkpoint{}, fmt.Errorf("%w: last checkpoint (size %d) does not match the %d records written", ErrCorrupt, sc.Size, g.frontier.Size)
		}
		last = sc.Checkpoint
	}
	ck, err := l.disk.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	if err := ck.Truncate(end); err != nil {
		ck.Close()
		return nil, Checkpoint{}, err
	}
	if err := ck.Sync(); err != nil {
		ck.Close()
		return nil, Checkpoint{}, err
	}
	return ck, last, nil
}

// probe checks that resumeHeadroom bytes can be written and synced in the
// log's directory.
func (l *Log) probe() error {
	path := filepath.Join(l.cfg.Dir, probeFile)
	f, err := l.disk.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	buf := make([]byte, 64<<10)
	for n := 0; n < resumeHeadroom; n += len(buf) {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
