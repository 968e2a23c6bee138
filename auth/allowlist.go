package auth

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// IP allowlists (DESIGN.md section 6). The keystore keeps one list per
// scope (replicated); this file decides what a list means:
//
//   - A list is a set of CIDR prefixes, IPv4 or IPv6. An IPv4-mapped IPv6
//     address (::ffff:192.0.2.1) is compared as the IPv4 address it maps.
//   - An empty list allows every address: allowlists restrict, and a scope
//     nobody configured is open. A non-empty list allows exactly the
//     addresses inside one of its prefixes; an address that could not be
//     determined (the zero netip.Addr) is never inside.
//   - Lookups that fail (the keystore is unavailable or stale) deny: fail
//     closed.
//
// Scopes are the keystore's: ScopeS3 (the S3 listener, every tenant),
// ScopeAdmin, ScopeCluster and TenantScope(id) (the S3 listener, one
// tenant's requests, checked once the request is authenticated).
const (
	ScopeS3      = "s3"
	ScopeAdmin   = "admin"
	ScopeCluster = "cluster"
)

// TenantScope is the allowlist scope of one tenant's S3 requests.
func TenantScope(tenant [16]byte) string { return "tenant:" + hex.EncodeToString(tenant[:]) }

// CIDRs is a set of address prefixes.
type CIDRs []netip.Prefix

