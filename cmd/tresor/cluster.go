package main

// `tresor serve` in a cluster (DESIGN.md section 5).
//
// One node stays the default: with no cluster flag, and no cluster state in
// the data directory, the keystore runs on its LocalLog exactly as before:
// no extra listener, no certificates, synchronous Badger writes. A one-node
// Raft cluster was not chosen as the default because it buys nothing a
// single node needs and costs a third port, a CA and a second fsync path;
// and it would not make growing easier: a keystore that applied entries from
// the LocalLog cannot join Raft's numbering anyway (its applied index would
// make it skip Raft's first entries), so both modes refuse the other's data
// directory with an explanation instead of diverging.
//
// With cluster flags (--node-id, --zone, --raft-listen, --join) the keystore
// runs on a replication.Node. The choice is sticky: the node's settings are
// written to <data-dir>/cluster/node.json at first start, and a restart
// with no flags runs the same node again.
//
// Layout of <data-dir>/cluster:
//
//	node.json  node id, zone, raft address, cluster id, join seeds (0600)
//	ca.crt     the cluster CA certificate (its key's hash is the cluster id)
//	ca.key     the cluster CA key, sealed under the root key (0600): every
//	           member holds it, so every member can enroll new nodes (see
//	           enroll.go)
//	node.crt   this node's certificate, issued by the CA (CN = node id)
//	node.key   this node's key, sealed under the root key (0600); it never
//	           leaves the node
//
// The two keys are sealed so that a copy of the data directory without the
// root key holds no usable TLS key (cluster_keys.go).
//	raft/      raft.db (log and stable store) and snapshots/
//
// First node (no --join): creates the CA and its own certificate,
// bootstraps Raft once (replication refuses a second bootstrap, so restarts
// are safe) and becomes leader of a one-voter cluster.
//
// Joining node (--join ADMIN-ADDR): enrolls through the admin listener of any
// member (enroll.go), opens its Raft node and Joins as a non-voter with the
// replication package's own proof of the root of trust. Once it has caught
// up (a linearizable barrier through the leader has been applied locally)
// it promotes itself if its zone has no voter yet: the first node of each
// zone becomes a voter, further nodes of a zone stay non-voters (local
// readers) until an operator runs `tresor cluster promote NODE` (the 2-2-1
// layout of five voters is an operator's decision).

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/internal/atomicfile"
	"github.com/tresor-gw/tresor/keystore"
	"github.com/tresor-gw/tresor/replication"
)

// ClusterConfig places the node in a cluster. All empty means a single
// node.
type ClusterConfig struct {
	// NodeID names the node for good (raft's server id, its certificate's
	// common name).
	NodeID string `toml:"node_id"`
	// Zone is the node's failure domain.
	Zone string `toml:"zone"`
	// RaftListen is where the node listens for raft and cluster control
	// traffic (mutual TLS 1.3); default 127.0.0.1:9002.
	RaftListen string `toml:"raft_listen"`
	// RaftAdvertise is the address other nodes dial; empty means
	// RaftListen, which must then name a host.
	RaftAdvertise string `toml:"raft_advertise"`
	// Join is the admin address (host:port) of a member to enroll through.
	// Empty on the first node, which bootstraps the cluster.
	Join string `toml:"join"`
}

// defaultRaftListen is the raft listener's default, beside the S3 (9000)
// and admin (9001) listeners.
const defaultRaftListen = "127.0.0.1:9002"

// Validity of the cluster CA and of node certificates. Certificates are not
// rotated yet; ten years keeps that a planned task, not an outage.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	nodeValidity = 10 * 365 * 24 * time.Hour
)

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func (c ClusterConfig) enabled() bool { return c != ClusterConfig{} }

// validate explains what is wrong with a cluster configuration that is in
// use.
func (c ClusterConfig) validate() error {
	if !c.enabled() {
		return nil
	}
	var errs []error
	if !nodeIDPattern.MatchString(c.NodeID) {
		errs = append(errs, fmt.Errorf("node_id %q: a cluster node needs an id of 1 to 63 letters, digits, '.', '_' or '-'", c.NodeID))
	}
	if c.Zone == "" {
		errs = append(errs, errors.New("zone is empty: every cluster node carries a zone"))
	}
	for name, addr := range map[string]string{"raft_listen": c.RaftListen, "raft_advertise": c.RaftAdvertise, "join": c.Join} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not host:port: %w", name, addr, err))
		}
	}
	return errors.Join(errs...)
}

