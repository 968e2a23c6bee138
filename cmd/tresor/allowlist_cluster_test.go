package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/bench"
	"github.com/tresor-gw/tresor/keystore"
)

// allowlistBound is how soon an allowlist change must apply on every node
// (auth.DefaultAllowlistTTL): a follower's local read lags the leader by at
// most the keystore's max staleness, and each node keeps a list it has read
// for the allowlist TTL.
const allowlistBound = keystore.DefaultMaxStaleness + auth.DefaultAllowlistTTL

// allowlistDeadline is when the test gives up on a node: three times the
// bound, since the test runs on shared machines; the delays it measures are
// logged, not asserted.
const allowlistDeadline = 3 * allowlistBound

// Answers of a node to a signed ListBuckets.
const (
	allowed = "allowed"
	denied  = "AccessDenied"
)

// tenantOnEveryNode is one tenant's access key, as an S3 client of each
// node's gateway.
type tenantOnEveryNode struct {
	name, id string // id: the tenant id in hex, as the audit review shows it
	clients  []*s3.Client
}

// answer returns what node i says to a signed ListBuckets by the tenant:
// allowed, an S3 error code, or a transport error.
func (tn tenantOnEveryNode) answer(ctx context.Context, i int) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := tn.clients[i].ListBuckets(ctx, &s3.ListBucketsInput{})
	var ae smithy.APIError
	switch {
	case err == nil:
		return allowed
	case errors.As(err, &ae):
		return ae.ErrorCode()
	}
	return err.Error()
}

