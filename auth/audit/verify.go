package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// ProblemKind classifies what Verify found wrong.
type ProblemKind string

// Problem kinds.
const (
	// Modified: a record's bytes differ from what was written (its frame
	// checksum fails, it does not parse, or a signed root covering it does
	// not match).
	Modified ProblemKind = "modified"
	// Deleted: a record is missing (its sequence number is never seen).
	Deleted ProblemKind = "deleted"
	// Reordered: a record is at another position than its sequence number.
	Reordered ProblemKind = "reordered"
	// Truncated: the log ends before a signed checkpoint's size, or in the
	// middle of a record.
	Truncated ProblemKind = "truncated"
	// BadSignature: a checkpoint's Ed25519 or ML-DSA-65 signature fails.
	BadSignature ProblemKind = "bad-signature"
	// Inconsistent: checkpoints contradict each other (same size and
	// different roots, or sizes going back).
	Inconsistent ProblemKind = "inconsistent-checkpoints"
	// Rewritten: the log matches its own checkpoints but not those
	// replicated off the node: its history was rewritten on this disk.
	Rewritten ProblemKind = "rewritten"
	// Corrupt: a file of the log does not parse at all.
	Corrupt ProblemKind = "corrupt"
)

// Problem is one thing Verify found wrong. Position is the record position
// (0-based sequence number) where it starts; for a root mismatch it is the
// first position after the last verified checkpoint, since a signed root
// only says that some record at or after it, and before the checkpoint's
// size, differs.
type Problem struct {
	Kind     ProblemKind `json:"kind"`
	Position uint64      `json:"position"`
	// Checkpoint is the index of the checkpoint involved in its list
	// (local or replicated, see Detail), or -1.
	Checkpoint int    `json:"checkpoint"`
	Detail     string `json:"detail"`
}

func (p Problem) String() string {
	return fmt.Sprintf("%s at position %d: %s", p.Kind, p.Position, p.Detail)
}

// Report is the outcome of Verify.
type Report struct {
	// Base is the number of records removed by retention (their frontier
	// stands in for them).
	Base uint64 `json:"base"`
	// Records is the size of the log: Base plus the records read.
	Records uint64 `json:"records"`
	// Checkpoints and Replicated count the checkpoints checked.
	Checkpoints int `json:"checkpoints"`
	Replicated  int `json:"replicated"`
	// Pruned counts checkpoints older than Base, which cannot be checked
	// against records any more (only their signatures are).
	Pruned int `json:"pruned"`
	// Verified is the largest size at which a signed root matched.
	Verified uint64 `json:"verified"`
	// Problems, by position. Empty means the log verifies.
	Problems []Problem `json:"problems,omitempty"`
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// First returns the problem at the lowest position.
func (r *Report) First() (Problem, bool) {
	if len(r.Problems) == 0 {
		return Problem{}, false
	}
	return r.Problems[0], true
}

// maxProblems bounds a report.
const maxProblems = 100

func (r *Report) add(p Problem) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, p)
	}
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Replicated are checkpoints kept off the node (CheckpointStore);
	// the log must match them too. Checkpoints of other logs are ignored.
	Replicated []SignedCheckpoint
	// Live tolerates a record cut short at the very end of the last
	// segment after the last checkpoint: the state of a running node's
	// directory, or of one that crashed mid-write.
	Live bool
}

// Verify checks the log in dir (a node's audit directory or an export)
// against the public keys pub, which should come from somewhere the node
// cannot change. It needs no tenant key: leaves hash records as stored.
// The error is for a log that cannot be read at all; what is wrong with a
// readable log is in the Report.
func Verify(ctx context.Context, dir string, pub PublicKeys, opts VerifyOptions) (Report, error) {
	s, err := scan(ctx, dir, pub, opts, nil)
	if err != nil {
		return Report{}, err
	}
	return s.report, nil
}

// target is a signed root to meet while scanning.
type target struct {
	size       uint64
	root       Hash
	replicated bool
	index      int
}

// scanState is what one pass over a log directory learned.
type scanState struct {
	report   Report
	frontier Frontier
	local    []SignedCheckpoint // valid local checkpoints
	segs     []segment
	tail     segment   // the last segment, zero if none
	tailEnd  int64     // end of the last whole frame in tail
	torn     bool      // tail has a partial frame after tailEnd
	lastTime time.Time // time of the last record that parsed
	// checkpointsEnd is the end of the last whole checkpoint frame; a
	// checkpoint cut short follows it when checkpointsTorn.
	checkpointsEnd  int64
	checkpointsTorn bool
	// tailStart is the frontier before tail's first record.
	tailStart Frontier
}

