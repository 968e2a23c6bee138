package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tresor-gw/tresor/gateway/admin"
	"github.com/tresor-gw/tresor/keystore"
)

// TestAdmin_KeyVersions drives a tenant key version through its lifecycle
// with `tresor admin` (run in-process against a real admin API, so the
// keystore's clock can pass the 24 h grace): rotate, disable, enable,
// disable, schedule, cancel, schedule, destroy, with the refusals on the
// way, the listing, --json and --grace, and the usage errors.
func TestAdmin_KeyVersions(t *testing.T) {
	ctx := context.Background()
	clk := keystore.NewTestClock(time.Now().UTC().Truncate(time.Second))
	store := keystore.OpenTest(t, func(c *keystore.Config) { c.Now, c.SyncWrites = clk.Now, false })
	h, err := admin.New(store, admin.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	op, err := store.BootstrapOperator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := store.CreateTenant(ctx, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.CreateUser(ctx, tn.ID, "alice", keystore.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := store.CreateAccessKey(ctx, u.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	credsFile := func(name, id, secret string) string {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte("[default]\naws_access_key_id = "+id+"\naws_secret_access_key = "+secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	alice := credsFile("alice", ak.ID, ak.Secret)
	operator := credsFile("operator", op.AccessKeyID, op.SecretAccessKey)
	run := func(creds string, args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := runAdmin(ctx, append([]string{"--endpoint", srv.URL, "--credentials", creds}, args...), &stdout, &stderr)
		return stdout.String(), err
	}

	first := tn.ActiveKey.String()
	out, err := run(alice, "tenant", "rotate-key", "acme", "--json")
	var rotated keystore.KeyVersion
	if err != nil || json.Unmarshal([]byte(out), &rotated) != nil || rotated.State != keystore.KeyActive {
		t.Fatalf("rotate-key --json: %v\n%s", err, out)
	}
	active := rotated.ID.String()

	const day = 24 * time.Hour
	start := clk.Now()
	steps := []struct {
		name    string
		creds   string
		args    []string
		advance time.Duration // the keystore clock moves before the command
		// wantErr is in the error of a failing command ("" for success),
		// usage whether that error is a usage error (exit status 2).
		wantErr string
		usage   bool
		// wantOut is in the output of a successful one.
		wantOut []string
	}{
		{"disable the active version", alice, []string{"tenant", "key-version", "disable", "acme", active}, 0, "InvalidState (HTTP 409)", false, nil},
		{"operator may not disable", operator, []string{"tenant", "key-version", "disable", "acme", first}, 0, "AccessDenied (HTTP 403)", false, nil},
		{"disable", alice, []string{"tenant", "key-version", "disable", "acme", first}, 0, "", false, []string{first, "disabled"}},
		{"enable, JSON", alice, []string{"tenant", "key-version", "enable", "acme", first, "--json"}, 0, "", false, []string{`"state": "decrypt-only"`}},
		{"disable again", alice, []string{"--json", "tenant", "key-version", "disable", "acme", first}, 0, "", false, []string{`"state": "disabled"`}},
		{"schedule below the minimum grace", alice, []string{"tenant", "key-version", "schedule-destroy", "--grace", "1h", "acme", first}, 0, "InvalidArgument (HTTP 400)", false, nil},
		{"schedule, two days", alice, []string{"tenant", "key-version", "schedule-destroy", "--grace", "48h", "acme", first}, 0, "", false,
			[]string{"scheduled-for-destroy", start.Add(2 * day).Format(time.RFC3339)}},
		{"destroy before the grace", alice, []string{"tenant", "key-version", "destroy", "acme", first}, day, "InvalidState (HTTP 409)", false, nil},
		{"cancel", alice, []string{"tenant", "key-version", "cancel-destroy", "acme", first}, 0, "", false, []string{"disabled"}},
		// The clock is a day on: the default 24 h ends two days after start.
		{"schedule, default grace", alice, []string{"tenant", "key-version", "schedule-destroy", "acme", first}, 0, "", false,
			[]string{"scheduled-for-destroy", start.Add(2 * day).Format(time.RFC3339)}},
		{"operator may not destroy", operator, []string{"tenant", "key-version", "destroy", "acme", first}, day, "AccessDenied (HTTP 403)", false, nil},
		{"destroy", alice, []string{"tenant", "key-version", "destroy", "acme", first}, 0, "", false, []string{first, "destroyed"}},
		{"list", alice, []string{"tenant", "key-versions", "acme"}, 0, "", false,
			[]string{"DESTROY AFTER", first + "  destroyed", active + "  active"}},
		{"operator lists", operator, []string{"tenant", "key-versions", "acme"}, 0, "", false, []string{"destroyed", "active"}},
		{"enable destroyed", alice, []string{"tenant", "key-version", "enable", "acme", first}, 0, "InvalidState (HTTP 409)", false, nil},
		{"malformed version", alice, []string{"tenant", "key-version", "disable", "acme", "v1"}, 0, "InvalidArgument (HTTP 400)", false, nil},
		{"no verb", alice, []string{"tenant", "key-version"}, 0, "want disable, enable", true, nil},
		{"unknown verb", alice, []string{"tenant", "key-version", "shred", "acme", first}, 0, "want disable, enable", true, nil},
		{"no version", alice, []string{"tenant", "key-version", "disable", "acme"}, 0, "want NAME VERSION", true, nil},
		{"grace without schedule", alice, []string{"tenant", "key-version", "disable", "--grace", "48h", "acme", first}, 0, "--grace goes with schedule-destroy", true, nil},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		out, err := run(st.creds, st.args...)
		if st.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), st.wantErr) {
				t.Fatalf("%s: got %v, want an error with %q\n%s", st.name, err, st.wantErr, out)
			}
			if got := exitCode(err) == 2; got != st.usage {
				t.Fatalf("%s: %v is a usage error: %v, want %v", st.name, err, got, st.usage)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", st.name, err, out)
		}
		for _, want := range st.wantOut {
			if !strings.Contains(out, want) {
				t.Fatalf("%s: output lacks %q:\n%s", st.name, want, out)
			}
		}
	}

	out, err = run(alice, "--json", "tenant", "key-versions", "acme")
	var kvs []keystore.KeyVersion
	if err != nil || json.Unmarshal([]byte(out), &kvs) != nil || len(kvs) != 2 {
		t.Fatalf("key-versions --json: %v\n%s", err, out)
	}
	for _, kv := range kvs {
		want := keystore.KeyActive
		if kv.ID == tn.ActiveKey {
			want = keystore.KeyDestroyed
		}
		if kv.State != want {
			t.Fatalf("key-versions --json: %s is %s, want %s", kv.ID, kv.State, want)
		}
	}
	if _, err := store.Key(ctx, tn.ID, tn.ActiveKey); !errors.Is(err, keystore.ErrDestroyed) {
		t.Fatalf("Key(destroyed version) = %v", err)
	}
}
