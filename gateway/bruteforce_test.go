package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
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
