package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tresor-gw/tresor/internal/atomicfile"
)

// Prune removes the records older than before, whole segments at a time
// (a segment goes when its newest record is older than before; the segment
// being written is never removed), and returns how many records went.
//
// What is kept so that the remaining checkpoints still verify: the Merkle
// frontier of the removed records (file "base": the removed count and the
// root of each maximal perfect subtree over them, at most 64 hashes). Any
// root of a larger tree follows from the frontier and the remaining
// records, so every checkpoint at or above the base size verifies as
// before. Checkpoints below it are dropped from the local checkpoints file
// (they cannot be checked against records any more); a checkpoint of the
// current size is signed first, so at least one covers the cut. The base
// file itself is not signed and need not be: a wrong frontier fails the
// next checkpoint's root.
//
// Order on disk: base (atomic rename), then checkpoints (atomic rename),
// then the segments; a crash in between leaves segments below the base,
// which are ignored and removed by the next Prune.
func (l *Log) Prune(ctx context.Context, before time.Time) (uint64, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.failure(); err != nil {
		return 0, err
	}
	if l.ckFile == nil {
		return 0, ErrClosed
	}
	if l.unsigned > 0 {
		l.checkpoint()
		if err := l.failure(); err != nil {
			return 0, err
		}
	}
	dir := l.cfg.Dir
	base, err := readBase(dir)
	if err != nil {
		return 0, err
	}
	segs, err := listSegments(dir)
	if err != nil {
		return 0, err
	}
	next := base.Clone()
	var remove []string
	for i, sg := range segs {
		if sg.first >= l.segFirst {
			break // the active segment
		}
		if i+1 < len(segs) && segs[i+1].first <= base.Size {
			remove = append(remove, sg.path) // left over below the base
			continue
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		f := next.Clone()
		newest, err := hashSegment(sg, &f)
		if err != nil {
			return 0, err
		}
		if !newest.Before(before) {
			break
		}
		if i+1 >= len(segs) || segs[i+1].first != f.Size {
			return 0, fmt.Errorf("%w: segment %s does not end where the next begins", ErrCorrupt, filepath.Base(sg.path))
		}
		next = f
		remove = append(remove, sg.path)
	}
	if len(remove) == 0 {
		return 0, nil
	}
	removed := next.Size - base.Size
	if next.Size > base.Size {
		if err := l.disk.WriteFile(filepath.Join(dir, baseFile), marshalBase(next), 0o644); err != nil {
			return 0, l.fail(err)
		}
		if err := l.rewriteCheckpoints(next.Size); err != nil {
			return 0, l.fail(err)
		}
	}
	for _, p := range remove {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, err
		}
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return removed, err
	}
	// The replicated store forgets checkpoints taken before the cut; it
	// keeps the log's latest, which covers every remaining record.
	if pr, ok := l.cfg.Checkpoints.(CheckpointPruner); ok && removed > 0 {
		if err := pr.PruneCheckpoints(ctx, l.signer.logID, before); err != nil {
			return removed, fmt.Errorf("audit: prune replicated checkpoints: %w", err)
		}
	}
	return removed, nil
}

// hashSegment appends the leaf hashes of sg's records to f and returns the
// time of its newest record.
func hashSegment(sg segment, f *Frontier) (time.Time, error) {
	file, err := os.Open(sg.path)
	if err != nil {
		return time.Time{}, err
	}
	defer file.Close()
	first, err := readSegmentHeader(file)
	if err != nil {
		return time.Time{}, err
	}
	if first != f.Size {
		return time.Time{}, fmt.Errorf("%w: segment %s starts at %d, expected %d", ErrCorrupt, filepath.Base(sg.path), first, f.Size)
	}
	var newest time.Time
	fr := newFrameReader(file, int64(segmentHeaderSize), MaxRecordSize)
	for {
		p, err := fr.next()
		if err == io.EOF {
			return newest, nil
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: segment %s: %v", ErrCorrupt, filepath.Base(sg.path), err)
		}
		e, err := ParseEntry(p)
		if err != nil {
			return time.Time{}, err
		}
		if e.Time.After(newest) {
			newest = e.Time
		}
		f.Append(LeafHash(p))
	}
}

// rewriteCheckpoints keeps the local checkpoints of size >= size.
func (l *Log) rewriteCheckpoints(size uint64) error {
	path := filepath.Join(l.cfg.Dir, checkpointsFile)
	cps, err := readCheckpointFile(path)
	if err != nil {
		return err
	}
	var keep []SignedCheckpoint
	for _, c := range cps {
		if c.Size >= size {
			keep = append(keep, c)
		}
	}
	if err := l.ckFile.Close(); err != nil {
		return err
	}
	l.ckFile = nil
	b, err := encodeCheckpoints(keep)
	if err != nil {
		return err
	}
	if err := l.disk.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	l.ckFile, err = l.disk.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	return err
}