// advertise returns the raft address other nodes dial.
func (c ClusterConfig) advertise() (string, error) {
	addr := c.RaftAdvertise
	if addr == "" {
		addr = c.RaftListen
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "", fmt.Errorf("raft address %q names no host other nodes can dial: give --raft-advertise", addr)
	}
	return addr, nil
}

// clusterFlags are serve's cluster flags.
type clusterFlags struct{ nodeID, zone, raftListen, raftAdvertise, join *string }

func addClusterFlags(fs *flag.FlagSet) clusterFlags {
	return clusterFlags{
		nodeID:        fs.String("node-id", "", "cluster: this node's `id` (enables cluster mode)"),
		zone:          fs.String("zone", "", "cluster: this node's `zone` (failure domain)"),
		raftListen:    fs.String("raft-listen", "", "cluster: raft listener `address` (default "+defaultRaftListen+")"),
		raftAdvertise: fs.String("raft-advertise", "", "cluster: raft `address` other nodes dial (default --raft-listen)"),
		join:          fs.String("join", "", "cluster: admin `address` (host:port) of a member to join through; omit on the first node"),
	}
}

// apply sets the flags given on the command line over c, and the raft
// listener's default once cluster mode is on.
func (f clusterFlags) apply(c *ClusterConfig) {
	for dst, v := range map[*string]string{&c.NodeID: *f.nodeID, &c.Zone: *f.zone, &c.RaftListen: *f.raftListen, &c.RaftAdvertise: *f.raftAdvertise, &c.Join: *f.join} {
		if v != "" {
			*dst = v
		}
	}
	if c.enabled() && c.RaftListen == "" {
		c.RaftListen = defaultRaftListen
	}
}

// nodeFile is <data-dir>/cluster/node.json: what a restarted node needs
// without flags.
type nodeFile struct {
	ID            string   `json:"id"`
	Zone          string   `json:"zone"`
	RaftListen    string   `json:"raft_listen"`
	RaftAdvertise string   `json:"raft_advertise"`
	ClusterID     string   `json:"cluster_id"`
	Join          string   `json:"join,omitempty"`
	Seeds         []string `json:"seeds,omitempty"`
}

