package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLog_RoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := newFakeKeys(tenantA, tenantB)
	store := &MemoryCheckpoints{}
	pub := writeLog(t, dir, 40, 7, keys, store)

	sys, err := ReadSystemKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	op, err := NewOpener(keys, sys)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	err = Entries(context.Background(), dir, func(e Entry, err error) error {
		if err != nil {
			return err
		}
		r, err := op.Open(context.Background(), e)
		if err != nil {
			return err
		}
		want := record(n, t0.Add(time.Duration(n)*time.Minute))
		want.Seq, want.NodeID = uint64(n), "node-1"
		if r != want {
			t.Errorf("record %d:\n got %+v\nwant %+v", n, r, want)
		}
		n++
		return nil
	})
	if err != nil || n != 40 {
		t.Fatalf("read %d records: %v", n, err)
	}
	rep, err := Verify(context.Background(), dir, pub, VerifyOptions{Replicated: mustCheckpoints(t, store, pub)})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Problems)
	}
	if rep.Records != 40 || rep.Verified != 40 || rep.Replicated == 0 || rep.Checkpoints < 6 {
		t.Fatalf("report %+v", rep)
	}
	// Reopen and continue: the frontier is rebuilt from the files.
	l := openLog(t, testConfig(dir, 7, keys, store, nil))
	if l.Size() != 40 {
		t.Fatalf("size after reopen %d", l.Size())
	}
	if err := l.Append(context.Background(), record(40, time.Time{})); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), record(41, time.Time{})); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	rep, _ = Verify(context.Background(), dir, pub, VerifyOptions{Replicated: mustCheckpoints(t, store, pub)})
	if !rep.OK() || rep.Verified != 41 {
		t.Fatalf("after reopen: %+v", rep)
	}
}

func mustCheckpoints(t *testing.T, s CheckpointStore, pub PublicKeys) []SignedCheckpoint {
	t.Helper()
	cps, err := s.Checkpoints(context.Background(), pub.LogID)
	if err != nil {
		t.Fatal(err)
	}
	return cps
}

func TestLog_KeyFilesPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeLog(t, dir, 1, 1, nil, nil)
	for _, name := range []string{signingKeyFile, systemKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", name, fi.Mode().Perm())
		}
	}
	if err := os.Chmod(filepath.Join(dir, signingKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), testConfig(dir, 1, nil, nil, nil)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open with a world-readable key: %v", err)
	}
}

func TestLog_TornTailIsCutOff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pub := writeLog(t, dir, 5, 5, nil, nil)
	segs, _ := listSegments(dir)
	f, err := os.OpenFile(segs[len(segs)-1].path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 1, 0, 9, 9}) // a frame header cut short by a crash
	f.Close()
	ck, _ := os.OpenFile(filepath.Join(dir, checkpointsFile), os.O_WRONLY|os.O_APPEND, 0)
	ck.Write([]byte{0, 0, 0x10, 0, 1, 2, 3, 4, 5}) // and a checkpoint too
	ck.Close()
	if rep, _ := Verify(context.Background(), dir, pub, VerifyOptions{Live: true}); !rep.OK() {
		t.Fatalf("live verify of a torn tail: %+v", rep.Problems)
	}
	l := openLog(t, testConfig(dir, 5, nil, nil, nil))
	if err := l.Append(context.Background(), record(5, time.Time{})); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, _ := Verify(context.Background(), dir, pub, VerifyOptions{}); !rep.OK() || rep.Records != 6 {
		t.Fatalf("after repair: %+v", rep)
	}
}

// TestLog_ConcurrentAppend runs many writers (go test -race) and checks
// every record is in the log once, in a verifying tree.
func TestLog_ConcurrentAppend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := newFakeKeys(tenantA, tenantB)
	store := &MemoryCheckpoints{}
	cfg := testConfig(dir, 50, keys, store, nil)
	cfg.QueueSize = 8
	cfg.SegmentBytes = 16 << 10
	l := openLog(t, cfg)
	const writers, each = 8, 60
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := record(w*each+i, time.Time{})
				if err := l.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// Retention and appends share the writer's lock.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 3 {
			if _, err := l.Prune(context.Background(), time.Now().Add(-time.Hour)); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	pub := l.PublicKeys()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	sys, _ := ReadSystemKey(dir)
	op, _ := NewOpener(keys, sys)
	Entries(context.Background(), dir, func(e Entry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		seen[e.RequestID] = true
		if _, err := op.Open(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		return nil
	})
	if len(seen) != writers*each {
		t.Fatalf("%d distinct records, want %d", len(seen), writers*each)
	}
	rep, err := Verify(context.Background(), dir, pub, VerifyOptions{Replicated: mustCheckpoints(t, store, pub)})
	if err != nil || !rep.OK() || rep.Verified != writers*each {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

func TestLog_AppendHonoursContextWhenQueueFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(dir, 1000, nil, nil, nil)
	cfg.QueueSize = 1
	l := openLog(t, cfg)
	defer l.Close()
	// Hold the writer so the queue fills up.
	l.writeMu.Lock()
	errc := make(chan error, 3)
	for i := range 3 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			errc <- l.Append(ctx, record(i, time.Time{}))
		}()
	}
	var timeouts int
	for range 3 {
		if err := <-errc; errors.Is(err, context.DeadlineExceeded) {
			timeouts++
		}
	}
	l.writeMu.Unlock()
	if timeouts == 0 {
		t.Fatal("no Append reported the full queue")
	}
}

