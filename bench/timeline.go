package bench

import (
	"slices"
	"sync"
	"time"
)

// OpKind is the kind of an operation of the load.
type OpKind string

// Operation kinds. A "put" is one PutObject: the gateway reads the tenant
// key and bucket from its local keystore replica and writes only the
// backend, so it needs no Raft write. A "multipart" write is
// CreateMultipartUpload, UploadPart and CompleteMultipartUpload of one
// part through one gateway: the upload session and the manifest are two
// Raft writes, so it measures the keystore's write availability.
const (
	OpPut       OpKind = "put"
	OpMultipart OpKind = "multipart"
	OpGet       OpKind = "get"
)

// Op is one operation of the load as the load saw it.
type Op struct {
	Kind  OpKind
	Zone  int // index of the gateway it went through
	Start time.Duration
	End   time.Duration // since the timeline's start
	OK    bool
	Err   string // errClass of a failure
}

// Timeline records the load's operations and the drill's events against
// one monotonic clock, so unavailability is measured from what clients saw.
type Timeline struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewTimeline starts a timeline now.
func NewTimeline() *Timeline {
	return &Timeline{start: time.Now()}
}

// Now returns the time since the timeline started.
func (t *Timeline) Now() time.Duration { return time.Since(t.start) }

// Add records op.
func (t *Timeline) Add(op Op) {
	t.mu.Lock()
	t.ops = append(t.ops, op)
	t.mu.Unlock()
}

// Ops returns a copy of the recorded operations, in order of completion.
func (t *Timeline) Ops() []Op {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.ops)
	slices.SortFunc(out, func(a, b Op) int { return int(a.End - b.End) })
	return out
}

// Window is an interval of the timeline.
type Window struct{ From, To time.Duration }

// Contains reports whether d is in w.
func (w Window) Contains(d time.Duration) bool { return d >= w.From && d <= w.To }

// Overlaps reports whether [from, to] meets w.
func (w Window) Overlaps(from, to time.Duration) bool { return from <= w.To && to >= w.From }

// Unavailable measures how long the operations that match stopped
// completing after an event at t: over the gaps between consecutive
// successful completions that overlap [t, t+horizon], the longest, each
// counted from t at the earliest. Failed operations and operations still
// running leave a gap open, so a stall and a burst of errors count alike.
// If no matching operation succeeded after t, the gap runs to end (the
// load's end) and ok is false.
func Unavailable(ops []Op, match func(Op) bool, t, horizon, end time.Duration) (gap time.Duration, ok bool) {
	prev := t
	for _, op := range ops { // sorted by End
		if !op.OK || !match(op) || op.End < t {
			continue
		}
		gap = max(gap, op.End-prev)
		if op.End > t+horizon {
			return gap, true
		}
		prev, ok = op.End, true
	}
	if !ok {
		return end - t, false
	}
	return gap, true
}

// FailedWindow measures unavailability as the clients of one zone felt it:
// for each failed matching operation, the time from its start to the next
// successful completion of a matching operation through the same zone (or
// end, if none). It returns the longest such window, 0 if nothing failed.
func FailedWindow(ops []Op, match func(Op) bool, end time.Duration) time.Duration {
	okEnds := make(map[int][]time.Duration) // zone -> sorted completion times
	for _, op := range ops {
		if op.OK && match(op) {
			okEnds[op.Zone] = append(okEnds[op.Zone], op.End)
		}
	}
	var worst time.Duration
	for _, op := range ops {
		if op.OK || !match(op) {
			continue
		}
		ends := okEnds[op.Zone]
		next := end
		if i, _ := slices.BinarySearch(ends, op.Start+1); i < len(ends) {
			next = ends[i]
		}
		worst = max(worst, next-op.Start)
	}
	return worst
}
