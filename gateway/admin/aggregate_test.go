package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestUnauthenticatedRefusalsAreAggregated checks that the admin listener
// marks the records of refusals that cost their sender nothing as the S3
// listener does, so that the log aggregates them (audit.Record.Aggregate),
// and keeps every other record in full: a wrong signature for an existing
// key, an authenticated caller refused, a success.
func TestUnauthenticatedRefusalsAreAggregated(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	resp, err := http.Get(f.srv.URL + "/admin/v1/tenants")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/admin/v1/tenants", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=nothing")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	unknown := *f.operator
	unknown.AccessKeyID = "TRSRAAAAAAAAAAAAAAAA"
	unknown.Do(ctx, "GET", "tenants", nil, nil)
	if err := f.operator.Do(ctx, "GET", "whoami", nil, nil); err != nil {
		t.Fatal(err)
	}
	bad := *f.operator
	bad.SecretAccessKey = strings.Repeat("y", 40)
	for range 11 { // the pair's burst of 10, then the limiter
		bad.Do(ctx, "GET", "whoami", nil, nil)
	}

	var got []string
	f.audit.mu.Lock()
	for _, r := range f.audit.recs {
		got = append(got, fmt.Sprintf("%s/%s/%v", r.Kind, r.Reason, r.Aggregate))
	}
	f.audit.mu.Unlock()
	want := []string{
		"auth_failure/AccessDenied/true",
		"auth_failure/AuthorizationHeaderMalformed/true",
		"auth_failure/InvalidAccessKeyId/true",
		"auth_success//false",
	}
	for range 10 {
		want = append(want, "auth_failure/SignatureDoesNotMatch/false")
	}
	want = append(want, "rate_limited/rate limited/true")
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("records\n %v\nwant\n %v", got, want)
	}
}