// clusterNode is serve's side of a cluster member: set up before the
// keystore opens, started after.
type clusterNode struct {
	dir      string
	conf     nodeFile
	log      *slog.Logger
	rootKey  []byte
	trustKey []byte
	adminKey []byte
	ca       *replication.CA // nil if this node holds no CA key
	node     *replication.Node
	metrics  deferredRegisterer
	spent    usedChallenges
	// allowlists checks the cluster listener's IP allowlist once the
	// keystore is open (setAllowlists); until then every peer with a
	// cluster certificate is admitted.
	allowlists atomic.Pointer[auth.Allowlists]
	denials    atomic.Pointer[denials]

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// File names under <data-dir>/cluster.
const (
	clusterDirName = "cluster"
	nodeFileName   = "node.json"
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	nodeCertFile   = "node.crt"
	nodeKeyFile    = "node.key"
)

// clusterPlan is a cluster member's settings, checked by planCluster before
// the root key is read or unsealed: a sealed node reports a wrong flag
// before its share holders are called in.
type clusterPlan struct {
	dir     string
	conf    nodeFile
	restart bool // node.json was there: the node was a member before
}

// planCluster checks the node's cluster settings against the data
// directory. It returns nil for a single node.
func planCluster(cfg Config) (*clusterPlan, error) {
	dir := filepath.Join(cfg.DataDir, clusterDirName)
	cc := cfg.Cluster
	saved, err := readNodeFile(dir)
	if err != nil {
		return nil, err
	}
	if saved == nil && !cc.enabled() {
		if _, err := os.Stat(filepath.Join(dir, nodeCertFile)); err == nil {
			return nil, fmt.Errorf("%s holds a node certificate but no %s: give the cluster flags again", dir, nodeFileName)
		}
		return nil, nil // the single-node default
	}
	conf := nodeFile{ID: cc.NodeID, Zone: cc.Zone, RaftListen: cc.RaftListen, RaftAdvertise: cc.RaftAdvertise, Join: cc.Join}
	if saved != nil {
		// The node's identity is fixed at its first start: changing its id,
		// zone or address would need a remove and a new join.
		for name, pair := range map[string][2]string{
			"--node-id": {cc.NodeID, saved.ID}, "--zone": {cc.Zone, saved.Zone},
			"--raft-listen": {cc.RaftListen, saved.RaftListen}, "--raft-advertise": {cc.RaftAdvertise, saved.RaftAdvertise},
		} {
			if pair[0] != "" && pair[0] != pair[1] && !(name == "--raft-listen" && pair[0] == defaultRaftListen) {
				return nil, fmt.Errorf("%s %q differs from %q this node was started with (%s): a member keeps its id, zone and address; remove it and join a new node instead",
					name, pair[0], pair[1], filepath.Join(dir, nodeFileName))
			}
		}
		conf = *saved
	} else if err := cc.validate(); err != nil {
		return nil, err
	} else if _, err := os.Stat(filepath.Join(cfg.DataDir, "keystore")); err == nil {
		// node.json is written before the keystore first opens in cluster
		// mode, so a keystore without it was a single node's.
		return nil, fmt.Errorf("cluster: the keystore in %s was used without a cluster and cannot join Raft's log: "+
			"start a cluster node on an empty data directory", cfg.DataDir)
	}
	if _, err := (ClusterConfig{RaftListen: conf.RaftListen, RaftAdvertise: conf.RaftAdvertise}).advertise(); err != nil {
		return nil, err
	}
	if !nodeIDPattern.MatchString(conf.ID) || conf.Zone == "" {
		return nil, fmt.Errorf("%s: node id %q or zone %q unusable", filepath.Join(dir, nodeFileName), conf.ID, conf.Zone)
	}
	return &clusterPlan{dir: dir, conf: conf, restart: saved != nil}, nil
}

// prepareCluster sets kcfg up to run the keystore on Raft for the member
// plan describes, enrolling a joining node first. It returns nil for a
// single node (plan nil), leaving kcfg alone. kcfg.RootKey, if set, is the
// root key unsealed from custody shares (operator.go); else the key comes
// from its file.
func prepareCluster(ctx context.Context, cfg Config, plan *clusterPlan, log *slog.Logger, kcfg *keystore.Config) (*clusterNode, error) {
	if plan == nil {
		return nil, nil
	}
	dir, conf := plan.dir, plan.conf
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}

	// The root key is the cluster's root of trust: the keystore is
	// encrypted under it, and the join proof, the enrollment proof and the
	// admin key are derived from it. Every member holds the same key, from
	// a copied key file or unsealed from shares of one custody split; only
	// the very first node of a new cluster may create a key file.
	root := kcfg.RootKey
	if root == nil {
		path, create := cfg.RootKeyFile, false
		if path == "" {
			path = filepath.Join(cfg.DataDir, keystore.RootKeyFileName)
			create = !plan.restart && conf.Join == ""
		}
		var err error
		root, err = keystore.LoadRootKey(path, create)
		if err != nil {
			if conf.Join != "" {
				return nil, fmt.Errorf("a joining node needs the cluster's root key: copy it to %s with mode 0600 or give --root-key, "+
					"or, if the cluster's key is held in shares, copy the cluster's %s into %s and unseal: %w",
					path, keystore.CustodyFileName, cfg.DataDir, err)
			}
			return nil, err
		}
	}
	c := &clusterNode{dir: dir, conf: conf, log: log.With("component", "cluster"), rootKey: root}
	var err error
	if c.trustKey, err = keystore.DeriveTrustKey(root); err != nil {
		return nil, err
	}
	if c.adminKey, err = adminKeyFrom(c.trustKey); err != nil {
		return nil, err
	}

	if _, err := os.Stat(filepath.Join(dir, nodeCertFile)); errors.Is(err, os.ErrNotExist) {
		if conf.Join == "" {
			err = c.createCA()
		} else {
			err = c.enroll(ctx)
		}
		if err != nil {
			return nil, err
		}
	}
	creds, err := c.loadCredentials()
	if err != nil {
		return nil, err
	}
	c.conf.ClusterID = replication.ClusterID(creds.CA)
	if err := c.writeNodeFile(); err != nil {
		return nil, err
	}

	rcfg := replication.DefaultConfig(conf.ID, conf.Zone, filepath.Join(dir, "raft"), conf.RaftListen)
	rcfg.AdvertiseAddr = conf.RaftAdvertise
	if rcfg.AdvertiseAddr == "" {
		rcfg.AdvertiseAddr = conf.RaftListen
	}
	rcfg.ClusterID = c.conf.ClusterID
	rcfg.TLS = creds
	rcfg.TrustKey = c.trustKey
	rcfg.Logger = log.With("component", "replication")
	rcfg.Registerer = &c.metrics
	rcfg.WrapListener = c.filterListener
	kcfg.RootKey = root
	kcfg.SyncWrites = false // raft's log is the durable record
	kcfg.NewLog = keystore.RaftConfig{
		ClusterID: c.conf.ClusterID,
		Start: func(fsm replication.FSM) (keystore.Replicator, error) {
			n, err := replication.Open(ctx, rcfg, fsm)
			c.node = n
			return n, err
		},
	}.NewLog()
	return c, nil
}

