package main

// The cluster's endpoints on the admin listener, beside /health and
// /metrics:
//
//	GET  /cluster/v1/status     every member with its own view (no token:
//	                            like /metrics it shows no secret)
//	POST /cluster/v1/change     {"op": "promote"|"remove"|"transfer-leadership",
//	                            "id": NODE, "challenge", "mac"}; forwarded to
//	                            the leader
//	GET  /cluster/v1/challenge  a fresh challenge for change and enroll
//	POST /cluster/v1/enroll     enrollment (enroll.go), proof of the root key
//
// A change carries an HMAC under a key derived from the root key
// (adminKeyFrom) over a fresh challenge, the operation and the node id, so
// whoever can read the root key can operate the cluster and nobody else,
// and nothing on the wire can be replayed (each challenge is accepted once)
// or turned into another change. The admin listener binds to loopback by
// default; open it to the other nodes (they enroll through it) only on a
// network the cluster trusts: it is plain HTTP.

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tresor-gw/tresor/gateway/admin"
	"github.com/tresor-gw/tresor/internal/atomicfile"
	"github.com/tresor-gw/tresor/replication"
)

// statusNode is one node in `tresor cluster status --json`.
type statusNode struct {
	ID      string `json:"id"`
	Zone    string `json:"zone"`
	Address string `json:"address"`
	// Role is the node's own raft state: leader, follower, candidate, or
	// unreachable when it did not answer.
	Role         string    `json:"role"`
	Voter        bool      `json:"voter"`
	LastContact  time.Time `json:"last_contact,omitzero"`
	AppliedIndex uint64    `json:"applied_index"`
	Term         uint64    `json:"term,omitempty"`
	Error        string    `json:"error,omitempty"`
}

type statusAnswer struct {
	ClusterID string       `json:"cluster_id"`
	Node      string       `json:"node"` // the node that answered
	Leader    string       `json:"leader"`
	Nodes     []statusNode `json:"nodes"`
	// Placement is empty when losing any one zone keeps the voters' quorum,
	// else why not.
	Placement string `json:"placement,omitempty"`
}

type changeRequest struct {
	Op        string `json:"op"`
	ID        string `json:"id"`
	Challenge []byte `json:"challenge"`
	MAC       []byte `json:"mac"`
}

// labelChange is the MAC label of a change request.
const labelChange = "tresor/cluster/change/1"

func (r *changeRequest) mac(adminKey []byte) []byte {
	return mac(adminKey, []byte(labelChange), r.Challenge, []byte(r.Op), []byte(r.ID))
}

// usedChallenges remembers the challenges changes have spent, until they
// expire, so that a change request seen on the wire cannot be sent again.
type usedChallenges struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// spend reports whether c was not spent before, and spends it.
func (u *usedChallenges) spend(c []byte, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = map[string]time.Time{}
	}
	for k, t := range u.seen {
		if now.Sub(t) > 2*challengeTTL {
			delete(u.seen, k)
		}
	}
	if _, ok := u.seen[string(c)]; ok {
		return false
	}
	u.seen[string(c)] = now
	return true
}

// adminHandler serves /cluster/ and hands everything else to next.
func (c *clusterNode) adminHandler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	if c == nil {
		mux.HandleFunc("/cluster/", func(w http.ResponseWriter, r *http.Request) {
			clusterError(w, http.StatusNotFound, errors.New("this node runs alone: it was started without cluster flags (--node-id, --zone, --join)"))
		})
	} else {
		mux.HandleFunc("GET /cluster/v1/status", c.handleStatus)
		mux.HandleFunc("POST /cluster/v1/change", c.handleChange)
		mux.HandleFunc("GET /cluster/v1/challenge", c.handleChallenge)
		mux.HandleFunc("POST /cluster/v1/enroll", c.handleEnroll)
	}
	mux.Handle("/", next)
	return mux
}

func (c *clusterNode) handleStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	members, err := c.node.ClusterStatus(ctx)
	if err != nil {
		clusterError(w, http.StatusServiceUnavailable, err)
		return
	}
	leader, _ := c.node.Leader()
	ans := statusAnswer{ClusterID: c.conf.ClusterID, Node: c.conf.ID, Leader: leader}
	servers := make([]replication.Server, 0, len(members))
	for _, m := range members {
		servers = append(servers, m.Server)
		n := statusNode{ID: m.ID, Zone: m.Zone, Address: m.Address, Voter: m.Voter, Role: "unreachable", Error: m.Err}
		if st := m.Status; st != nil {
			n.Role = strings.ToLower(st.State)
			n.LastContact = st.LastContact.UTC()
			n.AppliedIndex = st.AppliedIndex
			n.Term = st.Term
		}
		ans.Nodes = append(ans.Nodes, n)
	}
	if err := replication.CheckPlacement(servers); err != nil {
		ans.Placement = err.Error()
	}
	writeClusterJSON(w, http.StatusOK, ans)
}

