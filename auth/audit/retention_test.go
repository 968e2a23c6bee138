package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPrune_RemainingCheckpointsVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := &MemoryCheckpoints{}
	keys := newFakeKeys(tenantA, tenantB)
	clock := &testClock{t: t0}
	cfg := testConfig(dir, 4, keys, store, clock)
	cfg.SegmentBytes = 1 << 20 // segments roll by day only
	l := openLog(t, cfg)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 3 * time.Hour) }
	for i := range 30 { // 30 records over four days
		clock.Set(at(i))
		if err := l.Append(context.Background(), record(i, time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	pub := l.PublicKeys()
	cut := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	removed, err := l.Prune(context.Background(), cut)
	if err != nil {
		t.Fatal(err)
	}
	// Day one holds records 0-4 (10:00 to 22:00), day two 5-12.
	if removed != 13 {
		t.Fatalf("removed %d records, want 13", removed)
	}
	// Appending goes on after retention.
	clock.Set(at(30))
	if err := l.Append(context.Background(), record(30, time.Time{})); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var oldest time.Time
	Entries(context.Background(), dir, func(e Entry, _ error) error {
		if oldest.IsZero() {
			oldest = e.Time
		}
		return nil
	})
	if oldest.Before(cut) {
		t.Fatalf("a record of %v survived retention", oldest)
	}
	replicated := mustCheckpoints(t, store, pub)
	rep, err := Verify(context.Background(), dir, pub, VerifyOptions{Replicated: replicated})
	if err != nil || !rep.OK() {
		t.Fatalf("after retention: %v %v", err, rep.Problems)
	}
	if rep.Base != 13 || rep.Records != 31 || rep.Verified != 31 || rep.Pruned == 0 {
		t.Fatalf("report %+v", rep)
	}
	// The checkpoints kept locally are all at or above the base.
	cps, _ := readCheckpointFile(filepath.Join(dir, checkpointsFile))
	for _, c := range cps {
		if c.Size < 13 {
			t.Fatalf("checkpoint of size %d kept", c.Size)
		}
	}
	// An export of the pruned log verifies, and reopening works.
	out := filepath.Join(t.TempDir(), "x")
	if err := Export(context.Background(), dir, out, replicated); err != nil {
		t.Fatal(err)
	}
	if rep, _ := Verify(context.Background(), out, pub, VerifyOptions{Replicated: replicated}); !rep.OK() {
		t.Fatalf("export: %v", rep.Problems)
	}
	l = openLog(t, testConfig(dir, 4, keys, store, nil))
	if l.Size() != 31 {
		t.Fatalf("size %d", l.Size())
	}
	l.Close()

	// A damaged base is caught by the next checkpoint.
	d := copyDir(t, out)
	editFile(t, filepath.Join(d, baseFile), func(b []byte) []byte {
		b[len(baseMagic)+8] ^= 1
		// Keep the file's own checksum right: only the roots can tell.
		return append(b[:len(b)-4], marshalBase(mustBase(t, b))[len(b)-4:]...)
	})
	if rep, _ := Verify(context.Background(), d, pub, VerifyOptions{Replicated: replicated}); rep.OK() {
		t.Fatal("a forged base verifies")
	}
}

// mustBase parses base bytes without checking their checksum.
func mustBase(t *testing.T, b []byte) Frontier {
	t.Helper()
	f := Frontier{Size: uint64(b[len(baseMagic)+7]) | uint64(b[len(baseMagic)+6])<<8}
	for p := b[len(baseMagic)+8 : len(b)-4]; len(p) > 0; p = p[32:] {
		f.Peaks = append(f.Peaks, Hash(p[:32]))
	}
	return f
}

func TestPrune_NothingOld(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := openLog(t, testConfig(dir, 2, nil, nil, nil))
	for i := range 5 {
		l.Append(context.Background(), record(i, time.Time{}))
	}
	n, err := l.Prune(context.Background(), time.Now().Add(-time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	l.Close()
	if _, err := os.Stat(filepath.Join(dir, baseFile)); !os.IsNotExist(err) {
		t.Fatal("base written with nothing removed")
	}
}
