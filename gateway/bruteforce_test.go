package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/keystore"
)

// fromAddr makes requests look as if they came from the address in the
// X-Test-Peer header: httptest only knows loopback. Test harness only.
func fromAddr(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.Header.Get("X-Test-Peer"); p != "" {
			r.RemoteAddr = p + ":40000"
		}
		h.ServeHTTP(w, r)
	})
}

type peerTransport struct{ peer string }

func (p peerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-Peer", p.peer)
	return http.DefaultTransport.RoundTrip(r)
}

// TestGateway_BruteForceIsRateLimited sends a burst of wrong secrets for one
// tenant's key: after the burst the attacker gets SlowDown even with the
// right secret (a guess is never confirmed), while the key's owner from
// elsewhere and another tenant are served as usual.
func TestGateway_BruteForceIsRateLimited(t *testing.T) {
	ctx := context.Background()
	store := keystore.OpenTest(t)
	victim, err := store.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	be, _ := newTestBackend(t, "fs")
	v, err := auth.NewVerifier(Secrets(store), auth.DefaultConfig("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	lcfg := auth.DefaultLimiterConfig()
	lcfg.Clock = func() time.Time { return clock } // frozen: no refill during the test
	cfg := DefaultConfig()
	cfg.Limiter = auth.NewLimiter(lcfg)
	srv, err := New(cfg, be, store, v)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(fromAddr(srv))
	t.Cleanup(ts.Close)

	other, err := store.CreateTenant(ctx, "other", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.CreateUser(ctx, other.ID, "carol", keystore.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := store.CreateAccessKey(ctx, u.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	client := func(peer, id, secret string) *s3.Client {
		return s3.New(s3.Options{
			BaseEndpoint: aws.String(ts.URL), Region: "us-east-1", UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
			HTTPClient:  &http.Client{Transport: peerTransport{peer}},
			Retryer:     aws.NopRetryer{},
		})
	}
	owner := client("192.0.2.1", victim.AccessKeyID, victim.SecretAccessKey)
	mustCreateBucket(t, owner, "guarded")
	tenantB := client("203.0.113.9", otherKey.ID, otherKey.Secret)
	mustCreateBucket(t, tenantB, "tenant-b")

	const attempts = 200
	denied, slowed := 0, 0
	for i := range attempts {
		guess := client("198.51.100.7", victim.AccessKeyID, "guess-"+string(rune('a'+i%26))+victim.SecretAccessKey[7:])
		_, err := guess.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("guarded")})
		switch apiCode(err) {
		case "SignatureDoesNotMatch":
			denied++
		case "SlowDown":
			slowed++
		default:
			t.Fatalf("attempt %d: %v", i, err)
		}
		if i%50 == 0 {
			// Another tenant is served normally throughout.
			if _, err := tenantB.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("tenant-b")}); err != nil {
				t.Fatalf("other tenant during the attack: %v", err)
			}
		}
	}
	if denied != lcfg.PairBurst || slowed != attempts-lcfg.PairBurst {
		t.Errorf("%d signatures were checked and %d slowed, want %d checked", denied, slowed, lcfg.PairBurst)
	}
	// The right secret from the attacking address is not confirmed.
	lucky := client("198.51.100.7", victim.AccessKeyID, victim.SecretAccessKey)
	if _, err := lucky.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("guarded")}); apiCode(err) != "SlowDown" {
		t.Errorf("correct secret from the attacking address: %v, want SlowDown", err)
	}
	// The key's owner, from its own address, still works.
	if _, err := owner.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("guarded")}); err != nil {
		t.Errorf("owner during the attack: %v", err)
	}
}

// testClock is a clock the test moves while the server reads it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestGateway_KeyLockoutSparesTheOwner reproduces the lockout attack of
// issue 9 through the S3 API: someone who knows only the owner's access
// key id sends 80 wrong signatures from 8 addresses, then one every 2 s.
// The owner, from the address it works from, is served throughout; the
// attack stays bounded by the key's budget, which holds new addresses
// and presigned URLs used from them.
func TestGateway_KeyLockoutSparesTheOwner(t *testing.T) {
	ctx := context.Background()
	store := keystore.OpenTest(t)
	creds, err := store.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	be, _ := newTestBackend(t, "fs")
	v, err := auth.NewVerifier(Secrets(store), auth.DefaultConfig("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Now()}
	lcfg := auth.DefaultLimiterConfig()
	lcfg.Clock = clock.now
	cfg := DefaultConfig()
	cfg.Limiter = auth.NewLimiter(lcfg)
	srv, err := New(cfg, be, store, v)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(fromAddr(srv))
	t.Cleanup(ts.Close)
	client := func(peer, secret string) *s3.Client {
		return s3.New(s3.Options{
			BaseEndpoint: aws.String(ts.URL), Region: "us-east-1", UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, secret, ""),
			HTTPClient:  &http.Client{Transport: peerTransport{peer}},
			Retryer:     aws.NopRetryer{},
		})
	}
	owner := client("192.0.2.1", creds.SecretAccessKey)
	mustCreateBucket(t, owner, "guarded") // the owner has been working from here
	list := func(c *s3.Client) error {
		_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("guarded")})
		return err
	}

	checked := 0
	attack := func(i int) {
		err := list(client(fmt.Sprintf("198.51.100.%d", 10+i%8), "guess-"+fmt.Sprint(i)))
		switch apiCode(err) {
		case "SignatureDoesNotMatch":
			checked++
		case "SlowDown":
		default:
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	for i := range 80 {
		attack(i)
	}
	const rounds = 30
	for i := range rounds {
		clock.advance(2 * time.Second)
		attack(80 + i)
		if err := list(owner); err != nil {
			t.Fatalf("round %d: the owner, from its own address, during the attack: %v", i, err)
		}
	}
	if bound := lcfg.KeyBurst + int(lcfg.KeyRate*2*rounds); checked > bound {
		t.Errorf("%d wrong signatures checked, more than the key's budget %d", checked, bound)
	}
	// The key's budget is what bounds a spread-out attack: an address that
	// never signed with the key waits, header-signed or presigned.
	if err := list(client("203.0.113.5", creds.SecretAccessKey)); apiCode(err) != "SlowDown" {
		t.Errorf("owner from a new address during the attack: %v, want SlowDown", err)
	}
	ps := s3.NewPresignClient(owner)
	req, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("guarded"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest(http.MethodGet, req.URL, nil)
	hr.Header.Set("X-Test-Peer", "203.0.113.6")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("presigned URL from a new address during the attack: %d, want 503 SlowDown", resp.StatusCode)
	}
	t.Logf("%d of %d wrong signatures checked; the owner was served in all %d rounds", checked, 80+rounds, rounds)
}
