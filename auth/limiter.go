package auth

import (
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Limiter rate-limits failed authentications so that a secret cannot be
// guessed by trying, without letting someone who only knows an access key
// id (they are public: every presigned URL carries one) lock its owner out.
//
// Every failed signature spends a token from the bucket of its source
// address and from that of the (address, key) pair; while either is empty,
// requests from that address (for that key) are refused before their
// signature is even computed, so a correct guess during a lockout is not
// confirmed. Buckets refill at a steady rate, and only failures spend
// tokens: traffic that authenticates is never slowed.
//
// A third budget bounds a guessing attack spread over many addresses: the
// key's own bucket. It counts and throttles only addresses that have not
// authenticated with the key recently ("known device", as the OWASP
// authentication cheat sheet recommends): an address is known for a key
// for KnownFor after a request from it proved the secret with a header
// signature (Success; a presigned URL proves only that its holder was
// given it). So an attacker without the secret can empty the key's bucket
// from any number of addresses, and the owner is still served from every
// address it has used recently; what the attack delays is the owner's first
// request from a new address, and presigned URLs used from addresses that
// never signed with the key, while it lasts.
//
// Bounds, as functions of LimiterConfig (t is the length of the attack):
//
//   - guesses at one key from addresses not known for it, however many
//     addresses: KeyBurst + KeyRate*t. Defaults: 50 + 0.5/s * 3,600 s =
//     1,850 signatures checked per hour per key;
//   - guesses from one address at one key: PairBurst + PairRate*t, with
//     the defaults 10 + 3,600 s / 6 s = 610 per hour. This is all an
//     address known for the key gets (it is not held by the key's bucket
//     nor by its own address bucket for that key), and only someone who
//     shares the owner's address can use it;
//   - guesses from one address over all keys: AddrBurst + AddrRate*t,
//     100 + 2/s * 3,600 s = 7,300 per hour.
//
// A 40-character secret (238 bits) is far out of reach of any of these.
//
// A wrong signature made with an access key id that does not exist has no
// secret to guess: the caller reports it as Failure(addr, ""), so only the
// address pays and a flood of made-up key ids does not grow the table.
//
// Memory is bounded: at most MaxEntries buckets and MaxKnown known pairs
// are kept, buckets that have refilled are forgotten, and when the table is
// full other address and pair buckets are evicted (a key's bucket that is
// not full is kept: forgetting it would reset the key's budget; there is
// one per existing key at most). Known pairs expire after KnownFor and the
// oldest go first when there are too many.
type Limiter struct {
	cfg LimiterConfig

	mu      sync.Mutex
	buckets map[limitKey]*bucket
	known   map[pairKey]time.Time // last header-signed success of the pair
}

// LimiterConfig sets a Limiter's budgets. Burst is how many failures are
// allowed at once; Rate how many more per second after that.
type LimiterConfig struct {
	AddrBurst, KeyBurst, PairBurst int
	AddrRate, KeyRate, PairRate    float64
	MaxEntries                     int
	// KnownFor is how long an address stays known for an access key (not
	// held by the key's bucket) after it last authenticated with it.
	KnownFor time.Duration
	// MaxKnown bounds the known (address, key) pairs kept.
	MaxKnown int
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// DefaultLimiterConfig allows 10 failures at once per address-key pair and
// one more every 6 s; 50 at once per key from addresses not known for it,
// one more every 2 s; and 100 per address over all keys, two more a second,
// generous because many users may share an address behind a NAT. An
// address stays known for a key for 30 days after its last header-signed
// success; 100,000 pairs are remembered. The figures keep load and log
// noise down; the bounds they give are in Limiter's comment.
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{
		PairBurst: 10, PairRate: 1.0 / 6,
		KeyBurst: 50, KeyRate: 0.5,
		AddrBurst: 100, AddrRate: 2,
		MaxEntries: 100_000,
		KnownFor:   30 * 24 * time.Hour, MaxKnown: 100_000,
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

type pairKey struct {
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
	d := DefaultLimiterConfig()
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = d.MaxEntries
	}
	if cfg.MaxKnown <= 0 {
		cfg.MaxKnown = d.MaxKnown
	}
	if cfg.KnownFor <= 0 {
		cfg.KnownFor = d.KnownFor
	}
	return &Limiter{cfg: cfg, buckets: make(map[limitKey]*bucket), known: make(map[pairKey]time.Time)}
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

// keys returns the buckets a request from addr claiming accessKey is held
// by: only its pair's when the address is known for the key.
func (l *Limiter) keys(addr netip.Addr, accessKey string, now time.Time) []limitKey {
	pair := limitKey{kind: kindPair, addr: addr, key: accessKey}
	if accessKey != "" && l.isKnown(addr, accessKey, now) {
		return []limitKey{pair}
	}
	ks := []limitKey{{kind: kindAddr, addr: addr}}
	if accessKey != "" {
		ks = append(ks, limitKey{kind: kindKey, key: accessKey}, pair)
	}
	return ks
}

func (l *Limiter) isKnown(addr netip.Addr, accessKey string, now time.Time) bool {
	at, ok := l.known[pairKey{addr, accessKey}]
	return ok && now.Sub(at) < l.cfg.KnownFor
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

// maxWait caps the wait Allow announces.
const maxWait = 24 * time.Hour

// Allow reports whether a request from addr claiming accessKey ("" if none
// could be read) may be authenticated now, and if not, after how long it
// may retry.
func (l *Limiter) Allow(addr netip.Addr, accessKey string) (bool, time.Duration) {
	now := l.cfg.Clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	refused := false
	for _, k := range l.keys(addr, accessKey, now) {
		if lvl := l.level(k, now); lvl < 1 {
			refused = true
			_, rate := l.budget(k.kind)
			w := maxWait // a bucket that never refills
			if secs := (1 - lvl) / rate; rate > 0 && secs < maxWait.Seconds() {
				w = time.Duration(secs * float64(time.Second))
			}
			wait = max(wait, w)
		}
	}
	return !refused, wait
}

// Failure records a wrong signature from addr made with accessKey, an
// access key that exists; "" for one that does not. A failure from an
// address known for the key spends the pair's and the address's tokens,
// not the key's.
func (l *Limiter) Failure(addr netip.Addr, accessKey string) {
	now := l.cfg.Clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) >= l.cfg.MaxEntries {
		l.evict(now)
	}
	ks := l.keys(addr, accessKey, now)
	if len(ks) == 1 && accessKey != "" { // known: its address pays too
		ks = append(ks, limitKey{kind: kindAddr, addr: addr})
	}
	for _, k := range ks {
		lvl := l.level(k, now)
		l.buckets[k] = &bucket{tokens: max(lvl-1, 0), last: now}
	}
}

// knownRefresh is how stale a known pair's time may get before a success
// rewrites it: most requests then only read the table.
const knownRefresh = time.Minute

// Success records that a request from addr proved accessKey's secret with
// a header signature (not a presigned URL): addr is known for the key from
// now until KnownFor has passed.
func (l *Limiter) Success(addr netip.Addr, accessKey string) {
	if accessKey == "" {
		return
	}
	now := l.cfg.Clock()
	pk := pairKey{addr, accessKey}
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, ok := l.known[pk]; ok && now.Sub(at) < knownRefresh {
		return
	}
	if _, ok := l.known[pk]; !ok && len(l.known) >= l.cfg.MaxKnown {
		l.forgetKnown(now)
	}
	l.known[pk] = now
}

// forgetKnown drops expired known pairs and, if the table is still over
// three quarters full, the oldest until it is not.
func (l *Limiter) forgetKnown(now time.Time) {
	for k, at := range l.known {
		if now.Sub(at) >= l.cfg.KnownFor {
			delete(l.known, k)
		}
	}
	keep := l.cfg.MaxKnown * 3 / 4
	if len(l.known) <= keep {
		return
	}
	type entry struct {
		k  pairKey
		at time.Time
	}
	all := make([]entry, 0, len(l.known))
	for k, at := range l.known {
		all = append(all, entry{k, at})
	}
	slices.SortFunc(all, func(a, b entry) int { return a.at.Compare(b.at) })
	for _, e := range all[:len(all)-keep] {
		delete(l.known, e.k)
	}
}

// evict forgets buckets that have refilled and, if the table is still
// full, address and pair buckets until a quarter of it is free: under a
// flood of distinct addresses the limiter forgets rather than grows. Key
// buckets stay: there is at most one per existing key, and forgetting one
// would hand its key a fresh budget.
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
		if k.kind != kindKey {
			delete(l.buckets, k)
		}
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
