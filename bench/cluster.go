package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// backendBucket is the bucket of the backend process that holds the
// cluster's ciphertext.
const backendBucket = "tresor-backend"

// Cluster is a tresor cluster of real processes on loopback: one node per
// zone, all on one S3 backend, which is a fourth, single-node `tresor serve`
// on its own fs directory (the fs backend locks its directory, so the
// nodes cannot share one directly).
type Cluster struct {
	Backend *Process
	Nodes   []*Process
	Zones   []string
	// AccessKey and SecretKey are the bootstrap credentials of the
	// cluster's default tenant, written by the first node.
	AccessKey, SecretKey string

	bin     string
	rootKey string // the root key file every node shares
	sup     *Supervisor
}

// ClusterConfig configures StartCluster.
type ClusterConfig struct {
	// Bin is the tresor binary.
	Bin string
	// Dir holds every process's data directory and log.
	Dir string
	// Zones names the zones, one node each (3 by default).
	Zones []string
	// Single starts one plain `tresor serve` on the same backend instead
	// of a cluster: no Raft, the keystore on its local log. It prices the
	// same load without replication; Zones is ignored and the cluster
	// calls (Status, Leader, TransferLeadership) do not apply.
	Single bool
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// StartCluster starts the backend and one node per zone: the first
// bootstraps the cluster, the others join it through its admin address,
// all with one root key. It returns once every node is ready and the
// cluster status shows them all as voters with a leader. On error it kills
// what it started.
func StartCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if len(cfg.Zones) == 0 {
		cfg.Zones = []string{"zone-a", "zone-b", "zone-c"}
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	sup := &Supervisor{Bin: cfg.Bin, Dir: cfg.Dir}
	c := &Cluster{Zones: cfg.Zones, bin: cfg.Bin, sup: sup}
	defer func() {
		if err != nil {
			sup.Close()
		}
	}()

	// The backend: a plain single-node gateway on the fs backend.
	if c.Backend, err = sup.NewProcess("backend", "--log-level", "warn"); err != nil {
		return nil, err
	}
	if err := c.Backend.Start(ctx); err != nil {
		return nil, err
	}
	bid, bsecret, err := readCredentials(c.Backend.DataDir)
	if err != nil {
		return nil, err
	}
	bc := NewS3Client("http://"+c.Backend.S3, bid, bsecret, 10*time.Second)
	if _, err := bc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(backendBucket)}); err != nil {
		return nil, fmt.Errorf("create the backend bucket: %w", err)
	}
	logf("backend ready at %s", c.Backend.S3)

	rootKey := filepath.Join(cfg.Dir, "root.key")
	c.rootKey = rootKey
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(rootKey, key, 0o600); err != nil {
		return nil, err
	}
	backendURL := fmt.Sprintf("s3+http://%s/%s?path_style=true&region=us-east-1", c.Backend.S3, backendBucket)
	if cfg.Single {
		return c, c.startSingle(ctx, rootKey, backendURL, bid, bsecret, logf)
	}
	for i, zone := range cfg.Zones {
		raft, err := FreePorts(1)
		if err != nil {
			return nil, err
		}
		args := []string{
			"--log-level", "warn", "--root-key", rootKey, "--backend", backendURL,
			"--node-id", fmt.Sprintf("node%d", i+1), "--zone", zone, "--raft-listen", raft[0],
		}
		if i > 0 {
			args = append(args, "--join", c.Nodes[0].Admin)
		}
		p, err := sup.NewProcess(fmt.Sprintf("node%d", i+1), args...)
		if err != nil {
			return nil, err
		}
		p.Env = []string{"AWS_ACCESS_KEY_ID=" + bid, "AWS_SECRET_ACCESS_KEY=" + bsecret}
		if err := p.Start(ctx); err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, p)
		logf("%s (%s) ready: s3 %s admin %s raft %s", p.Name, zone, p.S3, p.Admin, raft[0])
		if i == 0 {
			if c.AccessKey, c.SecretKey, err = readCredentials(p.DataDir); err != nil {
				return nil, err
			}
		}
	}
	if err := c.WaitVoters(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

// startSingle starts the one node of a ClusterConfig.Single "cluster".
func (c *Cluster) startSingle(ctx context.Context, rootKey, backendURL, bid, bsecret string, logf func(string, ...any)) error {
	c.Zones = nil
	p, err := c.sup.NewProcess("single", "--log-level", "warn", "--root-key", rootKey, "--backend", backendURL)
	if err != nil {
		return err
	}
	p.Env = []string{"AWS_ACCESS_KEY_ID=" + bid, "AWS_SECRET_ACCESS_KEY=" + bsecret}
	if err := p.Start(ctx); err != nil {
		return err
	}
	c.Nodes = append(c.Nodes, p)
	logf("%s ready: s3 %s admin %s (no Raft)", p.Name, p.S3, p.Admin)
	c.AccessKey, c.SecretKey, err = readCredentials(p.DataDir)
	return err
}

// Close kills every process of the cluster.
func (c *Cluster) Close() error { return c.sup.Close() }

// Client returns an S3 client for node i's gateway with the tenant's
// credentials.
func (c *Cluster) Client(i int, timeout time.Duration) *s3.Client {
	return NewS3Client("http://"+c.Nodes[i].S3, c.AccessKey, c.SecretKey, timeout)
}

// NodeStatus is one node in the cluster status (`tresor cluster status
// --json`, GET /cluster/v1/status on a node's admin listener).
type NodeStatus struct {
	ID   string `json:"id"`
	Zone string `json:"zone"`
	// Role is the node's own raft state: leader, follower, candidate, or
	// unreachable.
	Role         string    `json:"role"`
	Voter        bool      `json:"voter"`
	LastContact  time.Time `json:"last_contact"`
	AppliedIndex uint64    `json:"applied_index"`
}

// Status is one node's view of the cluster.
type Status struct {
	Node   string       `json:"node"`   // the node that answered
	Leader string       `json:"leader"` // the leader it knows, "" if none
	Nodes  []NodeStatus `json:"nodes"`
}

// statusTimeout bounds one status request. A node asked for the status
// asks every member in turn, so a killed member costs a refused dial; a
// paused one more.
const statusTimeout = 3 * time.Second

// Status asks node i's admin listener for the cluster status
// (GET /cluster/v1/status, the endpoint behind `tresor cluster status`;
// polling it over HTTP costs no process start per poll).
func (c *Cluster) Status(ctx context.Context, i int) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.Nodes[i].Admin+"/cluster/v1/status", nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Status{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("%s: cluster status: %s: %.200s", c.Nodes[i].Name, resp.Status, b)
	}
	return ParseStatus(b)
}