// ParseCIDRs parses CIDR prefixes ("10.0.0.0/8", "2001:db8::/32"); a bare
// address means that address alone (/32 or /128). Prefixes are masked.
func ParseCIDRs(ss []string) (CIDRs, error) {
	var cs CIDRs
	for _, s := range ss {
		for f := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			p, err := parsePrefix(f)
			if err != nil {
				return nil, err
			}
			cs = append(cs, p)
		}
	}
	return cs, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("auth: %q is neither a CIDR prefix nor an address", s)
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("auth: CIDR prefix %q: %w", s, err)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Contains reports whether ip lies in one of the prefixes.
func (cs CIDRs) Contains(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range cs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Allows reports whether cs, read as an allowlist, admits ip: an empty
// list admits everyone.
func (cs CIDRs) Allows(ip netip.Addr) bool { return len(cs) == 0 || cs.Contains(ip) }

// Strings returns the prefixes in text form.
func (cs CIDRs) Strings() []string {
	ss := make([]string, len(cs))
	for i, p := range cs {
		ss[i] = p.String()
	}
	return ss
}

// DefaultAllowlistTTL is how long Allowlists keeps a scope's list before
// reading it again. An allowlist change therefore applies on every node
// within replication lag (bounded by the keystore's max staleness for
// local reads) plus this TTL.
const DefaultAllowlistTTL = 5 * time.Second

// AllowlistLoader reads one scope's list (the keystore's, in tresor). A
// scope without a list returns an empty one and no error.
type AllowlistLoader func(ctx context.Context, scope string) (CIDRs, error)

// Allowlists answers allowlist checks from a small cache in front of a
// loader, so the hot path does one map read. It is safe for concurrent
// use.
type Allowlists struct {
	load AllowlistLoader
	ttl  time.Duration
	now  func() time.Time

	mu sync.Mutex
	// gen counts Forget calls: a load that began before one does not
	// cache what it read, which may predate the change Forget announced.
	gen     uint64
	entries map[string]allowlistEntry
	// good is the last list read without error, per scope, for
	// AllowLastKnown.
	good map[string]CIDRs
}

type allowlistEntry struct {
	cidrs CIDRs
	err   error
	until time.Time
}

// maxAllowlistEntries bounds the cache (one entry per scope seen; tenants
// are the unbounded part). Past it the cache is emptied and refilled.
const maxAllowlistEntries = 1 << 14

// NewAllowlists returns a checker reading lists through load and keeping
// each for ttl (zero: DefaultAllowlistTTL). A failed load is kept for a
// tenth of ttl, and denies.
func NewAllowlists(load AllowlistLoader, ttl time.Duration) *Allowlists {
	if ttl <= 0 {
		ttl = DefaultAllowlistTTL
	}
	return &Allowlists{load: load, ttl: ttl, now: time.Now, entries: map[string]allowlistEntry{}, good: map[string]CIDRs{}}
}

// Allow reports whether scope's list admits ip. A list that cannot be read
// denies.
func (a *Allowlists) Allow(ctx context.Context, scope string, ip netip.Addr) bool {
	ok, err := a.Check(ctx, scope, ip)
	return err == nil && ok
}

// Check is Allow that tells a list that says no from a list that cannot be
// read (for example on a node that has lost contact with the Raft leader
// for longer than the keystore's max-staleness), so that a caller can
// refuse the second with a retryable answer instead of AccessDenied.
func (a *Allowlists) Check(ctx context.Context, scope string, ip netip.Addr) (bool, error) {
	cs, err := a.list(ctx, scope)
	if err != nil {
		return false, err
	}
	return cs.Allows(ip), nil
}

// AllowS3 reports whether an S3 request of tenant from ip passes both the
// S3 listener's list and the tenant's.
func (a *Allowlists) AllowS3(ctx context.Context, tenant [16]byte, ip netip.Addr) bool {
	return a.Allow(ctx, ScopeS3, ip) && a.Allow(ctx, TenantScope(tenant), ip)
}

// AllowLastKnown is Allow for a listener that must keep working while the
// keystore cannot be read: when a list cannot be read it decides by the
// last list read successfully, and admits everyone if none ever was. The
// cluster listener uses it: a node cut off from the Raft leader cannot read
// its keystore (ErrStale) until peers reach it, so failing closed there
// would keep it cut off for good; its peers still need certificates of the
// cluster (mutual TLS), which the allowlist only narrows.
func (a *Allowlists) AllowLastKnown(ctx context.Context, scope string, ip netip.Addr) bool {
	cs, err := a.list(ctx, scope)
	if err != nil {
		a.mu.Lock()
		cs = a.good[scope]
		a.mu.Unlock()
	}
	return cs.Allows(ip)
}

// Forget drops the cached lists, so the next check reads them again (the
// node that changed a list calls it).
func (a *Allowlists) Forget() {
	a.mu.Lock()
	clear(a.entries)
	a.gen++
	a.mu.Unlock()
}

func (a *Allowlists) list(ctx context.Context, scope string) (CIDRs, error) {
	now := a.now()
	a.mu.Lock()
	e, ok := a.entries[scope]
	gen := a.gen
	a.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.cidrs, e.err
	}
	cs, err := a.load(ctx, scope)
	ttl := a.ttl
	if err != nil {
		ttl /= 10
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if gen != a.gen || (err != nil && ctx.Err() != nil) {
		// Forgotten meanwhile, or this caller gave up: the answer is
		// this caller's alone, not the node's for a TTL.
		return cs, err
	}
	if len(a.entries) >= maxAllowlistEntries {
		clear(a.entries)
		clear(a.good)
	}
	a.entries[scope] = allowlistEntry{cidrs: cs, err: err, until: now.Add(ttl)}
	if err == nil {
		a.good[scope] = cs
	}
	return cs, err
}

// FilterListener wraps ln so that Accept closes, at once and without a
// byte, every connection whose peer allow refuses, and hands back only the
// others. denied, if not nil, is told of each refused address (for the
// login audit); it must not block. Use it for listeners whose protocol has
// no error to answer with: the admin and cluster listeners.
func FilterListener(ln net.Listener, allow func(netip.Addr) bool, denied func(netip.Addr)) net.Listener {
	return &filterListener{Listener: ln, allow: allow, denied: denied}
}

type filterListener struct {
	net.Listener
	allow  func(netip.Addr) bool
	denied func(netip.Addr)
}

func (l *filterListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := AddrOf(c.RemoteAddr())
		if l.allow(ip) {
			return c, nil
		}
		c.Close()
		if l.denied != nil {
			l.denied(ip)
		}
	}
}

// AddrOf returns the IP address of a network address (unmapped, without
// zone), or the zero Addr if it has none.
func AddrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
