package keystore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestConcurrency_ManyProposers runs writers and hot-path readers at once
// (meant for -race) and checks that every write landed exactly once and that
// contended names went to exactly one winner.
func TestConcurrency_ManyProposers(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	admin := mustUser(t, s, tn.ID, "admin", RoleAdmin)
	ak, err := s.CreateAccessKey(ctx, admin.ID, noExpiry)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 12
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		winners   int
		errs      []error
		fail      = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
		contended = "contended-bucket"
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.CreateUser(ctx, tn.ID, fmt.Sprintf("user-%d-%d", w, i), RoleReader); err != nil {
					fail(err)
				}
				if _, err := s.CreateBucket(ctx, tn.ID, fmt.Sprintf("bucket-%d-%d", w, i)); err != nil {
					fail(err)
				}
				if got, err := s.AccessKey(ctx, ak.ID); err != nil || got.Secret != ak.Secret {
					fail(fmt.Errorf("AccessKey: %v", err))
				}
				if _, _, err := s.ActiveKey(ctx, tn.ID); err != nil {
					fail(err)
				}
			}
			switch _, err := s.CreateBucket(ctx, tn.ID, contended); {
			case err == nil:
				mu.Lock()
				winners++
				mu.Unlock()
			case !errors.Is(err, ErrExists):
				fail(err)
			}
		}()
	}
	// A rotation in the middle must not disturb readers.
	if _, err := s.RotateKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %v", len(errs), errs[0])
	}
	if winners != 1 {
		t.Fatalf("%d winners for one bucket name", winners)
	}
	us, _ := s.Users(ctx, tn.ID)
	bs, _ := s.Buckets(ctx, tn.ID)
	if len(us) != workers*each+1 || len(bs) != workers*each+1 {
		t.Fatalf("%d users and %d buckets, want %d each", len(us), len(bs), workers*each+1)
	}
	// tenant + admin + access key + rotation + 2 per iteration + contenders
	if want := uint64(4 + 2*workers*each + workers); s.AppliedIndex() != want {
		t.Fatalf("applied index %d, want %d", s.AppliedIndex(), want)
	}
}
