package keystore

import (
	"context"
	"testing"
)

// levelLog records the read levels it is asked for.
type levelLog struct {
	*LocalLog
	levels []ReadLevel
}

func (l *levelLog) Barrier(ctx context.Context, level ReadLevel) error {
	l.levels = append(l.levels, level)
	return l.LocalLog.Barrier(ctx, level)
}

func TestReadLevel_ReachesTheLog(t *testing.T) {
	cfg := testConfig(t)
	var ll *levelLog
	cfg.NewLog = func(f *FSM) (Log, error) {
		ll = &levelLog{LocalLog: NewLocalLog(f)}
		return ll, nil
	}
	s := openStore(t, cfg)
	ctx := context.Background()
	s.Tenants(ctx)
	s.Tenants(WithReadLevel(ctx, ReadLinearizable))
	if len(ll.levels) != 2 || ll.levels[0] != ReadLocal || ll.levels[1] != ReadLinearizable {
		t.Fatalf("levels %v", ll.levels)
	}
}
