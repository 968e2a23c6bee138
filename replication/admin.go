package replication

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Operating a cluster from any node. Membership changes and leadership
// transfer are leader-only in raft; ChangeMembership carries them to the
// leader over the control protocol (call "membership", members only), as
// Propose carries writes. ClusterStatus asks every member for its own view
// (call "status"), because only a node knows its applied index and when it
// last heard from the leader.

// MembershipOp names a change ChangeMembership asks the leader for.
type MembershipOp string

// Membership operations.
const (
	// OpPromote makes a non-voter a voter (Promote).
	OpPromote MembershipOp = "promote"
	// OpRemove takes a member out of the cluster (Remove).
	OpRemove MembershipOp = "remove"
	// OpTransferLeadership hands leadership to a voter, or to any
	// up-to-date voter for an empty id (TransferLeadership).
	OpTransferLeadership MembershipOp = "transfer-leadership"
)

type membershipChange struct {
	Op MembershipOp `json:"op"`
	ID string       `json:"id"`
}

// ChangeMembership carries out op for node id on the leader, from any
// member: locally if this node leads, else forwarded over the control
// protocol. It retries through elections (ErrNoLeader, ErrNotLeader) until
// ctx ends. Promote and transfer are idempotent; Remove of a node that is
// no longer a member fails.
func (n *Node) ChangeMembership(ctx context.Context, op MembershipOp, id string) error {
	switch op {
	case OpPromote, OpRemove:
		if id == "" {
			return fmt.Errorf("replication: %s needs a node id", op)
		}
	case OpTransferLeadership:
	default:
		return fmt.Errorf("replication: unknown membership operation %q", op)
	}
	for {
		var err error
		if n.IsLeader() {
			err = n.changeLocal(ctx, membershipChange{Op: op, ID: id})
		} else if _, addr := n.Leader(); addr == "" {
			err = ErrNoLeader
		} else if n.layer == nil {
			return ErrNotLeader
		} else {
			f := &tlsForwarder{layer: n.layer, cluster: n.cfg.ClusterID}
			_, err = f.call(ctx, addr, controlRequest{Op: "membership", Change: &membershipChange{Op: op, ID: id}}, nil)
		}
		if err == nil || !(errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader)) {
			return err
		}
		if serr := sleepCtx(ctx, retryBackoff); serr != nil {
			return fmt.Errorf("%w (last error: %v)", serr, err)
		}
	}
}

func (n *Node) changeLocal(ctx context.Context, c membershipChange) error {
	switch c.Op {
	case OpPromote:
		return n.Promote(ctx, c.ID)
	case OpRemove:
		return n.Remove(ctx, c.ID)
	case OpTransferLeadership:
		if c.ID == n.cfg.ID {
			return nil // already leads
		}
		return n.TransferLeadership(ctx, c.ID)
	}
	return fmt.Errorf("replication: unknown membership operation %q", c.Op)
}

// NodeStatus is one node's own view of itself and the cluster.
type NodeStatus struct {
	ID      string `json:"id"`
	Zone    string `json:"zone"`
	Address string `json:"address"`
	// State is raft's: Leader, Follower, Candidate or Shutdown.
	State string `json:"state"`
	// Leader is the leader's id as this node knows it; empty if none.
	Leader string `json:"leader,omitempty"`
	Term   uint64 `json:"term"`
	// AppliedIndex is the last entry this node's FSM applied;
	// CommitIndex the last it knows committed; LastLogIndex the last in
	// its log.
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	LastLogIndex uint64 `json:"last_log_index"`
	// LastContact is when the node last heard from a leader (now on the
	// leader, zero if never).
	LastContact time.Time `json:"last_contact,omitzero"`
}

// Status returns this node's view of itself.
func (n *Node) Status() NodeStatus {
	stats := n.raft.Stats()
	num := func(k string) uint64 { v, _ := strconv.ParseUint(stats[k], 10, 64); return v }
	leader, _ := n.Leader()
	return NodeStatus{
		ID: n.cfg.ID, Zone: n.cfg.Zone, Address: n.Addr(),
		State: n.raft.State().String(), Leader: leader, Term: num("term"),
		AppliedIndex: n.AppliedIndex(), CommitIndex: num("commit_index"), LastLogIndex: num("last_log_index"),
		LastContact: n.LastContact(),
	}
}

// MemberStatus is a member of the configuration with its own status, or
// the error that kept this node from asking it.
type MemberStatus struct {
	Server
	Status *NodeStatus `json:"status,omitempty"`
	Err    string      `json:"error,omitempty"`
}

// statusTimeout bounds the status call to one member, so a dead member
// shows as unreachable instead of holding up the whole answer.
const statusTimeout = 2 * time.Second

// ClusterStatus returns every member of the configuration as this node
// knows it, each with the status the member itself reports.
func (n *Node) ClusterStatus(ctx context.Context) ([]MemberStatus, error) {
	servers, err := n.Servers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]MemberStatus, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		out[i].Server = s
		if s.ID == n.cfg.ID {
			st := n.Status()
			out[i].Status = &st
			continue
		}
		if n.layer == nil {
			out[i].Err = "no network transport"
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, statusTimeout)
			defer cancel()
			f := &tlsForwarder{layer: n.layer, cluster: n.cfg.ClusterID}
			resp, err := f.call(cctx, s.Address, controlRequest{Op: "status"}, nil)
			if err != nil {
				out[i].Err = err.Error()
				return
			}
			var st NodeStatus
			if err := json.Unmarshal(resp.Data, &st); err != nil {
				out[i].Err = err.Error()
				return
			}
			out[i].Status = &st
		})
	}
	wg.Wait()
	return out, nil
}

// HasState reports whether the node holds any raft state (a log entry or a
// snapshot): a restarted member, as opposed to a fresh node that must still
// Bootstrap or Join.
func (n *Node) HasState() bool { return n.raft.LastIndex() > 0 }

// SignCSR issues a node certificate for the public key of a certificate
// signing request, whose signature must verify: the joining node keeps its
// private key. The common name is the node id; the request's IP addresses
// and DNS names are added to the fixed node name.
func (ca *CA) SignCSR(csr *x509.CertificateRequest, validity time.Duration) (*x509.Certificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("replication: certificate request: %w", err)
	}
	if csr.Subject.CommonName == "" {
		return nil, errors.New("replication: certificate request names no node id")
	}
	hosts := append([]string(nil), csr.DNSNames...)
	for _, ip := range csr.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	return ca.sign(csr.Subject.CommonName, hosts, csr.PublicKey, validity)
}
