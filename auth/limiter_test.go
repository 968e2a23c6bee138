package auth

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLimiter_BurstThenRefill(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	cfg := DefaultLimiterConfig()
	cfg.Clock = clk.now
	l := NewLimiter(cfg)
	attacker := netip.MustParseAddr("198.51.100.7")
	for i := range cfg.PairBurst {
		if ok, _ := l.Allow(attacker, "TRSRVICTIM"); !ok {
			t.Fatalf("refused after %d failures, burst is %d", i, cfg.PairBurst)
		}
		l.Failure(attacker, "TRSRVICTIM")
	}
	ok, wait := l.Allow(attacker, "TRSRVICTIM")
	if ok || wait <= 0 {
		t.Fatalf("still allowed after the burst (wait %v)", wait)
	}
	// The same address may still try other keys, until its own budget is spent.
	if ok, _ := l.Allow(attacker, "TRSROTHER"); !ok {
		t.Error("one key's lockout blocks the whole address")
	}
	for i := range cfg.AddrBurst {
		l.Failure(attacker, fmt.Sprintf("TRSRKEY%d", i))
	}
	if ok, _ := l.Allow(attacker, "TRSRFRESH"); ok {
		t.Error("an address that failed with 100 keys may go on trying")
	}
	// Other addresses with other keys are untouched.
	if ok, _ := l.Allow(netip.MustParseAddr("2001:db8::1"), "TRSRTENANTB"); !ok {
		t.Error("an unrelated address and key are limited")
	}
	_, wait = l.Allow(attacker, "TRSRVICTIM")
	clk.advance(wait)
	if ok, _ := l.Allow(attacker, "TRSRVICTIM"); !ok {
		t.Errorf("still refused after waiting the announced %v", wait)
	}
}

func TestLimiter_KeySprayFromManyAddresses(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	cfg := DefaultLimiterConfig()
	cfg.Clock = clk.now
	l := NewLimiter(cfg)
	allowed := 0
	for i := range 1000 {
		addr := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if ok, _ := l.Allow(addr, "TRSRVICTIM"); ok {
			allowed++
			l.Failure(addr, "TRSRVICTIM")
		}
	}
	if allowed != cfg.KeyBurst {
		t.Errorf("%d guesses at one key from 1000 addresses got through, want the key's burst %d", allowed, cfg.KeyBurst)
	}
}

func TestLimiter_MemoryIsBounded(t *testing.T) {
	cfg := DefaultLimiterConfig()
	cfg.MaxEntries = 1000
	l := NewLimiter(cfg)
	for i := range 100_000 {
		l.Failure(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), "")
	}
	if n := len(l.buckets); n > cfg.MaxEntries {
		t.Errorf("%d buckets kept, limit %d", n, cfg.MaxEntries)
	}
}
