// Package replication is tresor's Raft layer (DESIGN.md section 5): a Node
// runs hashicorp/raft over a state machine of its own choosing (FSM; the
// keystore is the one tresor runs), persists raft's log and stable state in
// raft-boltdb (bbolt) and its snapshots in files, and talks to the other
// nodes over mutual TLS 1.3. It knows nothing of the keystore: the keystore
// imports it, never the reverse.
//
// # Files
//
//	config.go      Config, DefaultConfig, Validate
//	node.go        Node: Propose (forwarded to the leader from a follower),
//	               ReadIndex, WaitApplied, CheckStaleness, Snapshot, Close
//	membership.go  Bootstrap (exactly once), zones, AddNonvoter, Promote,
//	               Demote, Remove, TransferLeadership, CheckPlacement
//	fsm.go         the FSM interface and the raft.BatchingFSM adapter that
//	               carries zones and binds snapshots to the cluster id
//	ca.go          the cluster CA: NewCA, Issue, ClusterID, Credentials
//	               (SignCSR in admin.go: a certificate for a joiner's key)
//	admin.go       operating from any member: ChangeMembership (promote,
//	               remove, transfer leadership, forwarded to the leader),
//	               Status and ClusterStatus (each member's own view)
//	transport.go   raft's StreamLayer over mutual TLS 1.3, multiplexed with
//	               the control protocol; key exchange metric
//	control.go     control calls (join with proof of the root of trust,
//	               write forwarding, read index, membership, status) and Open
//	connpool.go    the control connections a node keeps between calls
//	testing.go     an in-memory cluster with partition controls and a
//	               History recorder for linearizability checks
//
// # Trust
//
// The cluster CA is the cluster's network identity. Every node holds a
// certificate it issued (common name = node id, ExtKeyUsage server and
// client, DNS name node.tresor.internal) and accepts peers only by chain to
// it, with TLS 1.3 and client certificates required. The cluster id is the
// first 16 bytes of SHA-256 over the CA's public key, so it cannot be
// chosen and two clusters do not share one by accident.
//
// A certificate alone does not admit a node. Join sends, over a control
// connection, the node's id, address and zone with an HMAC-SHA256 under
// Config.TrustKey (keystore.DeriveTrustKey: derived from the keystore root
// key, the cluster's root of trust) over those fields, the cluster id, and
// 32 bytes exported from that very TLS session (RFC 8446 section 7.5), so a
// proof is useless on any other connection. The leader checks the proof,
// that the id is the certificate's common name, and the cluster id, then
// records the zone and adds the node as a non-voter. An operator promotes
// it once it has caught up; a node that cannot read the keystore (no root
// key) thus never becomes a member.
//
// # Zones
//
// Raft's configuration holds only ids and addresses, so zones are kept in
// the replicated log: entries of kind "meta" set or delete a node's zone,
// every node applies them into a map (Node.Zones, Node.Servers), and the
// map travels inside snapshots. CheckPlacement says whether losing one
// zone would lose the voters' quorum (3 voters in 3 zones, 5 as 2-2-1).
//
// # Log entries
//
// Every raft command starts with a kind byte: 1 is an FSM command, 2 a
// metadata change (JSON). Unknown kinds panic on apply, as an unknown
// keystore op does: a replica must stop rather than diverge.
//
// # Snapshots
//
// Node snapshots are "TRSRREPL" | version 1 | uvarint length | JSON
// {cluster, applied, zones} | the FSM's own snapshot. Restore refuses a
// snapshot whose cluster id is not this cluster's (ErrOtherCluster) before
// the FSM sees it; the keystore additionally binds the cluster id into its
// authenticated, encrypted snapshot.
//
// # Reads
//
// ReadIndex is the linearizable read point: the leader confirms leadership
// (VerifyLeader) and commits a barrier entry (hashicorp/raft has no read
// index RPC), and returns its applied index; a follower asks the leader
// and then waits until it has applied that index itself (WaitApplied).
// CheckStaleness is the bound for local reads: a follower that has not
// heard from a leader within the allowed staleness refuses them.
//
// # Write forwarding
//
// Propose on a follower forwards the entry to the leader over the control
// protocol on the same mTLS listener; the leader applies it and returns
// the FSM's response and the index. ErrNoLeader and ErrNotLeader mean
// nothing was proposed; any other error leaves the outcome unknown and the
// caller retries with the same (idempotent) command.
//
// Control connections are kept between calls (connpool.go): a forwarded
// write or read index costs one round trip on an open connection instead
// of a TLS 1.3 handshake with the hybrid key exchange and two certificate
// chains to verify (dialing per call took about half of each node's CPU
// under a write load). A connection carries one call at a time;
// concurrent calls use concurrent connections. The callee checks
// membership on every call, as before, and stops taking calls on a
// connection when the caller's certificate expires; an idle connection is
// dropped by the caller after a minute and by the callee after two. A kept
// connection that turns out dead (the leader restarted) fails its call
// with an unknown outcome and takes the caller's other idle connections to
// that node with it, so the retry dials. The entries themselves are
// not batched by the follower: raft already gathers concurrent proposals
// into one append (BatchApplyCh); serving the calls costs the leader about
// a tenth of its CPU under a write load, most of it TLS record writes,
// which batching forwarded writes would cut if that ever matters.
//
// # Chaos tests
//
// chaos_test.go runs 3- and 5-node clusters over 3 zones in the in-memory
// cluster under testing/synctest: leader kills, minority and majority
// partitions, a zone cut off, flapping links, membership change under load
// and snapshot install to a lagging node, 80 seeds each (CHAOS_SEEDS=n for
// more, -short for fewer). Each seed checks that no acknowledged write is
// lost or applied twice, that all members converge to the same state and
// zones, and that the history of writes and linearizable reads passes
// github.com/anishathalye/porcupine.
package replication
