package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/keystore"
)

// forwardedFor adds X-Forwarded-For after signing, as a proxy would.
type forwardedFor struct {
	next http.RoundTripper
	addr string
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if f.addr != "" {
		r.Header.Set("X-Forwarded-For", f.addr)
	}
	return f.next.RoundTrip(r)
}

// TestAllowlists_S3 checks the S3 listener's and the tenants' IP
// allowlists, IPv4 and IPv6, behind a trusted proxy, and that the same
// header from an untrusted peer changes nothing.
func TestAllowlists_S3(t *testing.T) {
	ctx := context.Background()
	store := keystore.OpenTest(t)
	lists := auth.NewAllowlists(func(ctx context.Context, scope string) (auth.CIDRs, error) {
		al, err := store.Allowlist(ctx, scope)
		return auth.CIDRs(al.Prefixes), err
	}, 0)
	be, err := backend.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(Secrets(store), auth.DefaultConfig("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	serve := func(trusted auth.CIDRs) string {
		cfg := DefaultConfig()
		cfg.Allowlists, cfg.TrustedProxies = lists, trusted
		srv, err := New(cfg, be, store, v)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		t.Cleanup(ts.Close)
		return ts.URL
	}
	behindProxy := serve(auth.CIDRs{netip.MustParsePrefix("127.0.0.0/8")})
	direct := serve(nil)

	user := func(tenant string) aws.Credentials {
		tn, err := store.CreateTenant(ctx, tenant, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err := store.CreateUser(ctx, tn.ID, "admin", keystore.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		ak, err := store.CreateAccessKey(ctx, u.ID, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return aws.Credentials{AccessKeyID: ak.ID, SecretAccessKey: ak.Secret}
	}
	acme, globex := user("acme"), user("globex")
	acmeID, _ := store.TenantByName(ctx, "acme")
	p := func(ss ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, s := range ss {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		return ps
	}
	if _, err := store.SetAllowlist(ctx, keystore.AllowlistS3, p("10.0.0.0/8", "2001:db8::/32")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetAllowlist(ctx, keystore.AllowlistTenant(acmeID.ID), p("10.1.0.0/16")); err != nil {
		t.Fatal(err)
	}
	lists.Forget()

	tests := []struct {
		name     string
		endpoint string
		creds    aws.Credentials
		xff      string
		denied   bool
	}{
		{"tenant list admits", behindProxy, acme, "10.1.2.3", false},
		{"tenant list refuses what the global list admits", behindProxy, acme, "10.2.0.1", true},
		{"IPv6 outside the tenant's IPv4 list", behindProxy, acme, "2001:db8::1", true},
		{"IPv6 inside the global list, tenant without list", behindProxy, globex, "2001:db8::1", false},
		{"IPv6 outside the global list", behindProxy, globex, "2001:db9::1", true},
		{"IPv4 outside the global list", behindProxy, globex, "192.0.2.1", true},
		{"proxy itself outside the lists", behindProxy, globex, "", true},
		{"spoofed header from an untrusted peer changes nothing", direct, acme, "10.1.2.3", true},
		{"spoofed header, other tenant", direct, globex, "10.1.2.3", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s3.New(s3.Options{
				BaseEndpoint: aws.String(tt.endpoint), Region: "us-east-1", UsePathStyle: true,
				Credentials: credentials.StaticCredentialsProvider{Value: tt.creds},
				HTTPClient:  &http.Client{Transport: forwardedFor{next: http.DefaultTransport, addr: tt.xff}},
			})
			_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			var re interface{ HTTPStatusCode() int }
			var ae smithy.APIError
			switch {
			case !tt.denied && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.denied && (!errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || !errors.As(err, &re) || re.HTTPStatusCode() != 403):
				t.Fatalf("got %v, want 403 AccessDenied", err)
			}
		})
	}
}
