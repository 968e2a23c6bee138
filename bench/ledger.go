package bench

import (
	"math/rand/v2"
	"sort"
	"sync"
)

// Ledger is the bookkeeping of every write the load attempted: for each key
// the last acknowledged version and, if the last attempt got no answer, the
// version whose outcome is unknown.
//
// Each key has exactly one writer, which writes versions 1, 2, 3, ... in
// order and waits for each answer. A write that fails may still have taken
// effect (the gateway or the backend can commit and die before answering),
// so after a failure the writer retires the key: nobody writes it again, and
// its content may be the last acknowledged version or the unknown one, and
// nothing else. This keeps the check exact without assuming anything about
// how a dead request races a later one.
type Ledger struct {
	mu    sync.Mutex
	keys  map[string]*keyState
	acked []string // keys with at least one acknowledged version, for readers
}

// keyState is one key's history.
type keyState struct {
	acked     uint64 // last acknowledged version; 0 if none
	attempted uint64 // highest version ever sent
	unknown   bool   // attempted > acked and its outcome is unknown
	retired   bool
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{keys: make(map[string]*keyState)}
}

// Begin records that the key's writer is about to send its next version and
// returns that version. It panics if key was retired: a bug in the load.
func (l *Ledger) Begin(key string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	if s == nil {
		s = &keyState{}
		l.keys[key] = s
	}
	if s.retired {
		panic("bench: write to retired key " + key)
	}
	s.attempted++
	return s.attempted
}

// Ack records that version of key was acknowledged.
func (l *Ledger) Ack(key string, version uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	if s.acked == 0 {
		l.acked = append(l.acked, key)
	}
	s.acked = version
}

// Fail records that the write of version failed. If the failure says
// nothing was written (a multipart upload that never reached its
// completion), the key stays usable; otherwise the outcome is unknown and the
// key is retired.
func (l *Ledger) Fail(key string, version uint64, certainlyNotWritten bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	if certainlyNotWritten {
		s.attempted = version - 1
		return
	}
	s.unknown = true
	s.retired = true
}

// Retired reports whether key takes no more writes.
func (l *Ledger) Retired(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	return s != nil && s.retired
}

// PickAcked returns a random key with an acknowledged version and that
// version, the lowest a read started now may return.
func (l *Ledger) PickAcked(r *rand.Rand) (key string, min uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acked) == 0 {
		return "", 0, false
	}
	key = l.acked[r.IntN(len(l.acked))]
	return key, l.keys[key].acked, true
}

// Attempted returns the highest version of key ever sent: the highest a
// read that ends now may return.
func (l *Ledger) Attempted(key string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.keys[key]; s != nil {
		return s.attempted
	}
	return 0
}

// Acknowledged returns how many writes were acknowledged: the sum over keys
// of their acknowledged versions, since every key's versions are written in
// order and each was acknowledged before the next was sent.
func (l *Ledger) Acknowledged() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.keys {
		n += int(s.acked)
	}
	return n
}

// Expectation is what a final read of one key must return.
type Expectation struct {
	Key string
	// Acked is the last acknowledged version (0: none, the key may be
	// absent).
	Acked uint64
	// Unknown, if not 0, is a later version whose write got no answer: the
	// key may hold it instead.
	Unknown uint64
}

// Expectations returns one Expectation per key, sorted by key.
func (l *Ledger) Expectations() []Expectation {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Expectation, 0, len(l.keys))
	for k, s := range l.keys {
		e := Expectation{Key: k, Acked: s.acked}
		if s.unknown {
			e.Unknown = s.attempted
		}
		if e.Acked == 0 && e.Unknown == 0 {
			continue // never written, or only certainly-failed attempts
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Verdict classifies one read.
type Verdict int

// Verdicts of Check.
const (
	// ReadOK: the read returned an allowed version byte for byte.
	ReadOK Verdict = iota
	// ReadLost: the key is absent or older than an acknowledged version:
	// an acknowledged write is not visible.
	ReadLost
	// ReadCorrupt: the bytes are not the content of the version they claim,
	// or they claim a version that was never written.
	ReadCorrupt
)

func (v Verdict) String() string {
	switch v {
	case ReadOK:
		return "ok"
	case ReadLost:
		return "lost"
	case ReadCorrupt:
		return "corrupt"
	}
	return "unknown"
}

// Check judges a read of key that found it (found) with body, where min is
// the last version acknowledged before the read started and max the highest
// version sent before it ended.
func Check(key string, found bool, body []byte, min, max uint64) (Verdict, uint64) {
	if !found {
		if min == 0 {
			return ReadOK, 0
		}
		return ReadLost, 0
	}
	v, err := Identify(key, body)
	switch {
	case err != nil:
		return ReadCorrupt, v
	case v > max:
		return ReadCorrupt, v // a version nobody wrote yet
	case v < min:
		return ReadLost, v
	}
	return ReadOK, v
}

// CheckFinal judges a read of the final verification pass against e.
func CheckFinal(e Expectation, found bool, body []byte) (Verdict, uint64) {
	max := max(e.Acked, e.Unknown)
	verdict, v := Check(e.Key, found, body, e.Acked, max)
	if verdict == ReadOK && found && v != e.Acked && v != e.Unknown {
		// Between acked and unknown there is nothing: writes are one
		// version apart. Anything else was never the final state.
		return ReadLost, v
	}
	return verdict, v
}
