package bench

import (
	"testing"
	"time"
)

const ms = time.Millisecond

func TestUnavailable_MeasuresGapAfterEvent(t *testing.T) {
	ops := []Op{
		{Kind: OpMultipart, End: 100 * ms, OK: true},
		{Kind: OpMultipart, End: 200 * ms, OK: true},
		{Kind: OpMultipart, End: 900 * ms, OK: false}, // failures keep the gap open
		{Kind: OpMultipart, End: 2300 * ms, OK: true},
		{Kind: OpMultipart, End: 2400 * ms, OK: true},
		{Kind: OpMultipart, End: 9000 * ms, OK: true}, // beyond the horizon
	}
	all := func(Op) bool { return true }
	gap, ok := Unavailable(ops, all, 250*ms, time.Second, 10*time.Second)
	if !ok || gap != 2050*ms {
		t.Errorf("gap = %v, %v; want 2.05s", gap, ok)
	}
	gap, ok = Unavailable(ops[:3], all, 250*ms, time.Second, 10*time.Second)
	if ok || gap != 9750*ms {
		t.Errorf("no recovery: gap = %v, %v; want 9.75s to the end, false", gap, ok)
	}
}

func TestFailedWindow_FromFailureToNextSuccessInZone(t *testing.T) {
	ops := []Op{
		{Kind: OpGet, Zone: 0, Start: 0, End: 10 * ms, OK: true},
		{Kind: OpGet, Zone: 1, Start: 100 * ms, End: 150 * ms, OK: false},
		{Kind: OpGet, Zone: 0, Start: 120 * ms, End: 160 * ms, OK: true}, // other zone: does not close it
		{Kind: OpGet, Zone: 1, Start: 200 * ms, End: 400 * ms, OK: true},
	}
	gets := func(op Op) bool { return op.Kind == OpGet }
	if w := FailedWindow(ops, gets, time.Second); w != 300*ms {
		t.Errorf("window = %v, want 300ms", w)
	}
	if w := FailedWindow(ops[:1], gets, time.Second); w != 0 {
		t.Errorf("no failure: window = %v, want 0", w)
	}
}
