package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// LoadConfig configures a Load.
type LoadConfig struct {
	// Clients holds one S3 client per zone's gateway.
	Clients []*s3.Client
	// Bucket is the tenant bucket the load writes to; it must exist.
	Bucket string
	// WritersPerZone and ReadersPerZone are the concurrent writers and
	// readers bound to each gateway. Half the writers (rounded down) do
	// single PUTs, the others one-part multipart uploads.
	WritersPerZone, ReadersPerZone int
	// VersionsPerKey is how many versions a writer writes to a key before it
	// moves to a new one.
	VersionsPerKey int
	// WriteRate and ReadRate cap the whole load's operations per second
	// (0: no cap), so a drill on a small machine keeps its final
	// verification short.
	WriteRate, ReadRate float64
	// OpTimeout bounds every request.
	OpTimeout time.Duration
}

// DefaultLoadConfig returns the drill's load: 4 writers and 4 readers per
// zone, 300 writes/s and 600 reads/s at most, 2 s per request.
func DefaultLoadConfig() LoadConfig {
	return LoadConfig{
		WritersPerZone: 4, ReadersPerZone: 4, VersionsPerKey: 8,
		WriteRate: 300, ReadRate: 600, OpTimeout: 2 * time.Second,
	}
}

// Problem is one read that returned wrong bytes or missed an acknowledged
// write, for the report.
type Problem struct {
	Key     string  `json:"key"`
	Zone    int     `json:"zone"`
	Verdict string  `json:"verdict"`
	Got     uint64  `json:"got_version"`
	Min     uint64  `json:"min_version"`
	Max     uint64  `json:"max_version"`
	Phase   string  `json:"phase"` // "load" or "final"
	AtSec   float64 `json:"at_seconds"`
}

// Load runs writers and readers against every zone and records what they
// saw in a Timeline and a Ledger.
type Load struct {
	cfg      LoadConfig
	Timeline *Timeline
	Ledger   *Ledger

	writes, failedWrites, reads, failedReads atomic.Int64
	corruptReads, lostReads                  atomic.Int64
	mu                                       sync.Mutex
	problems                                 []Problem
}

// maxProblems bounds the problems kept for the report.
const maxProblems = 50

// NewLoad returns a load that has not started.
func NewLoad(cfg LoadConfig, tl *Timeline) *Load {
	return &Load{cfg: cfg, Timeline: tl, Ledger: NewLedger()}
}

// Run runs the load until ctx ends and returns when every worker stopped.
func (l *Load) Run(ctx context.Context) {
	var wg sync.WaitGroup
	zones := len(l.cfg.Clients)
	writers := zones * l.cfg.WritersPerZone
	readers := zones * l.cfg.ReadersPerZone
	for z := range zones {
		for w := range l.cfg.WritersPerZone {
			kind := OpPut
			if w%2 == 1 {
				kind = OpMultipart
			}
			wg.Go(func() { l.writer(ctx, z, w, kind, interval(l.cfg.WriteRate, writers)) })
		}
		for r := range l.cfg.ReadersPerZone {
			wg.Go(func() { l.reader(ctx, z, uint64(z*1000+r), interval(l.cfg.ReadRate, readers)) })
		}
	}
	wg.Wait()
}

// interval is the pause between one worker's operations that keeps n
// workers at rate operations per second in all.
func interval(rate float64, n int) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(n) / rate * float64(time.Second))
}

// pace waits until next, or ctx ends; it returns false if ctx ended.
func pace(ctx context.Context, next time.Time) bool {
	d := time.Until(next)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (l *Load) writer(ctx context.Context, zone, w int, kind OpKind, every time.Duration) {
	c := l.cfg.Clients[zone]
	for n := 0; ctx.Err() == nil; n++ {
		key := fmt.Sprintf("%s/z%d-w%d-%d", kind, zone, w, n)
		for range l.cfg.VersionsPerKey {
			next := time.Now().Add(every)
			v := l.Ledger.Begin(key)
			start := l.Timeline.Now()
			notWritten, err := l.write(ctx, c, kind, key, v)
			end := l.Timeline.Now()
			l.Timeline.Add(opOf(kind, zone, start, end, err))
			l.writes.Add(1)
			if err != nil {
				l.failedWrites.Add(1)
				l.Ledger.Fail(key, v, notWritten)
				// Back off a little: a dead gateway refuses at once.
				if !pace(ctx, time.Now().Add(max(every, 20*time.Millisecond))) {
					return
				}
				if l.Ledger.Retired(key) {
					break
				}
				continue
			}
			l.Ledger.Ack(key, v)
			if !pace(ctx, next) {
				return
			}
		}
	}
}

// opOf describes one finished request for the timeline.
func opOf(kind OpKind, zone int, start, end time.Duration, err error) Op {
	op := Op{Kind: kind, Zone: zone, Start: start, End: end, OK: err == nil}
	if err != nil {
		op.Err = errClass(err)
	}
	return op
}

// write writes version v of key. notWritten is true when the error proves
// the object did not change (a multipart upload that failed before its
// completion was sent).
//
// The end of the load (ctx) does not cut a request short: it runs to its
// answer or its timeout, as a client that stops sending would let it.
// Cancelling requests in flight would be a fault of its own, one the drill
// does not mean to inject at a moment it does not choose.
func (l *Load) write(ctx context.Context, c *s3.Client, kind OpKind, key string, v uint64) (notWritten bool, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.OpTimeout)
	defer cancel()
	body := Body(key, v)
	bucket := aws.String(l.cfg.Bucket)
	if kind == OpPut {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(key), Body: bytes.NewReader(body)})
		return false, err
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(key)})
	if err != nil {
		return true, err
	}
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: aws.String(key), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(body)})
	if err != nil {
		return true, err
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}})
	return false, err
}

