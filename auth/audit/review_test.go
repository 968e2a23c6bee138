package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeReviewLog writes a day of history and then a burst: 6 failures of
// one key from one address, a login of bob from a new address, two
// allowlist denials and an admin action.
func writeReviewLog(t *testing.T, dir string, keys TenantKeys) time.Time {
	t.Helper()
	clock := &testClock{t: t0}
	l := openLog(t, testConfig(dir, 10, keys, nil, clock))
	app := func(at time.Time, r Record) {
		clock.Set(at)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	ok := func(user, addr string) Record {
		return Record{Kind: AuthSuccess, Tenant: tenantA, User: user, AccessKeyID: "TRSRBOB", SourceAddr: addr}
	}
	app(t0, ok("bob", "192.0.2.1"))
	app(t0.Add(time.Hour), ok("bob", "192.0.2.1"))
	since := t0.Add(24 * time.Hour)
	for i := range 6 {
		app(since.Add(time.Duration(i)*time.Second), Record{Kind: AuthFailure, Tenant: tenantA, Reason: "signature mismatch",
			AccessKeyID: "TRSRBOB", User: "bob", SourceAddr: "203.0.113.9"})
	}
	app(since.Add(time.Minute), ok("bob", "203.0.113.50"))   // new address for bob
	app(since.Add(2*time.Minute), ok("carol", "192.0.2.77")) // carol's first login: not flagged
	app(since.Add(3*time.Minute), ok("bob", "192.0.2.1"))    // known address
	for range 2 {
		app(since.Add(4*time.Minute), Record{Kind: AllowlistDeny, SourceAddr: "198.51.100.200", Reason: "s3 listener allowlist"})
	}
	app(since.Add(5*time.Minute), Record{Kind: AdminAction, User: "operator", Operation: "create-tenant"})
	app(since.Add(6*time.Minute), Record{Kind: RateLimited, Tenant: tenantB, SourceAddr: "203.0.113.9"})
	l.Close()
	return since
}

func TestReview_Summary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := newFakeKeys(tenantA, tenantB)
	since := writeReviewLog(t, dir, keys)
	sys, _ := ReadSystemKey(dir)

	th := Thresholds{MaxFailuresPerKey: 5}
	tests := []struct {
		name   string
		keys   TenantKeys
		sys    []byte
		opaque bool
	}{
		{name: "with keys", keys: keys, sys: sys},
		{name: "without keys", opaque: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Review(context.Background(), dir, ReviewConfig{Since: since, Keys: tt.keys, SystemKey: tt.sys, Thresholds: th})
			if err != nil {
				t.Fatal(err)
			}
			if s.Records != 13 || s.ByKind[AuthFailure] != 6 || s.ByKind[AllowlistDeny] != 2 || s.ByKind[AdminAction] != 1 || s.ByKind[RateLimited] != 1 {
				t.Fatalf("counts %+v", s)
			}
			if len(s.FailuresByKey) != 1 || s.FailuresByKey[0].Count != 6 || len(s.FailuresByAddr) != 1 {
				t.Fatalf("failures %+v %+v", s.FailuresByKey, s.FailuresByAddr)
			}
			if len(s.NewAddresses) != 1 || len(s.AdminActions) != 1 || len(s.DeniedByAddr) != 1 || s.DeniedByAddr[0].Count != 2 {
				t.Fatalf("new %+v admin %+v denied %+v", s.NewAddresses, s.AdminActions, s.DeniedByAddr)
			}
			if len(s.Exceeded) != 1 || !strings.Contains(s.Exceeded[0], "failures per access key: 6 > 5") {
				t.Fatalf("exceeded %v", s.Exceeded)
			}
			na := s.NewAddresses[0]
			if tt.opaque {
				if s.Opaque != 13 || !strings.HasPrefix(na.Addr, "~") || !strings.HasPrefix(s.FailuresByKey[0].Value, "~") {
					t.Fatalf("opaque review shows %+v / %+v", na, s.FailuresByKey[0])
				}
			} else if na.User != "bob" || na.Addr != "203.0.113.50" || s.FailuresByKey[0].Value != "TRSRBOB" || s.AdminActions[0].User != "operator" {
				t.Fatalf("review with keys: %+v %+v %+v", na, s.FailuresByKey[0], s.AdminActions[0])
			}
		})
	}
}

// A tenant's review holds its own records only: another tenant's, and the
// system's (allowlist denials without a tenant, operator actions), are not
// counted, listed or opened.
func TestReview_OneTenant(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := newFakeKeys(tenantA, tenantB)
	since := writeReviewLog(t, dir, keys)
	want := fmt.Sprintf("%x", tenantA)

	s, err := Review(context.Background(), dir, ReviewConfig{Since: since, Keys: keys, Tenant: tenantA})
	if err != nil {
		t.Fatal(err)
	}
	// tenant A's: 6 failures and 3 logins in the window.
	if s.Records != 9 || s.ByKind[AuthFailure] != 6 || s.ByKind[AuthSuccess] != 3 || s.Opaque != 0 {
		t.Fatalf("tenant review counts %+v", s)
	}
	if len(s.DeniedByAddr) != 0 || len(s.RateLimited) != 0 || len(s.AdminActions) != 0 {
		t.Fatalf("tenant review shows others' records: denied %+v rate-limited %+v admin %+v", s.DeniedByAddr, s.RateLimited, s.AdminActions)
	}
	for _, c := range append(s.FailuresByKey, s.FailuresByAddr...) {
		if c.Tenant != want {
			t.Fatalf("count of tenant %s in tenant %s's review", c.Tenant, want)
		}
	}
	if len(s.NewAddresses) != 1 || s.NewAddresses[0].User != "bob" || s.NewAddresses[0].Addr != "203.0.113.50" {
		t.Fatalf("new addresses %+v", s.NewAddresses)
	}

	s, err = Review(context.Background(), dir, ReviewConfig{Since: since, Keys: keys, Tenant: tenantB})
	if err != nil {
		t.Fatal(err)
	}
	if s.Records != 1 || s.ByKind[RateLimited] != 1 || len(s.FailuresByKey) != 0 || len(s.NewAddresses) != 0 {
		t.Fatalf("tenant B's review %+v", s)
	}
}

// A JSON review reads back into a Summary, so scripts and the admin CLI
// can consume it.
func TestReview_JSONRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := newFakeKeys(tenantA, tenantB)
	since := writeReviewLog(t, dir, keys)
	s, err := Review(context.Background(), dir, ReviewConfig{Since: since, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.ByKind, s.ByKind) || back.Records != s.Records || len(back.FailuresByKey) != len(s.FailuresByKey) {
		t.Fatalf("read back %+v\nwrote %+v", back, s)
	}
	var k Kind
	if err := k.UnmarshalText([]byte("no_such_kind")); err == nil {
		t.Fatal("an unknown kind name was accepted")
	}
}
