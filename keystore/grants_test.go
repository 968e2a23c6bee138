package keystore

import (
	"context"
	"fmt"
	"testing"
)

func TestBucketRole(t *testing.T) {
	grants := map[string]Role{"ro": RoleReader, "rw": RoleWriter}
	tests := []struct {
		role     Role
		confined bool
		bucket   string
		want     Role
	}{
		{RoleWriter, false, "any", RoleWriter},
		{RoleReader, false, "any", RoleReader},
		{RoleAdmin, false, "any", RoleAdmin},
		{RoleWriter, true, "rw", RoleWriter},
		{RoleWriter, true, "ro", RoleReader},
		{RoleReader, true, "rw", RoleReader}, // a grant never raises the role
		{RoleReader, true, "ro", RoleReader},
		{RoleWriter, true, "other", ""},
		{RoleWriter, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v/%s", tt.role, tt.confined, tt.bucket), func(t *testing.T) {
			if got := BucketRole(tt.role, tt.confined, grants, tt.bucket); got != tt.want {
				t.Fatalf("BucketRole = %q, want %q", got, tt.want)
			}
		})
	}
	if got := BucketRole(RoleWriter, true, nil, "rw"); got != "" {
		t.Fatalf("confined without grants: %q, want none", got)
	}
}

func TestGrants(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	w, err := s.CreateUser(ctx, tn.ID, "wes", RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := s.CreateUser(ctx, tn.ID, "ada", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	ak, err := s.CreateAccessKey(ctx, w.ID, noExpiry)
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name string
		do   func() (User, error)
		want error
		// then: the user's role on each bucket afterwards
		then map[string]Role
	}{
		{"unconfined", func() (User, error) { return s.User(ctx, w.ID) }, nil,
			map[string]Role{"photos": RoleWriter, "logs": RoleWriter}},
		{"grant reader", func() (User, error) { return s.GrantBucket(ctx, w.ID, "logs", RoleReader) }, nil,
			map[string]Role{"photos": "", "logs": RoleReader}},
		{"grant writer", func() (User, error) { return s.GrantBucket(ctx, w.ID, "photos", RoleWriter) }, nil,
			map[string]Role{"photos": RoleWriter, "logs": RoleReader}},
		{"admin role refused", func() (User, error) { return User{}, s.SetUserRole(ctx, w.ID, RoleAdmin) }, ErrState, nil},
		{"admin grant refused", func() (User, error) { return s.GrantBucket(ctx, adm.ID, "logs", RoleReader) }, ErrState, nil},
		{"admin as grant role", func() (User, error) { return s.GrantBucket(ctx, w.ID, "logs", RoleAdmin) }, ErrInvalid, nil},
		{"bad bucket name", func() (User, error) { return s.GrantBucket(ctx, w.ID, "No_Such", RoleReader) }, ErrInvalid, nil},
		{"revoke unknown", func() (User, error) { return s.RevokeBucket(ctx, w.ID, "other") }, ErrNotFound, nil},
		{"revoke", func() (User, error) { return s.RevokeBucket(ctx, w.ID, "photos") }, nil,
			map[string]Role{"photos": "", "logs": RoleReader}},
		// Revoking the last grant must not lift the confinement.
		{"revoke last", func() (User, error) { return s.RevokeBucket(ctx, w.ID, "logs") }, nil,
			map[string]Role{"photos": "", "logs": ""}},
		{"clear", func() (User, error) { return s.ClearGrants(ctx, w.ID) }, nil,
			map[string]Role{"photos": RoleWriter, "logs": RoleWriter}},
	}
	for _, st := range steps {
		u, err := st.do()
		wantErr(t, st.name, err, st.want)
		if st.then == nil {
			continue
		}
		stored, err := s.User(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		// The access key lookup, which the gateway authorises with,
		// carries the same confinement.
		key, err := s.AccessKey(ctx, ak.ID)
		if err != nil {
			t.Fatal(err)
		}
		for b, want := range st.then {
			if got := stored.BucketRole(b); got != want {
				t.Errorf("%s: stored user's role on %s = %q, want %q", st.name, b, got, want)
			}
			if got := u.BucketRole(b); got != want {
				t.Errorf("%s: returned user's role on %s = %q, want %q", st.name, b, got, want)
			}
			if got := BucketRole(key.Role, key.Confined, key.Grants, b); got != want {
				t.Errorf("%s: access key's role on %s = %q, want %q", st.name, b, got, want)
			}
		}
	}

	for i := range MaxUserGrants {
		if _, err := s.GrantBucket(ctx, w.ID, fmt.Sprintf("bucket-%03d", i), RoleReader); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.GrantBucket(ctx, w.ID, "one-too-many", RoleReader)
	wantErr(t, "grant past the limit", err, ErrInvalid)
	if _, err := s.GrantBucket(ctx, w.ID, "bucket-000", RoleWriter); err != nil {
		t.Fatalf("changing an existing grant at the limit: %v", err)
	}
}