// ParseStatus reads the JSON of `tresor cluster status --json`.
func ParseStatus(b []byte) (Status, error) {
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("cluster status: %w: %.200s", err, b)
	}
	if st.Leader == "" {
		for _, n := range st.Nodes {
			if n.Role == "leader" {
				st.Leader = n.ID
			}
		}
	}
	return st, nil
}

// Leader asks the running nodes (skipping except, -1 for none) who leads and
// returns the leader's node index, or -1 if no asked node knows a leader.
func (c *Cluster) Leader(ctx context.Context, except int) (int, error) {
	var errs []error
	for i, p := range c.Nodes {
		if i == except || !p.Running() || p.Paused() {
			continue
		}
		st, err := c.Status(ctx, i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.Leader == "" {
			return -1, nil
		}
		return c.index(st.Leader), nil
	}
	return -1, errors.Join(errs...)
}

func (c *Cluster) index(id string) int {
	for i := range c.Nodes {
		if id == fmt.Sprintf("node%d", i+1) {
			return i
		}
	}
	return -1
}

// WaitLeader polls until a node other than except leads and returns it.
func (c *Cluster) WaitLeader(ctx context.Context, except int, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		i, err := c.Leader(ctx, except)
		if err == nil && i >= 0 && i != except {
			return i, nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("no leader after %v (last error: %v)", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitVoters polls until every node is a voter and one leads.
func (c *Cluster) WaitVoters(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		st, err := c.Status(ctx, 0)
		voters, leader := 0, st.Leader != ""
		for _, n := range st.Nodes {
			if n.Voter {
				voters++
			}
		}
		if err == nil && voters == len(c.Nodes) && leader {
			return nil
		}
		last = fmt.Sprintf("%d of %d voters, leader %v, error %v", voters, len(c.Nodes), leader, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not formed after %v: %s", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TransferLeadership runs `tresor cluster transfer-leader` against node i's
// admin listener (the leader's, or one that forwards).
func (c *Cluster) TransferLeadership(ctx context.Context, i int) error {
	_, err := c.cli(ctx, 10*time.Second, "cluster", "transfer-leader", "--admin", c.Nodes[i].Admin, "--root-key", c.rootKey)
	return err
}

// cli runs the tresor binary with args and returns its standard output.
func (c *Cluster) cli(ctx context.Context, timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("tresor %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}
