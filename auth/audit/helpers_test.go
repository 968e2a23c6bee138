package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeKeys is a TenantKeys with one key version per tenant; Destroy
// crypto-shreds a tenant.
type fakeKeys struct {
	mu      sync.Mutex
	secrets map[[16]byte][]byte
}

var errDestroyed = errors.New("key destroyed")

func newFakeKeys(tenants ...[16]byte) *fakeKeys {
	k := &fakeKeys{secrets: map[[16]byte][]byte{}}
	for _, t := range tenants {
		s := make([]byte, 32)
		copy(s, t[:])
		s[31] = 0x5a
		k.secrets[t] = s
	}
	return k
}

func (k *fakeKeys) version(t [16]byte) [16]byte { v := t; v[0] ^= 0xff; return v }

func (k *fakeKeys) ActiveKey(_ context.Context, t [16]byte) ([16]byte, []byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.secrets[t]
	if !ok {
		return [16]byte{}, nil, errDestroyed
	}
	return k.version(t), s, nil
}

func (k *fakeKeys) Key(_ context.Context, t, id [16]byte) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.secrets[t]
	if !ok || id != k.version(t) {
		return nil, errDestroyed
	}
	return s, nil
}

func (k *fakeKeys) Destroy(t [16]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.secrets, t)
}

var (
	tenantA = [16]byte{0xaa, 1}
	tenantB = [16]byte{0xbb, 2}
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

// testConfig is a Config for dir that checkpoints every `every` records.
func testConfig(dir string, every int, keys TenantKeys, store CheckpointStore, clock *testClock) Config {
	cfg := DefaultConfig(dir, "node-1")
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.CheckpointEvery = every
	cfg.CheckpointInterval = time.Hour
	cfg.TenantKeys = keys
	cfg.Checkpoints = store
	cfg.SegmentBytes = 2 << 10
	cfg.ShipInterval = 0
	if clock != nil {
		cfg.Clock = clock.Now
	}
	return cfg
}

func openLog(t *testing.T, cfg Config) *Log {
	t.Helper()
	l, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// record returns the i-th test record, alternating tenants and kinds.
func record(i int, at time.Time) Record {
	kinds := []Kind{AuthSuccess, AuthFailure, AllowlistDeny, AdminAction, RateLimited}
	r := Record{
		Time: at, Kind: kinds[i%len(kinds)], Reason: "reason", Operation: "GetObject",
		AccessKeyID: fmt.Sprintf("TRSRSECRETKEY%07d", i%3), User: fmt.Sprintf("alice-%d", i%2),
		SourceAddr: fmt.Sprintf("198.51.100.%d", i%4), Bucket: "private-bucket", RequestID: fmt.Sprintf("req-%d", i),
	}
	if i%3 != 2 {
		r.Tenant = tenantA
		if i%3 == 1 {
			r.Tenant = tenantB
		}
	}
	return r
}

// writeLog writes n records into a new log in dir and closes it.
func writeLog(t *testing.T, dir string, n, every int, keys TenantKeys, store CheckpointStore) PublicKeys {
	t.Helper()
	clock := &testClock{t: t0}
	l := openLog(t, testConfig(dir, every, keys, store, clock))
	for i := range n {
		clock.Set(t0.Add(time.Duration(i) * time.Minute))
		if err := l.Append(context.Background(), record(i, time.Time{})); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	pub := l.PublicKeys()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return pub
}
