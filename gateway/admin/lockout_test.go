package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tresor-gw/tresor/auth"
)

// peerTransport makes a request come from peer (header X-Test-Peer, read by
// the handler's ClientIP below). Test harness only.
type peerTransport struct{ peer string }

func (p peerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-Peer", p.peer)
	return http.DefaultTransport.RoundTrip(r)
}

type lockoutClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lockoutClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *lockoutClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestFailedSignatures_LockoutSparesTheOwner is the S3 listener's
// TestGateway_KeyLockoutSparesTheOwner on the admin listener: 80 wrong
// signatures for the operator's key from 8 addresses, then one every 2 s,
// and the operator is served from the address it works from throughout.
func TestFailedSignatures_LockoutSparesTheOwner(t *testing.T) {
	ctx := context.Background()
	clk := &lockoutClock{t: time.Now()}
	store := openStore(t, time.Now)
	lcfg := auth.DefaultLimiterConfig()
	lcfg.Clock = clk.now
	h, err := New(store, Config{
		Auditor: &recorder{}, AuditDir: t.TempDir(), Limiter: auth.NewLimiter(lcfg),
		ClientIP: func(r *http.Request) netip.Addr {
			a, _ := netip.ParseAddr(r.Header.Get("X-Test-Peer"))
			return a
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	op, err := store.BootstrapOperator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := func(peer, secret string) *Client {
		return &Client{Endpoint: srv.URL, AccessKeyID: op.AccessKeyID, SecretAccessKey: secret,
			HTTP: &http.Client{Transport: peerTransport{peer}}}
	}
	operator := client("192.0.2.1", op.SecretAccessKey)
	if err := operator.Do(ctx, "GET", "whoami", nil, nil); err != nil {
		t.Fatal(err)
	}
	checked := 0
	attack := func(i int) {
		err := client(fmt.Sprintf("198.51.100.%d", 10+i%8), strings.Repeat("y", 39)+fmt.Sprint(i%10)).Do(ctx, "GET", "whoami", nil, nil)
		var e *Error
		switch {
		case errors.As(err, &e) && e.Code == "SignatureDoesNotMatch":
			checked++
		case errors.As(err, &e) && e.Code == "SlowDown":
		default:
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	for i := range 80 {
		attack(i)
	}
	for i := range 30 {
		clk.advance(2 * time.Second)
		attack(80 + i)
		if err := operator.Do(ctx, "GET", "whoami", nil, nil); err != nil {
			t.Fatalf("round %d: the operator, from its own address, during the attack: %v", i, err)
		}
	}
	if bound := lcfg.KeyBurst + int(lcfg.KeyRate*60); checked > bound {
		t.Errorf("%d wrong signatures checked, more than the key's budget %d", checked, bound)
	}
}
