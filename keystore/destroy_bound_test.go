package keystore

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// keyWatch polls one store's Key for a key version until it fails, and
// records when the store applied which index, so the test can compare the
// moment a node stopped decrypting with the moment the change reached it.
type keyWatch struct {
	node    int
	stopped time.Time // first failed Key
	err     error     // its error
	applied []appliedAt
}

type appliedAt struct {
	index uint64
	at    time.Time
}

// firstApplied is when the watched store was first seen at index or past it
// (zero if never).
func (w *keyWatch) firstApplied(index uint64) time.Time {
	for _, a := range w.applied {
		if a.index >= index {
			return a.at
		}
	}
	return time.Time{}
}

// destroyPoll is how often a watcher asks for the key, in synctest time.
const destroyPoll = 10 * time.Millisecond

func watchKey(ctx context.Context, s *Store, node int, tenant, id ID, want []byte) *keyWatch {
	w := &keyWatch{node: node}
	for ctx.Err() == nil {
		now, idx := time.Now(), s.AppliedIndex()
		if n := len(w.applied); n == 0 || w.applied[n-1].index != idx {
			w.applied = append(w.applied, appliedAt{idx, now})
		}
		secret, err := s.Key(ctx, tenant, id)
		if err != nil {
			w.stopped, w.err = now, err
			return w
		}
		if !bytes.Equal(secret, want) {
			w.stopped, w.err = now, errors.New("Key returned a different secret")
			return w
		}
		time.Sleep(destroyPoll)
	}
	w.err = ctx.Err()
	return w
}

