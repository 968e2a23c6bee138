package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLog_RecoversAfterRealENOSPC is TestLog_RecoversAfterDiskFull on a
// real full file system: a 4 MiB tmpfs filled up by another file. It needs
// the right to mount (root in a container that allows it) and is skipped
// elsewhere; the FaultyDisk tests cover the same paths everywhere.
func TestLog_RecoversAfterRealENOSPC(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tresor-audit-test", mnt, "tmpfs", 0, "size=4m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); FaultyDisk tests cover recovery", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	ctx := context.Background()
	dir := filepath.Join(mnt, "audit")
	cfg := testConfig(dir, 50, newFakeKeys(tenantA, tenantB), nil, nil)
	cfg.RetryInterval, cfg.MaxRetryInterval = 5*time.Millisecond, 40*time.Millisecond
	l := openLog(t, cfg)
	t.Cleanup(func() { l.Close() }) // before the unmount, if the test fails
	acked := 0
	next := 0
	appendOne := func() error {
		err := l.Append(ctx, record(next, time.Time{}))
		next++
		if err == nil {
			acked++
		}
		return err
	}
	for range 10 {
		if err := appendOne(); err != nil {
			t.Fatal(err)
		}
	}

	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	for i := 0; ; i++ {
		err := appendOne()
		if errors.Is(err, ErrUnavailable) {
			break
		}
		if err != nil || i > 10_000 {
			t.Fatalf("append %d on a full tmpfs: %v", i, err)
		}
	}
	waitFor(t, "two attempts to write again", func() bool { return l.attemptsSoFar() >= 2 })
	if err := appendOne(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append while the tmpfs is full: %v", err)
	}
	if err := l.Ready(ctx); err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("Ready while full: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the log to take records again", func() bool { return l.Ready(ctx) == nil })
	for range 10 {
		if err := appendOne(); err != nil {
			t.Fatalf("Append after space came back: %v", err)
		}
	}
	pub := l.PublicKeys()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, dir, pub, VerifyOptions{})
	if err != nil || !rep.OK() || rep.Records != uint64(acked) {
		t.Fatalf("verify: %v, %d records, %d acknowledged, problems %+v", err, rep.Records, acked, rep.Problems)
	}
	t.Logf("%d records acknowledged, %d refused; the log verifies", acked, next-acked)
}
