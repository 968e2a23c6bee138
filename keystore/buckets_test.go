package keystore

import (
	"context"
	"strings"
	"testing"
)

func TestCreateBucket(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a, b := mustTenant(t, s, "alice"), mustTenant(t, s, "bob")
	mustBucket(t, s, a.ID, "taken")
	tests := []struct {
		name   string
		tenant ID
		bucket string
		want   error
	}{
		{"ok", a.ID, "alice-photos", nil},
		{"dots", b.ID, "bob.example.com", nil},
		{"taken by another tenant", b.ID, "taken", ErrExists},
		{"taken by the same tenant", a.ID, "taken", ErrExists},
		{"too short", a.ID, "ab", ErrInvalid},
		{"too long", a.ID, strings.Repeat("a", 64), ErrInvalid},
		{"upper case", a.ID, "Photos", ErrInvalid},
		{"underscore", a.ID, "my_bucket", ErrInvalid},
		{"double dot", a.ID, "a..b", ErrInvalid},
		{"trailing dash", a.ID, "abc-", ErrInvalid},
		{"ip address", a.ID, "192.168.1.1", ErrInvalid},
		{"reserved prefix", a.ID, "xn--abc", ErrInvalid},
		{"reserved suffix", a.ID, "abc-s3alias", ErrInvalid},
		{"unknown tenant", ID{5}, "orphan", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bk, err := s.CreateBucket(ctx, tt.tenant, tt.bucket)
			wantErr(t, "CreateBucket", err, tt.want)
			if err != nil {
				return
			}
			got, err := s.Bucket(ctx, tt.bucket)
			if err != nil || got.Tenant != tt.tenant || got.Name != tt.bucket || !got.Created.Equal(bk.Created) {
				t.Fatalf("Bucket = %+v, %v", got, err)
			}
		})
	}
	bs, err := s.Buckets(ctx, a.ID)
	if err != nil || len(bs) != 2 || bs[0].Name != "alice-photos" || bs[1].Name != "taken" {
		t.Fatalf("Buckets(alice) = %+v, %v", bs, err)
	}
	if bs, _ := s.Buckets(ctx, b.ID); len(bs) != 1 {
		t.Fatalf("Buckets(bob) = %+v", bs)
	}
}

func TestDeleteBucket(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a, b := mustTenant(t, s, "alice"), mustTenant(t, s, "bob")
	mustBucket(t, s, a.ID, "alice-data")
	wantErr(t, "delete by another tenant", s.DeleteBucket(ctx, b.ID, "alice-data"), ErrNotFound)
	wantErr(t, "delete unknown", s.DeleteBucket(ctx, a.ID, "nothing-here"), ErrNotFound)

	u, err := s.PutUpload(ctx, Upload{Tenant: a.ID, Bucket: "alice-data", Key: "k", Envelope: "e", BackendUploadID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete with an upload", s.DeleteBucket(ctx, a.ID, "alice-data"), ErrNotEmpty)
	wantErr(t, "complete", s.CompleteUpload(ctx, a.ID, "alice-data", "k", u.ID, Manifest{ETag: `"x-2"`, Data: []byte{1}}), nil)
	// A manifest left behind (the gateway deletes buckets whose backend
	// is empty) goes with the bucket.
	wantErr(t, "delete", s.DeleteBucket(ctx, a.ID, "alice-data"), nil)
	_, err = s.ManifestSet(ctx, "alice-data", "k")
	wantErr(t, "manifest after the bucket's delete", err, ErrNotFound)
	_, err = s.Bucket(ctx, "alice-data")
	wantErr(t, "Bucket after delete", err, ErrNotFound)
	if bs, _ := s.Buckets(ctx, a.ID); len(bs) != 0 {
		t.Fatalf("Buckets after delete: %+v", bs)
	}
	// S3 lets a deleted bucket's name be taken again, by anyone.
	mustBucket(t, s, b.ID, "alice-data")
}
