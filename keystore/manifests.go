package keystore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// Manifest is what the gateway keeps about a completed multipart object:
// Data is opaque here (the envelope package encodes and MACs the part list)
// and ETag is the backend ETag of the object it describes.
type Manifest struct {
	ETag string `json:"etag"`
	Data []byte `json:"data"`
}

// MaxManifestSize bounds Data. A manifest of S3's 10,000 parts at a few
// bytes each is well below it.
const MaxManifestSize = 1 << 20

// ManifestSet is what the keystore keeps per key: the manifests of the
// latest multipart objects written there, newest first, and the uploads
// that completed the key. Several, because concurrent completions of one
// key may commit here in another order than the backend made them: the
// newest manifest need not describe the object the backend holds, so a
// reader takes the one that authenticates under the object's envelope
// (only the right one does), and LIST the one naming the object's ETag.
type ManifestSet struct {
	Manifests []Manifest `json:"manifests"`
	// Completed lists the multipart uploads that completed the key, newest
	// first, so that a completion retried after the object was
	// overwritten, or one a reader rolled forward meanwhile, is answered as
	// it happened (CompletedBy).
	Completed []CompletedUpload `json:"completed,omitempty"`

	// ETag and Data are a manifest stored alone by an earlier version.
	ETag string `json:"etag,omitempty"`
	Data []byte `json:"data,omitempty"`
}

// CompletedUpload is a multipart upload that completed an object, with the
// backend ETag it gave the object.
type CompletedUpload struct {
	Upload string `json:"upload"`
	ETag   string `json:"etag"`
}

// Bounds of a ManifestSet: enough for clients racing on one key, small
// enough to read with every multipart GET. Space is bounded too: maxSetBytes
// caps the manifests' data; the newest is always kept.
const (
	MaxManifestsPerKey  = 8
	MaxCompletedHistory = 8
	maxSetBytes         = 2 * MaxManifestSize
)

// CompletedBy returns the ETag upload gave the object, if upload is one of
// the completions the set remembers.
func (s ManifestSet) CompletedBy(upload string) (etag string, ok bool) {
	for _, c := range s.Completed {
		if c.Upload == upload {
			return c.ETag, true
		}
	}
	return "", false
}

// ForETag returns the manifests that name etag, newest first.
func (s ManifestSet) ForETag(etag string) []Manifest {
	var out []Manifest
	for _, m := range s.Manifests {
		if m.ETag == etag {
			out = append(out, m)
		}
	}
	return out
}

// normalized turns an earlier version's single manifest into a set.
func (s ManifestSet) normalized() ManifestSet {
	if len(s.Manifests) == 0 && s.ETag != "" {
		s.Manifests = []Manifest{{ETag: s.ETag, Data: s.Data}}
	}
	s.ETag, s.Data = "", nil
	return s
}

// with returns s with m as its newest manifest and, if upload is set, its
// newest completion, trimmed to its bounds.
func (s ManifestSet) with(m Manifest, upload string) ManifestSet {
	s = s.normalized()
	ms := []Manifest{m}
	size := len(m.Data)
	for _, old := range s.Manifests {
		if len(ms) == MaxManifestsPerKey || size+len(old.Data) > maxSetBytes {
			break
		}
		ms = append(ms, old)
		size += len(old.Data)
	}
	s.Manifests = ms
	if upload != "" {
		cs := []CompletedUpload{{Upload: upload, ETag: m.ETag}}
		for _, c := range s.Completed {
			if len(cs) == MaxCompletedHistory {
				break
			}
			if c.Upload != upload {
				cs = append(cs, c)
			}
		}
		s.Completed = cs
	}
	return s
}

// Digests identifies the set's manifests (Manifest.Digest), for
// DeleteManifests.
func (s ManifestSet) Digests() []string {
	ds := make([]string, len(s.Manifests))
	for i, m := range s.Manifests {
		ds[i] = m.Digest()
	}
	return ds
}

// Digest identifies m: every manifest is sealed under its own object's
// keys, so no two are alike.
func (m Manifest) Digest() string {
	d := sha256.Sum256(m.Data)
	return hex.EncodeToString(d[:16])
}

// without returns s without the manifests whose digest is in drop.
func (s ManifestSet) without(drop []string) ManifestSet {
	s = s.normalized()
	var ms []Manifest
	for _, m := range s.Manifests {
		if !slices.Contains(drop, m.Digest()) {
			ms = append(ms, m)
		}
	}
	s.Manifests = ms
	return s
}

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
	// Drop lists the digests of the manifests to delete; empty deletes
	// the whole set.
	Drop []string `json:"drop,omitempty"`
}

// PutManifest adds m as the newest manifest of bucket/key (a copy onto the
// key). tenant must own bucket (else ErrNotFound).
func (s *Store) PutManifest(ctx context.Context, tenant ID, bucket, key string, m Manifest) error {
	return s.propose(ctx, OpPutManifest, putManifestPayload{Tenant: tenant, Bucket: bucket, Key: key, Manifest: m}, nil)
}

// DeleteManifests deletes the manifests of bucket/key whose digests are in
// drop (ManifestSet.Digests), the whole set if drop is empty. Deleting an
// object, the gateway drops the manifests it saw before deleting, so that a
// multipart completion racing the delete, whose object may outlive it,
// keeps its own. Deleting what does not exist is not an error: a
// single-part object has no manifest.
func (s *Store) DeleteManifests(ctx context.Context, tenant ID, bucket, key string, drop []string) error {
	return s.propose(ctx, OpDeleteManifest, deleteManifestPayload{Tenant: tenant, Bucket: bucket, Key: key, Drop: drop}, nil)
}

// ManifestSet returns the manifests of bucket/key, or ErrNotFound.
func (s *Store) ManifestSet(ctx context.Context, bucket, key string) (ManifestSet, error) {
	var ms ManifestSet
	err := s.view(ctx, func(txn *badger.Txn) error {
		ok, err := read(txn, manifestKey(bucket, key), &ms)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: manifest of %s/%s", ErrNotFound, bucket, key)
		}
		return nil
	})
	return ms.normalized(), err
}

// ManifestSets returns the manifest sets of those keys of bucket that have
// one, for a LIST page: one read transaction for the whole page, no per-key
// round trip. Keys without one (single-part objects) are absent.
func (s *Store) ManifestSets(ctx context.Context, bucket string, keys []string) (map[string]ManifestSet, error) {
	out := make(map[string]ManifestSet)
	err := s.view(ctx, func(txn *badger.Txn) error {
		for _, k := range keys {
			var ms ManifestSet
			ok, err := read(txn, manifestKey(bucket, k), &ms)
			if err != nil {
				return err
			}
			if ok {
				out[k] = ms.normalized()
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
	var set ManifestSet
	a.get(manifestKey(p.Bucket, p.Key), &set)
	a.put(manifestKey(p.Bucket, p.Key), set.with(p.Manifest, ""))
	return nil, nil
}

func applyDeleteManifest(a *applyCtx, p deleteManifestPayload) (any, error) {
	if _, err := ownedBucket(a, p.Tenant, p.Bucket); err != nil {
		return nil, err
	}
	if err := validObjectKey(p.Key); err != nil {
		return nil, err
	}
	k := manifestKey(p.Bucket, p.Key)
	var set ManifestSet
	if len(p.Drop) == 0 || !a.get(k, &set) {
		a.del(k)
		return nil, nil
	}
	if set = set.without(p.Drop); len(set.Manifests) == 0 {
		a.del(k)
	} else {
		a.put(k, set)
	}
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
