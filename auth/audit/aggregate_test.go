package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestLog_AggregatesRefusals floods the log with refusals marked
// Aggregate from a few addresses and from many: each address gets its
// first records in full, the rest are counted into one Aggregated record
// per address, kind and reason when the interval ends, addresses past
// MaxGroups into one count without an address; the review counts every
// refusal, per address, as if each had its own record; the log verifies.
func TestLog_AggregatesRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	clock := &testClock{t: t0}
	cfg := testConfig(dir, 1000, nil, nil, clock)
	cfg.Aggregation = AggregationConfig{Interval: time.Minute, PerAddr: 3, MaxFull: 10, MaxGroups: 4}
	l := openLog(t, cfg)
	refuse := func(kind Kind, reason, addr string, n int) {
		for i := range n {
			r := Record{Kind: kind, Reason: reason, Operation: "GetObject", SourceAddr: addr,
				RequestID: fmt.Sprintf("%s-%s-%d", addr, reason, i), Aggregate: true}
			if err := l.Append(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	refuse(AuthFailure, "AccessDenied", "198.51.100.1", 100)
	refuse(RateLimited, "rate limited", "198.51.100.2", 50)
	for i := range 20 { // 20 more addresses, two refusals each
		refuse(AuthFailure, "InvalidAccessKeyId", fmt.Sprintf("203.0.113.%d", i), 2)
	}
	// A success is never aggregated, and does not count against the budget.
	if err := l.Append(ctx, Record{Kind: AuthSuccess, SourceAddr: "198.51.100.1", RequestID: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, Record{Kind: AuthSuccess, Aggregate: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an aggregated success: %v, want ErrInvalid", err)
	}
	if n := l.Size(); n != 11 {
		t.Errorf("%d records written during the interval, want MaxFull 10 and the success", n)
	}
	// The interval ends: the writer writes the counts without being asked.
	clock.Set(t0.Add(time.Minute))
	waitFor(t, "the counts of the ended interval", func() bool { return l.Size() > 11 })
	pub := l.PublicKeys()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	var counts []string
	Entries(ctx, dir, func(e Entry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == Aggregated {
			counts = append(counts, fmt.Sprintf("%s %s %d", e.Of, e.Reason, e.Count))
		}
		return nil
	})
	want := "[auth_failure AccessDenied 97 rate_limited rate limited 47 auth_failure InvalidAccessKeyId 2 auth_failure InvalidAccessKeyId 2 auth_failure " + otherAddresses + " 32]"
	if fmt.Sprint(counts) != want {
		t.Errorf("aggregated records %v, want %s", counts, want)
	}
	rep, err := Verify(ctx, dir, pub, VerifyOptions{})
	if err != nil || !rep.OK() || rep.Records != 16 {
		t.Fatalf("verify: %v, %d records, %+v", err, rep.Records, rep.Problems)
	}

	sys, err := ReadSystemKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Review(ctx, dir, ReviewConfig{Since: t0.Add(-time.Hour), SystemKey: sys})
	if err != nil {
		t.Fatal(err)
	}
	byAddr := map[string]int{}
	for _, c := range s.FailuresByAddr {
		byAddr[c.Value] = c.Count
	}
	// .0 and .1 in full (MaxFull is then reached), .2 and .3 counted (the
	// last of MaxGroups), .4 to .19 together.
	if byAddr["198.51.100.1"] != 100 || byAddr["203.0.113.0"] != 2 || byAddr["203.0.113.3"] != 2 || byAddr["203.0.113.4"] != 0 || byAddr[otherAddresses] != 32 {
		t.Errorf("failures per address %v", s.FailuresByAddr)
	}
	if len(s.RateLimited) != 1 || s.RateLimited[0].Value != "198.51.100.2" || s.RateLimited[0].Count != 50 {
		t.Errorf("rate limited per address %v, want 50 from 198.51.100.2", s.RateLimited)
	}
	if s.ByKind[AuthFailure] != 140 || s.ByKind[RateLimited] != 50 || s.Aggregated != 180 {
		t.Errorf("review counts %v, %d aggregated; want 140 failures, 50 rate limited, 180 aggregated", s.ByKind, s.Aggregated)
	}
}

// TestLog_AggregatedRefusedWhileUnavailable checks that a refusal marked
// Aggregate is refused like any record while the log cannot write: it is
// not silently counted.
func TestLog_AggregatedRefusedWhileUnavailable(t *testing.T) {
	t.Parallel()
	d := NewFaultyDisk()
	cfg := WithDisk(testConfig(t.TempDir(), 1000, nil, nil, nil), d)
	cfg.RetryInterval = time.Hour
	l := openLog(t, cfg)
	defer l.Close()
	d.SetFree(0)
	if err := l.Append(context.Background(), record(0, time.Time{})); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append on a full disk: %v", err)
	}
	r := Record{Kind: AuthFailure, Reason: "AccessDenied", SourceAddr: "198.51.100.1", Aggregate: true}
	if err := l.Append(context.Background(), r); !errors.Is(err, ErrUnavailable) {
		t.Errorf("aggregated refusal while the log cannot write: %v, want ErrUnavailable", err)
	}
}

func TestEntry_AggregatedEncoding(t *testing.T) {
	k, _ := deriveKeys(make([]byte, 32))
	e, err := seal(Record{Time: t0, Kind: Aggregated, Of: RateLimited, Count: 300, SourceAddr: "198.51.100.1", Reason: "rate limited"}, [16]byte{}, k)
	if err != nil {
		t.Fatal(err)
	}
	b := e.marshal()
	got, err := ParseEntry(b)
	if err != nil || got.Of != RateLimited || got.Count != 300 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if r, err := got.open(k); err != nil || r.SourceAddr != "198.51.100.1" || r.Count != 300 {
		t.Fatalf("open: %+v, %v", r, err)
	}
	for name, bad := range map[string][]byte{
		"version 1 with the count": append([]byte{recordVersion}, b[1:]...),
		"count zero":               append(append([]byte(nil), b[:len(b)-2]...), 0),
		"of a success":             append(append([]byte(nil), b[:len(b)-3]...), byte(AuthSuccess), b[len(b)-2], b[len(b)-1]),
		"no count":                 b[:len(b)-3],
	} {
		if _, err := ParseEntry(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	v2 := record(1, t0)
	e2, _ := seal(v2, [16]byte{}, k)
	b2 := e2.marshal()
	b2[0] = aggregatedVersion
	if _, err := ParseEntry(b2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("version 2 for an auth failure: %v, want ErrCorrupt", err)
	}
}