func TestLog_FailsClosedAfterWriteError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(dir, 1000, nil, nil, nil)
	cfg.RetryInterval = time.Hour // recovery is TestLog_RecoversAfterDiskFull's
	l := openLog(t, cfg)
	if err := l.Append(context.Background(), record(0, time.Time{})); err != nil {
		t.Fatal(err)
	}
	l.writeMu.Lock()
	l.seg.Close() // the next write fails
	l.writeMu.Unlock()
	for i := range 2 {
		if err := l.Append(context.Background(), record(1, time.Time{})); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("append %d after a write error: %v", i, err)
		}
	}
	l.Close()
}

func TestLog_NoPersonalPlaintextOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := newFakeKeys(tenantA, tenantB)
	writeLog(t, dir, 30, 10, keys, &MemoryCheckpoints{})
	out := filepath.Join(t.TempDir(), "export")
	if err := Export(context.Background(), dir, out, nil); err != nil {
		t.Fatal(err)
	}
	needles := []string{"TRSRSECRETKEY", "alice-", "198.51.100.", "private-bucket"}
	for _, d := range []string{dir, out} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(d, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range needles {
				if bytes.Contains(b, []byte(n)) {
					t.Errorf("%s contains %q in clear", e.Name(), n)
				}
			}
		}
	}
	// Without the tenant keys (or after crypto-shredding) the fields do
	// not open; with them they do.
	keys.Destroy(tenantA)
	op, _ := NewOpener(keys, nil)
	var opened, refused int
	Entries(context.Background(), out, func(e Entry, _ error) error {
		r, err := op.Open(context.Background(), e)
		switch {
		case errors.Is(err, ErrNoKey):
			refused++
			if r.User != "" || r.SourceAddr != "" || r.AccessKeyID != "" {
				t.Errorf("record %d: fields returned without a key", e.Seq)
			}
		case err == nil:
			opened++
			if e.Tenant != tenantB {
				t.Errorf("record %d of tenant %x opened", e.Seq, e.Tenant)
			}
		default:
			t.Fatal(err)
		}
		return nil
	})
	if opened != 10 || refused != 20 {
		t.Fatalf("opened %d, refused %d", opened, refused)
	}
}

// TestLog_TenantKeyUnavailable checks that a record whose tenant key cannot
// be fetched is still written, sealed under the system key.
func TestLog_TenantKeyUnavailable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := newFakeKeys() // knows no tenant
	l := openLog(t, testConfig(dir, 10, keys, nil, nil))
	if err := l.Append(context.Background(), record(0, time.Time{})); err != nil {
		t.Fatal(err)
	}
	l.Close()
	sys, _ := ReadSystemKey(dir)
	op, _ := NewOpener(keys, sys)
	var n int
	Entries(context.Background(), dir, func(e Entry, err error) error {
		n++
		r, err := op.Open(context.Background(), e)
		if err != nil || e.KeyVersion != ([16]byte{}) || r.User != "alice-0" || r.Tenant != tenantA {
			t.Fatalf("%v %+v", err, r)
		}
		return nil
	})
	if n != 1 {
		t.Fatalf("%d records", n)
	}
}

// unreachableCheckpoints is a CheckpointStore of a cluster without quorum:
// every shipment waits until its context ends.
type unreachableCheckpoints struct {
	MemoryCheckpoints
	canceled atomic.Int32
}

func (u *unreachableCheckpoints) PutCheckpoint(ctx context.Context, _ SignedCheckpoint) error {
	<-ctx.Done()
	if errors.Is(ctx.Err(), context.Canceled) {
		u.canceled.Add(1)
	}
	return ctx.Err()
}

// Close gives up shipping to a store that cannot take the checkpoint
// (finalShipGrace), however long ShipTimeout is, and keeps the records.
func TestLog_CloseDoesNotWaitForAnUnreachableStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := &unreachableCheckpoints{}
	cfg := testConfig(dir, 2, nil, store, nil)
	cfg.ShipTimeout = time.Hour
	l := openLog(t, cfg)
	for i := range 5 {
		if err := l.Append(context.Background(), record(i, t0)); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // finalShipGrace is 2 s: this is a hang
		t.Fatal("Close still waits for a store that cannot answer")
	}
	if store.canceled.Load() == 0 {
		t.Fatal("no shipment was given up")
	}
	var n int
	if err := Entries(context.Background(), dir, func(Entry, error) error { n++; return nil }); err != nil || n != 5 {
		t.Fatalf("%d records after Close (%v), want 5", n, err)
	}
}
