package auth

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestCIDRs_Allows(t *testing.T) {
	list, err := ParseCIDRs([]string{"10.0.0.0/8, 192.0.2.7", "2001:db8::/32", "::ffff:198.51.100.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.1", false},
		{"192.0.2.7", true},
		{"192.0.2.8", false},
		{"2001:db8::1", true},
		{"2001:db9::1", false},
		{"::ffff:10.9.9.9", true}, // IPv4-mapped is compared as IPv4
		{"198.51.100.42", true},   // a mapped prefix is stored as IPv4
		{"fe80::1%eth0", false},   // zones do not help
		{"", false},               // no address
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			if got := list.Allows(ip); got != tt.want {
				t.Fatalf("Allows(%s) = %v, want %v (list %v)", tt.ip, got, tt.want, list.Strings())
			}
		})
	}
	if !(CIDRs{}).Allows(netip.MustParseAddr("203.0.113.1")) || !(CIDRs{}).Allows(netip.Addr{}) {
		t.Fatal("an empty allowlist must allow everyone")
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/", "::/129"} {
		if _, err := ParseCIDRs([]string{bad}); err == nil {
			t.Errorf("ParseCIDRs(%q) accepted", bad)
		}
	}
}

func TestAllowlists_CacheAndFailClosed(t *testing.T) {
	var loads atomic.Int32
	lists := map[string]CIDRs{
		ScopeS3:                  {netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		TenantScope([16]byte{1}): {netip.MustParsePrefix("10.1.0.0/16")},
	}
	broken := false
	a := NewAllowlists(func(_ context.Context, scope string) (CIDRs, error) {
		loads.Add(1)
		if broken {
			return nil, errors.New("keystore stale")
		}
		return lists[scope], nil
	}, time.Minute)
	now := time.Unix(1e9, 0)
	a.now = func() time.Time { return now }
	ctx := context.Background()
	tests := []struct {
		name   string
		tenant [16]byte
		ip     string
		want   bool
	}{
		{"tenant list and global list", [16]byte{1}, "10.1.2.3", true},
		{"global only, tenant list refuses", [16]byte{1}, "10.2.0.1", false},
		{"tenant without a list", [16]byte{2}, "10.2.0.1", true},
		{"IPv6 tenant without a list", [16]byte{2}, "2001:db8::5", true},
		{"outside global list", [16]byte{2}, "192.0.2.1", false},
		{"outside global list, IPv6", [16]byte{2}, "2001:db9::5", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.AllowS3(ctx, tt.tenant, netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Fatalf("AllowS3 = %v, want %v", got, tt.want)
			}
		})
	}
	n := loads.Load()
	a.AllowS3(ctx, [16]byte{1}, netip.MustParseAddr("10.1.2.3"))
	if loads.Load() != n {
		t.Fatal("a cached list was loaded again")
	}
	// After the TTL the list is read again; a failed read denies.
	broken = true
	now = now.Add(2 * time.Minute)
	if a.Allow(ctx, ScopeAdmin, netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("a list that cannot be read allowed")
	}
	if a.Allow(ctx, ScopeS3, netip.MustParseAddr("10.0.0.1")) {
		t.Fatal("Allow used a stale list")
	}
	// AllowLastKnown keeps the last list read; with none it is open.
	if !a.AllowLastKnown(ctx, ScopeS3, netip.MustParseAddr("10.0.0.1")) || a.AllowLastKnown(ctx, ScopeS3, netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("AllowLastKnown did not use the last list read")
	}
	if !a.AllowLastKnown(ctx, ScopeCluster, netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("AllowLastKnown without any list read refused")
	}
}

func TestFilterListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var allowed atomic.Bool
	denied := make(chan netip.Addr, 4)
	fl := FilterListener(ln, func(netip.Addr) bool { return allowed.Load() }, func(ip netip.Addr) { denied <- ip })
	t.Cleanup(func() { fl.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := fl.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	// Denied: the server closes without a byte; the client reads EOF.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("denied connection read %d, %v; want closed", n, err)
	}
	c.Close()
	if ip := <-denied; ip != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("denied callback got %v", ip)
	}

	// Allowed: handed to the server.
	allowed.Store(true)
	c, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc := <-accepted:
		sc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("allowed connection not accepted")
	}
}

// TestAllowlists_CheckTellsUnreadableFromDenied lets the caller answer a
// list it cannot read with a retryable error rather than AccessDenied.
func TestAllowlists_CheckTellsUnreadableFromDenied(t *testing.T) {
	stale := errors.New("keystore: local state is stale")
	a := NewAllowlists(func(_ context.Context, scope string) (CIDRs, error) {
		if scope == ScopeS3 {
			return CIDRs{netip.MustParsePrefix("10.0.0.0/8")}, nil
		}
		return nil, stale
	}, time.Minute)
	ctx := context.Background()
	if ok, err := a.Check(ctx, ScopeS3, netip.MustParseAddr("192.0.2.1")); ok || err != nil {
		t.Errorf("address outside the list: ok %v, err %v; want a plain denial", ok, err)
	}
	if ok, err := a.Check(ctx, ScopeS3, netip.MustParseAddr("10.1.2.3")); !ok || err != nil {
		t.Errorf("address inside the list: ok %v, err %v", ok, err)
	}
	if ok, err := a.Check(ctx, TenantScope([16]byte{9}), netip.MustParseAddr("10.1.2.3")); ok || !errors.Is(err, stale) {
		t.Errorf("unreadable list: ok %v, err %v; want the read error", ok, err)
	}
	if a.Allow(ctx, TenantScope([16]byte{9}), netip.MustParseAddr("10.1.2.3")) {
		t.Error("Allow admits through a list it cannot read")
	}
}

// A load that began before a Forget must not cache the list it read, which
// may predate the change; a load that failed because its caller gave up
// must not make the node deny others for a while.
func TestAllowlists_NoStaleOrAbandonedCaching(t *testing.T) {
	open := CIDRs(nil)
	closed := CIDRs{netip.MustParsePrefix("10.0.0.0/8")}
	current := open
	var a *Allowlists
	forgetDuringLoad := false
	a = NewAllowlists(func(ctx context.Context, scope string) (CIDRs, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		read := current
		if forgetDuringLoad {
			// The list changes and the node forgets while this load
			// is in flight with the old list.
			forgetDuringLoad = false
			current = closed
			a.Forget()
		}
		return read, nil
	}, time.Hour)
	ip := netip.MustParseAddr("192.0.2.1")
	ctx := context.Background()

	forgetDuringLoad = true
	if !a.Allow(ctx, ScopeS3, ip) {
		t.Fatal("the load that raced the change answered with the new list")
	}
	if a.Allow(ctx, ScopeS3, ip) {
		t.Fatal("the list read before Forget was cached: the change is invisible for a TTL")
	}

	current = open
	a.Forget()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if ok, err := a.Check(gone, ScopeAdmin, ip); ok || err == nil {
		t.Fatalf("Check with a canceled context = %v, %v", ok, err)
	}
	if ok, err := a.Check(ctx, ScopeAdmin, ip); !ok || err != nil {
		t.Fatalf("after an abandoned load, Check = %v, %v: the caller's cancellation was cached", ok, err)
	}
}
