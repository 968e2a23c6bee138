package keystore

import (
	"sync"
	"time"
)

// keyCache keeps unsealed tenant key versions for a short TTL so the hot
// path (every object read and write asks for a key) rarely touches Badger
// or AES-GCM. Its TTL is part of the crypto-shredding bound.
type keyCache struct {
	ttl time.Duration
	mu  sync.Mutex
	// gen counts invalidations. A reader takes it before reading the store
	// and its put is dropped if an invalidation happened meanwhile, so a
	// read racing a rotation cannot cache the old key for a whole TTL.
	gen     uint64
	active  map[ID]activeEntry
	secrets map[[32]byte]secretEntry
}

type activeEntry struct {
	id      ID
	secret  []byte
	expires time.Time
}

type secretEntry struct {
	secret  []byte
	expires time.Time
}

// maxCacheEntries bounds each map; past it expired entries are swept and,
// if that is not enough, the map is emptied.
const maxCacheEntries = 4096

func newKeyCache(ttl time.Duration) *keyCache {
	return &keyCache{ttl: ttl, active: map[ID]activeEntry{}, secrets: map[[32]byte]secretEntry{}}
}

func secretKey(tenant, id ID) (k [32]byte) {
	copy(k[:16], tenant[:])
	copy(k[16:], id[:])
	return k
}

func (c *keyCache) getActive(tenant ID, now time.Time) (ID, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.active[tenant]
	if !ok || !now.Before(e.expires) {
		return ID{}, nil, false
	}
	return e.id, clone(e.secret), true
}

func (c *keyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *keyCache) putActive(gen uint64, tenant, id ID, secret []byte, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.active) >= maxCacheEntries {
		for k, e := range c.active {
			if !now.Before(e.expires) {
				delete(c.active, k)
			}
		}
		if len(c.active) >= maxCacheEntries {
			clear(c.active)
		}
	}
	c.active[tenant] = activeEntry{id: id, secret: clone(secret), expires: now.Add(c.ttl)}
}

func (c *keyCache) getSecret(tenant, id ID, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.secrets[secretKey(tenant, id)]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return clone(e.secret), true
}

func (c *keyCache) putSecret(gen uint64, tenant, id ID, secret []byte, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.secrets) >= maxCacheEntries {
		for k, e := range c.secrets {
			if !now.Before(e.expires) {
				clear(e.secret)
				delete(c.secrets, k)
			}
		}
		if len(c.secrets) >= maxCacheEntries {
			clear(c.secrets)
		}
	}
	c.secrets[secretKey(tenant, id)] = secretEntry{secret: clone(secret), expires: now.Add(c.ttl)}
}

// forgetTenants drops every cached key of the given tenants; apply calls it
// after a batch changed their keys or state.
func (c *keyCache) forgetTenants(tenants []ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, t := range tenants {
		if e, ok := c.active[t]; ok {
			clear(e.secret)
			delete(c.active, t)
		}
		for k, e := range c.secrets {
			if ID(k[:16]) == t {
				clear(e.secret)
				delete(c.secrets, k)
			}
		}
	}
}

func (c *keyCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, e := range c.active {
		clear(e.secret)
	}
	for _, e := range c.secrets {
		clear(e.secret)
	}
	clear(c.active)
	clear(c.secrets)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
