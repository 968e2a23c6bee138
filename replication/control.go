package replication

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Control protocol: a connection whose protocol byte is protoControl
// carries calls one after the other: the caller writes a frame, the callee
// answers with one, and so on until either side closes. A frame is a
// 4-byte big-endian length and a JSON body of at most maxControlFrame
// bytes. A response with "keep" set promises that the callee reads another
// call on the connection; a caller keeps (pools) a connection only then,
// so a callee that closes after one call is still understood. Calls:
//
//	join        admit the caller as a non-voter after checking its proof
//	forward     apply an entry on the leader (write forwarding)
//	read-index  return a linearizable read index (leader only)
//	membership  promote, remove or transfer leadership (leader only;
//	            admin.go)
//	status      the callee's own NodeStatus (admin.go)
//
// Every call carries the cluster id; a call from another cluster is
// refused (the CA check already stops foreign certificates; the id guards
// against a CA reused by mistake).
const maxControlFrame = 8 << 20

// controlIdleTimeout is how long the callee waits for the next call on a
// kept connection. Callers drop pooled connections idle for half as long
// (poolIdleTimeout), so a caller does not write into a connection the
// callee is closing.
const controlIdleTimeout = 2 * time.Minute

type controlRequest struct {
	Op      string       `json:"op"`
	Cluster string       `json:"cluster"`
	Timeout int64        `json:"timeout_ms,omitempty"`
	Data    []byte       `json:"data,omitempty"`
	Join    *joinRequest `json:"join,omitempty"`
	// Change is the membership call's change (admin.go).
	Change *membershipChange `json:"change,omitempty"`
}

type joinRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Zone    string `json:"zone"`
	Proof   []byte `json:"proof"`
}

type controlResponse struct {
	Data   []byte `json:"data,omitempty"`
	Index  uint64 `json:"index,omitempty"`
	Code   string `json:"code,omitempty"` // error class, see codeErr
	Err    string `json:"err,omitempty"`
	Leader string `json:"leader,omitempty"`
	// Keep says the callee reads another call on this connection.
	Keep bool `json:"keep,omitempty"`
}

// Error classes on the wire: nothing else is a sentinel the caller may
// decide on; any other error is ambiguous.
var codeErr = map[string]error{
	"no-leader":     ErrNoLeader,
	"not-leader":    ErrNotLeader,
	"trust":         ErrTrust,
	"other-cluster": ErrOtherCluster,
}

func errCode(err error) string {
	for c, e := range codeErr {
		if errors.Is(err, e) {
			return c
		}
	}
	return ""
}

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxControlFrame {
		return fmt.Errorf("replication: control frame of %d bytes", len(b))
	}
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(b)))
	if _, err := w.Write(append(h[:], b...)); err != nil {
		return err
	}
	return nil
}

