package replication

import (
	"crypto/tls"
	"sync"
	"time"
)

// poolIdleTimeout is how long a pooled control connection may stay unused
// before the caller drops it: half the callee's controlIdleTimeout, so the
// caller gives a connection up well before the callee would close it.
const poolIdleTimeout = controlIdleTimeout / 2

// maxIdlePerPeer bounds the idle control connections kept per peer. Each
// call in flight holds its own connection, so this is the concurrency of
// forwarded writes that pays no handshake; more concurrent calls still
// work, they dial.
const maxIdlePerPeer = 64

// connPool keeps control connections for reuse, per peer address. A
// connection goes back only after a complete call whose response promised
// another (controlResponse.Keep), so a pooled connection is always at a
// call boundary.
type connPool struct {
	mu     sync.Mutex
	idle   map[string][]idleConn
	swept  time.Time
	closed bool
}

type idleConn struct {
	tc    *tls.Conn
	since time.Time
}

func newConnPool() *connPool { return &connPool{idle: map[string][]idleConn{}} }

// get returns the most recently used idle connection to addr, or nil.
func (p *connPool) get(addr string) *tls.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(time.Now())
	conns := p.idle[addr]
	if len(conns) == 0 {
		return nil
	}
	c := conns[len(conns)-1]
	p.idle[addr] = conns[:len(conns)-1]
	if time.Since(c.since) > poolIdleTimeout {
		c.tc.Close() // the sweep is due within a second; do not wait for it
		return nil
	}
	return c.tc
}

// put returns tc to the pool, or closes it if the pool is closed or full.
func (p *connPool) put(addr string, tc *tls.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[addr]) >= maxIdlePerPeer {
		tc.Close()
		return
	}
	now := time.Now()
	p.idle[addr] = append(p.idle[addr], idleConn{tc: tc, since: now})
	p.sweepLocked(now)
}

// sweepLocked closes connections idle for longer than poolIdleTimeout, at
// most once a second. Connections are appended in the order they went
// idle, so each peer's stale ones are at the front.
func (p *connPool) sweepLocked(now time.Time) {
	if now.Sub(p.swept) < time.Second {
		return
	}
	p.swept = now
	for addr, conns := range p.idle {
		n := 0
		for n < len(conns) && now.Sub(conns[n].since) > poolIdleTimeout {
			conns[n].tc.Close()
			n++
		}
		if n == len(conns) {
			delete(p.idle, addr)
		} else if n > 0 {
			p.idle[addr] = append(conns[:0], conns[n:]...)
		}
	}
}

// drop closes every idle connection to addr: one of them just failed,
// which means the peer went away (restarted, closed), and the others are
// as dead. Without this, each would fail one more call.
func (p *connPool) drop(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle[addr] {
		c.tc.Close()
	}
	delete(p.idle, addr)
}

// close closes every idle connection; later puts close theirs.
func (p *connPool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, conns := range p.idle {
		for _, c := range conns {
			c.tc.Close()
		}
	}
	clear(p.idle)
	return nil
}
