package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tresor-gw/tresor/keystore"
)

// operatorInit runs `tresor operator init` into dataDir and returns the
// shares it wrote, indexed 1..n (index 0 unused).
func operatorInit(t *testing.T, bin, dataDir string, n, threshold int) []string {
	t.Helper()
	outDir := filepath.Join(t.TempDir(), "shares")
	out, err := exec.Command(bin, "operator", "init", "--shares", fmt.Sprint(n), "--threshold", fmt.Sprint(threshold),
		"--data-dir", dataDir, "--out-dir", outDir).CombinedOutput()
	if err != nil {
		t.Fatalf("operator init: %v\n%s", err, out)
	}
	shares := make([]string, n+1)
	for i := 1; i <= n; i++ {
		b, err := os.ReadFile(filepath.Join(outDir, fmt.Sprintf("share-%d.txt", i)))
		if err != nil {
			t.Fatal(err)
		}
		shares[i] = strings.TrimSpace(string(b))
	}
	return shares
}

// sealedState asks p's unseal endpoint; ok is false while nothing answers
// it (the node is starting, or unsealed and serving its full admin API,
// which answers it 404).
func (p *clusterProc) sealedState() (st unsealStatus, ok bool) {
	resp, err := http.Get("http://" + p.admin + unsealPath)
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return st, false
	}
	return st, true
}

// waitSealed waits until p answers sealed, with no share received, and
// checks what a sealed member must not do yet: listen on raft or serve S3.
func (p *clusterProc) waitSealed(raftAddr string) {
	p.t.Helper()
	poll(p.t, 30*time.Second, p.dataDir+" sealed", func() error {
		select {
		case <-p.done:
			return fmt.Errorf("exited: see its output")
		default:
		}
		if st, ok := p.sealedState(); !ok || !st.Sealed || st.Received != 0 {
			return fmt.Errorf("unseal endpoint: %+v %v", st, ok)
		}
		return nil
	})
	if c, err := net.DialTimeout("tcp", raftAddr, time.Second); err == nil {
		c.Close()
		p.t.Errorf("%s listens on raft (%s) while sealed", p.dataDir, raftAddr)
	}
	if resp, err := http.Get("http://" + p.s3 + "/"); err == nil {
		resp.Body.Close()
		p.t.Errorf("%s serves S3 while sealed", p.dataDir)
	}
}

// unseal posts the shares at idx to p with `tresor operator unseal`,
// alternating --data-dir and --admin, the last share on stdin, and checks
// the node's count after each.
func (p *clusterProc) unseal(shares []string, idx ...int) {
	p.t.Helper()
	for k, i := range idx {
		args := []string{"operator", "unseal", "--data-dir", p.dataDir}
		if k%2 == 1 {
			args = []string{"operator", "unseal", "--admin", p.admin}
		}
		want := fmt.Sprintf("%d more needed", len(idx)-1-k)
		var stdin *strings.Reader
		if k == len(idx)-1 {
			args, stdin, want = append(args, "-"), strings.NewReader(shares[i]+"\n"), "unsealed"
		} else {
			args = append(args, shares[i])
		}
		cmd := exec.Command(p.bin, args...)
		if stdin != nil {
			cmd.Stdin = stdin
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			p.t.Fatalf("%s: share %d: %v: %s (want %q)", p.dataDir, i, err, out, want)
		}
	}
}

