package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// loadBucket is the tenant bucket the drill's load writes.
const loadBucket = "failover"

// FailoverConfig configures a failover drill.
type FailoverConfig struct {
	// Bin is the tresor binary to run (os.Executable() for the CLI).
	Bin string
	// Dir holds the processes' data and logs.
	Dir string
	// Duration is how long the load runs; the faults are placed at fixed
	// fractions of it (see Failover).
	Duration time.Duration
	// Load is the load; Clients and Bucket are filled in by the drill.
	Load LoadConfig
	// PauseLeader pauses the leader instead of a follower in the SIGSTOP
	// step.
	PauseLeader bool
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// DefaultFailoverConfig returns a 60 s drill with the default load.
func DefaultFailoverConfig(bin, dir string) FailoverConfig {
	return FailoverConfig{Bin: bin, Dir: dir, Duration: 60 * time.Second, Load: DefaultLoadConfig()}
}

// Event is one thing the drill did, on the load's timeline.
type Event struct {
	AtSeconds float64 `json:"at_seconds"`
	Action    string  `json:"action"` // sigkill, restart, ready, transfer, sigstop, sigcont, leader
	Node      string  `json:"node,omitempty"`
	Zone      string  `json:"zone,omitempty"`
	Note      string  `json:"note,omitempty"`
	at        time.Duration
}

// Report is the drill's outcome. Times are in seconds on the load's
// timeline; "surviving zones" are the gateways not killed or paused while
// the operation ran.
type Report struct {
	DurationSeconds float64 `json:"duration_seconds"`
	Nodes           int     `json:"nodes"`

	// AcknowledgedWrites counts writes answered with success.
	AcknowledgedWrites int `json:"acknowledged_writes"`
	// LostWrites counts keys whose last acknowledged version the final
	// pass did not read back, byte for byte, through every zone.
	LostWrites int `json:"lost_writes"`
	// StaleReads counts reads during the load that returned an older
	// version than one acknowledged before the read began (or none).
	StaleReads int64 `json:"stale_reads"`
	// CorruptReads counts reads whose bytes were not the content of the
	// version they claim, or claimed a version never written (load and
	// final pass).
	CorruptReads int64 `json:"corrupt_reads"`
	// FailedReads and FailedWrites count requests that got an error or no
	// answer within the request timeout; the _surviving_zones variants only
	// those through a gateway that was neither killed nor paused.
	FailedReads                int64 `json:"failed_reads"`
	FailedReadsSurvivingZones  int64 `json:"failed_reads_surviving_zones"`
	FailedWrites               int64 `json:"failed_writes"`
	FailedWritesSurvivingZones int64 `json:"failed_writes_surviving_zones"`
	Reads                      int64 `json:"reads"`
	Writes                     int64 `json:"writes"`
	FinalVerificationReads     int   `json:"final_verification_reads"`
	FinalVerificationFailed    int   `json:"final_verification_failed_reads"`
	FinalVerificationKeys      int   `json:"final_verification_keys"`

	// WriteUnavailableSeconds is, after the leader's SIGKILL, the longest
	// gap between successful keystore writes (one-part multipart uploads:
	// two Raft writes each) through surviving zones.
	WriteUnavailableSeconds float64 `json:"write_unavailable_seconds"`
	// PutUnavailableSeconds is the same for single PUTs, which need no
	// Raft write (only the local replica's reads and the backend).
	PutUnavailableSeconds float64 `json:"put_unavailable_seconds"`
	// LeaderElectedSeconds is the time from the SIGKILL until a surviving
	// node's `tresor cluster status` names a new leader (polled every
	// 100 ms).
	LeaderElectedSeconds float64 `json:"leader_elected_seconds"`
	// ReadUnavailableSeconds is the longest time, in a surviving zone, from
	// the start of a failed read to the next successful read there.
	ReadUnavailableSeconds float64 `json:"read_unavailable_seconds"`
	// TransferWriteUnavailableSeconds is the longest gap between successful
	// keystore writes (any zone) around a planned leadership transfer; -1
	// if the transfer could not run.
	TransferWriteUnavailableSeconds float64 `json:"transfer_write_unavailable_seconds"`
	// BaselineWriteGapSeconds is the longest such gap before any fault,
	// for comparison.
	BaselineWriteGapSeconds float64 `json:"baseline_write_gap_seconds"`
	// PauseWriteUnavailableSeconds is the longest gap between successful
	// keystore writes through surviving zones around the SIGSTOP.
	PauseWriteUnavailableSeconds float64 `json:"pause_write_unavailable_seconds"`

	// FailuresByClass counts failed requests by "kind, zone state,
	// error": kind put, multipart or get; zone state "surviving" or
	// "faulted" (its gateway killed or paused while the request ran); the
	// S3 error code and status, or what the connection did.
	FailuresByClass map[string]int64 `json:"failures_by_class,omitempty"`

	Events   []Event   `json:"events"`
	Problems []Problem `json:"problems,omitempty"`
	Errors   []string  `json:"errors,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
	// OK is false if an acknowledged write was lost, a read returned wrong
	// bytes or an older version than acknowledged, or the drill itself
	// failed.
	OK bool `json:"ok"`
}

// Failover runs the drill: a cluster of one node per zone on one backend,
// load through every zone's gateway for cfg.Duration D, and on the load's
// timeline
//
//	0.20 D  SIGKILL the leader's process
//	0.45 D  restart it on its data directory
//	0.60 D  planned leadership transfer (tresor cluster transfer-leader)
//	0.75 D  SIGSTOP a follower (or the leader), SIGCONT 0.1 D later (1-5 s)
//	1.00 D  stop the load; read back every key through every zone
//
// It returns the report; err is set only if the drill could not run (the
// report then says what happened so far). Every child is killed before it
// returns, also when ctx ends (Ctrl-C) or on a panic.
func Failover(ctx context.Context, cfg FailoverConfig) (rep *Report, err error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep = &Report{TransferWriteUnavailableSeconds: -1}
	c, err := StartCluster(ctx, ClusterConfig{Bin: cfg.Bin, Dir: cfg.Dir, Logf: logf})
	if err != nil {
		return rep, err
	}
	defer c.Close()
	rep.Nodes = len(c.Nodes)

	setup := c.Client(0, 10*time.Second)
	if _, err := setup.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(loadBucket)}); err != nil {
		return rep, fmt.Errorf("create bucket: %w", err)
	}
	lc := cfg.Load
	lc.Bucket = loadBucket
	lc.Clients = nil
	for i := range c.Nodes {
		lc.Clients = append(lc.Clients, c.Client(i, lc.OpTimeout))
	}
	tl := NewTimeline()
	load := NewLoad(lc, tl)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var loadDone sync.WaitGroup
	loadDone.Go(func() { load.Run(loadCtx) })
	logf("load running for %v", cfg.Duration)

	d := cfg.Duration
	var (
		mu       sync.Mutex
		faults   = make(map[int][]Window) // node -> when it was down or paused
		errs     []error
		warnings []string // steps that could not run but do not fail the drill
	)
	event := func(action string, node int, note string) time.Duration {
		at := tl.Now()
		e := Event{AtSeconds: at.Seconds(), Action: action, Note: note, at: at}
		if node >= 0 {
			e.Node, e.Zone = c.Nodes[node].Name, c.Zones[node]
		}
		mu.Lock()
		rep.Events = append(rep.Events, e)
		mu.Unlock()
		logf("%6.2fs %s %s %s", at.Seconds(), action, e.Node, note)
		return at
	}
	wait := func(frac float64) bool { return pace(ctx, tl.start.Add(time.Duration(frac*float64(d)))) }

	var killAt, electedAt, transferAt, pauseAt time.Duration = -1, -1, -1, -1
	drill := func() error {
		if !wait(0.20) {
			return ctx.Err()
		}
		leader, err := c.WaitLeader(ctx, -1, 10*time.Second)
		if err != nil {
			return err
		}
		killAt = event("sigkill", leader, "leader")
		if err := c.Nodes[leader].Kill(); err != nil {
			return err
		}
		next, err := c.WaitLeader(ctx, leader, 30*time.Second)
		if err != nil {
			return fmt.Errorf("after killing the leader: %w", err)
		}
		electedAt = event("leader", next, "elected")
		if !wait(0.45) {
			return ctx.Err()
		}
		event("restart", leader, "")
		if err := c.Nodes[leader].Restart(ctx); err != nil {
			return err
		}
		ready := event("ready", leader, "")
		mu.Lock()
		faults[leader] = append(faults[leader], Window{killAt, ready})
		mu.Unlock()

		if !wait(0.60) {
			return ctx.Err()
		}
		if cur, err := c.WaitLeader(ctx, -1, 10*time.Second); err != nil {
			warnings = append(warnings, fmt.Sprintf("transfer: %v", err))
		} else {
			at := event("transfer", cur, "planned leadership transfer")
			if err := c.TransferLeadership(ctx, cur); err != nil {
				warnings = append(warnings, fmt.Sprintf("transfer: %v", err))
			} else {
				transferAt = at
				if n, err := c.WaitLeader(ctx, cur, 10*time.Second); err == nil {
					event("leader", n, "after transfer")
				}
			}
		}

		if !wait(0.75) {
			return ctx.Err()
		}
		cur, err := c.WaitLeader(ctx, -1, 10*time.Second)
		if err != nil {
			return err
		}
		target := (cur + 1) % len(c.Nodes)
		if cfg.PauseLeader {
			target = cur
		}
		pauseAt = event("sigstop", target, "")
		if err := c.Nodes[target].Pause(); err != nil {
			return err
		}
		hold := min(max(time.Duration(0.1*float64(d)), time.Second), 5*time.Second)
		pace(ctx, time.Now().Add(hold))
		if err := c.Nodes[target].Resume(); err != nil {
			return err
		}
		resumed := event("sigcont", target, "")
		mu.Lock()
		faults[target] = append(faults[target], Window{pauseAt, resumed})
		mu.Unlock()
		return nil
	}
	if err := drill(); err != nil {
		errs = append(errs, err)
	}
	wait(1.0)
	stopLoad()
	loadDone.Wait()
	end := tl.Now()
	event("load stopped", -1, "")

	if ctx.Err() != nil { // interrupted: no verdict, and out fast
		rep.Errors = append(rep.Errors, "interrupted before the final verification")
		return rep, ctx.Err()
	}
	// The final pass retries failed reads, so a paused or restarted node
	// that still lags answers in time; it is bounded all the same.
	vctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	fin := load.Verify(vctx, lc.Clients, 5)
	event("verified", -1, fmt.Sprintf("%d keys, %d reads", fin.Keys, fin.Reads))

	st := load.Stats()
	ops := tl.Ops()
	surviving := func(op Op) bool {
		for _, w := range faults[op.Zone] {
			if w.Overlaps(op.Start, op.End) {
				return false
			}
		}
		return true
	}
	rep.fill(st, fin, load.Ledger.Acknowledged(), ops, surviving, end)
	rep.DurationSeconds = end.Seconds()
	horizon := max(d/10, 5*time.Second)
	isMultipart := func(op Op) bool { return op.Kind == OpMultipart && surviving(op) }
	isPut := func(op Op) bool { return op.Kind == OpPut && surviving(op) }
	if killAt >= 0 {
		gap, _ := Unavailable(ops, isMultipart, killAt, horizon, end)
		rep.WriteUnavailableSeconds = gap.Seconds()
		gap, _ = Unavailable(ops, isPut, killAt, horizon, end)
		rep.PutUnavailableSeconds = gap.Seconds()
		// The baseline: the steady load before the first fault.
		base, _ := Unavailable(ops, func(op Op) bool { return op.Kind == OpMultipart }, killAt/4, killAt/2, end)
		rep.BaselineWriteGapSeconds = base.Seconds()
	}
	if electedAt >= 0 {
		rep.LeaderElectedSeconds = (electedAt - killAt).Seconds()
	}
	if transferAt >= 0 {
		gap, _ := Unavailable(ops, isMultipart, transferAt, 2*time.Second, end)
		rep.TransferWriteUnavailableSeconds = gap.Seconds()
	}
	if pauseAt >= 0 {
		gap, _ := Unavailable(ops, isMultipart, pauseAt, horizon, end)
		rep.PauseWriteUnavailableSeconds = gap.Seconds()
	}
	for _, e := range errs {
		rep.Errors = append(rep.Errors, e.Error())
	}
	rep.Warnings = warnings
	rep.OK = rep.OK && len(errs) == 0 && killAt >= 0
	rep.round()
	if len(errs) > 0 {
		return rep, errors.Join(errs...)
	}
	return rep, nil
}

// fill sets the counters of r from the load's statistics, the final pass
// and the timeline, and OK from the invariants.
func (r *Report) fill(st LoadStats, fin VerifyResult, acked int, ops []Op, surviving func(Op) bool, end time.Duration) {
	r.AcknowledgedWrites = acked
	r.Writes, r.Reads = st.Writes, st.Reads
	r.FailedWrites, r.FailedReads = st.FailedWrites, st.FailedReads
	r.StaleReads = st.LostReads
	r.CorruptReads = st.CorruptReads + int64(fin.CorruptReads)
	r.LostWrites = fin.LostWrites
	r.FinalVerificationKeys, r.FinalVerificationReads, r.FinalVerificationFailed = fin.Keys, fin.Reads, fin.FailedReads
	r.Problems = st.Problems
	for _, op := range ops {
		if op.OK {
			continue
		}
		state := "surviving"
		if !surviving(op) {
			state = "faulted"
		}
		if r.FailuresByClass == nil {
			r.FailuresByClass = make(map[string]int64)
		}
		r.FailuresByClass[string(op.Kind)+", "+state+", "+op.Err]++
		if state != "surviving" {
			continue
		}
		if op.Kind == OpGet {
			r.FailedReadsSurvivingZones++
		} else {
			r.FailedWritesSurvivingZones++
		}
	}
	r.ReadUnavailableSeconds = FailedWindow(ops, func(op Op) bool { return op.Kind == OpGet && surviving(op) }, end).Seconds()
	r.OK = r.LostWrites == 0 && r.CorruptReads == 0 && r.StaleReads == 0 && r.AcknowledgedWrites > 0
}

// round rounds the report's seconds to milliseconds.
func (r *Report) round() {
	for _, f := range []*float64{&r.DurationSeconds, &r.WriteUnavailableSeconds, &r.PutUnavailableSeconds,
		&r.LeaderElectedSeconds, &r.ReadUnavailableSeconds, &r.TransferWriteUnavailableSeconds,
		&r.BaselineWriteGapSeconds, &r.PauseWriteUnavailableSeconds} {
		*f = round3(*f)
	}
	for i := range r.Events {
		r.Events[i].AtSeconds = round3(r.Events[i].AtSeconds)
	}
}

// round3 rounds x to three decimals.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
