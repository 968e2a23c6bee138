package replication

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Node. DefaultConfig fills the defaults; Validate
// explains what is wrong.
type Config struct {
	// ID names the node in the cluster, for good: raft's server id. It must
	// match the common name of the node's certificate.
	ID string
	// Zone is the node's failure domain (a data centre or availability
	// zone). Every node carries one; voters are spread one per zone (3 nodes)
	// or 2-2-1 (5 nodes) so losing a zone keeps a quorum.
	Zone string
	// ClusterID names the cluster. With TLS it is ClusterID(CA): derived
	// from the cluster CA, so two clusters never share one by accident.
	// Snapshots and join requests carry it and are refused elsewhere.
	ClusterID string
	// TrustKey is a secret derived from the cluster's root of trust (the
	// keystore root key: keystore.DeriveTrustKey). A node proves it holds
	// it before it is admitted as a non-voter (see Join). Required with TLS.
	TrustKey []byte

	// DataDir holds raft's log and stable store (raft.db, bbolt through
	// raft-boltdb) and its snapshots (snapshots/).
	DataDir string
	// BindAddr is the host:port the node listens on for raft traffic and
	// the cluster's control calls (join, write forwarding, read index),
	// all over mutual TLS 1.3.
	BindAddr string
	// AdvertiseAddr is the address other nodes dial. Empty means BindAddr.
	AdvertiseAddr string
	// WrapListener, if set, wraps the raft listener before TLS, for
	// example to close connections from addresses outside the cluster's
	// IP allowlist (auth.FilterListener).
	WrapListener func(net.Listener) net.Listener
	// TLS is the node's certificate and the cluster CA.
	TLS *Credentials

	// HeartbeatTimeout and ElectionTimeout are raft's: a follower that has
	// not heard from the leader within HeartbeatTimeout starts an election.
	// Tune them to the zones' round trip (DESIGN.md section 5: with 1 s,
	// writes resume about 2 s after losing the leader).
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without hearing
	// from a quorum.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds how long a follower waits to learn of a commit
	// without new entries.
	CommitTimeout time.Duration
	// SnapshotInterval and SnapshotThreshold decide when raft snapshots the
	// FSM and truncates its log; TrailingLogs entries stay behind so a
	// briefly lagging follower catches up from the log, not a snapshot.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotRetain is how many snapshots stay on disk.
	SnapshotRetain int

	// Logger receives the node's and raft's messages. Nil discards.
	Logger *slog.Logger
	// Registerer receives the node's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
}

// DefaultConfig returns a configuration for node id in zone with raft's
// timing for zones a few milliseconds apart.
func DefaultConfig(id, zone, dataDir, bindAddr string) Config {
	return Config{
		ID:                 id,
		Zone:               zone,
		DataDir:            dataDir,
		BindAddr:           bindAddr,
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotInterval:   2 * time.Minute,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
	}
}

// Validate explains what is wrong with c. Network-only fields are checked
// by Open.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("replication: ID is empty"))
	}
	if c.Zone == "" {
		errs = append(errs, errors.New("replication: Zone is empty: every node carries a zone label"))
	}
	if c.ClusterID == "" {
		errs = append(errs, errors.New("replication: ClusterID is empty"))
	}
	if c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond {
		errs = append(errs, fmt.Errorf("replication: HeartbeatTimeout %v and ElectionTimeout %v must be at least 5ms", c.HeartbeatTimeout, c.ElectionTimeout))
	}
	if c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("replication: LeaderLeaseTimeout %v must be positive and at most HeartbeatTimeout", c.LeaderLeaseTimeout))
	}
	if c.CommitTimeout <= 0 {
		errs = append(errs, errors.New("replication: CommitTimeout must be positive"))
	}
	if c.SnapshotInterval <= 0 || c.SnapshotThreshold == 0 {
		errs = append(errs, errors.New("replication: SnapshotInterval and SnapshotThreshold must be positive"))
	}
	return errors.Join(errs...)
}

func (c Config) validateNetwork() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("replication: DataDir is empty"))
	}
	if c.BindAddr == "" {
		errs = append(errs, errors.New("replication: BindAddr is empty"))
	}
	if c.TLS == nil {
		errs = append(errs, errors.New("replication: TLS credentials are required: nodes talk over mutual TLS only"))
	}
	if len(c.TrustKey) < 32 {
		errs = append(errs, errors.New("replication: TrustKey must hold at least 32 bytes"))
	}
	return errors.Join(errs...)
}
