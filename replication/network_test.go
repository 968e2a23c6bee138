package replication

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// netNode is a node of a real-network test cluster.
type netNode struct {
	cfg  Config
	fsm  *kvFSM
	node *Node
}

func netConfig(t *testing.T, ca *CA, trust []byte, id, zone string) Config {
	t.Helper()
	creds, err := ca.Issue(id, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(id, zone, t.TempDir(), "127.0.0.1:0")
	cfg.TLS = creds
	cfg.TrustKey = trust
	cfg.HeartbeatTimeout = 300 * time.Millisecond
	cfg.ElectionTimeout = 300 * time.Millisecond
	cfg.LeaderLeaseTimeout = 150 * time.Millisecond
	cfg.CommitTimeout = 10 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

func (nn *netNode) open(t *testing.T) {
	t.Helper()
	nn.fsm = newKV()
	n, err := Open(context.Background(), nn.cfg, nn.fsm)
	if err != nil {
		t.Fatal(err)
	}
	nn.node = n
	nn.cfg.BindAddr = n.Addr() // a restart comes back on the same address
	nn.cfg.AdvertiseAddr = ""
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// put writes through n, retrying while no leader is known (as the
// keystore's RaftLog does; the request id makes retries safe).
func put(ctx context.Context, n *Node, key, val string) (uint64, error) {
	cmd, _ := json.Marshal(kvCmd{Req: val, Key: key, Val: val})
	for {
		_, idx, err := n.Propose(ctx, cmd)
		if err == nil || ctx.Err() != nil {
			return idx, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNetwork_ClusterLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("real network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ca, err := NewCA("tresor test cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	trust := make([]byte, 32)
	rand.Read(trust)
	reg := prometheus.NewRegistry()
	zones := []string{"eu-a", "eu-b", "eu-c"}
	nodes := make([]*netNode, 3)
	for i := range nodes {
		nodes[i] = &netNode{cfg: netConfig(t, ca, trust, fmt.Sprintf("n%d", i), zones[i])}
		if i == 0 {
			nodes[i].cfg.Registerer = reg
		}
		nodes[i].open(t)
	}
	t.Cleanup(func() {
		for _, nn := range nodes {
			nn.node.Close()
		}
	})
	n0 := nodes[0].node
	if n0.ClusterID() != ca.ClusterID() {
		t.Fatalf("cluster id %s, CA says %s", n0.ClusterID(), ca.ClusterID())
	}

	// Bootstrap exactly once.
	if err := n0.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n0.Bootstrap(ctx); !errors.Is(err, ErrBootstrapped) {
		t.Fatalf("second bootstrap: %v, want ErrBootstrapped", err)
	}
	poll(t, "n0 to lead", n0.IsLeader)

	// Join as non-voters, proving the root of trust, then promote.
	for _, nn := range nodes[1:] {
		if err := nn.node.Join(ctx, n0.Addr()); err != nil {
			t.Fatalf("join %s: %v", nn.cfg.ID, err)
		}
	}
	servers, err := n0.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers[1:] {
		if s.Voter {
			t.Fatalf("%s joined as a voter", s.ID)
		}
	}
	for _, nn := range nodes[1:] {
		if err := n0.Promote(ctx, nn.cfg.ID); err != nil {
			t.Fatal(err)
		}
	}
	servers, _ = n0.Servers(ctx)
	for i, s := range servers {
		if !s.Voter || s.Zone != zones[i] {
			t.Fatalf("server %+v: want a voter in %s", s, zones[i])
		}
	}
	if err := CheckPlacement(servers); err != nil {
		t.Fatal(err)
	}

	// Writes through a follower are forwarded to the leader over mTLS;
	// a linearizable read on another follower sees them.
	idx, err := put(ctx, nodes[1].node, "k", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].node.LinearizableBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := nodes[2].fsm.get("k"); got != "v1" {
		t.Fatalf("linearizable read on n2: %q", got)
	}
	if nodes[2].node.AppliedIndex() < idx {
		t.Fatal("read index below the write")
	}

	// The negotiated key exchange is the hybrid post-quantum one and is
	// exported as a metric.
	if kex := n0.KeyExchange(); kex != "X25519MLKEM768" {
		t.Errorf("key exchange %q, want X25519MLKEM768", kex)
	}
	if c := handshakes(t, reg, "key_exchange", "X25519MLKEM768"); c < 1 {
		t.Errorf("handshake metric %v", c)
	}

	// Kill and restart a follower: it comes back from raft-boltdb and
	// catches up.
	if err := nodes[2].node.Close(); err != nil {
		t.Fatal(err)
	}
	idx, err = put(ctx, n0, "k", "v2")
	if err != nil {
		t.Fatal(err)
	}
	nodes[2].open(t)
	if err := nodes[2].node.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}
	if got := nodes[2].fsm.get("k"); got != "v2" {
		t.Fatalf("restarted node reads %q", got)
	}
	if err := nodes[2].node.Bootstrap(ctx); !errors.Is(err, ErrBootstrapped) {
		t.Fatalf("bootstrap on a restarted node: %v", err)
	}
	if z := nodes[2].node.Zones()["n0"]; z != "eu-a" {
		t.Fatalf("restarted node knows n0 in zone %q", z)
	}

	// Leadership transfer before a planned restart of the leader.
	if err := n0.TransferLeadership(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	poll(t, "n1 to lead", nodes[1].node.IsLeader)
	if _, err := put(ctx, n0, "k", "v3"); err != nil {
		t.Fatalf("write through the old leader: %v", err)
	}

	// Removal.
	if err := nodes[1].node.Remove(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	servers, _ = nodes[1].node.Servers(ctx)
	if len(servers) != 2 {
		t.Fatalf("after removal: %+v", servers)
	}
	if _, ok := nodes[1].node.Zones()["n2"]; ok {
		t.Fatal("removed node's zone is still recorded")
	}
}

func TestNetwork_RefusesStrangers(t *testing.T) {
	if testing.Short() {
		t.Skip("real network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca, _ := NewCA("cluster", time.Hour)
	trust := make([]byte, 32)
	rand.Read(trust)
	leader := &netNode{cfg: netConfig(t, ca, trust, "n0", "eu-a")}
	leader.open(t)
	defer leader.node.Close()
	if err := leader.node.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, "leader", leader.node.IsLeader)

	t.Run("certificate from another CA", func(t *testing.T) {
		other, _ := NewCA("cluster", time.Hour)
		nn := &netNode{cfg: netConfig(t, other, trust, "x1", "eu-b")}
		nn.cfg.ClusterID = ""
		nn.open(t)
		defer nn.node.Close()
		if err := nn.node.Join(ctx, leader.node.Addr()); !errors.Is(err, ErrTrust) {
			t.Fatalf("join with a certificate of another CA: %v, want ErrTrust", err)
		}
		servers, _ := leader.node.Servers(ctx)
		if len(servers) != 1 {
			t.Fatalf("members: %+v", servers)
		}
	})
	t.Run("wrong root of trust", func(t *testing.T) {
		wrong := make([]byte, 32)
		rand.Read(wrong)
		nn := &netNode{cfg: netConfig(t, ca, wrong, "x2", "eu-b")}
		nn.open(t)
		defer nn.node.Close()
		err := nn.node.Join(ctx, leader.node.Addr())
		if !errors.Is(err, ErrTrust) {
			t.Fatalf("join with a wrong trust key: %v, want ErrTrust", err)
		}
	})
	t.Run("id that is not the certificate's", func(t *testing.T) {
		cfg := netConfig(t, ca, trust, "x3", "eu-b")
		cfg.ID = "n9"
		if _, err := Open(ctx, cfg, newKV()); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("open with a foreign certificate: %v", err)
		}
	})
}

// handshakes sums the TLS handshakes in reg whose label name has value
// (key_exchange X25519MLKEM768, direction out, ...).
func handshakes(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "tresor_replication_tls_handshakes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == name && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func TestNetwork_NonMemberCannotPropose(t *testing.T) {
	if testing.Short() {
		t.Skip("real network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca, _ := NewCA("cluster", time.Hour)
	trust := make([]byte, 32)
	rand.Read(trust)
	leader := &netNode{cfg: netConfig(t, ca, trust, "n0", "eu-a")}
	leader.open(t)
	defer leader.node.Close()
	if err := leader.node.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, "leader", leader.node.IsLeader)
	// A node with a valid certificate that never joined.
	outsider := &netNode{cfg: netConfig(t, ca, trust, "x1", "eu-b")}
	outsider.open(t)
	defer outsider.node.Close()
	f := &tlsForwarder{layer: outsider.node.layer, cluster: outsider.node.ClusterID()}
	cmd, _ := json.Marshal(kvCmd{Req: "r", Key: "k", Val: "evil"})
	if _, _, err := f.forward(ctx, raft.ServerAddress(leader.node.Addr()), append([]byte{kindCommand}, cmd...)); !errors.Is(err, ErrTrust) {
		t.Fatalf("forward from a non-member: %v, want ErrTrust", err)
	}
	if got := leader.fsm.get("k"); got != "" {
		t.Fatalf("non-member wrote %q", got)
	}
}
