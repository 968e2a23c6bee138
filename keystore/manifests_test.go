package keystore

import (
	"context"
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
	got, err := s.Manifests(ctx, "alice-data", keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("Manifests returned %d, want 5", len(got))
	}
	for i := 0; i < 10; i += 2 {
		m, ok := got[fmt.Sprintf("obj/%d", i)]
		if !ok || m.ETag != fmt.Sprintf(`"etag-%d"`, i) || m.Data[0] != byte(i) {
			t.Fatalf("manifest %d = %+v, %v", i, m, ok)
		}
	}
	if got, _ := s.Manifests(ctx, "other-bucket", keys); len(got) != 0 {
		t.Fatalf("another bucket's batch: %v", got)
	}

	// Overwrite replaces.
	wantErr(t, "overwrite", s.PutManifest(ctx, a.ID, "alice-data", "obj/0", Manifest{ETag: "new", Data: []byte{9}}), nil)
	if m, _ := s.Manifest(ctx, "alice-data", "obj/0"); m.ETag != "new" {
		t.Fatalf("after overwrite: %+v", m)
	}
	wantErr(t, "another tenant's bucket", s.PutManifest(ctx, b.ID, "alice-data", "x", Manifest{ETag: "e", Data: []byte{1}}), ErrNotFound)
	wantErr(t, "too large", s.PutManifest(ctx, a.ID, "alice-data", "x", Manifest{ETag: "e", Data: make([]byte, MaxManifestSize+1)}), ErrInvalid)
	wantErr(t, "no etag", s.PutManifest(ctx, a.ID, "alice-data", "x", Manifest{Data: []byte{1}}), ErrInvalid)

	wantErr(t, "delete", s.DeleteManifest(ctx, a.ID, "alice-data", "obj/2"), nil)
	wantErr(t, "delete absent", s.DeleteManifest(ctx, a.ID, "alice-data", "obj/2"), nil)
	wantErr(t, "delete in another tenant's bucket", s.DeleteManifest(ctx, b.ID, "alice-data", "obj/4"), ErrNotFound)
	_, err = s.Manifest(ctx, "alice-data", "obj/2")
	wantErr(t, "Manifest after delete", err, ErrNotFound)
}
