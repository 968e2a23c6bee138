package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue reads the one value of a collector without labels.
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

func (l *Log) attemptsSoFar() int {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	return l.attempts
}

// TestLog_RecoversAfterDiskFull fills the disk at different points of a
// write: the log refuses records while it cannot write (and says so in
// Ready and its metric), takes them again once there is room, without a
// restart, and leaves a log that verifies end to end: no gap, no torn
// record, only the records whose Append succeeded.
func TestLog_RecoversAfterDiskFull(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		every int // CheckpointEvery
		// fill makes the next writes fail; called with the log open and
		// some records written.
		// It returns the records it appended.
		fill func(t *testing.T, l *Log, d *FaultyDisk) []string
		// torn: the failed write left part of its bytes on disk.
		torn bool
	}{
		{"record torn", 1000, func(t *testing.T, l *Log, d *FaultyDisk) []string { d.SetFree(100); return nil }, true},
		{"nothing written", 1000, func(t *testing.T, l *Log, d *FaultyDisk) []string { d.SetFree(0); return nil }, false},
		// A record fits, its checkpoint (about 3.4 KB) does not.
		{"checkpoint torn", 1, func(t *testing.T, l *Log, d *FaultyDisk) []string { d.SetFree(1500); return nil }, true},
		{"no room for a new segment", 1000, func(t *testing.T, l *Log, d *FaultyDisk) []string {
			ids := fillSegment(t, l)
			d.SetFree(0)
			return ids
		}, false},
		// The new segment's header fits, its first record does not.
		{"record torn in a new segment", 1000, func(t *testing.T, l *Log, d *FaultyDisk) []string {
			ids := fillSegment(t, l)
			d.SetFree(int64(segmentHeaderSize) + 40)
			return ids
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			d := NewFaultyDisk()
			store := &MemoryCheckpoints{}
			cfg := WithDisk(testConfig(dir, tc.every, newFakeKeys(tenantA, tenantB), store, nil), d)
			cfg.RetryInterval, cfg.MaxRetryInterval = 5*time.Millisecond, 40*time.Millisecond
			l := openLog(t, cfg)
			writable := l.Collectors()[0]
			var acked []string
			next := 0
			appendOne := func() error {
				r := record(next, time.Time{})
				next++
				err := l.Append(ctx, r)
				if err == nil {
					acked = append(acked, r.RequestID)
				}
				return err
			}
			for range 3 {
				if err := appendOne(); err != nil {
					t.Fatal(err)
				}
			}
			acked = append(acked, tc.fill(t, l, d)...)
			var err error
			for range 3 { // the failing write, or the checkpoint after it
				if err = appendOne(); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Append on a full disk: %v, want ErrUnavailable", err)
			}
			if tc.torn && d.Torn() == 0 {
				t.Fatal("the failed write left nothing on disk; the case does not test a torn write")
			}
			// While full: refused, not ready, metric 0, and the log keeps
			// trying (and failing) to write again.
			waitFor(t, "two attempts to write again", func() bool { return l.attemptsSoFar() >= 2 })
			if err := appendOne(); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Append while the disk is still full: %v, want ErrUnavailable", err)
			}
			if err := l.Ready(ctx); err == nil || !strings.Contains(err.Error(), "no space left on device") {
				t.Errorf("Ready while full: %v, want the reason", err)
			}
			if v := metricValue(t, writable); v != 0 {
				t.Errorf("tresor_audit_writable = %v while full", v)
			}

			d.SetFree(-1)
			waitFor(t, "the log to take records again", func() bool { return l.Ready(ctx) == nil })
			if v := metricValue(t, writable); v != 1 {
				t.Errorf("tresor_audit_writable = %v after recovery", v)
			}
			for range 5 {
				if err := appendOne(); err != nil {
					t.Fatalf("Append after space came back: %v", err)
				}
			}
			pub := l.PublicKeys()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			rep, err := Verify(ctx, dir, pub, VerifyOptions{Replicated: mustCheckpoints(t, store, pub)})
			if err != nil || !rep.OK() {
				t.Fatalf("verify after recovery: %v %+v", err, rep.Problems)
			}
			if rep.Records != uint64(len(acked)) || rep.Verified != rep.Records {
				t.Errorf("log has %d records (%d under a signed root), want the %d acknowledged", rep.Records, rep.Verified, len(acked))
			}
			var got []string
			Entries(ctx, dir, func(e Entry, err error) error {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, e.RequestID)
				return nil
			})
			if fmt.Sprint(got) != fmt.Sprint(acked) {
				t.Errorf("records %v, want exactly the acknowledged %v", got, acked)
			}
			if _, err := os.Stat(dir + "/" + probeFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("space probe left behind: %v", err)
			}
			l2 := openLog(t, cfg) // and a restart accepts it
			l2.Close()
		})
	}
}

// fillSegment appends until the active segment is full, so the next
// record starts a new one, and returns the request ids appended.
func fillSegment(t *testing.T, l *Log) []string {
	t.Helper()
	var ids []string
	for i := 0; ; i++ {
		l.writeMu.Lock()
		full := l.segSize >= l.cfg.SegmentBytes
		l.writeMu.Unlock()
		if full {
			return ids
		}
		r := record(1000+i, time.Time{})
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RequestID)
	}
}

// TestLog_RecoveryRefusesATailThatChanged checks that recovery reads the
// tail back instead of trusting it: when the segment on disk no longer
// holds what was written, the log stays down (Ready says why) even after
// space returns, rather than append to a log that would not verify.
func TestLog_RecoveryRefusesATailThatChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	d := NewFaultyDisk()
	cfg := WithDisk(testConfig(dir, 1000, nil, nil, nil), d)
	cfg.RetryInterval, cfg.MaxRetryInterval = 5*time.Millisecond, 40*time.Millisecond
	l := openLog(t, cfg)
	defer l.Close()
	for i := range 3 {
		if err := l.Append(ctx, record(i, time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	path, off, _ := frameAt(t, dir, 1)
	editFile(t, path, func(b []byte) []byte { b[off+20] ^= 1; return b })
	d.SetFree(100)
	if err := l.Append(ctx, record(3, time.Time{})); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append on a full disk: %v", err)
	}
	d.SetFree(-1)
	waitFor(t, "the rollback to find the change", func() bool {
		l.failMu.Lock()
		defer l.failMu.Unlock()
		return l.broken
	})
	if err := l.Ready(ctx); err == nil || !strings.Contains(err.Error(), "do not hold what was written") {
		t.Errorf("Ready: %v, want the reason", err)
	}
	if err := l.Append(ctx, record(4, time.Time{})); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append to a log whose tail changed: %v, want ErrUnavailable", err)
	}
}
