package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Thresholds make a review fail (Summary.Exceeded) when crossed: a count
// above the maximum. Zero means no limit.
type Thresholds struct {
	// MaxFailuresPerKey bounds authentication failures of one access key.
	MaxFailuresPerKey int `json:"max_failures_per_key,omitempty"`
	// MaxFailuresPerAddr bounds authentication failures from one address.
	MaxFailuresPerAddr int `json:"max_failures_per_addr,omitempty"`
	// MaxDenied bounds allowlist denials in the window.
	MaxDenied int `json:"max_denied,omitempty"`
	// MaxNewAddresses bounds successful logins from addresses never seen
	// before for their user.
	MaxNewAddresses int `json:"max_new_addresses,omitempty"`
	// MaxRateLimited bounds rate-limited requests.
	MaxRateLimited int `json:"max_rate_limited,omitempty"`
	// MaxAdminActions bounds admin actions.
	MaxAdminActions int `json:"max_admin_actions,omitempty"`
}

// ReviewConfig says what to review.
type ReviewConfig struct {
	// Since and Until bound the window (Until zero: no end).
	Since, Until time.Time
	// Keys opens tenant fields; nil leaves them opaque.
	Keys TenantKeys
	// SystemKey opens records without a tenant; nil leaves them opaque.
	SystemKey []byte
	// Tenant, if not zero, restricts the review to that tenant's records:
	// a tenant admin's review, which must not see anyone else's (the
	// others are skipped before they are opened or counted).
	Tenant     [16]byte
	Thresholds Thresholds
}

// Count is how often one identity occurs. Tenant is the tenant id in hex
// (empty for none). Value is the plaintext field when its key was
// available, else "~" and the field's token: an opaque id that is stable
// for one tenant key version, so counts still group correctly.
type Count struct {
	Tenant string `json:"tenant,omitempty"`
	Value  string `json:"value"`
	Count  int    `json:"count"`
}

