package keystore

import (
	"context"
	"net/netip"
	"testing"
)

func TestSetAllowlist(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	gone := mustTenant(t, s, "gone")
	if err := s.DeleteTenant(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	pp := func(ss ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, s := range ss {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		return ps
	}
	tests := []struct {
		name     string
		scope    string
		prefixes []netip.Prefix
		want     error
		stored   []netip.Prefix
	}{
		{"s3 v4 and v6", AllowlistS3, pp("10.0.0.0/8", "2001:db8::/32"), nil, pp("10.0.0.0/8", "2001:db8::/32")},
		{"admin masked and deduplicated", AllowlistAdmin, pp("192.0.2.7/24", "192.0.2.0/24", "::1/128"), nil, pp("192.0.2.0/24", "::1/128")},
		{"cluster", AllowlistCluster, pp("198.51.100.0/24"), nil, pp("198.51.100.0/24")},
		{"tenant", AllowlistTenant(tn.ID), pp("203.0.113.5/32"), nil, pp("203.0.113.5/32")},
		{"deleted tenant", AllowlistTenant(gone.ID), pp("203.0.113.5/32"), ErrNotFound, nil},
		{"unknown tenant", AllowlistTenant(ID{9}), pp("203.0.113.5/32"), ErrNotFound, nil},
		{"zero tenant", AllowlistTenant(ID{}), pp("203.0.113.5/32"), ErrInvalid, nil},
		{"upper-case tenant id", "tenant:" + "ABCDEF0123456789ABCDEF0123456789", pp("203.0.113.5/32"), ErrInvalid, nil},
		{"unknown scope", "raft", pp("10.0.0.0/8"), ErrInvalid, nil},
		{"invalid prefix", AllowlistS3, []netip.Prefix{{}}, ErrInvalid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			al, err := s.SetAllowlist(ctx, tt.scope, tt.prefixes)
			wantErr(t, "SetAllowlist", err, tt.want)
			if err != nil {
				return
			}
			got, err := s.Allowlist(ctx, tt.scope)
			if err != nil || !equalPrefixes(got.Prefixes, tt.stored) || !equalPrefixes(al.Prefixes, tt.stored) || got.Changed.IsZero() {
				t.Fatalf("Allowlist = %+v, %v; want %v", got, err, tt.stored)
			}
		})
	}
	all, err := s.Allowlists(ctx)
	if err != nil || len(all) != 4 {
		t.Fatalf("Allowlists = %+v, %v", all, err)
	}
	// Clearing removes the record: every address is allowed again.
	if _, err := s.SetAllowlist(ctx, AllowlistAdmin, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Allowlist(ctx, AllowlistAdmin)
	if err != nil || len(got.Prefixes) != 0 {
		t.Fatalf("cleared Allowlist = %+v, %v", got, err)
	}
	if all, _ := s.Allowlists(ctx); len(all) != 3 {
		t.Fatalf("Allowlists after clear = %+v", all)
	}
}

// TestSetAllowlist_Replicated checks that the record survives a replay of
// the log into another state machine (what every replica does).
func TestSetAllowlist_Replicated(t *testing.T) {
	a, _ := newStore(t)
	b, _ := newStore(t)
	var req [16]byte
	req[0] = 1
	cmd, err := newCommand(OpSetAllowlist, req, setAllowlistPayload{Scope: AllowlistCluster, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}})
	if err != nil {
		t.Fatal(err)
	}
	ra := a.FSM().Apply(a.AppliedIndex()+1, cmd)
	rb := b.FSM().Apply(b.AppliedIndex()+1, cmd)
	if ra[0].Code != CodeOK || string(ra[0].Value) != string(rb[0].Value) {
		t.Fatalf("results differ: %+v vs %+v", ra, rb)
	}
	got, err := b.Allowlist(context.Background(), AllowlistCluster)
	if err != nil || len(got.Prefixes) != 1 {
		t.Fatalf("Allowlist on the replica = %+v, %v", got, err)
	}
	// A non-masked prefix in a command (a proposer that skipped SetAllowlist)
	// is rejected identically everywhere.
	req[0] = 2
	bad, _ := newCommand(OpSetAllowlist, req, setAllowlistPayload{Scope: AllowlistCluster, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/16")}})
	if r := a.FSM().Apply(a.AppliedIndex()+1, bad); r[0].Code != CodeInvalid {
		t.Fatalf("unmasked prefix: %+v", r)
	}
}

func equalPrefixes(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
