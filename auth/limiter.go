package auth

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Limiter rate-limits failed authentications so that a secret cannot be
// guessed by trying: every failure spends a token from a bucket of the
// source address, of the access key id it claimed, and of the pair; while
// any of the three is empty, requests from that address or for that key are
// refused before their signature is even computed (so a correct guess
// during a lockout is not confirmed). Buckets refill at a steady rate.
//
// Only failures spend tokens, and buckets are per key and per address, so
// traffic that authenticates is never slowed and one tenant's attacker does
// not slow other tenants. The per-key bucket is larger than the others: an
// attacker spraying one key id from many addresses is bounded by it, at the
// price that the key's owner is refused too until it refills (the trade-off
// every lockout makes; the per-address and per-pair buckets trip first).
//
// Memory is bounded: at most MaxEntries buckets are kept, buckets that have
// refilled are forgotten, and when the table is full the least recently
// failed are evicted.
type Limiter struct {
	cfg LimiterConfig

	mu      sync.Mutex
	buckets map[limitKey]*bucket
}

// LimiterConfig sets a Limiter's budgets. Burst is how many failures are
// allowed at once; Rate how many more per second after that.
type LimiterConfig struct {
	AddrBurst, KeyBurst, PairBurst int
	AddrRate, KeyRate, PairRate    float64
	MaxEntries                     int
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// DefaultLimiterConfig allows 10 failures at once per address-key pair and
// one more every 6 s; 50 at once per key from all addresses together, one
// more every 2 s; and 100 per address over all keys, two more a second,
// generous because many users may share an address behind a NAT. At these
// rates a 40-character secret (238 bits) is not guessable; the figures
// keep load and log noise down.
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{
		PairBurst: 10, PairRate: 1.0 / 6,
		KeyBurst: 50, KeyRate: 0.5,
		AddrBurst: 100, AddrRate: 2,
		MaxEntries: 100_000,
	}
}

type limitKind uint8

const (
	kindAddr limitKind = iota
	kindKey
	kindPair
)

type limitKey struct {
	kind limitKind
	addr netip.Addr
	key  string
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewLimiter returns a Limiter with cfg's budgets.
func NewLimiter(cfg LimiterConfig) *Limiter {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultLimiterConfig().MaxEntries
	}
	return &Limiter{cfg: cfg, buckets: make(map[limitKey]*bucket)}
}

func (l *Limiter) budget(k limitKind) (burst int, rate float64) {
	switch k {
	case kindAddr:
		return l.cfg.AddrBurst, l.cfg.AddrRate
	case kindKey:
		return l.cfg.KeyBurst, l.cfg.KeyRate
	}
	return l.cfg.PairBurst, l.cfg.PairRate
}

func (l *Limiter) keys(addr netip.Addr, accessKey string) []limitKey {
	ks := []limitKey{{kind: kindAddr, addr: addr}}
	if accessKey != "" {
		ks = append(ks, limitKey{kind: kindKey, key: accessKey}, limitKey{kind: kindPair, addr: addr, key: accessKey})
	}
	return ks
}

// level returns bucket k's tokens now, refilled since its last failure.
func (l *Limiter) level(k limitKey, now time.Time) float64 {
	burst, rate := l.budget(k.kind)
	b, ok := l.buckets[k]
	if !ok {
		return float64(burst)
	}
	return min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
}

// Allow reports whether a request from addr claiming accessKey ("" if none
// could be read) may be authenticated now, and if not, after how long it
// may retry.
func (l *Limiter) Allow(addr netip.Addr, accessKey string) (bool, time.Duration) {
	now := l.cfg.Clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range l.keys(addr, accessKey) {
		if lvl := l.level(k, now); lvl < 1 {
			_, rate := l.budget(k.kind)
			wait = max(wait, time.Duration((1-lvl)/rate*float64(time.Second)))
		}
	}
	return wait == 0, wait
}

// Failure records a failed authentication from addr claiming accessKey.
func (l *Limiter) Failure(addr netip.Addr, accessKey string) {
	now := l.cfg.Clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) >= l.cfg.MaxEntries {
		l.evict(now)
	}
	for _, k := range l.keys(addr, accessKey) {
		lvl := l.level(k, now)
		l.buckets[k] = &bucket{tokens: max(lvl-1, 0), last: now}
	}
}

// evict forgets buckets that have refilled and, if the table is still
// full, arbitrary buckets until a quarter of it is free: under a flood of
// distinct addresses the limiter forgets rather than grows.
func (l *Limiter) evict(now time.Time) {
	for k := range l.buckets {
		if burst, _ := l.budget(k.kind); l.level(k, now) >= float64(burst) {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.cfg.MaxEntries*3/4 {
			break
		}
		delete(l.buckets, k)
	}
}

// ClaimedAccessKeyID returns the access key id a request claims in its
// Authorization header or X-Amz-Credential parameter, without checking
// anything, or "" if it claims none readable. It keys the Limiter before
// the (costlier) verification.
func ClaimedAccessKeyID(r *http.Request) string {
	var v Verifier
	in, err := v.parse(r)
	if err != nil {
		return ""
	}
	return in.cred.accessKeyID
}