func readFrame(r io.Reader, v any) error {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > maxControlFrame {
		return fmt.Errorf("replication: control frame of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// joinLabel and exporterLabel bind a join proof to its purpose and to the
// TLS session it travels in (RFC 8446 section 7.5 exporter), so a proof
// seen once cannot be replayed on another connection.
const (
	joinLabel     = "tresor/replication/join/1"
	exporterLabel = "EXPORTER-tresor-join-1"
)

// joinProof is HMAC-SHA256 under the trust key over the join's fields and
// the TLS session's exported keying material.
func joinProof(trustKey []byte, cluster string, j *joinRequest, cs tls.ConnectionState) ([]byte, error) {
	ekm, err := cs.ExportKeyingMaterial(exporterLabel, nil, 32)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, trustKey)
	for _, s := range []string{joinLabel, cluster, j.ID, j.Address, j.Zone} {
		m.Write(binary.AppendUvarint(nil, uint64(len(s))))
		m.Write([]byte(s))
	}
	m.Write(ekm)
	return m.Sum(nil), nil
}

// serveControl serves the control calls of one connection until the
// caller closes it, it stays idle for controlIdleTimeout, or the node
// closes. Keeping the connection spares a forwarded write the mutual TLS
// 1.3 handshake (hybrid key exchange and two certificate chains to
// verify): dialing per call cost about half of the leader's and of each
// follower's CPU under write load.
//
// A kept connection takes calls only while the caller's certificate is
// valid, as a connection per call would: it is closed when the certificate
// expires.
func (n *Node) serveControl(tc *tls.Conn) {
	stop := context.AfterFunc(n.closeCtx, func() { tc.SetDeadline(time.Now()) })
	defer stop()
	expires := peerExpiry(tc.ConnectionState())
	idle := handshakeTimeout // the first call follows the handshake at once
	for {
		deadline := time.Now().Add(idle)
		if expires.Before(deadline) {
			deadline = expires
		}
		tc.SetDeadline(deadline)
		if n.closeCtx.Err() != nil {
			return // closed after the AfterFunc cut the deadline: do not wait out the new one
		}
		var req controlRequest
		if err := readFrame(tc, &req); err != nil {
			return
		}
		resp := n.handleControl(tc, req)
		resp.Keep = n.closeCtx.Err() == nil && time.Now().Before(expires)
		if err := writeFrame(tc, resp); err != nil || !resp.Keep {
			return
		}
		idle = controlIdleTimeout
	}
}

// peerExpiry is when the peer's certificate expires: the end of a kept
// connection's use.
func peerExpiry(cs tls.ConnectionState) time.Time {
	if len(cs.PeerCertificates) == 0 {
		return time.Now()
	}
	return cs.PeerCertificates[0].NotAfter
}

// handleControl serves one control call.
func (n *Node) handleControl(tc *tls.Conn, req controlRequest) controlResponse {
	timeout := time.Duration(req.Timeout) * time.Millisecond
	if timeout <= 0 || timeout > time.Minute {
		timeout = 10 * time.Second
	}
	tc.SetDeadline(time.Now().Add(timeout + time.Second))
	ctx, cancel := context.WithTimeout(n.closeCtx, timeout)
	defer cancel()
	var resp controlResponse
	var err error
	switch {
	case req.Cluster != n.cfg.ClusterID:
		err = fmt.Errorf("%w: call for cluster %q", ErrOtherCluster, req.Cluster)
	case (req.Op == "forward" || req.Op == "read-index" || req.Op == "membership") && !n.isMember(ctx, tc.ConnectionState()):
		// A certificate admits a node to the listener, membership to the
		// log: a node that has not joined (or was removed) proposes nothing.
		err = fmt.Errorf("%w: caller is not a member of the cluster", ErrTrust)
	case req.Op == "forward":
		resp.Data, resp.Index, err = n.applyLocal(ctx, req.Data)
	case req.Op == "read-index":
		resp.Index, err = n.readIndexLocal(ctx)
	case req.Op == "membership" && req.Change != nil:
		err = n.changeLocal(ctx, *req.Change)
	case req.Op == "status":
		resp.Data, err = json.Marshal(n.Status())
	case req.Op == "join" && req.Join != nil:
		err = n.admit(ctx, tc.ConnectionState(), req.Join)
	default:
		err = fmt.Errorf("replication: unknown control call %q", req.Op)
	}
	if err != nil {
		resp.Code, resp.Err = errCode(err), err.Error()
		if errors.Is(err, ErrNotLeader) {
			_, resp.Leader = n.Leader()
		}
	}
	return resp
}

// isMember reports whether the peer's certificate names a member of the
// current configuration.
func (n *Node) isMember(ctx context.Context, cs tls.ConnectionState) bool {
	if len(cs.PeerCertificates) == 0 {
		return false
	}
	_, err := n.member(ctx, cs.PeerCertificates[0].Subject.CommonName)
	return err == nil
}

// admit checks a join request and adds the caller as a non-voter.
func (n *Node) admit(ctx context.Context, cs tls.ConnectionState, j *joinRequest) error {
	if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != j.ID {
		return fmt.Errorf("%w: node id %q does not match its certificate", ErrTrust, j.ID)
	}
	want, err := joinProof(n.cfg.TrustKey, n.cfg.ClusterID, j, cs)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, j.Proof) {
		n.logger.Warn("join refused: wrong proof of the root of trust", "joiner", j.ID)
		return fmt.Errorf("%w: proof does not verify", ErrTrust)
	}
	if j.Zone == "" {
		return errors.New("replication: joining node has no zone")
	}
	return n.AddNonvoter(ctx, j.ID, j.Address, j.Zone)
}

// trustErr reports whether err is a certificate failure, on either side:
// our check of the peer's chain, or the peer's alert about ours (TLS 1.3
// reports a refused client certificate on the client's first read).
func trustErr(err error) bool {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return true
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		switch alert {
		case 42, 43, 44, 45, 46, 48, 116: // bad_certificate .. unknown_ca, certificate_required (RFC 8446 section 6)
			return true
		}
	}
	return false
}

