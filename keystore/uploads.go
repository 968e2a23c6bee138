package keystore

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"
)

// Upload is a multipart upload session. It lives in the keystore, not on
// the backend, so any gateway node can take any part of it (DESIGN.md
// section 3).
type Upload struct {
	// ID is the upload id clients see: random and URL-safe.
	ID     string `json:"id"`
	Tenant ID     `json:"tenant"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// Envelope is the envelope header value every part is encrypted under.
	Envelope string `json:"envelope"`
	// Metadata is the sealed blob of the tenant's own metadata.
	Metadata string `json:"metadata,omitempty"`
	// BackendUploadID is the backend's id of the same upload.
	BackendUploadID string    `json:"backend_upload_id"`
	Initiated       time.Time `json:"initiated"`
	// Manifest is set by PrepareUpload just before the backend completes
	// the upload: the object's manifest, so that a completion the backend
	// made but CompleteUpload never recorded (a crash, a lost connection)
	// can be rolled forward by whoever next reads the object.
	Manifest []byte `json:"manifest,omitempty"`
}

// MaxUploads is S3's page size limit for ListMultipartUploads (max-uploads
// defaults to and is capped at 1,000).
const MaxUploads = 1000

// maxObjectKey is S3's limit on object key length in bytes.
const maxObjectKey = 1024

// ListUploadsOptions are ListMultipartUploads' request parameters.
type ListUploadsOptions struct {
	Prefix    string
	Delimiter string
	// KeyMarker and UploadIDMarker resume after an earlier page: uploads of
	// keys after KeyMarker, and, if UploadIDMarker is set, uploads of
	// KeyMarker itself whose id sorts after it.
	KeyMarker      string
	UploadIDMarker string
	// MaxUploads caps uploads plus common prefixes; 0 or more than
	// MaxUploads means MaxUploads.
	MaxUploads int
}

// UploadPage is one page of ListUploads. Uploads of one key are ordered by
// upload id (S3 orders them by initiation time; clients only rely on the
// markers, which work either way).
type UploadPage struct {
	Uploads            []Upload
	CommonPrefixes     []string
	IsTruncated        bool
	NextKeyMarker      string
	NextUploadIDMarker string
}

type putUploadPayload struct {
	Upload Upload `json:"upload"`
}

type completeUploadPayload struct {
	Tenant   ID       `json:"tenant"`
	Bucket   string   `json:"bucket"`
	Key      string   `json:"key"`
	ID       string   `json:"id"`
	Manifest Manifest `json:"manifest"`
}

type prepareUploadPayload struct {
	Tenant   ID     `json:"tenant"`
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	ID       string `json:"id"`
	Manifest []byte `json:"manifest"`
}

type abortUploadPayload struct {
	Tenant ID     `json:"tenant"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ID     string `json:"id"`
}

// PutUpload records a new multipart upload session. An empty u.ID gets a
// fresh random id and a zero u.Initiated the current time; the stored
// session is returned. u.Tenant must own u.Bucket (else ErrNotFound).
func (s *Store) PutUpload(ctx context.Context, u Upload) (Upload, error) {
	if u.ID == "" {
		id, err := randomUploadID(s.rand)
		if err != nil {
			return Upload{}, err
		}
		u.ID = id
	}
	if u.Initiated.IsZero() {
		u.Initiated = s.now().UTC()
	}
	var out Upload
	err := s.propose(ctx, OpPutUpload, putUploadPayload{Upload: u}, &out)
	return out, err
}

// Upload returns the session of upload id of bucket/key, or ErrNotFound
// (S3's NoSuchUpload).
func (s *Store) Upload(ctx context.Context, bucket, key, id string) (Upload, error) {
	var u Upload
	err := s.view(ctx, func(txn *badger.Txn) error {
		ok, err := read(txn, uploadKey(bucket, key, id), &u)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: upload %q of %s/%s", ErrNotFound, id, bucket, key)
		}
		return nil
	})
	return u, err
}