// TestCustodyCluster_ThreeNodesOneSplit runs a three-zone cluster whose
// root key is held in 3-of-5 shares: every node starts sealed on a copy of
// the one public custody record, the joiners are unsealed first (their
// enrollment waits for the sealed first node), each node with another three
// shares; the cluster forms and replicates; a killed node comes back sealed,
// stays a member while sealed, and catches up once unsealed. A share of
// another split is refused, and a node unsealed under another split cannot
// join: the root key every proof derives from differs.
func TestCustodyCluster_ThreeNodesOneSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes, about 15 s")
	}
	bin := buildTresor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmp := t.TempDir()

	// One split; its public record copied to every other node's data dir.
	procs := make([]*clusterProc, 3)
	raft := make([]string, 3)
	for i := range procs {
		id := fmt.Sprintf("n%d", i+1)
		raft[i] = freePort(t)
		procs[i] = &clusterProc{
			t: t, bin: bin, dataDir: filepath.Join(tmp, id), s3: freePort(t), admin: freePort(t),
			args: []string{"--node-id", id, "--zone", fmt.Sprintf("z%d", i+1), "--raft-listen", raft[i]},
		}
		if i > 0 {
			procs[i].args = append(procs[i].args, "--join", procs[0].admin)
		}
	}
	shares := operatorInit(t, bin, procs[0].dataDir, 5, 3)
	record, err := os.ReadFile(filepath.Join(procs[0].dataDir, keystore.CustodyFileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs[1:] {
		if err := os.MkdirAll(p.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.dataDir, keystore.CustodyFileName), record, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	intruder := &clusterProc{t: t, bin: bin, dataDir: filepath.Join(tmp, "intruder")}
	foreign := operatorInit(t, bin, intruder.dataDir, 5, 3)
	all := append(procs[:len(procs):len(procs)], intruder)
	t.Cleanup(func() {
		stopAll(all)
		if t.Failed() {
			for _, p := range all {
				for _, name := range p.stderrHistory {
					b, _ := os.ReadFile(name)
					t.Logf("%s output:\n%s", p.dataDir, b)
				}
			}
		}
	})

	for i, p := range procs {
		p.start()
		p.waitSealed(raft[i])
	}
	// A share of another split is refused by name and does not count.
	out, err := exec.Command(bin, "operator", "unseal", "--admin", procs[1].admin, foreign[1]).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another custody split") {
		t.Errorf("a share of another split: err %v, output %s", err, out)
	}
	if st, _ := procs[1].sealedState(); !st.Sealed || st.Received != 0 {
		t.Errorf("after a foreign share: %+v", st)
	}

	// The joiners first: unsealed, they retry enrollment while the first
	// node is sealed, and enroll once it is unsealed.
	procs[1].unseal(shares, 2, 4, 5)
	procs[2].unseal(shares, 5, 1, 3)
	poll(t, 10*time.Second, "n2 told that n1 is sealed", func() error {
		if b, _ := os.ReadFile(procs[1].stderr); !bytes.Contains(b, []byte("sealed: only "+unsealPath)) {
			return fmt.Errorf("n2 has not tried to enroll through sealed n1")
		}
		return nil
	})
	if st, ok := procs[0].sealedState(); !ok || !st.Sealed {
		t.Fatalf("n1 not sealed any more: %+v", st)
	}
	procs[0].unseal(shares, 1, 2, 3)
	for _, p := range procs {
		p.waitReady(ctx)
	}
	poll(t, 30*time.Second, "three voters in three zones", func() error {
		ans, err := clusterStatus(ctx, bin, procs[2])
		if err != nil {
			return err
		}
		voters, leaders := 0, 0
		for _, n := range ans.Nodes {
			if n.Voter && n.Role != "unreachable" {
				voters++
			}
			if n.Role == "leader" {
				leaders++
			}
		}
		if len(ans.Nodes) != 3 || voters != 3 || leaders != 1 || ans.Placement != "" {
			return fmt.Errorf("status %+v", ans)
		}
		return nil
	})

	// A keystore write through n1 is read on n3.
	clients := make([]*s3.Client, 3)
	for i, p := range procs {
		clients[i] = clusterS3Client(t, procs[0].dataDir, p.s3)
	}
	if err := createBucket(ctx, clients[0], "via-n1"); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "n3 lists a bucket made through n1", func() error { return hasBucket(ctx, clients[2], "via-n1") })

	// n1 is killed and restarted: it comes back sealed, the others keep it
	// as an unreachable voter and take writes, and once unsealed with
	// another three shares it catches up.
	procs[0].kill()
	procs[0].start()
	procs[0].waitSealed(raft[0])
	poll(t, 30*time.Second, "a write through n3 while n1 is sealed", func() error {
		return createBucket(ctx, clients[2], "while-n1-sealed")
	})
	ans, err := clusterStatus(ctx, bin, procs[2])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ans.Nodes {
		if n.ID == "n1" && (n.Role != "unreachable" || !n.Voter) {
			t.Errorf("sealed n1 as the others see it: %+v", n)
		}
	}
	if len(ans.Nodes) != 3 {
		t.Errorf("members while n1 is sealed: %+v", ans.Nodes)
	}
	unsealed := time.Now()
	procs[0].unseal(shares, 3, 4, 5)
	procs[0].waitReady(ctx)
	poll(t, 30*time.Second, "n1 serves the write made while it was sealed", func() error {
		return hasBucket(ctx, clients[0], "while-n1-sealed")
	})
	t.Logf("n1 caught up %v after its last share", time.Since(unsealed).Round(time.Millisecond))
	poll(t, 30*time.Second, "n1 back as a reachable voter", allReachableVoters(ctx, bin, procs[1]))

	// No root key file under custody: planned changes are signed with the
	// operator's access key through the admin API instead, here through
	// another node than the one whose data dir holds the key.
	transferLeader(ctx, t, bin, procs[1], "--credentials", filepath.Join(procs[0].dataDir, operatorFile))
	out, err = exec.CommandContext(ctx, bin, "cluster", "remove", "n9", "--data-dir", procs[0].dataDir).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("n9")) {
		t.Fatalf("removing an unknown node with --data-dir's operator key: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "not-an-operator")
	os.WriteFile(bad, []byte("[default]\naws_access_key_id = TRSRNOSUCHKEY0000000\naws_secret_access_key = "+strings.Repeat("x", 40)+"\n"), 0o600)
	if out, err := exec.CommandContext(ctx, bin, "cluster", "transfer-leader", "--admin", procs[1].admin, "--credentials", bad).CombinedOutput(); err == nil {
		t.Fatalf("a change signed with an unknown key was made:\n%s", out)
	}

	// A node unsealed under another split holds another root key: its
	// enrollment proof does not verify, and it gives up.
	// Its ports are drawn now: drawn early, one may have served a client
	// connection since.
	intruderRaft := freePort(t)
	intruder.s3, intruder.admin = freePort(t), freePort(t)
	intruder.args = []string{"--node-id", "n4", "--zone", "z4", "--raft-listen", intruderRaft, "--join", procs[0].admin}
	intruder.start()
	intruder.waitSealed(intruderRaft)
	intruder.unseal(foreign, 1, 2, 3)
	select {
	case <-intruder.done:
	case <-time.After(30 * time.Second):
		t.Fatal("a node under another split still runs 30 s after its unseal")
	}
	if b, _ := os.ReadFile(intruder.stderr); !bytes.Contains(b, []byte("refused")) || intruder.cmd.ProcessState.Success() {
		t.Errorf("a node under another split: exit %v, output:\n%s", intruder.cmd.ProcessState, b)
	}

	// Nothing secret on disk: no root key file, no share, no private key
	// in clear (the cluster's ECDSA keys are PKCS #8 "PRIVATE KEY"), anywhere
	// (read once the nodes have stopped, when Badger has truncated its files).
	stopAll(all)
	sealedEnd, sealedFiles := []byte(sealedKeyPEMType+"-----"), 0
	for _, p := range all {
		err := filepath.WalkDir(p.dataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if d.Name() == keystore.RootKeyFileName {
				t.Errorf("%s written", path)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.Contains(bytes.ToLower(b), []byte("tresor-share1-")) {
				t.Errorf("%s holds a share", path)
			}
			if bytes.Count(b, []byte("PRIVATE KEY-----")) != bytes.Count(b, sealedEnd) {
				t.Errorf("%s holds a private key in clear", path)
			}
			if d.Name() == caKeyFile || d.Name() == nodeKeyFile {
				if !bytes.HasPrefix(b, []byte("-----BEGIN "+sealedKeyPEMType+"-----\n")) {
					t.Errorf("%s is not sealed", path)
				}
				sealedFiles++
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	if sealedFiles != 2*len(procs) {
		t.Errorf("%d key files found, want ca.key and node.key on each of %d nodes", sealedFiles, len(procs))
	}
}

// stopAll stops the started processes of ps at once: stopped one by one,
// the last node would have no quorum left for its shutdown's final writes
// and wait out their timeouts alone.
func stopAll(ps []*clusterProc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		if p.cmd != nil {
			wg.Go(p.stop)
		}
	}
	wg.Wait()
}