func (c *clusterNode) handleChange(w http.ResponseWriter, r *http.Request) {
	var req changeRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		clusterError(w, http.StatusBadRequest, err)
		return
	}
	now := time.Now()
	if err := checkChallenge(c.trustKey, req.Challenge, now); err != nil {
		clusterError(w, http.StatusForbidden, fmt.Errorf("change: %w", err))
		return
	}
	if !hmac.Equal(req.MAC, req.mac(c.adminKey)) {
		c.log.Warn("cluster change refused: wrong MAC (not made with the root key)", "op", req.Op, "id", req.ID)
		clusterError(w, http.StatusForbidden, errors.New("change: not authorized: the request must be made with the cluster's root key (tresor cluster --root-key)"))
		return
	}
	if !c.spent.spend(req.Challenge, now) {
		clusterError(w, http.StatusForbidden, errors.New("change: challenge already used"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := c.node.ChangeMembership(ctx, replication.MembershipOp(req.Op), req.ID); err != nil {
		status := http.StatusConflict
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, replication.ErrNoLeader) {
			status = http.StatusServiceUnavailable
		}
		clusterError(w, status, err)
		return
	}
	c.log.Info("cluster change", "op", req.Op, "id", req.ID)
	writeClusterJSON(w, http.StatusOK, map[string]string{"status": "done"})
}

// ChangeMembership is admin.Cluster: the admin API's membership changes,
// made by operators with their access keys (and audited there).
func (c *clusterNode) ChangeMembership(ctx context.Context, op, id string) error {
	err := c.node.ChangeMembership(ctx, replication.MembershipOp(op), id)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, replication.ErrNoLeader) {
		return fmt.Errorf("%w: %w", admin.ErrClusterUnavailable, err)
	}
	if err == nil {
		c.log.Info("cluster change", "op", op, "id", id, "by", "admin API")
	}
	return err
}

// adminCluster returns the node for admin.Config.Cluster: nil (no
// interface holding a nil pointer) on a single node.
func (c *clusterNode) adminCluster() admin.Cluster {
	if c == nil {
		return nil
	}
	return c
}

// adminAddrFile is <data-dir>/admin.addr: the admin listener's address,
// written at every start, so that `tresor cluster --data-dir DIR` (and
// other operator commands) find the local node.
const adminAddrFile = "admin.addr"

// writeAdminAddr records the admin listener's dialable address.
func writeAdminAddr(dataDir string, addr net.Addr) error {
	return atomicfile.WriteFile(filepath.Join(dataDir, adminAddrFile), []byte(reachableAddr(addr.String())+"\n"), 0o600)
}

// readAdminAddr returns the address writeAdminAddr recorded.
func readAdminAddr(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, adminAddrFile))
	if err != nil {
		return "", fmt.Errorf("admin address of the node in %s (is it running? else give --admin): %w", dataDir, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// deferredRegisterer holds the replication node's collectors until serve's
// registry exists (the node opens with the keystore, before it).
type deferredRegisterer struct{ cs []prometheus.Collector }

func (d *deferredRegisterer) Register(c prometheus.Collector) error {
	d.cs = append(d.cs, c)
	return nil
}
func (d *deferredRegisterer) MustRegister(cs ...prometheus.Collector) { d.cs = append(d.cs, cs...) }
func (d *deferredRegisterer) Unregister(prometheus.Collector) bool    { return false }

// registerMetrics registers the replication node's metrics and the
// cluster gauges with reg. No label: each process reports itself.
func (c *clusterNode) registerMetrics(reg prometheus.Registerer) {
	if c == nil || c.node == nil {
		return
	}
	reg.MustRegister(c.metrics.cs...)
	n := c.node
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tresor_cluster_leader", Help: "1 while this node is the Raft leader."},
			func() float64 { return b(n.IsLeader()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tresor_cluster_applied_index", Help: "Last Raft log index the keystore applied on this node."},
			func() float64 { return float64(n.AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tresor_cluster_last_contact_seconds", Help: "Seconds since this node last heard from a leader (0 on the leader, -1 if never)."},
			func() float64 {
				t := n.LastContact()
				if t.IsZero() {
					return -1
				}
				return time.Since(t).Seconds()
			}),
	)
}
