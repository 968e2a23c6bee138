package keystore

import (
	"sync"
	"time"
)

// keyCache keeps unsealed tenant key versions for a short TTL so the hot
// path (every object read and write asks for a key) rarely touches Badger
// or AES-GCM. Its TTL is part of the crypto-shredding bound.
//
// Every secret the cache lets go of (expired, evicted, invalidated,
// replaced) is zeroed: one secretMap type does all the dropping, so no path
// can forget to.
type keyCache struct {
	ttl time.Duration
	mu  sync.Mutex
	// gen counts invalidations. A reader takes it before reading the store
	// and its put is dropped if an invalidation happened meanwhile, so a
	// read racing a rotation cannot cache the old key for a whole TTL.
	gen uint64
	// active maps a tenant to its active key version; secrets maps
	// (tenant, version) to the version's secret.
	active  secretMap[ID]
	secrets secretMap[[32]byte]
}

// maxCacheEntries bounds each map; past it expired entries are swept and,
// if that is not enough, the map is emptied.
const maxCacheEntries = 4096

func newKeyCache(ttl time.Duration) *keyCache {
	return &keyCache{ttl: ttl, active: secretMap[ID]{}, secrets: secretMap[[32]byte]{}}
}

func secretKey(tenant, id ID) (k [32]byte) {
	copy(k[:16], tenant[:])
	copy(k[16:], id[:])
	return k
}

func (c *keyCache) getActive(tenant ID, now time.Time) (ID, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.active.get(tenant, now)
	return e.id, e.secret, ok
}

func (c *keyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *keyCache) putActive(gen uint64, tenant, id ID, secret []byte, now time.Time) {
	c.put(gen, func() { c.active.put(tenant, id, secret, now.Add(c.ttl), now) })
}

func (c *keyCache) getSecret(tenant, id ID, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.secrets.get(secretKey(tenant, id), now)
	return e.secret, ok
}

func (c *keyCache) putSecret(gen uint64, tenant, id ID, secret []byte, now time.Time) {
	c.put(gen, func() { c.secrets.put(secretKey(tenant, id), id, secret, now.Add(c.ttl), now) })
}

// put runs store under the lock unless caching is off or an invalidation
// happened since the caller took gen.
func (c *keyCache) put(gen uint64, store func()) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		store()
	}
}

// forgetTenants drops every cached key of the given tenants; apply calls it
// after a batch changed their keys or state.
func (c *keyCache) forgetTenants(tenants []ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, t := range tenants {
		c.active.drop(func(k ID) bool { return k == t })
		c.secrets.drop(func(k [32]byte) bool { return ID(k[:16]) == t })
	}
}

func (c *keyCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.active.drop(func(ID) bool { return true })
	c.secrets.drop(func([32]byte) bool { return true })
}

// cached is one secret with the key version it belongs to.
type cached struct {
	id      ID
	secret  []byte
	expires time.Time
}

// secretMap is a bounded map of secrets with expiry times. It owns its
// copies of the secrets and zeroes each one it removes; callers get clones.
// It is not safe for concurrent use (keyCache's mutex guards it).
type secretMap[K comparable] map[K]cached

// get returns a clone of k's entry while it has not expired.
func (m secretMap[K]) get(k K, now time.Time) (cached, bool) {
	e, ok := m[k]
	if !ok || !now.Before(e.expires) {
		return cached{}, false
	}
	e.secret = clone(e.secret)
	return e, true
}

// put stores a copy of secret under k until expires, zeroing the entry it
// replaces. At maxCacheEntries it first sweeps expired entries and, if
// that frees nothing, empties the map.
func (m secretMap[K]) put(k K, id ID, secret []byte, expires, now time.Time) {
	if _, ok := m[k]; !ok && len(m) >= maxCacheEntries {
		m.drop(func(k K) bool { return !now.Before(m[k].expires) })
		if len(m) >= maxCacheEntries {
			m.drop(func(K) bool { return true })
		}
	}
	if old, ok := m[k]; ok {
		clear(old.secret)
	}
	m[k] = cached{id: id, secret: clone(secret), expires: expires}
}

// drop zeroes and removes every entry whose key matches.
func (m secretMap[K]) drop(match func(K) bool) {
	for k, e := range m {
		if match(k) {
			clear(e.secret)
			delete(m, k)
		}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