// tlsForwarder is the forwarder over the control protocol.
type tlsForwarder struct {
	layer   *tlsLayer
	cluster string
	// pool, if set, keeps connections between calls; without it every
	// call dials (joins and admin calls, which are rare).
	pool *connPool
}

func (f *tlsForwarder) call(ctx context.Context, addr string, req controlRequest, build func(*tls.Conn) error) (controlResponse, error) {
	req.Cluster = f.cluster
	if d, ok := ctx.Deadline(); ok {
		req.Timeout = time.Until(d).Milliseconds()
	}
	pool := f.pool
	if build != nil {
		pool = nil // build binds the call to a fresh session (join)
	}
	var tc *tls.Conn
	if pool != nil {
		tc = pool.get(addr)
	}
	reused := tc != nil
	if tc == nil {
		var err error
		if tc, err = f.layer.dial(ctx, addr, protoControl); err != nil {
			if trustErr(err) {
				return controlResponse{}, fmt.Errorf("%w: %s: %w", ErrTrust, addr, err)
			}
			// Nothing reached the leader: the caller may treat it as no leader.
			return controlResponse{}, fmt.Errorf("%w: dial %s: %w", ErrNoLeader, addr, err)
		}
	}
	// A reused connection whose callee has gone away fails on the read
	// below, after the request was written: that error is ambiguous like
	// any other cut-off call, never ErrNoLeader. The other idle
	// connections to that callee go with it.
	keep, failed := false, false
	defer func() {
		switch {
		case keep:
			pool.put(addr, tc)
		case failed && reused:
			tc.Close()
			pool.drop(addr)
		default:
			tc.Close()
		}
	}()
	if d, ok := ctx.Deadline(); ok {
		tc.SetDeadline(d.Add(time.Second))
	} else {
		tc.SetDeadline(time.Time{})
	}
	if build != nil {
		if err := build(tc); err != nil {
			return controlResponse{}, err
		}
	}
	stop := context.AfterFunc(ctx, func() { tc.SetDeadline(time.Now()) })
	defer stop()
	if err := writeFrame(tc, req); err != nil {
		failed = ctx.Err() == nil
		return controlResponse{}, fmt.Errorf("replication: control call: %w", err)
	}
	var resp controlResponse
	if err := readFrame(tc, &resp); err != nil {
		failed = ctx.Err() == nil
		if ctx.Err() != nil {
			return controlResponse{}, ctx.Err()
		}
		if trustErr(err) {
			return controlResponse{}, fmt.Errorf("%w: %s refused our certificate: %w", ErrTrust, addr, err)
		}
		return controlResponse{}, fmt.Errorf("replication: control call: %w", err)
	}
	// Pool the connection only if the callee reads another call, ctx
	// cannot still cut its deadline short (stop reports the AfterFunc
	// will not run), and the callee's certificate is still valid.
	keep = pool != nil && resp.Keep && stop() && time.Now().Before(peerExpiry(tc.ConnectionState()))
	if resp.Err != "" {
		if e, ok := codeErr[resp.Code]; ok {
			return resp, fmt.Errorf("%w: %s", e, resp.Err)
		}
		return resp, errors.New(resp.Err)
	}
	return resp, nil
}

func (f *tlsForwarder) forward(ctx context.Context, to raft.ServerAddress, data []byte) ([]byte, uint64, error) {
	resp, err := f.call(ctx, string(to), controlRequest{Op: "forward", Data: data}, nil)
	return resp.Data, resp.Index, err
}

func (f *tlsForwarder) readIndex(ctx context.Context, to raft.ServerAddress) (uint64, error) {
	resp, err := f.call(ctx, string(to), controlRequest{Op: "read-index"}, nil)
	return resp.Index, err
}

