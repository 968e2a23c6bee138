package keystore

import (
	"testing"
	"time"
)

func TestKeyCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newKeyCache(time.Minute)
	tn, k := ID{1}, ID{2}
	c.putSecret(c.generation(), tn, k, []byte("s"), now)
	if s, ok := c.getSecret(tn, k, now.Add(59*time.Second)); !ok || string(s) != "s" {
		t.Fatal("fresh entry missing")
	}
	if _, ok := c.getSecret(tn, k, now.Add(time.Minute)); ok {
		t.Fatal("entry outlived its TTL")
	}

	// A put that raced an invalidation is dropped.
	gen := c.generation()
	c.forgetTenants([]ID{{9}})
	c.putActive(gen, tn, k, []byte("s"), now)
	if _, _, ok := c.getActive(tn, now); ok {
		t.Fatal("stale put after an invalidation was cached")
	}

	// The maps stay bounded.
	for i := 0; i < 2*maxCacheEntries; i++ {
		id := ID{byte(i), byte(i >> 8), 1}
		c.putSecret(c.generation(), id, k, []byte("s"), now)
		c.putActive(c.generation(), id, k, []byte("s"), now)
	}
	if len(c.secrets) > maxCacheEntries || len(c.active) > maxCacheEntries {
		t.Fatalf("cache grew to %d/%d entries", len(c.secrets), len(c.active))
	}

	// TTL 0 turns caching off.
	off := newKeyCache(0)
	off.putSecret(off.generation(), tn, k, []byte("s"), now)
	if _, ok := off.getSecret(tn, k, now); ok {
		t.Fatal("TTL 0 cached")
	}
}

// TestKeyCache_ZeroesEverySecretItDrops holds on to the cache's own copy of
// each secret and checks that it is zeroed on every path out of the cache:
// replaced, swept when full, emptied when full, invalidated per tenant and
// all at once. Before one type did all the dropping, the active map's sweep
// and both maps' emptying left secrets in memory.
func TestKeyCache_ZeroesEverySecretItDrops(t *testing.T) {
	now := time.Unix(1000, 0)
	secret := []byte("0123456789abcdef0123456789abcdef")
	zero := func(b []byte) bool {
		for _, x := range b {
			if x != 0 {
				return false
			}
		}
		return true
	}
	tn, k := ID{1}, ID{2}
	cases := []struct {
		name string
		// drop makes the cache let go of the (tn, k) entries put at now.
		drop func(c *keyCache)
	}{
		{"replaced", func(c *keyCache) {
			c.putActive(c.generation(), tn, k, secret, now)
			c.putSecret(c.generation(), tn, k, secret, now)
		}},
		{"swept when full", func(c *keyCache) {
			later := now.Add(2 * time.Minute) // the first entries have expired
			for i := range maxCacheEntries + 1 {
				id := ID{byte(i), byte(i >> 8), 7}
				c.putActive(c.generation(), id, k, secret, later)
				c.putSecret(c.generation(), id, k, secret, later)
			}
		}},
		{"emptied when full", func(c *keyCache) {
			for i := range maxCacheEntries + 1 {
				id := ID{byte(i), byte(i >> 8), 7}
				c.putActive(c.generation(), id, k, secret, now)
				c.putSecret(c.generation(), id, k, secret, now)
			}
		}},
		{"tenant invalidated", func(c *keyCache) { c.forgetTenants([]ID{tn}) }},
		{"all invalidated", func(c *keyCache) { c.forgetAll() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newKeyCache(time.Minute)
			c.putActive(c.generation(), tn, k, secret, now)
			c.putSecret(c.generation(), tn, k, secret, now)
			held := [][]byte{c.active[tn].secret, c.secrets[secretKey(tn, k)].secret}
			tc.drop(c)
			for i, b := range held {
				if !zero(b) {
					t.Errorf("map %d: a dropped secret is still in memory: %q", i, b)
				}
			}
			if zero(secret) {
				t.Fatal("the caller's secret was zeroed: the cache must keep its own copy")
			}
		})
	}
}
