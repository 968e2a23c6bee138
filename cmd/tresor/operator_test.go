package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tresor-gw/tresor/keystore"
)

// startSealed starts `tresor serve` on a data dir under custody and waits
// until the sealed node answers on its unseal endpoint (it never answers
// /health/ready before it is unsealed).
func startSealed(t *testing.T, bin, dataDir string) *serveProcess {
	t.Helper()
	s3, admin := freePort(t), freePort(t)
	os.Remove(filepath.Join(dataDir, adminAddrFile))
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir, "--listen", s3, "--admin-listen", admin, "--log-level", "info")
	var stdout syncBuffer
	cmd.Stdout = &stdout
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, dataDir: dataDir, s3: "http://" + s3, admin: "http://" + admin, stdout: &stdout}
	t.Cleanup(func() {
		if p.exited {
			return
		}
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(stderr.Name())
			t.Logf("serve stderr:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if addr, err := readAdminAddr(dataDir); err == nil && "http://"+addr == p.admin {
			if st, code := unsealState(t, p); code == http.StatusOK && st.Sealed {
				return p
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(stderr.Name())
			t.Fatalf("sealed serve not answering after 30s:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func unsealState(t *testing.T, p *serveProcess) (unsealStatus, int) {
	t.Helper()
	resp, err := http.Get(p.admin + unsealPath)
	if err != nil {
		return unsealStatus{}, 0
	}
	defer resp.Body.Close()
	var st unsealStatus
	json.NewDecoder(resp.Body).Decode(&st)
	return st, resp.StatusCode
}

// waitReady polls /health/ready until 200.
func waitReady(t *testing.T, p *serveProcess) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after unseal: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// operatorUnseal runs `tresor operator unseal --data-dir D share`, the
// share given as an argument or, with stdin set, as "-".
func operatorUnseal(bin, dataDir, share string, stdin bool) (string, error) {
	args := []string{"operator", "unseal", "--data-dir", dataDir, share}
	var in io.Reader
	if stdin {
		args[len(args)-1], in = "-", strings.NewReader(share+"\n")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = in
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestOperator_InitRefusesUsedDataDir(t *testing.T) {
	t.Parallel()
	for _, name := range []string{keystore.RootKeyFileName, "keystore", keystore.CustodyFileName} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"operator", "init", "--data-dir", dir}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Fatalf("init over %s: %v", name, err)
		}
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"operator", "init", "--data-dir", dir, "--shares", "4", "--threshold", "2"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(out.String())
	if len(lines) != 4 {
		t.Fatalf("printed %d shares, want 4:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		if s, err := keystore.ParseShare(l); err != nil || s.Index != i+1 {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, keystore.RootKeyFileName)); !os.IsNotExist(err) {
		t.Fatalf("init wrote a root key: %v", err)
	}
}

// TestOperator_SealedServeUnseal drives custody end to end on the real
// binary: init 5/3, a sealed start, two shares, a tampered one refused, the
// third unseals; a restart unseals with another three and opens the same
// keystore.
func TestOperator_SealedServeUnseal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildTresor(t)
	dataDir, outDir := t.TempDir(), filepath.Join(t.TempDir(), "shares")
	if out, err := exec.Command(bin, "operator", "init", "--shares", "5", "--threshold", "3", "--data-dir", dataDir, "--out-dir", outDir).CombinedOutput(); err != nil {
		t.Fatalf("operator init: %v\n%s", err, out)
	}
	shares := make([]string, 6)
	for i := 1; i <= 5; i++ {
		path := filepath.Join(outDir, "share-"+string(rune('0'+i))+".txt")
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", path, fi, err)
		}
		b, _ := os.ReadFile(path)
		shares[i] = strings.TrimSpace(string(b))
	}
	if _, err := os.Stat(filepath.Join(dataDir, keystore.RootKeyFileName)); !os.IsNotExist(err) {
		t.Fatalf("init wrote root.key: %v", err)
	}

	// SIGTERM while sealed exits cleanly.
	p := startSealed(t, bin, dataDir)
	p.cmd.Process.Signal(os.Interrupt)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("sealed node on SIGTERM: %v", err)
	}
	p.exited = true

	p = startSealed(t, bin, dataDir)
	if resp, err := http.Get(p.s3 + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("S3 served while sealed")
	}
	if resp, err := http.Get(p.admin + "/health/ready"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("ready while sealed: %v %v", resp, err)
	}
	if out, err := operatorUnseal(bin, dataDir, shares[1], false); err != nil || !strings.Contains(out, "2 more needed") {
		t.Fatalf("share 1: %v %s", err, out)
	}
	if out, err := operatorUnseal(bin, dataDir, shares[2], true); err != nil || !strings.Contains(out, "1 more needed") {
		t.Fatalf("share 2: %v %s", err, out)
	}
	// Share 4 with one bit of its value flipped and a valid checksum: the
	// commitments refuse it, by index, and it does not count.
	s4, err := keystore.ParseShare(shares[4])
	if err != nil {
		t.Fatal(err)
	}
	s4.Value[3] ^= 0x10
	if out, err := operatorUnseal(bin, dataDir, s4.String(), false); err == nil || !strings.Contains(out, "share 4") {
		t.Fatalf("tampered share 4 accepted or not named: %v %s", err, out)
	}
	// A typo is caught by the checksum before it leaves the operator.
	typo := []byte(shares[5])
	typo[len(typo)-3] ^= 1
	if out, err := operatorUnseal(bin, dataDir, string(typo), false); err == nil || !strings.Contains(out, "checksum") {
		t.Fatalf("mistyped share: %v %s", err, out)
	}
	if st, _ := unsealState(t, p); !st.Sealed || st.Received != 2 || st.Needed != 1 {
		t.Fatalf("after 2 good shares and 2 bad: %+v", st)
	}
	if resp, err := http.Get(p.s3 + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("S3 served while sealed")
	}
	if out, err := operatorUnseal(bin, dataDir, shares[3], false); err != nil || !strings.Contains(out, "unsealed") {
		t.Fatalf("share 3: %v %s", err, out)
	}
	waitReady(t, p)
	if _, err := os.Stat(filepath.Join(dataDir, keystore.RootKeyFileName)); !os.IsNotExist(err) {
		t.Fatalf("unsealed node wrote root.key: %v", err)
	}
	ctx := context.Background()
	c := s3Client(t, p)
	body := []byte("sealed under shares")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("custody")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("custody"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(os.Interrupt)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	p.exited = true

	// Restart: another three shares give the same key (the key check
	// value matches) and the same keystore and object open.
	p = startSealed(t, bin, dataDir)
	for _, i := range []int{5, 2, 4} {
		if out, err := operatorUnseal(bin, dataDir, shares[i], false); err != nil {
			t.Fatalf("share %d: %v %s", i, err, out)
		}
	}
	waitReady(t, p)
	got, err := s3Client(t, p).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("custody"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	if b, _ := io.ReadAll(got.Body); !bytes.Equal(b, body) {
		t.Fatalf("object after restart: %q", b)
	}
}