// createCA creates the cluster CA and this node's certificate: the first
// node of a new cluster.
func (c *clusterNode) createCA() error {
	if _, err := os.Stat(filepath.Join(c.dir, caCertFile)); err == nil {
		return fmt.Errorf("%s exists but %s does not: restore it or start from an empty %s", caCertFile, nodeCertFile, c.dir)
	}
	ca, err := replication.NewCA("tresor cluster", caValidity)
	if err != nil {
		return err
	}
	adv, _ := ClusterConfig{RaftListen: c.conf.RaftListen, RaftAdvertise: c.conf.RaftAdvertise}.advertise()
	host, _, _ := net.SplitHostPort(adv)
	creds, err := ca.Issue(c.conf.ID, []string{host}, nodeValidity)
	if err != nil {
		return err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	nodeKey, err := creds.KeyPEM()
	if err != nil {
		return err
	}
	if caKey, err = c.sealKeyFile(caKeyFile, caKey); err != nil {
		return err
	}
	if nodeKey, err = c.sealKeyFile(nodeKeyFile, nodeKey); err != nil {
		return err
	}
	// The certificate goes last: its presence marks the setup complete.
	for _, f := range []struct {
		name string
		data []byte
	}{{caKeyFile, caKey}, {caCertFile, ca.CertPEM()}, {nodeKeyFile, nodeKey}, {nodeCertFile, creds.CertPEM()}} {
		if err := atomicfile.WriteFile(filepath.Join(c.dir, f.name), f.data, 0o600); err != nil {
			return fmt.Errorf("cluster: write %s: %w", f.name, err)
		}
	}
	c.log.Info("created the cluster CA", "cluster", ca.ClusterID(), "dir", c.dir)
	return nil
}

func (c *clusterNode) loadCredentials() (*replication.Credentials, error) {
	var pems [2][]byte
	for i, name := range []string{caCertFile, nodeCertFile} {
		b, err := os.ReadFile(filepath.Join(c.dir, name))
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		pems[i] = b
	}
	nodeKey, err := c.readKeyFile(nodeKeyFile)
	if err != nil {
		return nil, err
	}
	creds, err := replication.LoadCredentials(pems[0], pems[1], nodeKey)
	if err != nil {
		return nil, err
	}
	if cn := creds.Cert.Leaf; cn != nil && cn.Subject.CommonName != c.conf.ID {
		return nil, fmt.Errorf("cluster: %s is for node %q, not %q", nodeCertFile, cn.Subject.CommonName, c.conf.ID)
	}
	// A member without ca.key serves but cannot enroll others.
	caKey, err := c.readKeyFile(caKeyFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if c.ca, err = replication.ParseCA(pems[0], caKey); err != nil {
			return nil, fmt.Errorf("cluster: %s: %w", caKeyFile, err)
		}
	}
	return creds, nil
}

func readNodeFile(dir string) (*nodeFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, nodeFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f nodeFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, nodeFileName), err)
	}
	return &f, nil
}

func (c *clusterNode) writeNodeFile() error {
	b, err := json.MarshalIndent(c.conf, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(c.dir, nodeFileName), append(b, '\n'), 0o600)
}

