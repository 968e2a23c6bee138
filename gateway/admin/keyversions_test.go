package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/gateway"
	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/keystore"
)

// openStore is keystore.OpenTest with the proposer clock now, so that a
// destruction's grace period passes without waiting; the admin API's own
// clock (SigV4, expiries) stays the real one.
func openStore(t *testing.T, now func() time.Time) *keystore.Store {
	return keystore.OpenTest(t, func(c *keystore.Config) {
		c.Now = now
		c.SyncWrites = false // durability buys nothing here
	})
}

// prepareKeyVersion rotates tenant's key and brings the version that was
// active to the state from which action (the last element of a key-version
// path) is allowed, with a scheduled destruction already due for
// "destroy", so that only the caller decides the answer. It returns that
// version.
func (f *fixture) prepareKeyVersion(t *testing.T, tenant keystore.ID, action string) keystore.ID {
	t.Helper()
	ctx := context.Background()
	tn, err := f.store.Tenant(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	v := tn.ActiveKey
	if _, err := f.store.RotateKey(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	steps := map[string][]func() error{
		"disable": nil,
		"enable":  {func() error { return f.store.DisableKey(ctx, tenant, v) }},
		"schedule-destroy": {
			func() error { return f.store.DisableKey(ctx, tenant, v) },
		},
		"cancel-destroy": {
			func() error { return f.store.DisableKey(ctx, tenant, v) },
			func() error { return f.store.ScheduleKeyDestroy(ctx, tenant, v, keystore.MinDestroyGrace) },
		},
		"destroy": {
			func() error { return f.store.DisableKey(ctx, tenant, v) },
			func() error { return f.store.ScheduleKeyDestroy(ctx, tenant, v, keystore.MinDestroyGrace) },
			func() error { f.clock.Advance(keystore.MinDestroyGrace); return nil },
		},
	}
	prep, ok := steps[action]
	if !ok {
		t.Fatalf("prepareKeyVersion: unknown action %q", action)
	}
	for _, step := range prep {
		if err := step(); err != nil {
			t.Fatalf("prepare %s: %v", action, err)
		}
	}
	return v
}

// keyVersion returns version id of tenant as the keystore lists it.
func (f *fixture) keyVersion(t *testing.T, tenant, id keystore.ID) keystore.KeyVersion {
	t.Helper()
	kvs, err := f.store.KeyVersions(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		if kv.ID == id {
			return kv
		}
	}
	t.Fatalf("key version %s of tenant %s not listed", id, tenant)
	return keystore.KeyVersion{}
}

// errorCodes is the code each status of these tests carries.
var errorCodes = map[int]string{400: "InvalidArgument", 403: "AccessDenied", 404: "NotFound", 409: "InvalidState"}

// TestKeyVersions_Lifecycle walks a key version through its whole
// lifecycle as the tenant's admin, with every forbidden transition on the
// way, and checks after each call the answer, the listed state, whether
// the keystore still hands out the secret, and the audit.
func TestKeyVersions_Lifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tn, err := f.store.CreateTenant(ctx, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.store.CreateTenant(ctx, "globex", nil)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := f.member(t, tn.ID, "boss", keystore.RoleAdmin)
	first := tn.ActiveKey
	var rotated keystore.KeyVersion
	if err := admin.Do(ctx, "POST", "tenants/acme/key-versions/rotate", nil, &rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Key(ctx, tn.ID, first); err != nil { // warm the key cache
		t.Fatal(err)
	}

	const day = 24 * time.Hour
	steps := []struct {
		name    string
		version string // the {version} path value
		action  string
		body    any
		advance time.Duration // the keystore clock moves before the call
		want    int           // HTTP status
		// state is first's state afterwards, keyErr what Key(first) then
		// returns, grace the schedule a 200 answer must show.
		state  keystore.KeyState
		keyErr error
		grace  time.Duration
	}{
		{"disable the active version", rotated.ID.String(), "disable", nil, 0, 409, keystore.KeyDecryptOnly, nil, 0},
		{"enable a decrypt-only version", first.String(), "enable", nil, 0, 409, keystore.KeyDecryptOnly, nil, 0},
		{"schedule before disabling", first.String(), "schedule-destroy", nil, 0, 409, keystore.KeyDecryptOnly, nil, 0},
		{"disable", first.String(), "disable", nil, 0, 200, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"disable twice", first.String(), "disable", nil, 0, 409, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"enable", first.String(), "enable", nil, 0, 200, keystore.KeyDecryptOnly, nil, 0},
		{"disable again", first.String(), "disable", nil, 0, 200, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"destroy unscheduled", first.String(), "destroy", nil, 0, 409, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"cancel unscheduled", first.String(), "cancel-destroy", nil, 0, 409, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"schedule below the minimum grace", first.String(), "schedule-destroy", ScheduleDestroyRequest{Grace: "23h59m"}, 0, 400, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"schedule with a negative grace", first.String(), "schedule-destroy", ScheduleDestroyRequest{Grace: "-48h"}, 0, 400, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"schedule with a malformed grace", first.String(), "schedule-destroy", ScheduleDestroyRequest{Grace: "tomorrow"}, 0, 400, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"schedule with an unknown field", first.String(), "schedule-destroy", map[string]string{"when": "now"}, 0, 400, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"schedule, default grace", first.String(), "schedule-destroy", nil, 0, 200, keystore.KeyScheduled, keystore.ErrDisabled, keystore.MinDestroyGrace},
		{"enable while scheduled", first.String(), "enable", nil, 0, 409, keystore.KeyScheduled, keystore.ErrDisabled, 0},
		{"destroy before the grace", first.String(), "destroy", nil, day - time.Minute, 409, keystore.KeyScheduled, keystore.ErrDisabled, 0},
		{"cancel", first.String(), "cancel-destroy", nil, 0, 200, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"destroy once the cancelled grace is over", first.String(), "destroy", nil, time.Hour, 409, keystore.KeyDisabled, keystore.ErrDisabled, 0},
		{"schedule again, two days", first.String(), "schedule-destroy", ScheduleDestroyRequest{Grace: "48h"}, 0, 200, keystore.KeyScheduled, keystore.ErrDisabled, 2 * day},
		{"destroy a day early", first.String(), "destroy", nil, day, 409, keystore.KeyScheduled, keystore.ErrDisabled, 0},
		{"destroy after the grace", first.String(), "destroy", nil, day, 200, keystore.KeyDestroyed, keystore.ErrDestroyed, 0},
		{"destroy twice", first.String(), "destroy", nil, 0, 409, keystore.KeyDestroyed, keystore.ErrDestroyed, 0},
		{"enable destroyed", first.String(), "enable", nil, 0, 409, keystore.KeyDestroyed, keystore.ErrDestroyed, 0},
		{"cancel destroyed", first.String(), "cancel-destroy", nil, 0, 409, keystore.KeyDestroyed, keystore.ErrDestroyed, 0},
		{"disable destroyed", first.String(), "disable", nil, 0, 409, keystore.KeyDestroyed, keystore.ErrDestroyed, 0},
		{"unknown version", strings.Repeat("0", 31) + "1", "disable", nil, 0, 404, keystore.KeyDestroyed, keystore.ErrDestroyed, 0},
		{"another tenant's version", other.ActiveKey.String(), "disable", nil, 0, 404, keystore.KeyDestroyed, keystore.ErrDestroyed, 0},
		{"malformed version", "not-hex", "disable", nil, 0, 400, keystore.KeyDestroyed, keystore.ErrDestroyed, 0},
	}
	wantActions := []string{"rotate-key"}
	for _, st := range steps {
		f.clock.Advance(st.advance)
		var kv keystore.KeyVersion
		err := admin.Do(ctx, "POST", "tenants/acme/key-versions/"+st.version+"/"+st.action, st.body, &kv)
		wantActions = append(wantActions, map[string]string{
			"disable": "disable-key-version", "enable": "enable-key-version",
			"schedule-destroy": "schedule-key-version-destroy", "cancel-destroy": "cancel-key-version-destroy",
			"destroy": "destroy-key-version",
		}[st.action])
		if st.want == 200 {
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if kv.ID.String() != st.version || kv.State != st.state || kv.Tenant != tn.ID {
				t.Fatalf("%s: answered %+v, want version %s %s", st.name, kv, st.version, st.state)
			}
			if !kv.Changed.Equal(f.clock.Now()) {
				t.Fatalf("%s: changed %v, want the keystore clock %v", st.name, kv.Changed, f.clock.Now())
			}
			if got := kv.DestroyAfter.Sub(kv.Changed); kv.State == keystore.KeyScheduled && got != st.grace {
				t.Fatalf("%s: destroy after %v (%v after the change), want %v later", st.name, kv.DestroyAfter, got, st.grace)
			}
			if (kv.State == keystore.KeyDisabled || kv.State == keystore.KeyDecryptOnly) && !kv.DestroyAfter.IsZero() {
				t.Fatalf("%s: a %s version keeps destroy after %v", st.name, kv.State, kv.DestroyAfter)
			}
		} else {
			var e *Error
			if !errors.As(err, &e) || e.Status != st.want || e.Code != errorCodes[st.want] || e.Message == "" {
				t.Fatalf("%s: got %v, want %d %s", st.name, err, st.want, errorCodes[st.want])
			}
		}
		if got := f.keyVersion(t, tn.ID, first); got.State != st.state {
			t.Fatalf("%s: first version is %s, want %s", st.name, got.State, st.state)
		}
		if got := f.keyVersion(t, tn.ID, rotated.ID); got.State != keystore.KeyActive {
			t.Fatalf("%s: rotated version is %s, want active", st.name, got.State)
		}
		if _, err := f.store.Key(ctx, tn.ID, first); !errors.Is(err, st.keyErr) {
			t.Fatalf("%s: Key(first) = %v, want %v", st.name, err, st.keyErr)
		}
	}
	// The listing a tenant admin reads shows the whole story.
	var kvs []keystore.KeyVersion
	if err := admin.Do(ctx, "GET", "tenants/acme/key-versions", nil, &kvs); err != nil || len(kvs) != 2 {
		t.Fatalf("key versions: %+v, %v", kvs, err)
	}
	// Every call, refused ones included, was audited as the admin action
	// it attempted, before the keystore ruled on it.
	if got := f.audit.actions(); strings.Join(got, " ") != strings.Join(wantActions, " ") {
		t.Fatalf("audited actions\n%v\nwant\n%v", got, wantActions)
	}
}

// TestKeyVersions_RefusedCallersChangeNothing has the operator, the
// tenant's writer and reader, and another tenant's admin try every key
// version change from the state where it would succeed (a destruction
// already due), and checks that each is refused and nothing changed.
func TestKeyVersions_RefusedCallersChangeNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other, err := f.store.CreateTenant(ctx, "globex", nil)
	if err != nil {
		t.Fatal(err)
	}
	otherAdmin, _ := f.member(t, other.ID, "boss", keystore.RoleAdmin)
	callers := []struct {
		name string
		want int
	}{
		{"operator", 403},
		{"writer", 403},
		{"reader", 403},
		{"other tenant's admin", 404},
	}
	n := 0
	for _, action := range []string{"disable", "enable", "schedule-destroy", "cancel-destroy", "destroy"} {
		for _, who := range callers {
			n++
			t.Run(action+" as "+who.name, func(t *testing.T) {
				tn, err := f.store.CreateTenant(ctx, fmt.Sprintf("t%d", n), nil)
				if err != nil {
					t.Fatal(err)
				}
				writer, _ := f.member(t, tn.ID, "wr", keystore.RoleWriter)
				reader, _ := f.member(t, tn.ID, "rd", keystore.RoleReader)
				c := map[string]*Client{"operator": f.operator, "writer": writer, "reader": reader, "other tenant's admin": otherAdmin}[who.name]
				v := f.prepareKeyVersion(t, tn.ID, action)
				before := f.keyVersion(t, tn.ID, v)
				_, keyBefore := f.store.Key(ctx, tn.ID, v)

				err = c.Do(ctx, "POST", "tenants/"+tn.Name+"/key-versions/"+v.String()+"/"+action, nil, nil)
				var e *Error
				if !errors.As(err, &e) || e.Status != who.want || e.Code != errorCodes[who.want] {
					t.Fatalf("got %v, want %d %s", err, who.want, errorCodes[who.want])
				}
				if after := f.keyVersion(t, tn.ID, v); after != before {
					t.Fatalf("refused call changed the version: %+v, was %+v", after, before)
				}
				if _, keyAfter := f.store.Key(ctx, tn.ID, v); fmt.Sprint(keyAfter) != fmt.Sprint(keyBefore) {
					t.Fatalf("Key() = %v after the refused call, %v before", keyAfter, keyBefore)
				}
			})
		}
	}
}

// TestKeyVersions_DestroyedUnreadableThroughS3 writes objects through the
// S3 gateway under two key versions, then disables, re-enables and
// crypto-shreds the older one through the admin API: what it encrypted
// stops being served while it is disabled and for good once destroyed,
// and what the active version encrypted stays readable throughout.
func TestKeyVersions_DestroyedUnreadableThroughS3(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	be, err := backend.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(gateway.Secrets(f.store), auth.DefaultConfig("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.DefaultConfig(), be, f.store, v)
	if err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gw)
	t.Cleanup(s3srv.Close)

	var nk NewAccessKey
	if err := f.operator.Do(ctx, "POST", "tenants", CreateTenantRequest{Name: "acme"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.operator.Do(ctx, "POST", "tenants/acme/users", CreateUserRequest{Name: "alice", OperatorIsTenant: true}, &nk); err != nil {
		t.Fatal(err)
	}
	alice := &Client{Endpoint: f.srv.URL, AccessKeyID: nk.AccessKeyID, SecretAccessKey: nk.SecretAccessKey}
	s3c := s3.New(s3.Options{
		BaseEndpoint: aws.String(s3srv.URL), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(nk.AccessKeyID, nk.SecretAccessKey, ""),
		// The gateway answers a disabled or destroyed key version with a
		// 5xx the SDK would retry; one answer is enough here.
		RetryMaxAttempts: 1,
	})
	put := func(key, body string) {
		t.Helper()
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("acme-data"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	// get reports whether key is served; if it is, it must read back as
	// body, and if it is not, no byte of it may have been sent.
	get := func(key, body string) bool {
		t.Helper()
		out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("acme-data"), Key: aws.String(key)})
		if err != nil {
			// A key version that no longer decrypts is a refusal, not
			// an integrity failure a client would retry.
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
				t.Fatalf("get %s: %v, want AccessDenied", key, err)
			}
			return false
		}
		b, err := io.ReadAll(out.Body)
		out.Body.Close()
		switch {
		case err != nil && len(b) > 0:
			t.Fatalf("get %s: %d bytes served before the error %v", key, len(b), err)
		case err == nil && string(b) != body:
			t.Fatalf("get %s: read %q, want %q", key, b, body)
		}
		return err == nil
	}
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("acme-data")}); err != nil {
		t.Fatal(err)
	}
	var before []keystore.KeyVersion
	if err := alice.Do(ctx, "GET", "tenants/acme/key-versions", nil, &before); err != nil || len(before) != 1 {
		t.Fatalf("key versions: %+v, %v", before, err)
	}
	old := before[0].ID.String()
	put("old", "written under the first key version")
	if err := alice.Do(ctx, "POST", "tenants/acme/key-versions/rotate", nil, nil); err != nil {
		t.Fatal(err)
	}
	put("new", "written under the second key version")

	steps := []struct {
		action  string
		advance time.Duration
		oldRead bool // whether "old" is served afterwards
	}{
		{"", 0, true},
		{"disable", 0, false},
		{"enable", 0, true},
		{"disable", 0, false},
		{"schedule-destroy", 0, false},
		{"cancel-destroy", 0, false},
		{"enable", 0, true},
		{"disable", 0, false},
		{"schedule-destroy", 0, false},
		{"destroy", keystore.MinDestroyGrace, false},
	}
	for _, st := range steps {
		f.clock.Advance(st.advance)
		if st.action != "" {
			if err := alice.Do(ctx, "POST", "tenants/acme/key-versions/"+old+"/"+st.action, nil, nil); err != nil {
				t.Fatalf("%s: %v", st.action, err)
			}
		}
		if got := get("old", "written under the first key version"); got != st.oldRead {
			t.Fatalf("after %q: old object served = %v, want %v", st.action, got, st.oldRead)
		}
		if !get("new", "written under the second key version") {
			t.Fatalf("after %q: the object under the active version is not served", st.action)
		}
	}
	tn, err := f.store.TenantByName(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := keystore.ParseID(old)
	if _, err := f.store.Key(ctx, tn.ID, id); !errors.Is(err, keystore.ErrDestroyed) {
		t.Fatalf("Key(destroyed version) = %v, want ErrDestroyed", err)
	}
}
