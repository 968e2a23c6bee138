package replication

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// leaderAndFollower starts a leader and a joined (non-voting) follower
// whose metrics go to the returned registry.
func leaderAndFollower(t *testing.T, ctx context.Context) (leader, follower *netNode, reg *prometheus.Registry) {
	t.Helper()
	ca, err := NewCA("tresor test cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	trust := make([]byte, 32)
	rand.Read(trust)
	reg = prometheus.NewRegistry()
	leader = &netNode{cfg: netConfig(t, ca, trust, "n0", "eu-a")}
	follower = &netNode{cfg: netConfig(t, ca, trust, "n1", "eu-b")}
	follower.cfg.Registerer = reg
	leader.open(t)
	follower.open(t)
	t.Cleanup(func() {
		follower.node.Close()
		leader.node.Close()
	})
	if err := leader.node.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, "n0 to lead", leader.node.IsLeader)
	if err := follower.node.Join(ctx, leader.node.Addr()); err != nil {
		t.Fatal(err)
	}
	poll(t, "n1 to know the leader", func() bool { id, _ := follower.node.Leader(); return id == "n0" })
	return leader, follower, reg
}

// TestControl_ForwardsReuseOneConnection: writes forwarded one after the
// other pay one TLS handshake between them, not one each.
func TestControl_ForwardsReuseOneConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("real network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader, follower, reg := leaderAndFollower(t, ctx)
	const writes = 30
	before := handshakes(t, reg, "direction", "out")
	var last uint64
	for i := range writes {
		idx, err := put(ctx, follower.node, "k", fmt.Sprint("v", i))
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	// One dial for the first write; a raft election the follower might
	// start under a slow test run would add one more.
	if n := handshakes(t, reg, "direction", "out") - before; n > 2 {
		t.Errorf("%v handshakes for %d forwarded writes, want the connection kept", n, writes)
	}
	if err := leader.node.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	if got, want := leader.fsm.get("k"), fmt.Sprint("v", writes-1); got != want {
		t.Fatalf("leader reads %q after the forwarded writes, want %q", got, want)
	}
}

// TestControl_ForwardAfterLeaderRestart: the follower's kept connection
// dies with the leader's process; the next forwarded write fails with an
// unknown outcome (never a false ErrNoLeader) and its retry dials anew.
func TestControl_ForwardAfterLeaderRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("real network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader, follower, _ := leaderAndFollower(t, ctx)
	if _, err := put(ctx, follower.node, "k", "before"); err != nil {
		t.Fatal(err)
	}
	// Closing the leader must not wait for the follower's idle kept
	// connection to time out (controlIdleTimeout is minutes).
	if err := leader.node.Close(); err != nil {
		t.Fatal(err)
	}
	leader.open(t)
	poll(t, "n0 to lead again", leader.node.IsLeader)
	poll(t, "n1 to know the leader", func() bool { id, _ := follower.node.Leader(); return id == "n0" })
	idx, err := put(ctx, follower.node, "k", "after")
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.node.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}
	if got := leader.fsm.get("k"); got != "after" {
		t.Fatalf("leader reads %q", got)
	}
}

// TestControl_KeptConnectionAndOneShotCallers: the callee answers several
// calls on one connection, saying each time that it reads another, and a
// caller that closes after one call (a node of the previous version, or
// a join) is served as before.
func TestControl_KeptConnectionAndOneShotCallers(t *testing.T) {
	if testing.Short() {
		t.Skip("real network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader, follower, _ := leaderAndFollower(t, ctx)
	addr := leader.node.Addr()
	tc, err := follower.node.layer.dial(ctx, addr, protoControl)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	for i := range 3 {
		if err := writeFrame(tc, controlRequest{Op: "read-index", Cluster: leader.node.ClusterID()}); err != nil {
			t.Fatal(err)
		}
		var resp controlResponse
		if err := readFrame(tc, &resp); err != nil {
			t.Fatalf("call %d on the kept connection: %v", i, err)
		}
		if resp.Err != "" || resp.Index == 0 || !resp.Keep {
			t.Fatalf("call %d: %+v, want an index and keep", i, resp)
		}
	}
	oneShot := &tlsForwarder{layer: follower.node.layer, cluster: follower.node.ClusterID()}
	for range 2 {
		if _, err := oneShot.readIndex(ctx, raft.ServerAddress(addr)); err != nil {
			t.Fatalf("one-shot caller: %v", err)
		}
	}
}
