package replication

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// pipeConn returns a *tls.Conn over one end of an in-memory pipe (no
// handshake happens unless it is used) and reports whether it was closed.
func pipeConn(t *testing.T) (*tls.Conn, func() bool) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	closed := func() bool {
		a.SetWriteDeadline(time.Now()) // an open pipe must not block the probe
		_, err := a.Write(nil)
		return errors.Is(err, io.ErrClosedPipe)
	}
	return tls.Client(a, &tls.Config{}), closed
}

func TestConnPool_ReusesMostRecentAndDropsIdle(t *testing.T) {
	for _, tc := range []struct {
		name     string
		age      time.Duration // how long the pooled connection has been idle
		reused   bool
		isClosed bool
	}{
		{"fresh connection is reused", 0, true, false},
		{"connection idle past poolIdleTimeout is closed, not reused", poolIdleTimeout + time.Second, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newConnPool()
			tc1, closed := pipeConn(t)
			p.put("leader:1", tc1)
			p.idle["leader:1"][0].since = time.Now().Add(-tc.age)
			got := p.get("leader:1")
			if (got == tc1) != tc.reused {
				t.Fatalf("get returned %p, pooled %p; want reuse %v", got, tc1, tc.reused)
			}
			if got := closed(); got != tc.isClosed {
				t.Fatalf("closed %v, want %v", got, tc.isClosed)
			}
			if p.get("leader:1") != nil {
				t.Fatal("a connection was handed out twice")
			}
		})
	}
}

func TestConnPool_PerPeerAndBounded(t *testing.T) {
	p := newConnPool()
	a, _ := pipeConn(t)
	p.put("a:1", a)
	if p.get("b:1") != nil {
		t.Fatal("a connection to one peer was handed out for another")
	}
	conns := make([]func() bool, 0, maxIdlePerPeer+1)
	for range maxIdlePerPeer + 1 {
		c, closed := pipeConn(t)
		p.put("b:1", c)
		conns = append(conns, closed)
	}
	if n := len(p.idle["b:1"]); n != maxIdlePerPeer {
		t.Fatalf("%d idle connections kept, want at most %d", n, maxIdlePerPeer)
	}
	if !conns[maxIdlePerPeer]() {
		t.Fatal("the connection over the bound was not closed")
	}
	if p.get("a:1") != a {
		t.Fatal("the other peer's connection is gone")
	}
}

func TestConnPool_CloseClosesIdleAndLaterPuts(t *testing.T) {
	p := newConnPool()
	idle, idleClosed := pipeConn(t)
	p.put("a:1", idle)
	p.close()
	if !idleClosed() {
		t.Fatal("close left an idle connection open")
	}
	late, lateClosed := pipeConn(t)
	p.put("a:1", late)
	if !lateClosed() || p.get("a:1") != nil {
		t.Fatal("a connection returned after close was kept")
	}
}

func TestConnPool_DropClosesThePeersIdleConnections(t *testing.T) {
	p := newConnPool()
	var closed []func() bool
	for range 3 {
		c, isClosed := pipeConn(t)
		p.put("dead:1", c)
		closed = append(closed, isClosed)
	}
	other, otherClosed := pipeConn(t)
	p.put("alive:1", other)
	p.drop("dead:1")
	for i, isClosed := range closed {
		if !isClosed() {
			t.Errorf("idle connection %d to the dropped peer is open", i)
		}
	}
	if p.get("dead:1") != nil {
		t.Error("a dropped peer's connection was handed out")
	}
	if otherClosed() || p.get("alive:1") != other {
		t.Error("dropping one peer touched another's connection")
	}
}
