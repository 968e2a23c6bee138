package keystore

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Manifest is what the gateway keeps about a completed multipart object:
// Data is opaque here (the envelope package encodes and MACs the part list)
// and ETag is the backend ETag of the object it describes, so a manifest
// left behind by a concurrent overwrite is recognised as stale.
type Manifest struct {
	ETag string `json:"etag"`
	Data []byte `json:"data"`
	// Upload is the multipart upload whose completion recorded the
	// manifest (set by CompleteUpload), so that a retried completion of it
	// can be answered as the first one was.
	Upload string `json:"upload,omitempty"`
}

// MaxManifestSize bounds Data. A manifest of S3's 10,000 parts at a few
// bytes each is well below it.
const MaxManifestSize = 1 << 20

type putManifestPayload struct {
	Tenant   ID       `json:"tenant"`
	Bucket   string   `json:"bucket"`
	Key      string   `json:"key"`
	Manifest Manifest `json:"manifest"`
}

type deleteManifestPayload struct {
	Tenant ID     `json:"tenant"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

// PutManifest stores the manifest of bucket/key, replacing any earlier one.
// tenant must own bucket (else ErrNotFound).
func (s *Store) PutManifest(ctx context.Context, tenant ID, bucket, key string, m Manifest) error {
	return s.propose(ctx, OpPutManifest, putManifestPayload{Tenant: tenant, Bucket: bucket, Key: key, Manifest: m}, nil)
}

// DeleteManifest deletes the manifest of bucket/key, with the object.
// Deleting a manifest that does not exist is not an error: a single-part
// object has none.
func (s *Store) DeleteManifest(ctx context.Context, tenant ID, bucket, key string) error {
	return s.propose(ctx, OpDeleteManifest, deleteManifestPayload{Tenant: tenant, Bucket: bucket, Key: key}, nil)
}

// Manifest returns the manifest of bucket/key, or ErrNotFound.
func (s *Store) Manifest(ctx context.Context, bucket, key string) (Manifest, error) {
	var m Manifest
	err := s.view(ctx, func(txn *badger.Txn) error {
		ok, err := read(txn, manifestKey(bucket, key), &m)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: manifest of %s/%s", ErrNotFound, bucket, key)
		}
		return nil
	})
	return m, err
}

// Manifests returns the manifests of those keys of bucket that have one,
// for a LIST page: one read transaction for the whole page, no per-key round
// trip. Keys without a manifest (single-part objects) are absent from the
// map.
func (s *Store) Manifests(ctx context.Context, bucket string, keys []string) (map[string]Manifest, error) {
	out := make(map[string]Manifest)
	err := s.view(ctx, func(txn *badger.Txn) error {
		for _, k := range keys {
			var m Manifest
			ok, err := read(txn, manifestKey(bucket, k), &m)
			if err != nil {
				return err
			}
			if ok {
				out[k] = m
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func applyPutManifest(a *applyCtx, p putManifestPayload) (any, error) {
	if _, err := ownedBucket(a, p.Tenant, p.Bucket); err != nil {
		return nil, err
	}
	if err := validObjectKey(p.Key); err != nil {
		return nil, err
	}
	if err := validManifest(p.Manifest); err != nil {
		return nil, err
	}
	a.put(manifestKey(p.Bucket, p.Key), p.Manifest)
	return nil, nil
}

func applyDeleteManifest(a *applyCtx, p deleteManifestPayload) (any, error) {
	if _, err := ownedBucket(a, p.Tenant, p.Bucket); err != nil {
		return nil, err
	}
	if err := validObjectKey(p.Key); err != nil {
		return nil, err
	}
	a.del(manifestKey(p.Bucket, p.Key))
	return nil, nil
}

func validManifest(m Manifest) error {
	if len(m.Data) == 0 || len(m.Data) > MaxManifestSize {
		return reject(CodeInvalid, "manifest of %d bytes: want 1 to %d", len(m.Data), MaxManifestSize)
	}
	if m.ETag == "" {
		return reject(CodeInvalid, "manifest without ETag")
	}
	return nil
}
