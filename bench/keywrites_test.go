package bench

import (
	"context"
	"testing"
	"time"
)

// TestKeyWrites_SingleNode runs the key-write load briefly on one plain
// `tresor serve` (KeyWritesConfig.Single): writes are acknowledged and the
// report says what was measured. Figures are logged, not asserted.
func TestKeyWrites_SingleNode(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := KeyWrites(ctx, KeyWritesConfig{
		Bin: tresorBin(t), Dir: t.TempDir(), Writers: 4, Duration: 2 * time.Second, Single: true, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d key writes, %.0f/s, p50 %.2f ms", rep.KeyWrites, rep.PerSecond, rep.LatencyP50Ms)
	if rep.Nodes != 1 || rep.Definition != KeyWriteDefinitionSingle {
		t.Errorf("report of %d nodes, definition %q; want one node and the single-node definition", rep.Nodes, rep.Definition)
	}
	if rep.KeyWrites == 0 || rep.FailedWrites != 0 {
		t.Errorf("%d key writes, %d failed; want some and none failed: %v", rep.KeyWrites, rep.FailedWrites, rep.FailuresByClass)
	}
}

// TestKeyWrites_SingleNodeHasNoTransfer: a transfer asked of a single node
// is refused before anything starts.
func TestKeyWrites_SingleNodeHasNoTransfer(t *testing.T) {
	rep, err := KeyWrites(context.Background(), KeyWritesConfig{Bin: "/nonexistent", Dir: t.TempDir(), Duration: time.Second, Single: true, Transfer: true})
	if err == nil {
		t.Fatal("a leadership transfer on a single node was accepted")
	}
	if rep == nil {
		t.Fatal("no report with the error (the command prints it)")
	}
}