// TestDestroyBound checks and measures the crypto-shredding bound of
// DESIGN.md section 4 on three zones: a key version is disabled, scheduled
// and destroyed while one zone is cut off from the others. The healthy
// zones must stop decrypting with it within replication lag + KeyCacheTTL
// (they do better: applying the change drops the key cache, so they stop
// as soon as it reaches them), and the cut-off zone, which never hears of
// the change, must stop serving within MaxStaleness of the cut, warm key
// cache or not. Fake time (testing/synctest) makes the figures exact, so
// the bounds are asserted without depending on the machine's speed.
func TestDestroyBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Destruction needs MinDestroyGrace to pass on the proposer's
		// clock; skew moves that clock (and nothing else) forward.
		var skew [3]atomic.Int64
		rc := newConfiguredRaftCluster(t, []string{"eu-a", "eu-b", "eu-c"}, nil, func(i int, cfg *Config) {
			cfg.KeyCacheTTL = DefaultKeyCacheTTL
			cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew[i].Load())) }
		})
		defer rc.close(t)
		ctx := context.Background()

		leader := leaderOf(ctx, t, rc.c)
		victim := (leader + 1) % 3
		ks := rc.stores[leader]

		tenant, err := ks.CreateTenant(ctx, "acme", nil)
		if err != nil {
			t.Fatal(err)
		}
		old := tenant.ActiveKey
		var rotated uint64
		next, err := ks.RotateKey(RecordIndex(ctx, &rotated), tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Every node reads the now decrypt-only version once, which warms
		// its key cache: the cut-off node must not be able to live on it.
		var secret []byte
		for i, s := range rc.stores {
			got, err := s.Key(ReadAfter(ctx, rotated), tenant.ID, old)
			if err != nil {
				t.Fatalf("node %d: key before the change: %v", i, err)
			}
			if secret == nil {
				secret = got
			} else if !bytes.Equal(got, secret) {
				t.Fatalf("node %d holds another secret for %s", i, old)
			}
		}

		cut := time.Now()
		rc.c.CutZone(rc.c.Zone(victim))
		watchCtx, stopWatch := context.WithTimeout(ctx, 2*DefaultKeyCacheTTL)
		defer stopWatch()
		watches := make([]*keyWatch, len(rc.stores))
		var wg sync.WaitGroup
		for i, s := range rc.stores {
			wg.Go(func() { watches[i] = watchKey(watchCtx, s, i, tenant.ID, old, secret) })
		}

		var disabled uint64
		start := time.Now()
		if err := ks.DisableKey(RecordIndex(ctx, &disabled), tenant.ID, old); err != nil {
			t.Fatal(err)
		}
		committed := time.Since(start)
		if err := ks.ScheduleKeyDestroy(ctx, tenant.ID, old, MinDestroyGrace); err != nil {
			t.Fatal(err)
		}
		skew[leader].Store(int64(MinDestroyGrace + time.Hour))
		var destroyed uint64
		if err := ks.DestroyKey(RecordIndex(ctx, &destroyed), tenant.ID, old); err != nil {
			t.Fatal(err)
		}
		wg.Wait()

		for i, w := range watches {
			if w.stopped.IsZero() {
				t.Errorf("node %d (%s) still decrypts with the disabled key after %v: %v", i, rc.c.Zone(i), time.Since(start), w.err)
				continue
			}
			if i == victim {
				if !errors.Is(w.err, ErrStale) {
					t.Errorf("cut-off node %d: error %v, want ErrStale", i, w.err)
				}
				after := w.stopped.Sub(cut)
				if after > testMaxStaleness+destroyPoll {
					t.Errorf("cut-off node %d served for %v after the cut; MaxStaleness is %v", i, after, testMaxStaleness)
				}
				t.Logf("cut-off zone %s: stopped serving %v after the cut (MaxStaleness %v, key cache TTL %v)",
					rc.c.Zone(i), after, testMaxStaleness, DefaultKeyCacheTTL)
				continue
			}
			// The first poll after the disable may already find the
			// version destroyed: in fake time the three commits are quick.
			if !errors.Is(w.err, ErrDisabled) && !errors.Is(w.err, ErrDestroyed) {
				t.Errorf("node %d: error %v, want ErrDisabled or ErrDestroyed", i, w.err)
			}
			applied := w.firstApplied(disabled)
			if applied.IsZero() {
				t.Errorf("node %d stopped decrypting before it was seen applying index %d", i, disabled)
				continue
			}
			lag, stop := applied.Sub(start), w.stopped.Sub(start)
			if stop > lag+DefaultKeyCacheTTL {
				t.Errorf("node %d stopped decrypting %v after the disable, past lag %v + TTL %v", i, stop, lag, DefaultKeyCacheTTL)
			}
			// Applying drops the cache: a node stops within one poll of
			// seeing the change, not a TTL later.
			if stop > lag+2*destroyPoll {
				t.Errorf("node %d stopped %v after the disable but applied it after %v: the key cache outlived the change", i, stop, lag)
			}
			t.Logf("healthy zone %s: change applied %v and decryption stopped %v after the disable was proposed (commit took %v)",
				rc.c.Zone(i), lag, stop, committed)
		}

		// The healthy zones see the destruction; the cut-off zone still
		// refuses, and learns of it once the cut heals.
		for i, s := range rc.stores {
			if i == victim {
				continue
			}
			if _, err := s.Key(ReadAfter(ctx, destroyed), tenant.ID, old); !errors.Is(err, ErrDestroyed) {
				t.Errorf("node %d after destroy: %v, want ErrDestroyed", i, err)
			}
		}
		if _, err := rc.stores[victim].Key(ctx, tenant.ID, old); !errors.Is(err, ErrStale) {
			t.Errorf("cut-off node %d before healing: %v, want ErrStale", victim, err)
		}
		rc.c.Heal()
		for i, s := range rc.stores {
			if _, err := s.Key(ReadAfter(ctx, destroyed), tenant.ID, old); !errors.Is(err, ErrDestroyed) {
				t.Errorf("node %d after healing: %v, want ErrDestroyed", i, err)
			}
			if _, err := s.Key(ReadAfter(ctx, destroyed), tenant.ID, next.ID); err != nil {
				t.Errorf("node %d: the active version %s stopped working: %v", i, next.ID, err)
			}
		}
		kvs, err := rc.stores[victim].KeyVersions(ReadAfter(ctx, destroyed), tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			if kv.ID == old && kv.State != KeyDestroyed {
				t.Errorf("cut-off node after healing: version %s is %s, want destroyed", old, kv.State)
			}
		}
	})
}
