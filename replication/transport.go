package replication

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// The cluster listener carries two protocols over one mutual TLS 1.3
// port: after the handshake the dialer sends one byte naming the protocol.
const (
	protoRaft    byte = 'R' // raft's NetworkTransport stream
	protoControl byte = 'C' // one control call (control.go)
)

// handshakeTimeout bounds a TLS handshake and the protocol byte, so a
// silent peer cannot hold a goroutine.
const handshakeTimeout = 10 * time.Second

// transportMetrics are the cluster transport's Prometheus metrics.
type transportMetrics struct {
	handshakes *prometheus.CounterVec
	failures   *prometheus.CounterVec
}

func newTransportMetrics(reg prometheus.Registerer) *transportMetrics {
	m := &transportMetrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tresor_replication_tls_handshakes_total",
			Help: "Completed TLS handshakes between cluster nodes, by direction and negotiated key exchange (X25519MLKEM768 is the hybrid post-quantum default).",
		}, []string{"direction", "key_exchange"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tresor_replication_tls_handshake_failures_total",
			Help: "Failed TLS handshakes between cluster nodes (wrong CA, no client certificate, timeout), by direction.",
		}, []string{"direction"}),
	}
	if reg != nil {
		reg.MustRegister(m.handshakes, m.failures)
	}
	return m
}

// tlsLayer is raft's StreamLayer over mutual TLS, multiplexed with the
// control protocol.
type tlsLayer struct {
	ln        net.Listener
	advertise net.Addr
	conf      *tls.Config
	metrics   *transportMetrics
	// control serves a control connection; set once the node exists.
	control atomic.Pointer[func(*tls.Conn)]
	// lastKEX is the key exchange of the latest handshake, for the TOM
	// report and tests.
	lastKEX atomic.Value

	raftConns chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

func newTLSLayer(ln net.Listener, advertise net.Addr, conf *tls.Config, m *transportMetrics) *tlsLayer {
	l := &tlsLayer{ln: ln, advertise: advertise, conf: conf, metrics: m, raftConns: make(chan net.Conn), closed: make(chan struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *tlsLayer) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.serve(c)
		}()
	}
}

func (l *tlsLayer) serve(c net.Conn) {
	tc := tls.Server(c, l.conf)
	tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		l.metrics.failures.WithLabelValues("in").Inc()
		c.Close()
		return
	}
	l.recordHandshake("in", tc)
	var proto [1]byte
	if _, err := tc.Read(proto[:]); err != nil {
		tc.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	switch proto[0] {
	case protoRaft:
		select {
		case l.raftConns <- tc:
		case <-l.closed:
			tc.Close()
		}
	case protoControl:
		defer tc.Close()
		if h := l.control.Load(); h != nil {
			(*h)(tc)
		}
	default:
		tc.Close()
	}
}

func (l *tlsLayer) recordHandshake(dir string, tc *tls.Conn) {
	kex := tc.ConnectionState().CurveID.String()
	l.metrics.handshakes.WithLabelValues(dir, kex).Inc()
	l.lastKEX.Store(kex)
}

// Accept returns the next raft connection.
func (l *tlsLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.raftConns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and waits for connections in their handshake.
func (l *tlsLayer) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.ln.Close()
	})
	return err
}

func (l *tlsLayer) wait() { l.wg.Wait() }

// Addr is the address raft advertises.
func (l *tlsLayer) Addr() net.Addr { return l.advertise }

// Dial opens a raft stream to address.
func (l *tlsLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.dial(ctx, string(address), protoRaft)
}

func (l *tlsLayer) dial(ctx context.Context, address string, proto byte) (*tls.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: l.conf}
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		l.metrics.failures.WithLabelValues("out").Inc()
		return nil, err
	}
	tc := c.(*tls.Conn)
	l.recordHandshake("out", tc)
	if _, err := tc.Write([]byte{proto}); err != nil {
		tc.Close()
		return nil, err
	}
	return tc, nil
}
