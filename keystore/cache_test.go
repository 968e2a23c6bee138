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