// start brings the Raft node into the cluster once the keystore is open:
// the first node bootstraps (once in the cluster's life), a new member
// joins; a restarted member does neither. It returns once a leader is
// known, so the keystore can serve and take writes.
func (c *clusterNode) start(ctx context.Context, store *keystore.Store) error {
	if c == nil {
		return nil
	}
	clear(c.rootKey) // the keystore keeps derived keys only
	n := c.node
	if n == nil {
		return errors.New("cluster: the keystore did not start the raft node")
	}
	if !n.HasState() {
		if store.AppliedIndex() > 0 {
			return fmt.Errorf("cluster: the keystore in this data directory was used without a cluster (applied index %d) "+
				"and cannot join Raft's log: start a cluster node on an empty data directory", store.AppliedIndex())
		}
		if c.conf.Join == "" {
			if err := n.Bootstrap(ctx); err != nil && !errors.Is(err, replication.ErrBootstrapped) {
				return err
			}
		} else {
			seeds := c.conf.Seeds
			c.log.Info("joining the cluster", "seeds", seeds)
			if err := n.Join(ctx, seeds...); err != nil {
				return fmt.Errorf("cluster: join: %w", err)
			}
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	waitingSince := time.Now()
	for logged := time.Now(); ; {
		if id, _ := n.Leader(); id != "" {
			break
		}
		if time.Since(logged) > 5*time.Second {
			c.log.Warn("waiting for a leader: the cluster has no quorum yet", "waiting", time.Since(waitingSince).Round(time.Second))
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	id, _ := n.Leader()
	c.log.Info("cluster member ready", "node", c.conf.ID, "zone", c.conf.Zone, "cluster", c.conf.ClusterID, "leader", id)
	pctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Go(func() { c.autoPromote(pctx) })
	return nil
}

// autoPromote makes this node a voter once it has caught up, if its zone
// has no voter yet (see the file comment).
func (c *clusterNode) autoPromote(ctx context.Context) {
	n := c.node
	for {
		servers, err := n.Servers(ctx)
		if err == nil {
			var me *replication.Server
			zoneHasVoter := false
			for i, s := range servers {
				if s.ID == c.conf.ID {
					me = &servers[i]
				} else if s.Voter && s.Zone == c.conf.Zone {
					zoneHasVoter = true
				}
			}
			switch {
			case me == nil: // not (yet) in the configuration
			case me.Voter:
				return
			case zoneHasVoter:
				c.log.Info("staying a non-voter: zone already has a voter; `tresor cluster promote` makes this node one", "zone", c.conf.Zone)
				return
			default:
				bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = n.LinearizableBarrier(bctx)
				if err == nil {
					err = n.ChangeMembership(bctx, replication.OpPromote, c.conf.ID)
				}
				cancel()
				if err == nil {
					c.log.Info("caught up and promoted to voter", "zone", c.conf.Zone)
					return
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			c.log.Debug("auto-promotion: will retry", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// Close stops the background work and, on the leader, hands leadership to
// another voter so the cluster does not wait for an election (a planned
// restart). The raft node itself closes with the keystore.
func (c *clusterNode) Close() {
	if c == nil {
		return
	}
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	if c.node != nil && c.node.IsLeader() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if servers, err := c.node.Servers(ctx); err == nil && countVoters(servers) > 1 {
			if err := c.node.TransferLeadership(ctx, ""); err != nil {
				c.log.Warn("leadership transfer before shutdown failed", "error", err)
			}
		}
	}
}

func countVoters(servers []replication.Server) int {
	v := 0
	for _, s := range servers {
		if s.Voter {
			v++
		}
	}
	return v
}

// Labels of keys derived from the trust key (itself derived from the root
// key by keystore.DeriveTrustKey) for the cluster's HTTP side.
const (
	labelAdminKey = "tresor/cluster/admin-key/1"
	labelCAWrap   = "tresor/cluster/ca-key-wrap/1"
)

// adminKeyFrom derives the key that authenticates changes through the
// cluster admin endpoints (cluster_admin.go).
func adminKeyFrom(trustKey []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, trustKey, nil, labelAdminKey, 32)
}

// nodeID returns the cluster node's id (from the flags or, on a restart
// without them, from node.json), or "" for a single node. Other parts of
// serve that name the node (the audit log's node id) use it.
func (c *clusterNode) nodeID() string {
	if c == nil {
		return ""
	}
	return c.conf.ID
}

// filterListener closes, at once, raft connections from addresses outside
// the cluster allowlist and records each refusal (denials). Until the
// keystore is open (setAllowlists) every peer with a certificate of the
// cluster is admitted; while the keystore cannot be read the last list
// read decides (auth.Allowlists.AllowLastKnown).
func (c *clusterNode) filterListener(ln net.Listener) net.Listener {
	return auth.FilterListener(ln, func(ip netip.Addr) bool {
		l := c.allowlists.Load()
		return l == nil || l.AllowLastKnown(context.Background(), auth.ScopeCluster, ip)
	}, func(ip netip.Addr) {
		if d := c.denials.Load(); d != nil {
			d.refused("cluster", ip)
		}
	})
}

// setDenials makes the cluster listener record its refusals in d.
func (c *clusterNode) setDenials(d *denials) {
	if c != nil {
		c.denials.Store(d)
	}
}

// setAllowlists turns on the cluster listener's IP allowlist.
func (c *clusterNode) setAllowlists(l *auth.Allowlists) {
	if c != nil {
		c.allowlists.Store(l)
	}
}
