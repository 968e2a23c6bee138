package keystore

import (
	"context"
	"fmt"
	"sync"
)

// Log orders commands and applies them to the state machine. LocalLog is the
// single-node implementation; the replication package will provide one that
// proposes through Raft and whose FSM calls FSM.ApplyBatch on every replica.
type Log interface {
	// Propose submits cmd and waits until it is applied, returning its Result
	// and log index. An error means the outcome is unknown (the command may
	// still be applied): retry with the same command, whose request id makes
	// the retry safe.
	Propose(ctx context.Context, cmd Command) (Result, uint64, error)
	// Barrier returns once a read at level may be served from the local
	// state machine.
	Barrier(ctx context.Context, level ReadLevel) error
}

// ReadLevel says how fresh a read must be.
type ReadLevel uint8

const (
	// ReadLocal reads the local replica: the hot path (access key lookup,
	// key versions, manifests). Under Raft it is served while the node has
	// heard from the leader within max-staleness.
	ReadLocal ReadLevel = iota
	// ReadLinearizable reads after confirming leadership and applying
	// everything committed before the read began (admin reads).
	ReadLinearizable
	// ReadAfterIndex reads once the local replica has applied the index
	// given with ReadAfter: read your writes on any node. Set it with
	// ReadAfter, not WithReadLevel.
	ReadAfterIndex
)

type readLevelKey struct{}

// WithReadLevel returns a context asking the Store's reads made with it for
// level. Without it reads are ReadLocal.
func WithReadLevel(ctx context.Context, level ReadLevel) context.Context {
	return context.WithValue(ctx, readLevelKey{}, level)
}

type readAfterKey struct{}

// ReadAfter returns a context whose reads wait until the local replica has
// applied log index (ReadAfterIndex): pass the index a write returned
// (RecordIndex) and a read on any node sees that write.
func ReadAfter(ctx context.Context, index uint64) context.Context {
	return context.WithValue(WithReadLevel(ctx, ReadAfterIndex), readAfterKey{}, index)
}

func readAfter(ctx context.Context) uint64 {
	i, _ := ctx.Value(readAfterKey{}).(uint64)
	return i
}

type recordIndexKey struct{}

// RecordIndex returns a context whose writes store the log index they were
// applied at in *index, for ReadAfter. A Store shared by concurrent writes
// should give each its own context.
func RecordIndex(ctx context.Context, index *uint64) context.Context {
	return context.WithValue(ctx, recordIndexKey{}, index)
}

func readLevel(ctx context.Context) ReadLevel {
	l, _ := ctx.Value(readLevelKey{}).(ReadLevel)
	return l
}

// maxBatch bounds the commands LocalLog applies in one transaction.
const maxBatch = 128

// LocalLog is the single-node Log: it numbers commands from the FSM's
// applied index and applies them in-process. Concurrent proposals are
// gathered into one batch, one transaction and one fsync (group commit), the
// same path Raft's batching FSM will take.
type LocalLog struct {
	fsm       *FSM
	proposals chan *proposal
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type proposal struct {
	cmd   Command
	res   Result
	index uint64
	done  chan struct{}
}

// NewLocalLog starts a single-node log over fsm. Close stops it.
func NewLocalLog(fsm *FSM) *LocalLog {
	l := &LocalLog{
		fsm:       fsm,
		proposals: make(chan *proposal),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go l.run()
	return l
}

func (l *LocalLog) run() {
	defer close(l.done)
	for {
		var first *proposal
		select {
		case <-l.quit:
			return
		case first = <-l.proposals:
		}
		batch := []*proposal{first}
		size := len(first.cmd.Payload)
	gather:
		for len(batch) < maxBatch && size < MaxCommandSize {
			select {
			case p := <-l.proposals:
				batch = append(batch, p)
				size += len(p.cmd.Payload)
			default:
				break gather
			}
		}
		next := l.fsm.AppliedIndex() + 1
		entries := make([]Entry, len(batch))
		for i, p := range batch {
			entries[i] = Entry{Index: next + uint64(i), Command: p.cmd}
		}
		results := l.fsm.ApplyBatch(entries)
		for i, p := range batch {
			p.res, p.index = results[i], entries[i].Index
			close(p.done)
		}
	}
}

// Propose applies cmd. If ctx ends after the command was handed over, it
// may still be applied; Propose then returns ctx's error.
func (l *LocalLog) Propose(ctx context.Context, cmd Command) (Result, uint64, error) {
	if len(cmd.Payload)+commandHeader > MaxCommandSize {
		return Result{}, 0, fmt.Errorf("%w: command of %d bytes exceeds %d", ErrInvalid, len(cmd.Payload)+commandHeader, MaxCommandSize)
	}
	p := &proposal{cmd: cmd, done: make(chan struct{})}
	select {
	case l.proposals <- p:
	case <-ctx.Done():
		return Result{}, 0, ctx.Err()
	case <-l.quit:
		return Result{}, 0, ErrClosed
	}
	select {
	case <-p.done:
		return p.res, p.index, nil
	case <-ctx.Done():
		return Result{}, 0, ctx.Err()
	}
}

// Barrier returns at once: a single node's state machine is the whole truth.
func (l *LocalLog) Barrier(ctx context.Context, level ReadLevel) error {
	return ctx.Err()
}

// Close stops the log after the batch in progress; later proposals fail
// with ErrClosed.
func (l *LocalLog) Close() error {
	l.closeOnce.Do(func() { close(l.quit) })
	<-l.done
	return nil
}
