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

// TestLimiter_LockoutAttackSparesKnownAddresses reproduces the lockout of
// issue 9: someone who knows only an access key id sends 80 wrong
// signatures from 8 addresses, then one every 2 s for an hour. The key's
// owner, from the address it has been signing from, is allowed
// throughout; the attack still spends the key's budget, so a new address
// (and the attacker) waits.
func TestLimiter_LockoutAttackSparesKnownAddresses(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	cfg := DefaultLimiterConfig()
	cfg.Clock = clk.now
	l := NewLimiter(cfg)
	const key = "TRSRVICTIM"
	owner := netip.MustParseAddr("192.0.2.1")
	l.Success(owner, key) // the owner's client has been working from here
	attackers := make([]netip.Addr, 8)
	for i := range attackers {
		attackers[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
	}
	checked := 0
	try := func(a netip.Addr) {
		if ok, _ := l.Allow(a, key); ok {
			checked++
			l.Failure(a, key) // no secret: every signature is wrong
		}
	}
	for i := range 80 {
		try(attackers[i%8])
	}
	const rounds = 1800 // one every 2 s for an hour
	for i := range rounds {
		clk.advance(2 * time.Second)
		try(attackers[i%8])
		if ok, wait := l.Allow(owner, key); !ok {
			t.Fatalf("round %d: the owner is locked out from its own address (wait %v)", i, wait)
		}
	}
	if ok, _ := l.Allow(netip.MustParseAddr("203.0.113.77"), key); ok {
		t.Error("an address never known for the key is not held by the key's spent budget")
	}
	elapsed := float64(rounds * 2)
	bound := cfg.KeyBurst + int(cfg.KeyRate*elapsed)
	if checked > bound {
		t.Errorf("%d wrong signatures checked, more than the key's budget %d", checked, bound)
	}
	t.Logf("attack: %d of %d wrong signatures checked in %v; the owner was served throughout", checked, 80+rounds, time.Duration(elapsed)*time.Second)
}

// TestLimiter_SprayFromThousandsOfAddresses measures the distributed
// guessing attack the key's budget bounds: 5,000 addresses try one key as
// fast as they are let for an hour. The signatures checked are the
// Limiter's bound, KeyBurst + KeyRate * 3,600 s (1,850 with the defaults),
// and the owner's known address is served all along.
func TestLimiter_SprayFromThousandsOfAddresses(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	cfg := DefaultLimiterConfig()
	cfg.Clock = clk.now
	l := NewLimiter(cfg)
	const key = "TRSRVICTIM"
	owner := netip.MustParseAddr("2001:db8::1")
	l.Success(owner, key)
	const addrs = 5000
	next, checked := 0, 0
	for range 3600 {
		for {
			a := netip.AddrFrom4([4]byte{10, 1, byte(next / 256 % 256), byte(next % 256)})
			next = (next + 1) % addrs
			if ok, _ := l.Allow(a, key); !ok {
				break // the key's budget is spent for now, from every address
			}
			checked++
			l.Failure(a, key)
		}
		if ok, _ := l.Allow(owner, key); !ok {
			t.Fatalf("owner refused at %v into the spray", clk.t.Sub(time.Unix(1e9, 0)))
		}
		clk.advance(time.Second)
	}
	bound := cfg.KeyBurst + int(cfg.KeyRate*3600)
	if checked > bound || checked < bound-1 {
		t.Errorf("%d signatures checked in an hour from %d addresses, want the key's budget %d", checked, addrs, bound)
	}
	t.Logf("spray from %d addresses: %d guesses per hour at one key checked (bound %d + %.1f/s * 3600 s = %d)",
		addrs, checked, cfg.KeyBurst, cfg.KeyRate, bound)
}

// TestLimiter_KnownAddressesExpire checks that an address is known for a
// key only for KnownFor after its last success, and only for that key.
func TestLimiter_KnownAddressesExpire(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	cfg := DefaultLimiterConfig()
	cfg.Clock = clk.now
	cfg.KeyRate = 0 // a spent key budget stays spent
	l := NewLimiter(cfg)
	owner := netip.MustParseAddr("192.0.2.1")
	l.Success(owner, "TRSRVICTIM")
	for i := range cfg.KeyBurst {
		l.Failure(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), "TRSRVICTIM")
		l.Failure(netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}), "TRSROTHER")
	}
	if ok, _ := l.Allow(owner, "TRSRVICTIM"); !ok {
		t.Fatal("a known address is refused")
	}
	if ok, _ := l.Allow(owner, "TRSROTHER"); ok {
		t.Error("an address known for one key escapes another key's budget")
	}
	clk.advance(cfg.KnownFor)
	if ok, _ := l.Allow(owner, "TRSRVICTIM"); ok {
		t.Error("an address is still known KnownFor after its last success")
	}
}