// CompleteUpload ends upload id of bucket/key and stores the object's
// manifest, in one command: either both happen or neither.
func (s *Store) CompleteUpload(ctx context.Context, tenant ID, bucket, key, id string, m Manifest) error {
	p := completeUploadPayload{Tenant: tenant, Bucket: bucket, Key: key, ID: id, Manifest: m}
	return s.propose(ctx, OpCompleteUpload, p, nil)
}

// PrepareUpload records in upload id of bucket/key the manifest the
// object will have once the backend completes it. The gateway calls it
// before completing on the backend and CompleteUpload after, so that no
// crash in between can leave a completed object without its manifest.
func (s *Store) PrepareUpload(ctx context.Context, tenant ID, bucket, key, id string, manifest []byte) error {
	p := prepareUploadPayload{Tenant: tenant, Bucket: bucket, Key: key, ID: id, Manifest: manifest}
	return s.propose(ctx, OpPrepareUpload, p, nil)
}

// AbortUpload removes upload id of bucket/key.
func (s *Store) AbortUpload(ctx context.Context, tenant ID, bucket, key, id string) error {
	return s.propose(ctx, OpAbortUpload, abortUploadPayload{Tenant: tenant, Bucket: bucket, Key: key, ID: id}, nil)
}

// ListUploads lists bucket's upload sessions as ListMultipartUploads does:
// in key order, then upload id order, filtered by prefix, with keys that
// contain the delimiter after the prefix rolled up into common prefixes, at
// most MaxUploads entries (uploads plus common prefixes) per page.
func (s *Store) ListUploads(ctx context.Context, bucket string, opts ListUploadsOptions) (UploadPage, error) {
	max := opts.MaxUploads
	if max <= 0 || max > MaxUploads {
		max = MaxUploads
	}
	base := uploadBucketPrefix(bucket)
	var page UploadPage
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: append(bytes.Clone(base), opts.Prefix...)})
		defer it.Close()
		start := append(bytes.Clone(base), opts.Prefix...)
		if opts.KeyMarker != "" {
			var after []byte
			if opts.UploadIDMarker != "" {
				// Just past the marker upload: its key plus a NUL.
				after = append(uploadKey(bucket, opts.KeyMarker, opts.UploadIDMarker), 0)
			} else {
				// Past every upload of KeyMarker: its uploads are
				// KeyMarker NUL ..., and any later key sorts at or after
				// KeyMarker 0x01 since keys hold no NUL.
				after = append(append(bytes.Clone(base), opts.KeyMarker...), 1)
			}
			if bytes.Compare(after, start) > 0 {
				start = after
			}
		}
		lastPrefix := ""
		for it.Seek(start); it.Valid(); {
			rest := it.Item().Key()[len(base):]
			sep := bytes.IndexByte(rest, 0)
			if sep < 0 {
				return fmt.Errorf("keystore: malformed upload key %q (corrupt store)", it.Item().Key())
			}
			objKey := string(rest[:sep])
			if opts.Delimiter != "" {
				if i := strings.Index(objKey[len(opts.Prefix):], opts.Delimiter); i >= 0 {
					cp := objKey[:len(opts.Prefix)+i+len(opts.Delimiter)]
					// Skip every key under cp: seek to the first key after
					// the prefix.
					it.Seek(append(append(bytes.Clone(base), cp...), 0xff))
					if cp == lastPrefix || (opts.KeyMarker != "" && strings.HasPrefix(opts.KeyMarker, cp)) {
						continue // emitted on this or an earlier page
					}
					if len(page.Uploads)+len(page.CommonPrefixes) == max {
						page.IsTruncated = true
						break
					}
					page.CommonPrefixes = append(page.CommonPrefixes, cp)
					page.NextKeyMarker, page.NextUploadIDMarker = cp, ""
					lastPrefix = cp
					continue
				}
			}
			if len(page.Uploads)+len(page.CommonPrefixes) == max {
				page.IsTruncated = true
				break
			}
			var u Upload
			if err := it.Item().Value(func(v []byte) error { return jsonDecode(v, &u) }); err != nil {
				return err
			}
			page.Uploads = append(page.Uploads, u)
			page.NextKeyMarker, page.NextUploadIDMarker = u.Key, u.ID
			it.Next()
		}
		return nil
	})
	if err != nil {
		return UploadPage{}, err
	}
	if !page.IsTruncated {
		page.NextKeyMarker, page.NextUploadIDMarker = "", ""
	}
	return page, nil
}