// scan reads dir once: base, checkpoints, then every record, calling each
// (if not nil) for every record that parses.
func scan(ctx context.Context, dir string, pub PublicKeys, opts VerifyOptions, each func(pos uint64, e Entry) error) (*scanState, error) {
	st := &scanState{}
	rep := &st.report
	base, err := readBase(dir)
	if err != nil {
		return nil, err
	}
	rep.Base = base.Size
	st.frontier = base.Clone()

	local, ckEnd, cerr := readCheckpointFrames(filepath.Join(dir, checkpointsFile))
	st.checkpointsEnd = ckEnd
	if errors.Is(cerr, errTorn) && opts.Live {
		st.checkpointsTorn, cerr = true, nil
	}
	if cerr != nil {
		var pos uint64
		if len(local) > 0 {
			pos = local[len(local)-1].Size
		}
		rep.add(Problem{Kind: Corrupt, Position: pos, Checkpoint: len(local), Detail: cerr.Error()})
	}
	var targets []target
	check := func(list []SignedCheckpoint, replicated bool) {
		name := "local"
		if replicated {
			name = "replicated"
		}
		var prev *SignedCheckpoint
		for i := range list {
			c := &list[i]
			if replicated && c.LogID != pub.LogID {
				continue
			}
			if err := pub.Verify(*c); err != nil {
				rep.add(Problem{Kind: BadSignature, Position: c.Size, Checkpoint: i,
					Detail: fmt.Sprintf("%s checkpoint %d (size %d): %v", name, i, c.Size, err)})
				continue
			}
			if replicated {
				rep.Replicated++
			} else {
				rep.Checkpoints++
				st.local = append(st.local, *c)
			}
			if prev != nil && (c.Size < prev.Size || c.Time.Before(prev.Time)) {
				rep.add(Problem{Kind: Inconsistent, Position: c.Size, Checkpoint: i,
					Detail: fmt.Sprintf("%s checkpoint %d (size %d) goes back from size %d", name, i, c.Size, prev.Size)})
			}
			prev = c
			if c.Size < base.Size {
				rep.Pruned++
				continue
			}
			targets = append(targets, target{size: c.Size, root: c.Root, replicated: replicated, index: i})
		}
	}
	check(local, false)
	check(opts.Replicated, true)
	sort.SliceStable(targets, func(i, j int) bool { return targets[i].size < targets[j].size })
	// Two validly signed roots for one size: the signer forked its log.
	for i := 1; i < len(targets); i++ {
		a, b := targets[i-1], targets[i]
		if a.size == b.size && a.root != b.root {
			rep.add(Problem{Kind: Inconsistent, Position: b.size, Checkpoint: b.index,
				Detail: fmt.Sprintf("two signed roots for size %d", b.size)})
		}
	}

	// A root that does not match says only that some record before the
	// checkpoint's size, after the last matching root, differs. Such
	// mismatches are kept aside and reported at the end only when no
	// record-level problem (which pins the position) explains them, and
	// only the first one of each list: every later root repeats it.
	verified := base.Size
	var localMismatch, replicatedMismatch *Problem
	var mismatchSize, replicatedSize uint64
	ti := 0
	meet := func() {
		size := st.frontier.Size
		start, met, ok := verified, false, true
		for ; ti < len(targets) && targets[ti].size == size; ti++ {
			t := targets[ti]
			met = true
			if st.frontier.Root() == t.root {
				continue
			}
			ok = false
			p := &Problem{Kind: Modified, Position: start, Checkpoint: t.index,
				Detail: fmt.Sprintf("a record in positions [%d, %d) differs from what local checkpoint %d signed", start, size, t.index)}
			if t.replicated {
				p.Kind = Rewritten
				p.Detail = fmt.Sprintf("a record in positions [%d, %d) differs from what replicated checkpoint %d signed: history was rewritten on this node", start, size, t.index)
				if replicatedMismatch == nil {
					replicatedMismatch, replicatedSize = p, size
				}
			} else if localMismatch == nil {
				localMismatch, mismatchSize = p, size
			}
		}
		if met && ok {
			verified = size
			rep.Verified = size
		}
	}
	for ti < len(targets) && targets[ti].size < base.Size {
		ti++
	}
	meet()

	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	// Segments wholly below the base are leftovers of an interrupted
	// retention run.
	for len(segs) > 1 && segs[1].first <= base.Size {
		segs = segs[1:]
	}
	st.segs = segs

	// First sequence anomaly: want is the sequence number expected at
	// position anomaly; found tells where (if anywhere) it shows up.
	var anomaly, want uint64
	var anomalyAt = -1
	var foundAt int64 = -1
	var anomalySeq uint64
	pos := base.Size
	stop := false
	for si, sg := range segs {
		if stop {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(sg.path)
		if err != nil {
			return nil, err
		}
		first, herr := readSegmentHeader(f)
		if herr != nil || first != sg.first || first != pos {
			d := fmt.Sprintf("segment %s starts at record %d, expected %d", filepath.Base(sg.path), first, pos)
			k := Deleted
			if herr != nil {
				d, k = fmt.Sprintf("segment %s: %v", filepath.Base(sg.path), herr), Corrupt
			} else if first < pos {
				k = Reordered
			}
			rep.add(Problem{Kind: k, Position: pos, Checkpoint: -1, Detail: d})
			if herr != nil {
				f.Close()
				stop = true
				break
			}
		}
		fr := newFrameReader(f, int64(segmentHeaderSize), MaxRecordSize)
		last := si == len(segs)-1
		if last {
			st.tailStart = st.frontier.Clone()
		}
		for {
			payload, err := fr.next()
			if err == io.EOF {
				break
			}
			if errors.Is(err, errTorn) {
				if last {
					st.torn = true
				} else {
					rep.add(Problem{Kind: Truncated, Position: pos, Checkpoint: -1,
						Detail: fmt.Sprintf("segment %s ends inside a record", filepath.Base(sg.path))})
				}
				break
			}
			if err != nil && !errors.Is(err, errBadCRC) {
				rep.add(Problem{Kind: Corrupt, Position: pos, Checkpoint: -1,
					Detail: fmt.Sprintf("segment %s: %v", filepath.Base(sg.path), err)})
				stop = true
				break
			}
			if errors.Is(err, errBadCRC) {
				rep.add(Problem{Kind: Modified, Position: pos, Checkpoint: -1, Detail: "record bytes do not match their checksum"})
			} else if e, perr := ParseEntry(payload); perr != nil {
				rep.add(Problem{Kind: Modified, Position: pos, Checkpoint: -1, Detail: perr.Error()})
			} else {
				switch {
				case anomalyAt < 0 && e.Seq != pos:
					anomaly, want, anomalyAt, anomalySeq = pos, pos, 0, e.Seq
				case anomalyAt >= 0 && foundAt < 0 && e.Seq == want:
					foundAt = int64(pos)
				}
				st.lastTime = e.Time
				if each != nil {
					if err := each(pos, e); err != nil {
						f.Close()
						return nil, err
					}
				}
			}
			st.frontier.Append(LeafHash(payload))
			pos++
			meet()
		}
		if last {
			st.tail, st.tailEnd = sg, fr.off
		}
		f.Close()
	}
	rep.Records = pos

	if anomalyAt >= 0 {
		switch {
		case foundAt >= 0:
			rep.add(Problem{Kind: Reordered, Position: anomaly, Checkpoint: -1,
				Detail: fmt.Sprintf("position %d holds record %d; record %d is at position %d", anomaly, anomalySeq, want, foundAt)})
		case anomalySeq < anomaly:
			rep.add(Problem{Kind: Reordered, Position: anomaly, Checkpoint: -1,
				Detail: fmt.Sprintf("position %d holds record %d again", anomaly, anomalySeq)})
		default:
			rep.add(Problem{Kind: Deleted, Position: anomaly, Checkpoint: -1,
				Detail: fmt.Sprintf("record %d is missing (position %d holds record %d)", want, anomaly, anomalySeq)})
		}
	}
	// The lowest position a record-level problem pins.
	precise := ^uint64(0)
	for _, p := range rep.Problems {
		if p.Checkpoint < 0 {
			precise = min(precise, p.Position)
		}
	}
	switch {
	case localMismatch != nil:
		if precise >= mismatchSize {
			rep.add(*localMismatch)
		}
	case replicatedMismatch != nil:
		if precise >= replicatedSize {
			rep.add(*replicatedMismatch)
		}
	}
	var lastLocal uint64
	for _, c := range st.local {
		lastLocal = max(lastLocal, c.Size)
	}
	if st.torn && (!opts.Live || lastLocal > pos) {
		rep.add(Problem{Kind: Truncated, Position: pos, Checkpoint: -1, Detail: "the log ends inside a record"})
	}
	for ; ti < len(targets); ti++ {
		t := targets[ti]
		if t.size < st.frontier.Size {
			continue // met, or skipped because of an earlier problem
		}
		name := "local"
		if t.replicated {
			name = "replicated"
		}
		rep.add(Problem{Kind: Truncated, Position: pos, Checkpoint: t.index,
			Detail: fmt.Sprintf("the log has %d records but %s checkpoint %d covers %d", pos, name, t.index, t.size)})
	}
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].Position < rep.Problems[j].Position })
	return st, nil
}
