package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// blockingAuditor holds every Append until released, as a slow disk would.
type blockingAuditor struct {
	release chan struct{}
	mu      sync.Mutex
	recs    []audit.Record
}

func (b *blockingAuditor) Append(ctx context.Context, rec audit.Record) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.recs = append(b.recs, rec)
	b.mu.Unlock()
	return nil
}

func (b *blockingAuditor) records() []audit.Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]audit.Record(nil), b.recs...)
}

// A flood of refusals never blocks the listener while the audit is slow;
// what overflows the queue is counted and the count is recorded.
func TestDenials_NeverBlockAndCountDrops(t *testing.T) {
	d := newDenials(slog.New(slog.DiscardHandler))
	a := &blockingAuditor{release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.run(ctx, a) }()
	defer func() { cancel(); <-done }()

	flood := denialQueue + 500
	for i := range flood {
		d.refused("cluster", netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
	}
	// Every call returned although nothing was appended yet. Once the
	// audit moves, every refusal is a record or counted in one.
	close(a.release)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		recs := a.records()
		dropped := 0
		for _, r := range recs {
			if r.Kind != audit.AllowlistDeny || r.Operation != "cluster-connect" || r.SourceAddr == "" {
				t.Fatalf("record %+v", r)
			}
			if _, note, ok := strings.Cut(r.Reason, "; "); ok {
				n, err := strconv.Atoi(strings.Fields(note)[0])
				if err != nil {
					t.Fatalf("reason %q", r.Reason)
				}
				dropped += n
			}
		}
		if len(recs)+dropped == flood && dropped > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refusals: %d records and %d counted as dropped", flood, len(recs), dropped)
		}
	}
}

// The cluster (Raft) listener closes connections from outside the cluster
// allowlist before a byte is exchanged, records each in the login audit,
// and admits them again once the list is cleared.
func TestClusterListener_AllowlistClosesAndAudits(t *testing.T) {
	ctx := context.Background()
	store := keystore.OpenTest(t)
	acfg := audit.DefaultConfig(t.TempDir(), "n1")
	acfg.Logger = slog.New(slog.DiscardHandler)
	alog, err := audit.Open(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	defer alog.Close()
	d := newDenials(slog.New(slog.DiscardHandler))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.run(runCtx, alog) }()
	defer func() { stop(); <-done }()

	lists := newAllowlists(store)
	c := &clusterNode{}
	c.setAllowlists(lists)
	c.setDenials(d)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := c.filterListener(raw)
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- conn
		}
	}()
	// dial reports whether the listener handed the connection on.
	dial := func() bool {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		select {
		case a := <-accepted:
			a.Close()
			return true
		case <-time.After(2 * time.Second):
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("refused connection: read %v, want it closed", err)
		}
		return false
	}

	if !dial() {
		t.Fatal("refused without a cluster allowlist")
	}
	if _, err := store.SetAllowlist(ctx, auth.ScopeCluster, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	lists.Forget()
	if dial() {
		t.Fatal("a peer outside the cluster allowlist was admitted")
	}
	sys, err := audit.ReadSystemKey(acfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s, err := audit.Review(ctx, acfg.Dir, audit.ReviewConfig{SystemKey: sys})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.DeniedByAddr) == 1 && s.DeniedByAddr[0].Value == "127.0.0.1" && s.DeniedByAddr[0].Count == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record of the refused connection: %+v", s.DeniedByAddr)
		}
	}
	if _, err := store.SetAllowlist(ctx, auth.ScopeCluster, nil); err != nil {
		t.Fatal(err)
	}
	lists.Forget()
	if !dial() {
		t.Fatal("refused after the cluster allowlist was cleared")
	}
}
