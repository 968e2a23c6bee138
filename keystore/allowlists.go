package keystore

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// IP allowlists (DESIGN.md section 6) are replicated records, so a change
// made on any node reaches every node through the log. Each allowlist
// belongs to a scope:
//
//	s3              the S3 listener, for every tenant
//	admin           the admin listener
//	cluster         the cluster (Raft) listener
//	tenant:<id>     the S3 listener, for requests of one tenant (32 hex digits)
//
// An allowlist is a list of CIDR prefixes, IPv4 or IPv6, stored masked
// (netip.Prefix.Masked) in their canonical text form. A scope without a
// record, or with an empty list, allows every address: allowlists
// restrict, they are not required. Setting an empty list clears the scope.
// Evaluation (which address a request comes from, what a match is) is
// package auth's; the keystore only keeps the lists.
//
//	al/<scope>    Allowlist (JSON)
const (
	AllowlistS3      = "s3"
	AllowlistAdmin   = "admin"
	AllowlistCluster = "cluster"
	// allowlistTenantPrefix starts a tenant's scope; AllowlistTenant
	// builds it.
	allowlistTenantPrefix = "tenant:"
)

// MaxAllowlistPrefixes bounds one allowlist; a gateway's clients are a
// handful of networks, and each request is checked against the list.
const MaxAllowlistPrefixes = 1024

const pfxAllowlist = "al/"

func allowlistKey(scope string) []byte { return key(pfxAllowlist, []byte(scope)) }

// AllowlistTenant returns the allowlist scope of tenant's S3 requests.
func AllowlistTenant(tenant ID) string { return allowlistTenantPrefix + tenant.String() }

// Allowlist is the list of one scope.
type Allowlist struct {
	Scope    string         `json:"scope"`
	Prefixes []netip.Prefix `json:"prefixes"`
	// Changed is the proposer's clock at the last change; zero for a scope
	// never set.
	Changed time.Time `json:"changed,omitzero"`
}

type setAllowlistPayload struct {
	Scope    string         `json:"scope"`
	Prefixes []netip.Prefix `json:"prefixes"`
	At       time.Time      `json:"at"`
}

// SetAllowlist replaces scope's allowlist with prefixes; an empty list
// clears it (every address allowed). A tenant scope needs a live tenant.
// Prefixes are stored masked and without duplicates, in the order given.
func (s *Store) SetAllowlist(ctx context.Context, scope string, prefixes []netip.Prefix) (Allowlist, error) {
	seen := map[netip.Prefix]bool{}
	var ps []netip.Prefix
	for _, p := range prefixes {
		if !p.IsValid() {
			return Allowlist{}, fmt.Errorf("%w: invalid prefix %v", ErrInvalid, p)
		}
		p = p.Masked()
		if !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	var out Allowlist
	err := s.propose(ctx, OpSetAllowlist, setAllowlistPayload{Scope: scope, Prefixes: ps, At: s.now().UTC()}, &out)
	return out, err
}

// Allowlist returns scope's allowlist; a scope never set (or cleared) has
// no prefixes.
func (s *Store) Allowlist(ctx context.Context, scope string) (Allowlist, error) {
	if err := validAllowlistScope(scope); err != nil {
		return Allowlist{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	al := Allowlist{Scope: scope}
	err := s.view(ctx, func(txn *badger.Txn) error {
		_, err := read(txn, allowlistKey(scope), &al)
		return err
	})
	return al, err
}

// Allowlists returns every scope that has an allowlist, in scope order.
func (s *Store) Allowlists(ctx context.Context) ([]Allowlist, error) {
	var als []Allowlist
	err := s.view(ctx, func(txn *badger.Txn) error {
		return scan(txn, []byte(pfxAllowlist), func(_, v []byte) (bool, error) {
			var al Allowlist
			if err := jsonDecode(v, &al); err != nil {
				return false, err
			}
			als = append(als, al)
			return true, nil
		})
	})
	return als, err
}

func applySetAllowlist(a *applyCtx, p setAllowlistPayload) (any, error) {
	if err := validAllowlistScope(p.Scope); err != nil {
		return nil, reject(CodeInvalid, "%v", err)
	}
	if id, ok := strings.CutPrefix(p.Scope, allowlistTenantPrefix); ok {
		tid, _ := ParseID(id) // validAllowlistScope checked it
		if _, err := liveTenant(a, tid); err != nil {
			return nil, err
		}
	}
	if len(p.Prefixes) > MaxAllowlistPrefixes {
		return nil, reject(CodeInvalid, "%d prefixes, at most %d", len(p.Prefixes), MaxAllowlistPrefixes)
	}
	for _, pr := range p.Prefixes {
		if !pr.IsValid() || pr != pr.Masked() {
			return nil, reject(CodeInvalid, "prefix %v is not a masked CIDR prefix", pr)
		}
	}
	al := Allowlist{Scope: p.Scope, Prefixes: p.Prefixes, Changed: p.At}
	if len(p.Prefixes) == 0 {
		a.del(allowlistKey(p.Scope))
		al.Prefixes = nil
		return al, nil
	}
	a.put(allowlistKey(p.Scope), al)
	return al, nil
}

func validAllowlistScope(scope string) error {
	switch scope {
	case AllowlistS3, AllowlistAdmin, AllowlistCluster:
		return nil
	}
	if id, ok := strings.CutPrefix(scope, allowlistTenantPrefix); ok {
		if tid, err := ParseID(id); err != nil || tid.IsZero() || tid.String() != id {
			return fmt.Errorf("allowlist scope %q: tenant id is not 32 lowercase hex digits", scope)
		}
		return nil
	}
	return fmt.Errorf("allowlist scope %q: want %s, %s, %s or %s<tenant id>", scope, AllowlistS3, AllowlistAdmin, AllowlistCluster, allowlistTenantPrefix)
}