func (l *Load) reader(ctx context.Context, zone int, seed uint64, every time.Duration) {
	r := rand.New(rand.NewPCG(seed, 0x7265736f72))
	c := l.cfg.Clients[zone]
	for ctx.Err() == nil {
		next := time.Now().Add(max(every, time.Millisecond))
		key, min, ok := l.Ledger.PickAcked(r)
		if !ok {
			if !pace(ctx, time.Now().Add(20*time.Millisecond)) {
				return
			}
			continue
		}
		start := l.Timeline.Now()
		found, body, err := get(context.WithoutCancel(ctx), c, l.cfg.Bucket, key, l.cfg.OpTimeout)
		end := l.Timeline.Now()
		l.reads.Add(1)
		l.Timeline.Add(opOf(OpGet, zone, start, end, err))
		if err != nil {
			l.failedReads.Add(1)
		} else {
			verdict, got := Check(key, found, body, min, l.Ledger.Attempted(key))
			l.judge(verdict, Problem{Key: key, Zone: zone, Got: got, Min: min, Max: l.Ledger.Attempted(key), Phase: "load", AtSec: end.Seconds()})
		}
		if !pace(ctx, next) {
			return
		}
	}
}

// judge counts a load read's verdict (the final pass counts its own) and
// keeps the first problems.
func (l *Load) judge(v Verdict, p Problem) {
	if v == ReadOK {
		return
	}
	if p.Phase == "load" {
		switch v {
		case ReadCorrupt:
			l.corruptReads.Add(1)
		case ReadLost:
			l.lostReads.Add(1)
		}
	}
	p.Verdict = v.String()
	l.mu.Lock()
	if len(l.problems) < maxProblems {
		l.problems = append(l.problems, p)
	}
	l.mu.Unlock()
}

// get reads bucket/key; found is false on NoSuchKey.
func get(ctx context.Context, c *s3.Client, bucket, key string, timeout time.Duration) (found bool, body []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return false, nil, nil
		}
		return false, nil, err
	}
	defer out.Body.Close()
	// A body longer than any the load writes is wrong already; do not
	// read more of it.
	body, err = io.ReadAll(io.LimitReader(out.Body, maxBodySize+1))
	return err == nil, body, err
}

// VerifyResult is the outcome of the final verification pass.
type VerifyResult struct {
	Keys         int // keys checked
	Reads        int // reads made, through every zone
	LostWrites   int // keys whose acknowledged version some zone does not return byte for byte
	CorruptReads int
	FailedReads  int // zone reads that failed on every attempt
}

// Verify reads back every key of the ledger through every zone and checks
// each against its expectation, with up to attempts tries per read when the
// read fails (not when it returns wrong bytes). A key is lost if any zone
// answers without its acknowledged version, or if no zone could read it.
func (l *Load) Verify(ctx context.Context, clients []*s3.Client, attempts int) VerifyResult {
	exps := l.Ledger.Expectations()
	res := VerifyResult{Keys: len(exps)}
	var mu sync.Mutex
	work := make(chan Expectation)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for e := range work {
				lost, readable := false, false
				for z, c := range clients {
					var found bool
					var body []byte
					var err error
					for a := range attempts {
						if found, body, err = get(ctx, c, l.cfg.Bucket, e.Key, l.cfg.OpTimeout); err == nil || ctx.Err() != nil {
							break
						}
						pace(ctx, time.Now().Add(time.Duration(a+1)*100*time.Millisecond))
					}
					mu.Lock()
					res.Reads++
					if err != nil {
						res.FailedReads++
						mu.Unlock()
						continue
					}
					readable = true
					verdict, got := CheckFinal(e, found, body)
					switch verdict {
					case ReadCorrupt:
						res.CorruptReads++
						lost = true // the acknowledged bytes did not come back
					case ReadLost:
						lost = true
					}
					mu.Unlock()
					l.judge(verdict, Problem{Key: e.Key, Zone: z, Got: got, Min: e.Acked, Max: max(e.Acked, e.Unknown), Phase: "final"})
				}
				if e.Acked > 0 && (lost || !readable) {
					mu.Lock()
					res.LostWrites++
					mu.Unlock()
				}
				if e.Acked > 0 && !readable {
					l.judge(ReadLost, Problem{Key: e.Key, Zone: -1, Min: e.Acked, Max: max(e.Acked, e.Unknown), Phase: "final, unreadable in every zone"})
				}
			}
		})
	}
	for _, e := range exps {
		select {
		case work <- e:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return res
}

// LoadStats are the load's counters.
type LoadStats struct {
	Writes, FailedWrites, Reads, FailedReads, CorruptReads, LostReads int64
	Problems                                                          []Problem
}

// Stats returns the counters so far.
func (l *Load) Stats() LoadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LoadStats{
		Writes: l.writes.Load(), FailedWrites: l.failedWrites.Load(),
		Reads: l.reads.Load(), FailedReads: l.failedReads.Load(),
		CorruptReads: l.corruptReads.Load(), LostReads: l.lostReads.Load(),
		Problems: append([]Problem(nil), l.problems...),
	}
}