// Open starts a node on the network: raft's log and stable store in
// <DataDir>/raft.db (bbolt through raft-boltdb, with an in-memory cache of
// recent entries), snapshots in <DataDir>/snapshots, and the cluster
// listener on BindAddr with mutual TLS 1.3. A new node then either
// Bootstraps the cluster (once, on one node) or Joins it; a restarted node
// does neither.
func Open(ctx context.Context, cfg Config, fsm FSM) (*Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.validateNetwork(); err != nil {
		return nil, err
	}
	if got := ClusterID(cfg.TLS.CA); cfg.ClusterID == "" {
		cfg.ClusterID = got
	} else if cfg.ClusterID != got {
		return nil, fmt.Errorf("%w: ClusterID %s, CA says %s", ErrOtherCluster, cfg.ClusterID, got)
	}
	if cn := cfg.TLS.Cert.Leaf; cn != nil && cn.Subject.CommonName != cfg.ID {
		return nil, fmt.Errorf("replication: certificate is for %q, node is %q", cn.Subject.CommonName, cfg.ID)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("replication: data dir: %w", err)
	}
	hl := hclogFor(cfg.Logger, cfg.ID)
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("replication: open log store: %w", err)
	}
	logs, err := raft.NewLogCache(512, bolt)
	if err != nil {
		bolt.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, max(cfg.SnapshotRetain, 1), hl)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("replication: snapshot store: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("replication: listen: %w", err)
	}
	advertise := ln.Addr()
	if cfg.WrapListener != nil {
		ln = cfg.WrapListener(ln)
	}
	if cfg.AdvertiseAddr != "" {
		if advertise, err = net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr); err != nil {
			ln.Close()
			bolt.Close()
			return nil, fmt.Errorf("replication: advertise address: %w", err)
		}
	}
	cfg.AdvertiseAddr = advertise.String()
	layer := newTLSLayer(ln, advertise, cfg.TLS.tlsConfig(), newTransportMetrics(cfg.Registerer))
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hl,
	})
	pool := newConnPool()
	n, err := newNode(cfg, fsm, stores{logs: logs, stable: bolt, snaps: snaps}, trans, &tlsForwarder{layer: layer, cluster: cfg.ClusterID, pool: pool}, hl)
	if err != nil {
		trans.Close()
		layer.wait()
		bolt.Close()
		return nil, err
	}
	h := n.serveControl
	layer.control.Store(&h)
	n.layer = layer
	n.closers = append(n.closers, bolt.Close, func() error { err := trans.Close(); layer.wait(); return err }, pool.close)
	n.logger.Info("replication node listening", "addr", cfg.AdvertiseAddr, "cluster", cfg.ClusterID)
	return n, nil
}

// Addr returns the address other nodes reach this node at.
func (n *Node) Addr() string { return string(n.localAddr()) }

// KeyExchange returns the key exchange negotiated by the latest TLS
// handshake with a peer ("X25519MLKEM768" by default), or "" before any.
func (n *Node) KeyExchange() string {
	if n.layer == nil {
		return ""
	}
	s, _ := n.layer.lastKEX.Load().(string)
	return s
}

// Join asks the cluster, through any member at one of seeds, to admit this
// node as a non-voter, proving that it holds the cluster's root of trust:
// an HMAC under Config.TrustKey over the cluster id, the node's id,
// address and zone, and keying material exported from the very TLS
// session the request travels in. A member that is not the leader names
// the leader and Join follows. Join retries until ctx ends; ErrTrust (a
// wrong proof, or a certificate either side refuses) and ErrOtherCluster
// are final.
func (n *Node) Join(ctx context.Context, seeds ...string) error {
	if n.layer == nil {
		return errors.New("replication: Join needs a network node (Open)")
	}
	f := &tlsForwarder{layer: n.layer, cluster: n.cfg.ClusterID}
	var last error
	for attempt := 0; ; attempt++ {
		for i := 0; i < len(seeds); i++ {
			addr := seeds[i]
			j := &joinRequest{ID: n.cfg.ID, Address: n.Addr(), Zone: n.cfg.Zone}
			resp, err := f.call(ctx, addr, controlRequest{Op: "join", Join: j}, func(tc *tls.Conn) error {
				if err := tc.HandshakeContext(ctx); err != nil {
					return fmt.Errorf("%w: %w", ErrNoLeader, err)
				}
				p, err := joinProof(n.cfg.TrustKey, n.cfg.ClusterID, j, tc.ConnectionState())
				j.Proof = p
				return err
			})
			if err == nil {
				n.logger.Info("joined cluster as non-voter", "via", addr)
				return nil
			}
			if errors.Is(err, ErrTrust) || errors.Is(err, ErrOtherCluster) {
				return err
			}
			last = err
			if resp.Leader != "" && resp.Leader != addr && len(seeds) < 16 {
				seeds = append(seeds, resp.Leader)
			}
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("replication: join: %w (last error: %v)", err, last)
		}
	}
}