func applyPutUpload(a *applyCtx, p putUploadPayload) (any, error) {
	u := p.Upload
	if _, err := ownedBucket(a, u.Tenant, u.Bucket); err != nil {
		return nil, err
	}
	if err := validObjectKey(u.Key); err != nil {
		return nil, err
	}
	if err := validUploadID(u.ID); err != nil {
		return nil, err
	}
	if u.Envelope == "" || u.BackendUploadID == "" {
		return nil, reject(CodeInvalid, "upload without envelope or backend upload id")
	}
	k := uploadKey(u.Bucket, u.Key, u.ID)
	if a.exists(k) {
		return nil, reject(CodeExists, "upload %q of %s/%s exists", u.ID, u.Bucket, u.Key)
	}
	a.put(k, u)
	return u, nil
}

func applyCompleteUpload(a *applyCtx, p completeUploadPayload) (any, error) {
	k, err := ownedUpload(a, p.Tenant, p.Bucket, p.Key, p.ID)
	if err != nil {
		return nil, err
	}
	if err := validManifest(p.Manifest); err != nil {
		return nil, err
	}
	var set ManifestSet
	a.get(manifestKey(p.Bucket, p.Key), &set)
	a.del(k)
	a.put(manifestKey(p.Bucket, p.Key), set.with(p.Manifest, p.ID))
	return nil, nil
}

func applyPrepareUpload(a *applyCtx, p prepareUploadPayload) (any, error) {
	k, err := ownedUpload(a, p.Tenant, p.Bucket, p.Key, p.ID)
	if err != nil {
		return nil, err
	}
	if len(p.Manifest) == 0 || len(p.Manifest) > MaxManifestSize {
		return nil, reject(CodeInvalid, "upload manifest of %d bytes", len(p.Manifest))
	}
	var u Upload
	if !a.get(k, &u) {
		return nil, reject(CodeNotFound, "upload %q of %s/%s", p.ID, p.Bucket, p.Key)
	}
	u.Manifest = p.Manifest
	a.put(k, u)
	return nil, nil
}

func applyAbortUpload(a *applyCtx, p abortUploadPayload) (any, error) {
	k, err := ownedUpload(a, p.Tenant, p.Bucket, p.Key, p.ID)
	if err != nil {
		return nil, err
	}
	a.del(k)
	return nil, nil
}

// ownedUpload returns the key of an upload of a bucket tenant owns.
func ownedUpload(a *applyCtx, tenant ID, bucket, objKey, id string) ([]byte, error) {
	if _, err := ownedBucket(a, tenant, bucket); err != nil {
		return nil, err
	}
	if validObjectKey(objKey) != nil || validUploadID(id) != nil {
		return nil, reject(CodeNotFound, "upload %q of %s/%s", id, bucket, objKey)
	}
	k := uploadKey(bucket, objKey, id)
	var u Upload
	if !a.get(k, &u) || u.Tenant != tenant {
		return nil, reject(CodeNotFound, "upload %q of %s/%s", id, bucket, objKey)
	}
	return k, nil
}

// validObjectKey checks S3's key rules that the layout depends on: 1 to
// 1,024 bytes of UTF-8 without NUL (the NUL separates key and upload id).
func validObjectKey(k string) error {
	if len(k) == 0 || len(k) > maxObjectKey {
		return reject(CodeInvalid, "object key of %d bytes: want 1 to %d", len(k), maxObjectKey)
	}
	if !utf8.ValidString(k) || strings.IndexByte(k, 0) >= 0 {
		return reject(CodeInvalid, "object key %q is not UTF-8 without NUL", k)
	}
	return nil
}

// validUploadID accepts 1 to 128 URL-safe characters, so ids are safe in
// query strings and in the key layout.
func validUploadID(id string) error {
	if len(id) == 0 || len(id) > 128 {
		return reject(CodeInvalid, "upload id of %d bytes", len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return reject(CodeInvalid, "upload id %q: want URL-safe characters", id)
		}
	}
	return nil
}