// Event is one record worth listing (an admin action, a login from a new
// address).
type Event struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Kind      Kind      `json:"kind"`
	Tenant    string    `json:"tenant,omitempty"`
	User      string    `json:"user,omitempty"`
	Addr      string    `json:"addr,omitempty"`
	Operation string    `json:"operation,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

// Summary is the result of Review.
type Summary struct {
	Since   time.Time    `json:"since"`
	Until   time.Time    `json:"until,omitzero"`
	Records int          `json:"records"`
	ByKind  map[Kind]int `json:"by_kind"`
	// Opaque counts records in the window whose fields stayed sealed.
	Opaque int `json:"opaque"`
	// Aggregated counts the refusals in the window that the log counted
	// instead of writing one by one (Config.Aggregation): ByKind and the
	// per-address counts include them, as if each had its own record.
	Aggregated     int      `json:"aggregated,omitempty"`
	FailuresByKey  []Count  `json:"failures_by_key,omitempty"`
	FailuresByAddr []Count  `json:"failures_by_addr,omitempty"`
	DeniedByAddr   []Count  `json:"denied_by_addr,omitempty"`
	RateLimited    []Count  `json:"rate_limited_by_addr,omitempty"`
	NewAddresses   []Event  `json:"new_addresses,omitempty"`
	AdminActions   []Event  `json:"admin_actions,omitempty"`
	Exceeded       []string `json:"exceeded,omitempty"`
	// Unreadable counts records that did not parse (run verify).
	Unreadable int `json:"unreadable,omitempty"`
}

// Review summarises the records of the log (or export) in dir within the
// window. First-seen addresses are judged against every retained record
// before the window, so a review looks back as far as retention allows.
// Memory grows with the distinct (user, address) pairs and identities
// counted, not with the number of records.
func Review(ctx context.Context, dir string, cfg ReviewConfig) (Summary, error) {
	op, err := NewOpener(cfg.Keys, cfg.SystemKey)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{Since: cfg.Since, Until: cfg.Until, ByKind: map[Kind]int{}}
	type ident struct{ tenant, value string }
	fk, fa, den, rl := map[ident]int{}, map[ident]int{}, map[ident]int{}, map[ident]int{}
	seen := map[[3]string]bool{}
	err = Entries(ctx, dir, func(e Entry, perr error) error {
		if perr != nil {
			s.Unreadable++
			return nil
		}
		if cfg.Tenant != ([16]byte{}) && e.Tenant != cfg.Tenant {
			return nil
		}
		inWindow := !e.Time.Before(cfg.Since) && (cfg.Until.IsZero() || e.Time.Before(cfg.Until))
		if !inWindow && !(e.Kind == AuthSuccess && e.Time.Before(cfg.Since)) {
			return nil
		}
		tenant := ""
		if e.Tenant != ([16]byte{}) {
			tenant = fmt.Sprintf("%x", e.Tenant)
		}
		ak, addr, user := "~"+e.AccessKey.String(), "~"+e.Addr.String(), "~"+e.User.String()
		r, oerr := op.Open(ctx, e)
		switch {
		case oerr == nil:
			ak, addr, user = r.AccessKeyID, r.SourceAddr, r.User
		case errors.Is(oerr, ErrNoKey):
			if inWindow {
				s.Opaque++
			}
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			s.Unreadable++
			return nil
		}
		if e.Kind == AuthSuccess && e.User != (Token{}) && e.Addr != (Token{}) {
			k := [3]string{tenant, user, addr}
			if !seen[k] {
				seen[k] = true
				// A user's very first login is not an anomaly.
				first := !seen[[3]string{tenant, user, ""}]
				seen[[3]string{tenant, user, ""}] = true
				if inWindow && !first {
					s.NewAddresses = append(s.NewAddresses, Event{Seq: e.Seq, Time: e.Time, Kind: e.Kind, Tenant: tenant, User: user, Addr: addr})
				}
			}
		}
		if !inWindow {
			return nil
		}
		s.Records++
		kind, n := e.Kind, 1
		if e.Kind == Aggregated {
			kind, n = e.Of, int(min(e.Count, 1<<31))
			s.Aggregated += n
			if e.Addr.IsZero() {
				addr = otherAddresses
			}
		}
		s.ByKind[kind] += n
		switch kind {
		case AuthFailure:
			if !e.AccessKey.IsZero() {
				fk[ident{tenant, ak}] += n
			}
			if !e.Addr.IsZero() || e.Kind == Aggregated {
				fa[ident{tenant, addr}] += n
			}
		case AllowlistDeny:
			den[ident{tenant, addr}] += n
		case RateLimited:
			rl[ident{tenant, addr}] += n
		case AdminAction:
			s.AdminActions = append(s.AdminActions, Event{Seq: e.Seq, Time: e.Time, Kind: e.Kind, Tenant: tenant, User: user, Operation: e.Operation, Reason: e.Reason})
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	counts := func(m map[ident]int) []Count {
		out := make([]Count, 0, len(m))
		for k, n := range m {
			out = append(out, Count{Tenant: k.tenant, Value: k.value, Count: n})
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].Count != out[j].Count {
				return out[i].Count > out[j].Count
			}
			return out[i].Tenant+out[i].Value < out[j].Tenant+out[j].Value
		})
		return out
	}
	s.FailuresByKey, s.FailuresByAddr, s.DeniedByAddr, s.RateLimited = counts(fk), counts(fa), counts(den), counts(rl)
	t := cfg.Thresholds
	top := func(c []Count) int {
		if len(c) == 0 {
			return 0
		}
		return c[0].Count
	}
	for _, c := range []struct {
		name string
		n    int
		max  int
	}{
		{"failures per access key", top(s.FailuresByKey), t.MaxFailuresPerKey},
		{"failures per address", top(s.FailuresByAddr), t.MaxFailuresPerAddr},
		{"allowlist denials", s.ByKind[AllowlistDeny], t.MaxDenied},
		{"logins from new addresses", len(s.NewAddresses), t.MaxNewAddresses},
		{"rate-limited requests", s.ByKind[RateLimited], t.MaxRateLimited},
		{"admin actions", s.ByKind[AdminAction], t.MaxAdminActions},
	} {
		if c.max > 0 && c.n > c.max {
			s.Exceeded = append(s.Exceeded, fmt.Sprintf("%s: %d > %d", c.name, c.n, c.max))
		}
	}
	return s, nil
}

// Entries calls fn for every record of the log or export in dir, in
// order, without verifying anything (Verify does); a record that does not
// parse is passed with its error. It only reads, and may run beside the
// node writing dir (a record being written is not seen).
func Entries(ctx context.Context, dir string, fn func(e Entry, err error) error) error {
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	for _, sg := range segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := entriesOf(sg, fn); err != nil {
			return err
		}
	}
	return nil
}

func entriesOf(sg segment, fn func(Entry, error) error) error {
	f, err := os.Open(sg.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // removed by retention meanwhile
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := readSegmentHeader(f); err != nil {
		return fn(Entry{}, fmt.Errorf("segment %s: %w", filepath.Base(sg.path), err))
	}
	fr := newFrameReader(f, int64(segmentHeaderSize), MaxRecordSize)
	for {
		p, err := fr.next()
		if err == io.EOF || errors.Is(err, errTorn) {
			return nil
		}
		if err != nil && !errors.Is(err, errBadCRC) {
			return fn(Entry{}, err)
		}
		if err != nil {
			if err := fn(Entry{}, err); err != nil {
				return err
			}
			continue
		}
		e, perr := ParseEntry(p)
		if err := fn(e, perr); err != nil {
			return err
		}
	}
}
