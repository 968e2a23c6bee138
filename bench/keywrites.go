package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// KeyWriteDefinition says what the key-write benchmark counts, for its
// report.
const KeyWriteDefinition = "one key write = one S3 CreateBucket or DeleteBucket answered with success: " +
	"each is exactly one keystore command (OpCreateBucket, OpDeleteBucket) committed through Raft " +
	"on a quorum and applied before the answer; writers are spread over every zone's gateway, " +
	"so two thirds of them are forwarded from a follower to the leader"

// KeyWriteDefinitionSingle is KeyWriteDefinition for KeyWritesConfig.Single.
const KeyWriteDefinitionSingle = "one key write = one S3 CreateBucket or DeleteBucket answered with success: " +
	"each is exactly one keystore command (OpCreateBucket, OpDeleteBucket) applied and synced by the " +
	"node's local log before the answer; one node, no Raft (for comparison with the 3-zone cluster)"

// KeyWritesConfig configures KeyWrites.
type KeyWritesConfig struct {
	// Bin and Dir as for StartCluster.
	Bin, Dir string
	// Single runs the load on one plain `tresor serve` instead of a
	// 3-zone cluster (ClusterConfig.Single): the same requests without
	// Raft, to price replication. Transfer does not apply.
	Single bool
	// Writers is the number of concurrent writers (64 by default).
	Writers int
	// Duration is how long they write.
	Duration time.Duration
	// Transfer, if set, makes the leader hand leadership over at half
	// time (tresor cluster transfer-leader), and the report measures the
	// longest gap between key writes around it.
	Transfer bool
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// KeyWritesReport is the outcome of KeyWrites.
type KeyWritesReport struct {
	Definition      string  `json:"definition"`
	Nodes           int     `json:"nodes"`
	Writers         int     `json:"writers"`
	DurationSeconds float64 `json:"duration_seconds"`
	KeyWrites       int64   `json:"key_writes"`
	FailedWrites    int64   `json:"failed_writes"`
	PerSecond       float64 `json:"key_writes_per_second"`
	LatencyP50Ms    float64 `json:"latency_p50_ms"`
	LatencyP99Ms    float64 `json:"latency_p99_ms"`
	// BaselineGapSeconds is the longest gap between successful key writes
	// in the second before the transfer; TransferUnavailableSeconds the
	// longest in the two seconds after it began (-1: no transfer).
	BaselineGapSeconds         float64 `json:"baseline_gap_seconds"`
	TransferUnavailableSeconds float64 `json:"transfer_write_unavailable_seconds"`
	// FailuresByClass counts failed requests by operation and error (S3
	// code and status, or what the connection did).
	FailuresByClass map[string]int64 `json:"failures_by_class,omitempty"`
	Errors          []string         `json:"errors,omitempty"`
}

// KeyWrites measures keystore writes per second with concurrent writers on
// a cluster of real processes (see KeyWriteDefinition).
func KeyWrites(ctx context.Context, cfg KeyWritesConfig) (*KeyWritesReport, error) {
	if cfg.Writers <= 0 {
		cfg.Writers = 64
	}
	rep := &KeyWritesReport{Definition: KeyWriteDefinition, Writers: cfg.Writers, TransferUnavailableSeconds: -1}
	if cfg.Single {
		rep.Definition = KeyWriteDefinitionSingle
		if cfg.Transfer {
			return rep, errors.New("a single node has no leadership to transfer")
		}
	}
	c, err := StartCluster(ctx, ClusterConfig{Bin: cfg.Bin, Dir: cfg.Dir, Single: cfg.Single, Logf: cfg.Logf})
	if err != nil {
		return rep, err
	}
	defer c.Close()
	rep.Nodes = len(c.Nodes)
	clients := make([]*s3.Client, len(c.Nodes))
	for i := range c.Nodes {
		clients[i] = c.Client(i, 5*time.Second)
	}

	tl := NewTimeline()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		failed atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		lat    []time.Duration
	)
	for w := range cfg.Writers {
		wg.Go(func() {
			zone := w % len(clients)
			cl := clients[zone]
			var mine []time.Duration
			defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
			for n := 0; runCtx.Err() == nil; n++ {
				name := aws.String(fmt.Sprintf("kw-%d-%d", w, n))
				for i, op := range []func(context.Context) error{
					func(ctx context.Context) error {
						_, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: name})
						return err
					},
					func(ctx context.Context) error {
						_, err := cl.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: name})
						return err
					},
				} {
					start := tl.Now()
					err := op(runCtx)
					end := tl.Now()
					if runCtx.Err() != nil {
						return
					}
					tl.Add(opOf([]OpKind{"create-bucket", "delete-bucket"}[i], zone, start, end, err))
					if err != nil {
						failed.Add(1)
						pace(runCtx, time.Now().Add(10*time.Millisecond))
						break // a new name: the outcome of this one is unknown
					}
					mine = append(mine, end-start)
				}
			}
		})
	}
	transferAt := time.Duration(-1)
	if cfg.Transfer {
		if pace(runCtx, tl.start.Add(cfg.Duration/2)) {
			if cur, err := c.WaitLeader(runCtx, -1, 5*time.Second); err != nil {
				rep.Errors = append(rep.Errors, "transfer: "+err.Error())
			} else {
				at := tl.Now()
				if err := c.TransferLeadership(runCtx, cur); err != nil {
					rep.Errors = append(rep.Errors, "transfer: "+err.Error())
				} else {
					transferAt = at
				}
			}
		}
	}
	wg.Wait()
	end := tl.Now()
	ops := tl.Ops()
	all := func(Op) bool { return true }
	if transferAt >= 0 {
		gap, _ := Unavailable(ops, all, transferAt, 2*time.Second, end)
		rep.TransferUnavailableSeconds = round3(gap.Seconds())
		base, _ := Unavailable(ops, all, transferAt-time.Second, time.Second-time.Millisecond, end)
		rep.BaselineGapSeconds = round3(base.Seconds())
	}
	for _, op := range ops {
		if !op.OK {
			if rep.FailuresByClass == nil {
				rep.FailuresByClass = make(map[string]int64)
			}
			rep.FailuresByClass[string(op.Kind)+", "+op.Err]++
		}
	}
	slices.Sort(lat)
	rep.KeyWrites = int64(len(lat))
	rep.FailedWrites = failed.Load()
	rep.DurationSeconds = round3(end.Seconds())
	rep.PerSecond = round3(float64(len(lat)) / end.Seconds())
	if len(lat) > 0 {
		rep.LatencyP50Ms = round3(float64(lat[len(lat)/2]) / 1e6)
		rep.LatencyP99Ms = round3(float64(lat[len(lat)*99/100]) / 1e6)
	}
	return rep, nil
}
