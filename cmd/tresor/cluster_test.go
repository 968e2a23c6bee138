package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// clusterProc is one `tresor serve` of a cluster test, restartable on the
// same ports and data directory.
type clusterProc struct {
	t             *testing.T
	bin, dataDir  string
	s3, admin     string // host:port
	args          []string
	cmd           *exec.Cmd
	done          chan struct{}
	stderr        string
	stderrHistory []string
}

func (p *clusterProc) start() {
	t := p.t
	t.Helper()
	args := append([]string{"serve", "--data-dir", p.dataDir, "--listen", p.s3, "--admin-listen", p.admin, "--log-level", "info"}, p.args...)
	cmd := exec.Command(p.bin, args...)
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr, cmd.Stdout = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.done, p.stderr = cmd, make(chan struct{}), f.Name()
	p.stderrHistory = append(p.stderrHistory, f.Name())
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
}

// waitReady polls /health/ready until it answers 200.
func (p *clusterProc) waitReady(ctx context.Context) {
	p.t.Helper()
	for {
		resp, err := http.Get("http://" + p.admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited before it was ready", p.dataDir)
		case <-ctx.Done():
			p.t.Fatalf("%s not ready: %v", p.dataDir, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *clusterProc) kill() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *clusterProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

// clusterStatus runs `tresor cluster status --json` against p.
func clusterStatus(ctx context.Context, bin string, p *clusterProc) (statusAnswer, error) {
	cmd := exec.CommandContext(ctx, bin, "cluster", "status", "--json", "--admin", p.admin, "--timeout", "5s")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return statusAnswer{}, err
	}
	var ans statusAnswer
	err = json.Unmarshal(out, &ans)
	return ans, err
}

// transferLeader runs `tresor cluster transfer-leader` against p with the
// given authentication flags and waits until another node leads.
func transferLeader(ctx context.Context, t *testing.T, bin string, p *clusterProc, auth ...string) {
	t.Helper()
	before, err := clusterStatus(ctx, bin, p)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"cluster", "transfer-leader", "--admin", p.admin}, auth...)
	if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("tresor %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	poll(t, 30*time.Second, "a new leader after the transfer", func() error {
		a, err := clusterStatus(ctx, bin, p)
		if err != nil {
			return err
		}
		if a.Leader == "" || a.Leader == before.Leader {
			return fmt.Errorf("leader %q, was %q", a.Leader, before.Leader)
		}
		return nil
	})
}

// allReachableVoters is a poll condition: p's view of the cluster shows
// every node reachable and voting.
func allReachableVoters(ctx context.Context, bin string, p *clusterProc) func() error {
	return func() error {
		a, err := clusterStatus(ctx, bin, p)
		if err != nil {
			return err
		}
		for _, n := range a.Nodes {
			if n.Role == "unreachable" || !n.Voter {
				return fmt.Errorf("node %+v", n)
			}
		}
		return nil
	}
}

