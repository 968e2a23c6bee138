package audit

import (
	"context"
	"testing"
)

// BenchmarkAppend measures Append from parallel goroutines, as the gateway
// calls it: records per second with group commit (one fsync per batch).
func BenchmarkAppend(b *testing.B) {
	dir := b.TempDir()
	cfg := testConfig(dir, 1000, newFakeKeys(tenantA, tenantB), &MemoryCheckpoints{}, nil)
	cfg.SegmentBytes = 16 << 20
	l, err := Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := l.Append(context.Background(), record(i, t0)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
