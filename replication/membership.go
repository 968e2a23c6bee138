package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"
)

// Bootstrap creates the cluster with servers as its first members (usually
// just this node; others Join later) and records their zones. It runs
// exactly once in a cluster's life: a node that holds any raft state (log,
// snapshot or term) refuses with ErrBootstrapped, so a restarted or
// re-run bootstrap never forks a second cluster.
func (n *Node) Bootstrap(ctx context.Context, servers ...Server) error {
	if len(servers) == 0 {
		servers = []Server{{ID: n.cfg.ID, Address: string(n.localAddr()), Zone: n.cfg.Zone, Voter: true}}
	}
	var conf raft.Configuration
	for _, s := range servers {
		suf := raft.Voter
		if !s.Voter {
			suf = raft.Nonvoter
		}
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: suf, ID: raft.ServerID(s.ID), Address: raft.ServerAddress(s.Address)})
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return ErrBootstrapped
		}
		return fmt.Errorf("replication: bootstrap: %w", err)
	}
	n.logger.Info("cluster bootstrapped", "cluster", n.cfg.ClusterID, "servers", len(servers))
	for _, s := range servers {
		if err := n.SetZone(ctx, s.ID, s.Zone); err != nil {
			return fmt.Errorf("replication: bootstrap: record zone of %s: %w", s.ID, err)
		}
	}
	return nil
}

func (n *Node) localAddr() raft.ServerAddress {
	if a := n.cfg.AdvertiseAddr; a != "" {
		return raft.ServerAddress(a)
	}
	return raft.ServerAddress(n.cfg.BindAddr)
}

// SetZone records node id's zone in the replicated zone map, retrying
// through elections until ctx ends (the change is idempotent).
func (n *Node) SetZone(ctx context.Context, id, zone string) error {
	if zone == "" {
		return errors.New("replication: empty zone")
	}
	return n.proposeMeta(ctx, metaChange{ID: id, Zone: zone})
}

func (n *Node) proposeMeta(ctx context.Context, m metaChange) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	data := append([]byte{kindMeta}, b...)
	for {
		_, _, perr := n.proposeRaw(ctx, data)
		if perr == nil {
			return nil
		}
		if err := sleepCtx(ctx, retryBackoff); err != nil {
			return fmt.Errorf("%w (last error: %v)", err, perr)
		}
	}
}

// retryBackoff is the pause between retries of an idempotent proposal while
// an election runs (raft elects within about two election timeouts).
const retryBackoff = 50 * time.Millisecond

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Zones returns the replicated zone map (node id -> zone) as this node has
// applied it.
func (n *Node) Zones() map[string]string { return n.fsm.zoneMap() }

// Servers returns the cluster's members with their zones, as of the latest
// configuration this node knows.
func (n *Node) Servers(ctx context.Context) ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := wait(ctx, f); err != nil {
		return nil, err
	}
	zones := n.Zones()
	_, leader := n.raft.LeaderWithID()
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{
			ID: string(s.ID), Address: string(s.Address), Zone: zones[string(s.ID)],
			Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// AddNonvoter admits node id at addr in zone as a non-voter: it receives
// the log and serves local reads but does not count for quorum until
// Promote. Leader only. Over the network, nodes reach it through Join,
// which checks the joiner's proof of the root of trust first.
func (n *Node) AddNonvoter(ctx context.Context, id, addr, zone string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if err := n.SetZone(ctx, id, zone); err != nil {
		return err
	}
	err := wait(ctx, n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, enqueueTimeout(ctx)))
	if err != nil {
		return leaderErr(err)
	}
	n.logger.Info("node joined as non-voter", "joined", id, "joined_zone", zone)
	return nil
}

// Promote makes member id a voter. Leader only. Promote a non-voter once
// it has caught up (its applied index is near the leader's), so the quorum
// never waits for a node still installing a snapshot.
func (n *Node) Promote(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	s, err := n.member(ctx, id)
	if err != nil {
		return err
	}
	if err := wait(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(s.Address), 0, enqueueTimeout(ctx))); err != nil {
		return leaderErr(err)
	}
	n.logger.Info("node promoted to voter", "promoted", id)
	return nil
}

// Demote makes voter id a non-voter. Leader only.
func (n *Node) Demote(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	return leaderErr(wait(ctx, n.raft.DemoteVoter(raft.ServerID(id), 0, enqueueTimeout(ctx))))
}

// Remove takes member id out of the cluster and forgets its zone. Leader
// only; removing the leader itself makes it step down once the change
// commits.
func (n *Node) Remove(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if _, err := n.member(ctx, id); err != nil {
		return err
	}
	if err := wait(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, enqueueTimeout(ctx))); err != nil {
		return leaderErr(err)
	}
	n.logger.Info("node removed", "removed", id)
	if id == n.cfg.ID {
		return nil
	}
	return n.proposeMeta(ctx, metaChange{ID: id, Delete: true})
}

// TransferLeadership hands leadership to voter id (any up-to-date voter if
// id is empty) before a planned restart of the leader. Leader only.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		s, err := n.member(ctx, id)
		if err != nil {
			return err
		}
		if !s.Voter {
			return fmt.Errorf("replication: %s is not a voter", id)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(s.Address))
	}
	return leaderErr(wait(ctx, f))
}

func (n *Node) member(ctx context.Context, id string) (Server, error) {
	servers, err := n.Servers(ctx)
	if err != nil {
		return Server{}, err
	}
	for _, s := range servers {
		if s.ID == id {
			return s, nil
		}
	}
	return Server{}, fmt.Errorf("replication: %s is not a member", id)
}

// CheckPlacement returns an error if losing one zone would lose the
// voters' quorum: a zone holds a majority of voters, or a voter has no
// zone. Three voters belong in three zones, five in 2-2-1.
func CheckPlacement(servers []Server) error {
	perZone := map[string]int{}
	voters := 0
	for _, s := range servers {
		if !s.Voter {
			continue
		}
		if s.Zone == "" {
			return fmt.Errorf("replication: voter %s has no zone", s.ID)
		}
		voters++
		perZone[s.Zone]++
	}
	quorum := voters/2 + 1
	for z, c := range perZone {
		if voters > 1 && voters-c < quorum {
			return fmt.Errorf("replication: zone %s holds %d of %d voters; losing it loses the quorum", z, c, voters)
		}
	}
	return nil
}
