package keystore

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

func TestManifests_PutBatchGetDelete(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a, b := mustTenant(t, s, "alice"), mustTenant(t, s, "bob")
	mustBucket(t, s, a.ID, "alice-data")
	for i := 0; i < 10; i += 2 {
		m := Manifest{ETag: fmt.Sprintf(`"etag-%d"`, i), Data: []byte{byte(i), 1, 2}}
		if err := s.PutManifest(ctx, a.ID, "alice-data", fmt.Sprintf("obj/%d", i), m); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for i := 0; i < 10; i++ {
		keys = append(keys, fmt.Sprintf("obj/%d", i))
	}
	got, err := s.ManifestSets(ctx, "alice-data", keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("ManifestSets returned %d, want 5", len(got))
	}
	for i := 0; i < 10; i += 2 {
		ms := got[fmt.Sprintf("obj/%d", i)].ForETag(fmt.Sprintf(`"etag-%d"`, i))
		if len(ms) != 1 || ms[0].Data[0] != byte(i) {
			t.Fatalf("manifest %d = %+v", i, ms)
		}
	}
	if got, _ := s.ManifestSets(ctx, "other-bucket", keys); len(got) != 0 {
		t.Fatalf("another bucket's batch: %v", got)
	}

	// A second manifest joins the set, newest first.
	wantErr(t, "second", s.PutManifest(ctx, a.ID, "alice-data", "obj/0", Manifest{ETag: "new", Data: []byte{9}}), nil)
	if set, _ := s.ManifestSet(ctx, "alice-data", "obj/0"); len(set.Manifests) != 2 || set.Manifests[0].ETag != "new" {
		t.Fatalf("after a second manifest: %+v", set)
	}
	wantErr(t, "another tenant's bucket", s.PutManifest(ctx, b.ID, "alice-data", "x", Manifest{ETag: "e", Data: []byte{1}}), ErrNotFound)
	wantErr(t, "too large", s.PutManifest(ctx, a.ID, "alice-data", "x", Manifest{ETag: "e", Data: make([]byte, MaxManifestSize+1)}), ErrInvalid)
	wantErr(t, "no etag", s.PutManifest(ctx, a.ID, "alice-data", "x", Manifest{Data: []byte{1}}), ErrInvalid)

	wantErr(t, "delete", s.DeleteManifests(ctx, a.ID, "alice-data", "obj/2", nil), nil)
	wantErr(t, "delete absent", s.DeleteManifests(ctx, a.ID, "alice-data", "obj/2", nil), nil)
	wantErr(t, "delete in another tenant's bucket", s.DeleteManifests(ctx, b.ID, "alice-data", "obj/4", nil), ErrNotFound)
	_, err = s.ManifestSet(ctx, "alice-data", "obj/2")
	wantErr(t, "ManifestSet after delete", err, ErrNotFound)
}

// Deleting an object drops the manifests seen before the delete; one
// committed since (a completion that raced the delete) stays.
func TestManifests_DeleteKeepsRacingCompletion(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	a := mustTenant(t, s, "alice")
	mustBucket(t, s, a.ID, "alice-data")
	for i := range 3 {
		if err := s.PutManifest(ctx, a.ID, "alice-data", "k", Manifest{ETag: "old", Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	seen, err := s.ManifestSet(ctx, "alice-data", "k")
	if err != nil {
		t.Fatal(err)
	}
	up, err := s.PutUpload(ctx, Upload{Tenant: a.ID, Bucket: "alice-data", Key: "k", Envelope: "e", BackendUploadID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	racing := Manifest{ETag: "racing", Data: []byte("completed during the delete")}
	if err := s.CompleteUpload(ctx, a.ID, "alice-data", "k", up.ID, racing); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteManifests(ctx, a.ID, "alice-data", "k", seen.Digests()); err != nil {
		t.Fatal(err)
	}
	set, err := s.ManifestSet(ctx, "alice-data", "k")
	if err != nil || len(set.Manifests) != 1 || set.Manifests[0].ETag != "racing" {
		t.Fatalf("after the delete: %+v, %v; want the racing completion's manifest alone", set, err)
	}
	if etag, ok := set.CompletedBy(up.ID); !ok || etag != "racing" {
		t.Fatalf("CompletedBy(%s) = %q, %v", up.ID, etag, ok)
	}
	if err := s.DeleteManifests(ctx, a.ID, "alice-data", "k", set.Digests()); err != nil {
		t.Fatal(err)
	}
	_, err = s.ManifestSet(ctx, "alice-data", "k")
	wantErr(t, "set after its last manifest went", err, ErrNotFound)
}

func TestManifestSet_Bounds(t *testing.T) {
	var set ManifestSet
	for i := range MaxManifestsPerKey + 5 {
		set = set.with(Manifest{ETag: fmt.Sprint(i), Data: []byte{byte(i)}}, fmt.Sprintf("up-%d", i))
	}
	if len(set.Manifests) != MaxManifestsPerKey || set.Manifests[0].ETag != fmt.Sprint(MaxManifestsPerKey+4) {
		t.Fatalf("%d manifests, newest %q", len(set.Manifests), set.Manifests[0].ETag)
	}
	if len(set.Completed) != MaxCompletedHistory || set.Completed[0].Upload != fmt.Sprintf("up-%d", MaxManifestsPerKey+4) {
		t.Fatalf("history %+v", set.Completed)
	}
	if _, ok := set.CompletedBy("up-0"); ok {
		t.Fatal("the oldest completion outlived the history bound")
	}
	// Big manifests: the set's data stays bounded, the newest is kept.
	big := make([]byte, MaxManifestSize)
	set = ManifestSet{}
	for i := range 4 {
		big[0] = byte(i)
		set = set.with(Manifest{ETag: fmt.Sprint(i), Data: append([]byte(nil), big...)}, "")
	}
	if len(set.Manifests) != 2 || set.Manifests[0].ETag != "3" {
		t.Fatalf("%d big manifests kept, newest %q", len(set.Manifests), set.Manifests[0].ETag)
	}
	// A manifest stored alone by an earlier version reads as a set.
	var legacy ManifestSet
	if err := json.Unmarshal([]byte(`{"etag":"e","data":"AQI="}`), &legacy); err != nil {
		t.Fatal(err)
	}
	if n := legacy.normalized(); len(n.Manifests) != 1 || n.Manifests[0].ETag != "e" || len(n.Manifests[0].Data) != 2 {
		t.Fatalf("legacy record read as %+v", n)
	}
}
