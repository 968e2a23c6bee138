package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/keystore"
)

// dirBytes is the size of the files in dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += info.Size()
	}
	return n
}

// TestGateway_UnauthenticatedFloodBoundsAuditBytes sends 10,000 requests
// that prove nothing (anonymous, a malformed Authorization header, an
// unknown access key id, wrong signatures past the limiter's lockout),
// from one address and from 10,000, and measures what they add to the
// login audit: a bound on bytes, whatever the number of requests. Every
// request is refused, and the review still counts every one of them.
func TestGateway_UnauthenticatedFloodBoundsAuditBytes(t *testing.T) {
	const requests, workers = 10_000, 16
	agg := audit.DefaultAggregationConfig()
	// One interval (the audit's clock stands still): at most MaxFull full
	// records, MaxGroups counts and one count per kind for the other
	// addresses, each under 512 bytes framed, plus the wrong signatures the
	// limiter lets through in full (its burst of 10 and the requests in
	// flight), and the final checkpoint (4 KiB).
	bound := int64(agg.MaxFull+agg.MaxGroups+3+10+workers)*512 + 4<<10
	cases := []struct {
		name string
		// request builds the i-th request; peer is its source address.
		request func(t *testing.T, g *floodGateway, i int) (*http.Request, string)
		status  int
		// check the review of the flood.
		check func(t *testing.T, s audit.Summary)
	}{
		{"anonymous from one address", func(t *testing.T, g *floodGateway, i int) (*http.Request, string) {
			r, _ := http.NewRequest(http.MethodGet, g.url+"/flood/key", nil)
			return r, "198.51.100.1"
		}, http.StatusForbidden, func(t *testing.T, s audit.Summary) {
			if n := countOf(s.FailuresByAddr, "198.51.100.1"); n != requests {
				t.Errorf("review counts %d anonymous failures from the address, want %d", n, requests)
			}
		}},
		{"anonymous from 10,000 addresses", func(t *testing.T, g *floodGateway, i int) (*http.Request, string) {
			r, _ := http.NewRequest(http.MethodGet, g.url+"/flood/key", nil)
			return r, manyAddr(i)
		}, http.StatusForbidden, func(t *testing.T, s audit.Summary) {
			if s.ByKind[audit.AuthFailure] != requests {
				t.Errorf("review counts %d failures, want %d", s.ByKind[audit.AuthFailure], requests)
			}
		}},
		{"malformed Authorization from 10,000 addresses", func(t *testing.T, g *floodGateway, i int) (*http.Request, string) {
			r, _ := http.NewRequest(http.MethodGet, g.url+"/flood/key", nil)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=nothing")
			return r, manyAddr(i)
		}, http.StatusBadRequest, func(t *testing.T, s audit.Summary) {
			if s.ByKind[audit.AuthFailure] != requests {
				t.Errorf("review counts %d failures, want %d", s.ByKind[audit.AuthFailure], requests)
			}
		}},
		{"unknown access key from 10,000 addresses", func(t *testing.T, g *floodGateway, i int) (*http.Request, string) {
			r, _ := http.NewRequest(http.MethodGet, g.presign(t, "TRSRNOSUCHKEY0000000", "x"), nil)
			return r, manyAddr(i)
		}, http.StatusForbidden, func(t *testing.T, s audit.Summary) {
			if s.ByKind[audit.AuthFailure] != requests {
				t.Errorf("review counts %d failures, want %d", s.ByKind[audit.AuthFailure], requests)
			}
		}},
		{"wrong signatures then the lockout, one address", func(t *testing.T, g *floodGateway, i int) (*http.Request, string) {
			r, _ := http.NewRequest(http.MethodGet, g.presign(t, g.creds.AccessKeyID, "not-the-secret"), nil)
			return r, "198.51.100.2"
		}, 0, func(t *testing.T, s audit.Summary) {
			limited := countOf(s.RateLimited, "198.51.100.2")
			failed := countOf(s.FailuresByAddr, "198.51.100.2")
			// The limiter lets the pair's burst through, and as many more
			// as requests were in flight when the burst ran out.
			burst := auth.DefaultLimiterConfig().PairBurst
			if failed < burst || failed > burst+workers || failed+limited != requests {
				t.Errorf("review counts %d failures and %d rate limited, want %d (+ up to %d in flight) and the rest of %d",
					failed, limited, burst, workers, requests)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newFloodGateway(t)
			before := dirBytes(t, g.dir)
			var refused atomic.Int64
			var wg sync.WaitGroup
			next := atomic.Int64{}
			for range workers {
				wg.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= requests {
							return
						}
						r, peer := tc.request(t, g, i)
						r.Header.Set("X-Test-Peer", peer)
						resp, err := g.http.Do(r)
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						ok := resp.StatusCode == tc.status
						if tc.status == 0 { // SignatureDoesNotMatch (403), then SlowDown (503)
							ok = resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusServiceUnavailable
						}
						if !ok {
							t.Errorf("request %d: status %d, want %d", i, resp.StatusCode, tc.status)
							return
						}
						refused.Add(1)
					}
				})
			}
			wg.Wait()
			if err := g.log.Close(); err != nil {
				t.Fatal(err)
			}
			written := dirBytes(t, g.dir) - before
			t.Logf("%d refused requests added %d bytes to the login audit (%.1f per request); bound %d",
				refused.Load(), written, float64(written)/requests, bound)
			if written > bound {
				t.Errorf("%d requests added %d bytes to the audit, more than the bound %d", requests, written, bound)
			}
			rep, err := audit.Verify(context.Background(), g.dir, g.log.PublicKeys(), audit.VerifyOptions{})
			if err != nil || !rep.OK() {
				t.Fatalf("verify: %v %+v", err, rep.Problems)
			}
			sys, err := audit.ReadSystemKey(g.dir)
			if err != nil {
				t.Fatal(err)
			}
			s, err := audit.Review(context.Background(), g.dir, audit.ReviewConfig{Since: g.start, SystemKey: sys, Keys: g.store})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func manyAddr(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

func countOf(cs []audit.Count, value string) int {
	for _, c := range cs {
		if c.Value == value {
			return c.Count
		}
	}
	return 0
}

// floodGateway is a gateway whose requests come from the address in
// X-Test-Peer, with a real login audit in dir whose clock stands still
// (one aggregation interval).
type floodGateway struct {
	url   string
	http  *http.Client
	dir   string
	log   *audit.Log
	store *keystore.Store
	creds keystore.Credentials
	start time.Time

	mu   sync.Mutex
	urls map[string]string
}

func newFloodGateway(t *testing.T) *floodGateway {
	t.Helper()
	ctx := context.Background()
	store := keystore.OpenTest(t)
	creds, err := store.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "audit")
	start := time.Now()
	acfg := audit.DefaultConfig(dir, "n1")
	acfg.Logger = slog.New(slog.DiscardHandler)
	acfg.TenantKeys = store
	acfg.Clock = func() time.Time { return start }
	alog, err := audit.Open(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	be, _ := newTestBackend(t, "fs")
	v, err := auth.NewVerifier(Secrets(store), auth.DefaultConfig("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Auditor = alog
	srv, err := New(cfg, be, store, v)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(fromAddr(srv))
	t.Cleanup(ts.Close)
	g := &floodGateway{url: ts.URL, dir: dir, log: alog, store: store, creds: creds, start: start,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
		urls: map[string]string{}}
	owner := s3.New(s3.Options{BaseEndpoint: aws.String(ts.URL), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")})
	mustCreateBucket(t, owner, "flood")
	return g
}

// presign returns a presigned GET of flood/key signed with id and secret,
// made once and replayed (it stays valid for the test).
func (g *floodGateway) presign(t *testing.T, id, secret string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u, ok := g.urls[id+secret]; ok {
		return u
	}
	c := s3.New(s3.Options{BaseEndpoint: aws.String(g.url), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")})
	req, err := s3.NewPresignClient(c).PresignGetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("flood"), Key: aws.String("key")})
	if err != nil {
		t.Error(err)
		return g.url
	}
	g.urls[id+secret] = req.URL
	return req.URL
}