// poll calls f until it returns nil or the deadline passes.
func poll(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func clusterS3Client(t *testing.T, credsDir, endpoint string) *s3.Client {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(credsDir, "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	var id, secret string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "aws_access_key_id = "); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "aws_secret_access_key = "); ok {
			secret = v
		}
	}
	return s3.New(s3.Options{
		BaseEndpoint: aws.String("http://" + endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials:      credentials.NewStaticCredentialsProvider(id, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// createBucket creates name; a bucket this tenant already owns counts as
// created (an earlier attempt whose answer was lost).
func createBucket(ctx context.Context, c *s3.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "BucketAlreadyOwnedByYou" {
		return nil
	}
	return err
}

func hasBucket(ctx context.Context, c *s3.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return err
	}
	for _, b := range out.Buckets {
		if aws.ToString(b.Name) == name {
			return nil
		}
	}
	return fmt.Errorf("bucket %s not listed", name)
}

// TestCluster_ThreeZones runs three `tresor serve` processes in three
// zones: the first bootstraps, the others enroll and join through its admin
// listener and are promoted; writes through any node reach all; after the
// leader is killed (SIGKILL) a survivor takes writes, and the killed node
// comes back and catches up. A node with another root key is refused.
func TestCluster_ThreeZones(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes, about 10 s")
	}
	bin := buildTresor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	rootKey := filepath.Join(tmp, "root.key")
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(rootKey, key, 0o600); err != nil {
		t.Fatal(err)
	}

	procs := make([]*clusterProc, 3)
	for i := range procs {
		id := fmt.Sprintf("n%d", i+1)
		p := &clusterProc{
			t: t, bin: bin, dataDir: filepath.Join(tmp, id),
			s3: freePort(t), admin: freePort(t),
			args: []string{"--root-key", rootKey, "--node-id", id, "--zone", fmt.Sprintf("z%d", i+1), "--raft-listen", freePort(t)},
		}
		if i > 0 {
			p.args = append(p.args, "--join", procs[0].admin)
		}
		procs[i] = p
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.stop()
			if t.Failed() {
				for _, name := range p.stderrHistory {
					b, _ := os.ReadFile(name)
					t.Logf("%s output:\n%s", p.dataDir, b)
				}
			}
		}
	})
	for _, p := range procs {
		p.start()
		p.waitReady(ctx)
	}

	// The cluster forms: three voters in three zones, one leader.
	var ans statusAnswer
	poll(t, 30*time.Second, "three voters in three zones", func() error {
		var err error
		if ans, err = clusterStatus(ctx, bin, procs[2]); err != nil {
			return err
		}
		zones, voters, leaders := map[string]bool{}, 0, 0
		for _, n := range ans.Nodes {
			zones[n.Zone] = true
			if n.Voter {
				voters++
			}
			if n.Role == "leader" {
				leaders++
			}
		}
		if len(ans.Nodes) != 3 || len(zones) != 3 || voters != 3 || leaders != 1 || ans.Placement != "" {
			return fmt.Errorf("status %+v", ans)
		}
		return nil
	})
	for _, name := range []string{"ca.key", "node.key", "node.json"} {
		if st, err := os.Stat(filepath.Join(procs[1].dataDir, "cluster", name)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("cluster/%s of n2: %v, mode %v; want mode 0600", name, err, st.Mode().Perm())
		}
	}

	// Writes through any node reach every node (forwarding to the leader).
	clients := make([]*s3.Client, 3)
	for i, p := range procs {
		clients[i] = clusterS3Client(t, procs[0].dataDir, p.s3)
	}
	if err := createBucket(ctx, clients[0], "via-n1"); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "n3 lists a bucket made through n1", func() error { return hasBucket(ctx, clients[2], "via-n1") })
	if err := createBucket(ctx, clients[2], "via-n3"); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "n1 lists a bucket made through n3", func() error { return hasBucket(ctx, clients[0], "via-n3") })

	// Changes need the root key or an operator's access key: not a
	// tenant's key, not nothing.
	out, err := exec.CommandContext(ctx, bin, "cluster", "transfer-leader", "--admin", procs[0].admin, "--data-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no root key file, and no operator credentials") {
		t.Errorf("transfer-leader with neither root key nor operator key: err %v, output %s", err, out)
	}
	out, err = exec.CommandContext(ctx, bin, "cluster", "transfer-leader", "--admin", procs[0].admin,
		"--credentials", filepath.Join(procs[0].dataDir, "credentials")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "AccessDenied") {
		t.Errorf("transfer-leader signed by a tenant's admin: err %v, output %s", err, out)
	}

	// Kill the leader; a survivor takes writes.
	leader := slices.IndexFunc(procs, func(p *clusterProc) bool {
		return slices.ContainsFunc(ans.Nodes, func(n statusNode) bool { return n.Role == "leader" && n.ID == filepath.Base(p.dataDir) })
	})
	if leader < 0 {
		t.Fatalf("no leader in %+v", ans)
	}
	procs[leader].kill()
	killed := time.Now()
	survivor := (leader + 1) % 3
	poll(t, 30*time.Second, "a write through a survivor after the leader's death", func() error {
		return createBucket(ctx, clients[survivor], "after-failover")
	})
	t.Logf("a write through a survivor succeeded %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
	poll(t, 30*time.Second, "a new leader among the survivors", func() error {
		a, err := clusterStatus(ctx, bin, procs[survivor])
		if err != nil {
			return err
		}
		if a.Leader == "" || a.Leader == filepath.Base(procs[leader].dataDir) {
			return fmt.Errorf("leader %q", a.Leader)
		}
		return nil
	})

	// The killed node comes back on its data, catches up and serves.
	procs[leader].start()
	procs[leader].waitReady(ctx)
	poll(t, 30*time.Second, "the restarted node serves the write made while it was down", func() error {
		return hasBucket(ctx, clients[leader], "after-failover")
	})
	poll(t, 30*time.Second, "the restarted node is back as a voter", allReachableVoters(ctx, bin, procs[leader]))

	// Planned leader change with the root key's token.
	transferLeader(ctx, t, bin, procs[0], "--root-key", rootKey)

	// A node without the cluster's root key is refused at enrollment.
	otherKey := filepath.Join(tmp, "other.key")
	rand.Read(key)
	if err := os.WriteFile(otherKey, key, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.CommandContext(ctx, bin, "cluster", "remove", "n2", "--admin", procs[0].admin, "--root-key", otherKey).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not authorized") {
		t.Errorf("a change made with another root key: err %v, output %s", err, out)
	}
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	out, err = exec.CommandContext(cctx, bin, "serve", "--data-dir", filepath.Join(tmp, "intruder"), "--listen", freePort(t), "--admin-listen", freePort(t),
		"--root-key", otherKey, "--node-id", "n4", "--zone", "z4", "--raft-listen", freePort(t), "--join", procs[0].admin).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused") {
		t.Errorf("a node with another root key: err %v, output:\n%s", err, out)
	}
}

// TestCluster_SingleNodeDefault: without cluster flags serve runs alone
// (no cluster directory, `cluster status` says so), and a data directory
// used that way is refused by cluster mode rather than forked.
func TestCluster_SingleNodeDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	bin := buildTresor(t)
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, bin, dir)
	if _, err := os.Stat(filepath.Join(dir, "cluster")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a single node made %s/cluster: %v", dir, err)
	}
	out, err := exec.Command(bin, "cluster", "status", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "runs alone") {
		t.Errorf("cluster status on a single node: %v: %s", err, out)
	}
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
	p.exited = true

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err = exec.CommandContext(ctx, bin, "serve", "--data-dir", dir, "--listen", freePort(t), "--admin-listen", freePort(t),
		"--node-id", "n1", "--zone", "z1", "--raft-listen", freePort(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "used without a cluster") {
		t.Errorf("cluster flags on a single node's data directory: %v:\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "cluster")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused cluster start left %s/cluster behind: %v", dir, err)
	}
	startServe(t, bin, dir) // still a working single node
}
