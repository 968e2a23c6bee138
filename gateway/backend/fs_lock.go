package backend

import "sync"

// keyLocks hands out one mutex per name (an object or an upload), created
// on demand and dropped when its last user leaves, so that work on one key
// never waits for another. The map's own mutex is held only to find the
// entry, never during I/O.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

// lock locks name and returns its unlock function.
func (l *keyLocks) lock(name string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*keyLock)
	}
	e := l.m[name]
	if e == nil {
		e = &keyLock{}
		l.m[name] = e
	}
	e.refs++
	l.mu.Unlock()

	e.Lock()
	return func() {
		e.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, name)
		}
		l.mu.Unlock()
	}
}
