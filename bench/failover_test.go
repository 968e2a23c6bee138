package bench

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// requireCluster skips the test when the binary's serve has no cluster
// flags.
func requireCluster(t *testing.T, bin string) {
	t.Helper()
	out, _ := exec.Command(bin, "serve", "-h").CombinedOutput()
	if !strings.Contains(string(out), "-node-id") {
		t.Skip("tresor serve has no cluster flags (--node-id)")
	}
}

// TestFailover_Drill is CI's short failover drill on real processes: three
// nodes in three zones on one backend, the leader killed with SIGKILL and
// restarted, a leadership transfer, a node paused with SIGSTOP. It asserts
// the invariants only; the availability figures are reported (t.Log), not
// asserted.
func TestFailover_Drill(t *testing.T) {
	if testing.Short() {
		t.Skip("a 25 s drill on real processes")
	}
	bin := tresorBin(t)
	requireCluster(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	cfg := DefaultFailoverConfig(bin, t.TempDir())
	cfg.Duration = 25 * time.Second
	cfg.Logf = t.Logf
	rep, err := Failover(ctx, cfg)
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("report:\n%s", b)
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if rep.AcknowledgedWrites == 0 {
		t.Error("no write was acknowledged")
	}
	if rep.LostWrites != 0 || rep.CorruptReads != 0 || rep.StaleReads != 0 {
		t.Errorf("lost %d, corrupt %d, stale %d", rep.LostWrites, rep.CorruptReads, rep.StaleReads)
	}
	var killed, elected bool
	for _, e := range rep.Events {
		killed = killed || e.Action == "sigkill"
		elected = elected || (e.Action == "leader" && e.Note == "elected")
	}
	if !killed || !elected {
		t.Errorf("failover not observed: sigkill %v, new leader %v", killed, elected)
	}
	if !rep.OK {
		t.Error("report not OK")
	}
}

// TestProcess_KillPauseRestartOverS3Backend drives the supervisor without a
// cluster: a gateway on a second tresor as its S3 backend (the drill's
// topology), under verified load, killed with SIGKILL and restarted, then
// paused and resumed. Nothing acknowledged may be lost.
func TestProcess_KillPauseRestartOverS3Backend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tresor processes")
	}
	ctx := context.Background()
	sup := newSupervisor(t)
	be := startSingle(t, ctx, sup, "backend")
	id, secret, err := readCredentials(be.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clientFor(t, be).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(backendBucket)}); err != nil {
		t.Fatal(err)
	}
	gw, err := sup.NewProcess("gw", "--log-level", "warn",
		"--backend", "s3+http://"+be.S3+"/"+backendBucket+"?path_style=true&region=us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	gw.Env = []string{"AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=" + secret}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := clientFor(t, gw)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("drill")}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultLoadConfig()
	cfg.Clients, cfg.Bucket = []*s3.Client{c}, "drill"
	cfg.WritersPerZone, cfg.ReadersPerZone, cfg.OpTimeout = 4, 2, time.Second
	l := NewLoad(cfg, NewTimeline())
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { l.Run(lctx); close(done) }()
	step := func(what string, f func() error) {
		time.Sleep(1500 * time.Millisecond) // let the load run between faults
		if err := f(); err != nil {
			stop()
			<-done
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("kill", gw.Kill)
	step("restart", func() error { return gw.Restart(ctx) })
	step("pause", gw.Pause)
	step("resume", gw.Resume)
	step("settle", func() error { return nil })
	stop()
	<-done

	st := l.Stats()
	r := l.Verify(ctx, cfg.Clients, 5)
	t.Logf("load %+v; final %+v; acknowledged %d", st, r, l.Ledger.Acknowledged())
	if l.Ledger.Acknowledged() == 0 || st.FailedWrites == 0 {
		t.Errorf("acknowledged %d, failed %d: the faults did not meet the load", l.Ledger.Acknowledged(), st.FailedWrites)
	}
	if r.LostWrites != 0 || r.CorruptReads != 0 || st.CorruptReads != 0 || st.LostReads != 0 {
		t.Errorf("lost or corrupt: load %+v, final %+v", st, r)
	}
}