// TestCluster_AllowlistChangeReachesEveryNode proves on three real nodes in
// three zones what DESIGN.md section 6 and auth.DefaultAllowlistTTL promise:
// an allowlist changed through one node applies on every node's S3 listener
// within the keystore's max staleness plus the allowlist TTL. A tenant's
// list, and then the S3 listener's, is set through one node to ranges that
// exclude the test's 127.0.0.1 and cleared through another; every node must
// follow, recording its denials in its own login audit, while another
// tenant is served throughout the tenant list's change. Every node answers
// by the old list just before each change, so a node that kept a list forever,
// or a change applied only where it was made, fails the test. The delays
// are logged, not asserted.
func TestCluster_AllowlistChangeReachesEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes, about 40 s")
	}
	bin := buildTresor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startCluster(t, ctx, bin)
	operator := filepath.Join(c.Nodes[0].DataDir, operatorFile)
	// admin runs `tresor admin` (in this process) against node i's admin
	// listener with the bootstrap operator's key.
	admin := func(i int, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args = append([]string{"admin", "--endpoint", c.Nodes[i].Admin, "--credentials", operator, "--timeout", "20s"}, args...)
		if err := run(ctx, args, &stdout, &stderr); err != nil {
			t.Fatalf("tresor %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	newTenant := func(name string) tenantOnEveryNode {
		t.Helper()
		var tn keystore.Tenant
		if err := json.Unmarshal([]byte(admin(0, "tenant", "create", name, "--json")), &tn); err != nil {
			t.Fatal(err)
		}
		var nk struct {
			AccessKeyID     string `json:"access_key_id"`
			SecretAccessKey string `json:"secret_access_key"`
		}
		if err := json.Unmarshal([]byte(admin(0, "user", "create", "--tenant", name, "--role", "admin", "alice", "--operator-is-tenant", "--json")), &nk); err != nil {
			t.Fatal(err)
		}
		out := tenantOnEveryNode{name: name, id: tn.ID.String()}
		for _, p := range c.Nodes {
			out.clients = append(out.clients, bench.NewS3Client("http://"+p.S3, nk.AccessKeyID, nk.SecretAccessKey, 10*time.Second))
		}
		return out
	}
	acme, globex := newTenant("acme"), newTenant("globex")
	for _, tn := range []tenantOnEveryNode{acme, globex} {
		if _, err := awaitEveryNode(ctx, tn.name+"'s key reaches every node", tn, allowed, nil, time.Now(), allowlistDeadline); err != nil {
			t.Fatal(err)
		}
	}
	// Outside 127.0.0.1, IPv4 and IPv6.
	elsewhere := []string{"10.0.0.0/8", "2001:db8::/32"}

	// step changes a list through node via and waits until every node
	// answers the tenant want, after having answered it the opposite
	// just before the change. bystanders must be served on every node
	// throughout.
	step := func(what string, via int, change []string, tn tenantOnEveryNode, want string, bystanders ...tenantOnEveryNode) {
		t.Helper()
		before := allowed
		if want == allowed {
			before = denied
		}
		// Every node answers by the current list just before the change
		// (and keeps it for up to the TTL), so each must read the list
		// again for the change to show.
		if _, err := awaitEveryNode(ctx, "before "+what, tn, before, bystanders, time.Now(), allowlistDeadline); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		admin(via, change...)
		done := time.Now()
		t.Logf("%s: through %s, acknowledged in %v", what, c.Nodes[via].Name, done.Sub(start).Round(time.Millisecond))
		delays, err := awaitEveryNode(ctx, what, tn, want, bystanders, done, allowlistDeadline)
		for i, d := range delays {
			if d >= 0 {
				t.Logf("%s: %s (%s) answers %s %v after the change (bound %v)", what, c.Nodes[i].Name, c.Zones[i], want, d.Round(time.Millisecond), allowlistBound)
			}
		}
		if err != nil {
			for i := range c.Nodes {
				t.Logf("%s's lists: %s", c.Nodes[i].Name, admin(i, "allowlist", "show"))
			}
			t.Fatal(err)
		}
	}

	// A tenant's list, set through node1 and cleared through node2;
	// globex, another tenant, is served throughout.
	step("acme's list set", 0, append([]string{"allowlist", "set", "--tenant", "acme"}, elsewhere...), acme, denied, globex)
	for i, p := range c.Nodes {
		waitAuditDenials(t, ctx, p, func(n map[string]int) error {
			if n[acme.id] == 0 || n[globex.id] != 0 {
				return fmt.Errorf("allowlist denials per tenant %v; want some of acme (%s) and none of globex (%s)", n, acme.id, globex.id)
			}
			return nil
		})
		t.Logf("%s recorded acme's denials in its login audit", c.Nodes[i].Name)
	}
	step("acme's list cleared", 1, []string{"allowlist", "clear", "--tenant", "acme"}, acme, allowed, globex)

	// The S3 listener's own list, for every tenant: set through node3,
	// cleared through node1.
	step("S3 listener's list set", 2, append([]string{"allowlist", "set", "--s3"}, elsewhere...), globex, denied)
	for i := range c.Nodes {
		if got := acme.answer(ctx, i); got != denied {
			t.Errorf("under the S3 listener's list, %s answers acme %s; want %s", c.Nodes[i].Name, got, denied)
		}
	}
	for _, p := range c.Nodes {
		waitAuditDenials(t, ctx, p, func(n map[string]int) error {
			if n[globex.id] == 0 {
				return fmt.Errorf("allowlist denials per tenant %v; want some of globex (%s)", n, globex.id)
			}
			return nil
		})
	}
	step("S3 listener's list cleared", 0, []string{"allowlist", "clear", "--s3"}, globex, allowed)
	for i := range c.Nodes {
		if got := acme.answer(ctx, i); got != allowed {
			t.Errorf("after the S3 listener's list was cleared, %s answers acme %s; want %s", c.Nodes[i].Name, got, allowed)
		}
	}
}

// awaitEveryNode asks every node, in rounds, for tn's answer until each has
// given want, and keeps asking those that have: a node that then answers
// otherwise is an error. Each bystander must be allowed by every node in
// every round. It returns how long after since each node first gave want
// (-1 for a node that did not within deadline, which is an error).
func awaitEveryNode(ctx context.Context, what string, tn tenantOnEveryNode, want string, bystanders []tenantOnEveryNode, since time.Time, deadline time.Duration) ([]time.Duration, error) {
	n := len(tn.clients)
	delays, last := make([]time.Duration, n), make([]string, n)
	for i := range delays {
		delays[i] = -1
	}
	var errs []error
	for {
		pending := 0
		for i := range n {
			got := tn.answer(ctx, i)
			switch {
			case delays[i] < 0 && got == want:
				delays[i] = time.Since(since)
			case delays[i] >= 0 && got != want:
				errs = append(errs, fmt.Errorf("%s: node %d answered %s %s, then %s", what, i+1, tn.name, want, got))
			}
			if delays[i] < 0 {
				pending++
			}
			last[i] = got
			for _, b := range bystanders {
				if got := b.answer(ctx, i); got != allowed {
					errs = append(errs, fmt.Errorf("%s: node %d answered %s, a bystander, %s", what, i+1, b.name, got))
				}
			}
		}
		if len(errs) > 0 {
			return delays, errors.Join(errs...)
		}
		if pending == 0 {
			return delays, nil
		}
		if time.Since(since) > deadline {
			for i, d := range delays {
				if d < 0 {
					errs = append(errs, fmt.Errorf("%s: node %d still answers %s %s, not %s, %v after the change (bound %v)", what, i+1, tn.name, last[i], want, deadline, allowlistBound))
				}
			}
			return delays, errors.Join(errs...)
		}
		select {
		case <-ctx.Done():
			return delays, fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitAuditDenials reviews p's login audit (`tresor audit review`, in this
// process) until check accepts its allowlist denials counted per tenant id,
// for a few seconds: a record is appended before the request is answered,
// but the review skips one still being written.
func waitAuditDenials(t *testing.T, ctx context.Context, p *bench.Process, check func(perTenant map[string]int) error) {
	t.Helper()
	poll(t, 10*time.Second, p.Name+"'s login audit", func() error {
		var stdout, stderr bytes.Buffer
		if err := run(ctx, []string{"audit", "review", "--data-dir", p.DataDir, "--since", "1h", "--json"}, &stdout, &stderr); err != nil {
			return fmt.Errorf("audit review: %w: %s", err, stderr.String())
		}
		// audit.Summary itself does not decode: its by_kind keys are
		// kind names, and Kind has no UnmarshalText.
		var s struct {
			DeniedByAddr []audit.Count `json:"denied_by_addr"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
			return err
		}
		n := map[string]int{}
		for _, c := range s.DeniedByAddr {
			n[c.Tenant] += c.Count
		}
		return check(n)
	})
}

// startCluster starts bench's cluster of real processes (three nodes in
// three zones on one backend) and kills it when the test ends, showing the
// processes' logs if the test failed.
func startCluster(t *testing.T, ctx context.Context, bin string) *bench.Cluster {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				t.Logf("%s:\n%s", filepath.Base(f), b)
			}
		}
	})
	c, err := bench.StartCluster(ctx, bench.ClusterConfig{Bin: bin, Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}
