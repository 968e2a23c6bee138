package keystore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

func TestUploads_PutGetCompleteAbort(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a, b := mustTenant(t, s, "alice"), mustTenant(t, s, "bob")
	mustBucket(t, s, a.ID, "alice-data")
	in := Upload{Tenant: a.ID, Bucket: "alice-data", Key: "dir/obj", Envelope: "env", Metadata: "meta", BackendUploadID: "backend-1"}
	u, err := s.PutUpload(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.ID) != 32 || u.Initiated.IsZero() || u.Envelope != "env" || u.Metadata != "meta" || u.BackendUploadID != "backend-1" {
		t.Fatalf("PutUpload = %+v", u)
	}
	got, err := s.Upload(ctx, "alice-data", "dir/obj", u.ID)
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Fatalf("Upload = %+v, %v", got, err)
	}
	bad := []struct {
		name string
		u    Upload
		want error
	}{
		{"same id", u, ErrExists},
		{"other tenant's bucket", Upload{Tenant: b.ID, Bucket: "alice-data", Key: "k", Envelope: "e", BackendUploadID: "x"}, ErrNotFound},
		{"unknown bucket", Upload{Tenant: a.ID, Bucket: "nope-nope", Key: "k", Envelope: "e", BackendUploadID: "x"}, ErrNotFound},
		{"NUL in key", Upload{Tenant: a.ID, Bucket: "alice-data", Key: "a\x00b", Envelope: "e", BackendUploadID: "x"}, ErrInvalid},
		{"empty key", Upload{Tenant: a.ID, Bucket: "alice-data", Envelope: "e", BackendUploadID: "x"}, ErrInvalid},
		{"no envelope", Upload{Tenant: a.ID, Bucket: "alice-data", Key: "k", BackendUploadID: "x"}, ErrInvalid},
		{"bad id", Upload{ID: "a/b", Tenant: a.ID, Bucket: "alice-data", Key: "k", Envelope: "e", BackendUploadID: "x"}, ErrInvalid},
	}
	for _, tt := range bad {
		_, err := s.PutUpload(ctx, tt.u)
		wantErr(t, "PutUpload "+tt.name, err, tt.want)
	}

	m := Manifest{ETag: `"abc-3"`, Data: []byte("parts")}
	wantErr(t, "complete by another tenant", s.CompleteUpload(ctx, b.ID, "alice-data", "dir/obj", u.ID, m), ErrNotFound)
	wantErr(t, "complete with an empty manifest", s.CompleteUpload(ctx, a.ID, "alice-data", "dir/obj", u.ID, Manifest{ETag: "x"}), ErrInvalid)
	wantErr(t, "complete", s.CompleteUpload(ctx, a.ID, "alice-data", "dir/obj", u.ID, m), nil)
	wantErr(t, "complete twice", s.CompleteUpload(ctx, a.ID, "alice-data", "dir/obj", u.ID, m), ErrNotFound)
	_, err = s.Upload(ctx, "alice-data", "dir/obj", u.ID)
	wantErr(t, "Upload after complete", err, ErrNotFound)
	if got, err := s.ManifestSet(ctx, "alice-data", "dir/obj"); err != nil || len(got.Manifests) != 1 || got.Manifests[0].ETag != m.ETag || string(got.Manifests[0].Data) != "parts" {
		t.Fatalf("ManifestSet after complete = %+v, %v", got, err)
	}

	u2, _ := s.PutUpload(ctx, in)
	wantErr(t, "abort", s.AbortUpload(ctx, a.ID, "alice-data", "dir/obj", u2.ID), nil)
	wantErr(t, "abort twice", s.AbortUpload(ctx, a.ID, "alice-data", "dir/obj", u2.ID), ErrNotFound)
	wantErr(t, "abort wrong key", s.AbortUpload(ctx, a.ID, "alice-data", "other", u.ID), ErrNotFound)
}

// TestListUploads_Pagination pages through uploads with every page size and
// checks that the pages, joined, are exactly the full ordered listing.
func TestListUploads_Pagination(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	mustBucket(t, s, tn.ID, "acme-data")
	mustBucket(t, s, tn.ID, "acme-data2") // a neighbour whose uploads must not leak in
	type ku struct{ key, id string }
	var want []ku
	keys := []string{"a", "a/b", "a/c", "b", "ba", "photos/2024/x.jpg", "photos/2025/y.jpg", "z"}
	for i, k := range keys {
		for j := 0; j < 1+i%3; j++ {
			id := fmt.Sprintf("up%02d%d", i, j)
			if _, err := s.PutUpload(ctx, Upload{ID: id, Tenant: tn.ID, Bucket: "acme-data", Key: k, Envelope: "e", BackendUploadID: "x"}); err != nil {
				t.Fatal(err)
			}
			want = append(want, ku{k, id})
		}
	}
	if _, err := s.PutUpload(ctx, Upload{Tenant: tn.ID, Bucket: "acme-data2", Key: "a", Envelope: "e", BackendUploadID: "x"}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(x, y ku) int {
		if x.key != y.key {
			if x.key < y.key {
				return -1
			}
			return 1
		}
		if x.id < y.id {
			return -1
		}
		return 1
	})
	for size := 1; size <= len(want)+1; size++ {
		var got []ku
		opts := ListUploadsOptions{MaxUploads: size}
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("size %d: pagination does not end", size)
			}
			page, err := s.ListUploads(ctx, "acme-data", opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Uploads) > size {
				t.Fatalf("size %d: page of %d", size, len(page.Uploads))
			}
			for _, u := range page.Uploads {
				got = append(got, ku{u.Key, u.ID})
			}
			if !page.IsTruncated {
				break
			}
			opts.KeyMarker, opts.UploadIDMarker = page.NextKeyMarker, page.NextUploadIDMarker
		}
		if !slices.Equal(got, want) {
			t.Fatalf("size %d: got %v\nwant %v", size, got, want)
		}
	}

	tests := []struct {
		name     string
		opts     ListUploadsOptions
		keys     []string
		prefixes []string
	}{
		{"prefix", ListUploadsOptions{Prefix: "photos/"}, []string{"photos/2024/x.jpg", "photos/2024/x.jpg", "photos/2024/x.jpg", "photos/2025/y.jpg"}, nil},
		{"delimiter", ListUploadsOptions{Delimiter: "/"}, []string{"a", "b", "ba", "ba", "z", "z"}, []string{"a/", "photos/"}},
		{"prefix and delimiter", ListUploadsOptions{Prefix: "photos/", Delimiter: "/"}, nil, []string{"photos/2024/", "photos/2025/"}},
		{"key marker only", ListUploadsOptions{KeyMarker: "b"}, []string{"ba", "ba", "photos/2024/x.jpg", "photos/2024/x.jpg", "photos/2024/x.jpg", "photos/2025/y.jpg", "z", "z"}, nil},
		{"key and upload id marker", ListUploadsOptions{KeyMarker: "ba", UploadIDMarker: "up040"}, []string{"ba", "photos/2024/x.jpg", "photos/2024/x.jpg", "photos/2024/x.jpg", "photos/2025/y.jpg", "z", "z"}, nil},
		{"marker past a common prefix", ListUploadsOptions{Delimiter: "/", KeyMarker: "a/"}, []string{"b", "ba", "ba", "z", "z"}, []string{"photos/"}},
		{"unknown prefix", ListUploadsOptions{Prefix: "nothing"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := s.ListUploads(ctx, "acme-data", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, u := range page.Uploads {
				keys = append(keys, u.Key)
			}
			if !slices.Equal(keys, tt.keys) || !slices.Equal(page.CommonPrefixes, tt.prefixes) || page.IsTruncated {
				t.Fatalf("keys %q prefixes %q truncated %v\nwant keys %q prefixes %q", keys, page.CommonPrefixes, page.IsTruncated, tt.keys, tt.prefixes)
			}
		})
	}

	// Common prefixes count toward the page size and resume correctly.
	var all []string
	opts := ListUploadsOptions{Delimiter: "/", MaxUploads: 1}
	for {
		page, err := s.ListUploads(ctx, "acme-data", opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Uploads)+len(page.CommonPrefixes) != 1 {
			t.Fatalf("page %+v", page)
		}
		for _, u := range page.Uploads {
			all = append(all, u.Key)
		}
		all = append(all, page.CommonPrefixes...)
		if !page.IsTruncated {
			break
		}
		opts.KeyMarker, opts.UploadIDMarker = page.NextKeyMarker, page.NextUploadIDMarker
	}
	if want := []string{"a", "a/", "b", "ba", "ba", "photos/", "z", "z"}; !slices.Equal(all, want) {
		t.Fatalf("paged with delimiter: %q, want %q", all, want)
	}
}

func TestPrepareUpload_KeepsManifestInSession(t *testing.T) {
	ctx := context.Background()
	s := OpenTest(t)
	creds, err := s.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateBucket(ctx, creds.Tenant, "prep"); err != nil {
		t.Fatal(err)
	}
	u, err := s.PutUpload(ctx, Upload{Tenant: creds.Tenant, Bucket: "prep", Key: "k", Envelope: "env", BackendUploadID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PrepareUpload(ctx, creds.Tenant, "prep", "k", u.ID, []byte("manifest")); err != nil {
		t.Fatal(err)
	}
	got, err := s.Upload(ctx, "prep", "k", u.ID)
	if err != nil || string(got.Manifest) != "manifest" {
		t.Fatalf("session after PrepareUpload: %v %q", err, got.Manifest)
	}
	if err := s.PrepareUpload(ctx, creds.Tenant, "prep", "k", "no-such-upload-id", []byte("m")); !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalid) {
		t.Errorf("PrepareUpload of an unknown upload: %v", err)
	}
	if err := s.PrepareUpload(ctx, creds.Tenant, "prep", "k", u.ID, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("PrepareUpload without a manifest: %v", err)
	}
}
