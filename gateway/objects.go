package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/gateway/envelope"
	"github.com/tresor-gw/tresor/keystore"
)

// Backend metadata keys. The envelope and the sealed tenant metadata are
// all tresor stores beside the ciphertext.
const (
	metaEnvelope = "tresor-envelope"
	metaSealed   = "tresor-meta"
)

// maxObjectSize is S3's largest object, 5 TiB ("Amazon S3 objects
// overview"); a single PUT is limited to 5 GiB.
const (
	maxObjectSize = 5 << 40
	maxPutSize    = 5 << 30
)

// sseHeaders marks every object response as encrypted with a KMS key, the
// contract under which S3's ETag is not the MD5 of the content, so SDKs
// skip their MD5 comparison (DESIGN.md section 3). The key id is the
// tenant's, stable across its key versions.
func sseHeaders(h http.Header, tenant keystore.ID) {
	h.Set("x-amz-server-side-encryption", "aws:kms")
	h.Set("x-amz-server-side-encryption-aws-kms-key-id", tenantKeyID(tenant))
}

func (rq *request) binding() envelope.Binding {
	return envelope.Binding{Tenant: rq.tenant(), Bucket: rq.bucket, Key: rq.key}
}

// plaintextLength is the request body's declared plaintext length:
// x-amz-decoded-content-length for aws-chunked bodies, else Content-Length.
// The ciphertext's length, which the backend PUT must declare, follows
// from it, so a body of unknown length cannot be stored. S3 refuses one
// with MissingContentLength (411), both a request with neither
// Content-Length nor Transfer-Encoding and an aws-chunked one without
// x-amz-decoded-content-length, and a plain (not aws-chunked) body sent
// with Transfer-Encoding: chunked with NotImplemented naming that header.
// Clients that stream (boto3, aws cli, minio-go) send aws-chunked with
// x-amz-decoded-content-length, which is served.
func (rq *request) plaintextLength(r *http.Request, limit int64) (int64, error) {
	if rq.length < 0 {
		if len(r.TransferEncoding) > 0 && !strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
			e := s3Error("NotImplemented", "A header you provided implies functionality that is not implemented")
			e.Header = "Transfer-Encoding"
			return 0, e
		}
		return 0, s3Error("MissingContentLength")
	}
	if rq.length > limit {
		return 0, s3Error("EntityTooLarge")
	}
	return rq.length, nil
}

// sealMeta seals the tenant's metadata under the object's envelope and
// returns the backend metadata to store.
func sealMeta(env *envelope.Envelope, meta map[string]string) (backend.Metadata, error) {
	sealed, err := env.SealMetadata(meta)
	if err != nil {
		return nil, err
	}
	bm := backend.Metadata{metaEnvelope: env.Marshal(), metaSealed: sealed}
	if envelope.MetadataSize(bm) > envelope.MaxBackendMetadata {
		return nil, s3Error("MetadataTooLarge", "Your metadata headers, once encrypted, exceed the backend's 2 KB metadata limit.")
	}
	return bm, nil
}

func (s *Server) putObject(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	size, err := rq.plaintextLength(r, maxPutSize)
	if err != nil {
		return err
	}
	meta, err := requestMeta(r.Header)
	if err != nil {
		return err
	}
	env, err := envelope.New(ctx, s.store, rq.binding(), size)
	if err != nil {
		return err
	}
	bm, err := sealMeta(env, meta)
	if err != nil {
		return err
	}
	body := &countingReader{r: rq.body, n: &rq.bytesIn}
	info, err := s.backend.Put(ctx, rq.bucket, rq.key, env.EncryptReader(body), envelope.CiphertextSize(size), backend.PutOptions{
		Metadata:    bm,
		IfMatch:     r.Header.Get("If-Match"),
		IfNoneMatch: r.Header.Get("If-None-Match"),
	})
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("ETag", info.ETag)
	sseHeaders(h, rq.tenant())
	rq.echoChecksums(h)
	w.WriteHeader(http.StatusOK)
	return nil
}

// openObject opens an object's envelope and, for a multipart object, its
// manifest. Anything that does not authenticate is an error: an object
// without a valid envelope is never served as is.
func (s *Server) openObject(ctx context.Context, rq *request, info backend.ObjectInfo) (*envelope.Envelope, envelope.Layout, error) {
	env, err := envelope.Open(ctx, s.store, rq.binding(), info.Metadata[metaEnvelope])
	if err != nil {
		s.cryptoError("envelope")
		return nil, envelope.Layout{}, fmt.Errorf("object %s/%s: %w", rq.bucket, rq.key, err)
	}
	if !env.Multipart() {
		layout, err := env.SingleLayout()
		return env, layout, err
	}
	if set, err := s.store.ManifestSet(ctx, rq.bucket, rq.key); err == nil {
		if _, layout, ok := pickManifest(set, env, info.ETag); ok {
			return env, layout, nil
		}
	}
	layout, err := s.recoverManifest(ctx, rq, env, info)
	if err != nil {
		// A reader that fetched the object just before an overwrite
		// completed meets the new write's manifest: not an integrity
		// failure, the object changed under it.
		now, herr := s.backend.Head(ctx, rq.bucket, rq.key)
		switch {
		case errors.Is(herr, backend.ErrNotFound):
			return nil, envelope.Layout{}, herr
		case herr == nil && now.ETag != info.ETag:
			return nil, envelope.Layout{}, fmt.Errorf("object %s/%s: %w", rq.bucket, rq.key, errOverwritten)
		}
		s.cryptoError("manifest")
		return nil, envelope.Layout{}, fmt.Errorf("object %s/%s: %w", rq.bucket, rq.key, err)
	}
	return env, layout, nil
}

// errOverwritten: the object was replaced while it was being opened, so
// its backend version and the keystore's manifest belong to different
// writes. The caller fetches it again (maxOpenAttempts).
var errOverwritten = errors.New("object overwritten while being read")

// maxOpenAttempts bounds how often a read starts over because the object
// was overwritten meanwhile.
const maxOpenAttempts = 3

// headAndOpen reads an object's backend metadata and opens its envelope
// and layout, starting over if an overwrite raced it.
func (s *Server) headAndOpen(ctx context.Context, rq *request) (backend.ObjectInfo, *envelope.Envelope, envelope.Layout, error) {
	for attempt := 1; ; attempt++ {
		info, err := s.backend.Head(ctx, rq.bucket, rq.key)
		if err != nil {
			return backend.ObjectInfo{}, nil, envelope.Layout{}, err
		}
		env, layout, err := s.openObject(ctx, rq, info)
		if errors.Is(err, errOverwritten) && attempt < maxOpenAttempts {
			continue
		}
		return info, env, layout, err
	}
}

// getAndOpen is headAndOpen with the object's body, for a whole-object GET
// (one backend request instead of two).
func (s *Server) getAndOpen(ctx context.Context, rq *request) (io.ReadCloser, backend.ObjectInfo, *envelope.Envelope, envelope.Layout, error) {
	for attempt := 1; ; attempt++ {
		body, info, err := s.backend.Get(ctx, rq.bucket, rq.key, nil)
		if err != nil {
			return nil, backend.ObjectInfo{}, nil, envelope.Layout{}, err
		}
		env, layout, err := s.openObject(ctx, rq, info)
		if err == nil {
			return body, info, env, layout, nil
		}
		body.Close()
		if !errors.Is(err, errOverwritten) || attempt == maxOpenAttempts {
			return nil, backend.ObjectInfo{}, nil, envelope.Layout{}, err
		}
	}
}

// pickManifest returns the manifest of set that authenticates under env:
// only the object's own does. Those naming etag, the object's, are tried
// first; another may still be it when two uploads gave equal ETags.
func pickManifest(set keystore.ManifestSet, env *envelope.Envelope, etag string) (keystore.Manifest, envelope.Layout, bool) {
	for _, named := range []bool{true, false} {
		for _, m := range set.Manifests {
			if (m.ETag == etag) != named {
				continue
			}
			if layout, err := env.OpenManifest(m.Data); err == nil {
				return m, layout, true
			}
		}
	}
	return keystore.Manifest{}, envelope.Layout{}, false
}

// recoverManifest finds the manifest of a multipart object when the local
// replica has none that authenticates for it: first a fresher one, read at
// the linearizable level (this node may lag behind the completion), then
// one prepared in an upload session whose completion the backend made but
// the keystore never recorded (a crash between the two). A prepared
// manifest authenticates only under this object's DEK and OID, so no other
// session's can be taken for it; the completion is then rolled forward.
func (s *Server) recoverManifest(ctx context.Context, rq *request, env *envelope.Envelope, info backend.ObjectInfo) (envelope.Layout, error) {
	fresh := keystore.WithReadLevel(ctx, keystore.ReadLinearizable)
	// Two rounds: the manifest and the sessions are two reads, and a
	// completion committing between them (the session gone, the manifest
	// not seen yet) leaves its manifest for the second round.
	for range 2 {
		if set, err := s.store.ManifestSet(fresh, rq.bucket, rq.key); err == nil {
			if _, layout, ok := pickManifest(set, env, info.ETag); ok {
				return layout, nil
			}
		}
		page, err := s.store.ListUploads(fresh, rq.bucket, keystore.ListUploadsOptions{Prefix: rq.key, MaxUploads: keystore.MaxUploads})
		if err != nil {
			return envelope.Layout{}, fmt.Errorf("manifest: %w", err)
		}
		for _, u := range page.Uploads {
			if u.Key != rq.key || len(u.Manifest) == 0 {
				continue
			}
			layout, err := env.OpenManifest(u.Manifest)
			if err != nil {
				continue
			}
			err = s.store.CompleteUpload(context.WithoutCancel(ctx), u.Tenant, rq.bucket, rq.key, u.ID,
				keystore.Manifest{ETag: info.ETag, Data: u.Manifest})
			if err != nil {
				s.log.Warn("rolling a multipart completion forward failed", "request_id", rq.id, "error", err)
			} else {
				s.log.Info("rolled a multipart completion forward", "request_id", rq.id)
			}
			return layout, nil
		}
	}
	return envelope.Layout{}, errors.New("no manifest authenticates for this object")
}

func (s *Server) cryptoError(kind string) {
	if s.metrics != nil {
		s.metrics.cryptoErrors.WithLabelValues(kind).Inc()
	}
}

// objectHeaders writes the headers GetObject and HeadObject share.
func (s *Server) objectHeaders(h http.Header, rq *request, env *envelope.Envelope, info backend.ObjectInfo, layout envelope.Layout) error {
	meta, err := env.OpenMetadata(info.Metadata[metaSealed])
	if err != nil {
		s.cryptoError("metadata")
		return err
	}
	writeMeta(h, meta)
	h.Set("ETag", info.ETag)
	h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	if n := layout.Parts(); n > 1 {
		h.Set("x-amz-mp-parts-count", strconv.Itoa(n))
	}
	sseHeaders(h, rq.tenant())
	return nil
}

func (s *Server) headObject(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := checkVersionID(r); err != nil {
		return err
	}
	info, env, layout, err := s.headAndOpen(ctx, rq)
	if err != nil {
		return err
	}
	h := w.Header()
	if err := s.objectHeaders(h, rq, env, info, layout); err != nil {
		return err
	}
	if err := preconditions(r.Header, info.ETag, info.LastModified); err != nil {
		return err
	}
	sel, err := selectRange(r, layout)
	if err != nil {
		return err
	}
	applyOverrides(h, r)
	h.Set("Content-Length", strconv.FormatInt(sel.length(), 10))
	if sel.partial {
		h.Set("Content-Range", sel.contentRange(layout.Size()))
		w.WriteHeader(http.StatusPartialContent)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// getObject streams an object's plaintext. A whole-object GET costs one
// backend request; a range or part GET costs a HEAD (for the envelope and
// layout) and one ranged backend GET of just the packages it needs.
func (s *Server) getObject(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := checkVersionID(r); err != nil {
		return err
	}
	ranged := r.Header.Get("Range") != "" || r.URL.Query().Get("partNumber") != ""
	var (
		body   io.ReadCloser
		info   backend.ObjectInfo
		env    *envelope.Envelope
		layout envelope.Layout
		sel    selection
		plan   envelope.Plan
		hdr    http.Header
		err    error
	)
	for attempt := 1; ; attempt++ {
		if !ranged {
			body, info, env, layout, err = s.getAndOpen(ctx, rq)
			if err != nil {
				return err
			}
			defer body.Close()
		} else if info, env, layout, err = s.headAndOpen(ctx, rq); err != nil {
			return err
		}
		// Headers are gathered aside until the version to serve is
		// settled: a retry must not leave the other version's behind.
		hdr = http.Header{}
		if err := s.objectHeaders(hdr, rq, env, info, layout); err != nil {
			return err
		}
		if err := preconditions(r.Header, info.ETag, info.LastModified); err != nil {
			maps.Copy(w.Header(), hdr)
			return err
		}
		if sel, err = selectRange(r, layout); err != nil {
			return err
		}
		plan = layout.Plan(sel.start, sel.end)
		if !ranged || sel.length() == 0 {
			break
		}
		// The packages come from a second backend request: it must read
		// the version the envelope and layout were opened from.
		rng := &backend.Range{Start: plan.CipherStart, End: plan.CipherEnd}
		var got backend.ObjectInfo
		if body, got, err = s.backend.Get(ctx, rq.bucket, rq.key, rng); err != nil {
			return err
		}
		if got.ETag == info.ETag {
			defer body.Close()
			break
		}
		body.Close()
		if attempt == maxOpenAttempts {
			return fmt.Errorf("object %s/%s: %w", rq.bucket, rq.key, errOverwritten)
		}
	}
	h := w.Header()
	maps.Copy(h, hdr)
	applyOverrides(h, r)
	h.Set("Content-Length", strconv.FormatInt(sel.length(), 10))
	status := http.StatusOK
	if sel.partial {
		h.Set("Content-Range", sel.contentRange(layout.Size()))
		status = http.StatusPartialContent
	}
	if sel.length() == 0 {
		w.WriteHeader(status)
		return nil
	}
	dec, err := env.DecryptReader(body, plan)
	if err != nil {
		return err
	}
	// Authenticate the first package before the status line goes out, so
	// that an object failing integrity at its start gets an S3 error
	// document rather than a connection cut after a 200.
	plain := bufio.NewReaderSize(dec, envelope.PackageSize)
	if _, err := plain.Peek(1); err != nil {
		s.cryptoErrorFrom(err)
		return err
	}
	w.WriteHeader(status)
	n, err := io.Copy(w, plain)
	rq.bytesOut += n
	if err != nil {
		s.cryptoErrorFrom(err)
		return err
	}
	if n != sel.length() {
		return fmt.Errorf("object %s/%s: sent %d of %d bytes", rq.bucket, rq.key, n, sel.length())
	}
	return nil
}

func (s *Server) cryptoErrorFrom(err error) {
	if errors.Is(err, envelope.ErrAuthentication) {
		s.cryptoError("package")
	}
}

// checkVersionID accepts versionId=null, the one version of every object
// in a bucket without versioning.
func checkVersionID(r *http.Request) error {
	if v, ok := r.URL.Query()["versionId"]; ok && (len(v) != 1 || v[0] != "null") {
		return s3Error("NoSuchVersion")
	}
	return nil
}

func (s *Server) deleteObject(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := checkVersionID(r); err != nil {
		return err
	}
	if err := s.removeObject(ctx, rq.tenant(), rq.bucket, rq.key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeObject deletes an object and the manifests its key had before the
// delete: not those of a multipart completion that raced the delete and
// committed after the look (keystore.DeleteManifests), whose object may be
// the one the backend holds now.
func (s *Server) removeObject(ctx context.Context, tenant keystore.ID, bucket, key string) error {
	if !s.hasManifest(ctx, bucket, key) {
		return s.backend.Delete(ctx, bucket, key)
	}
	set, err := s.store.ManifestSet(keystore.WithReadLevel(ctx, keystore.ReadLinearizable), bucket, key)
	if err != nil && !errors.Is(err, keystore.ErrNotFound) {
		return err
	}
	if err := s.backend.Delete(ctx, bucket, key); err != nil {
		return err
	}
	if len(set.Manifests) == 0 {
		return nil
	}
	return s.store.DeleteManifests(context.WithoutCancel(ctx), tenant, bucket, key, set.Digests())
}

// hasManifest reports whether bucket/key has manifests, from the local
// keystore replica, so that deleting a single-part object costs no
// keystore write. On a read error it answers true: looking costs a HEAD.
func (s *Server) hasManifest(ctx context.Context, bucket, key string) bool {
	_, err := s.store.ManifestSet(ctx, bucket, key)
	return !errors.Is(err, keystore.ErrNotFound)
}

// maxDeleteKeys is S3's limit of keys in one DeleteObjects request.
const maxDeleteKeys = 1000

// deleteObjects deletes the keys its document names. The document is read
// whole and verified (readBody) before the first key is deleted.
func (s *Server) deleteObjects(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := requireChecksum(r.Header); err != nil {
		return err
	}
	body, err := readBody(rq, maxDeleteBody)
	if err != nil {
		return err
	}
	req, err := parseDelete(body)
	if err != nil {
		return err
	}
	res := deleteResult{Xmlns: s3Namespace}
	for _, o := range req.Objects {
		var err error
		switch {
		case o.VersionID != "" && o.VersionID != "null":
			err = s3Error("NoSuchVersion")
		case o.conditional():
			err = s3Error("NotImplemented", "Conditional deletes (ETag, LastModifiedTime, Size) are not implemented; the object was not deleted.")
		case o.Key == "" || len(o.Key) > 1024:
			err = s3Error("KeyTooLongError")
		default:
			err = s.removeObject(ctx, rq.tenant(), rq.bucket, o.Key)
		}
		if err != nil {
			api := toAPIError(err)
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: api.Code, Message: api.Message})
			continue
		}
		if !req.Quiet {
			res.Deleted = append(res.Deleted, deletedObject{Key: o.Key, VersionID: o.VersionID})
		}
	}
	return writeXML(w, res)
}

// plaintextSizes returns the plaintext sizes of a listing's objects: from
// the manifest for multipart objects (one batch read of the local keystore
// for the whole page; a manifest counts only if it names the listed ETag,
// so one left behind by an overwrite is ignored), else from the ciphertext
// size formula.
func (s *Server) plaintextSizes(ctx context.Context, bucket string, objs []backend.ObjectInfo) ([]int64, error) {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	sets, err := s.store.ManifestSets(ctx, bucket, keys)
	if err != nil {
		return nil, err
	}
	sizes := make([]int64, len(objs))
	for i, o := range objs {
		if ms := sets[o.Key].ForETag(o.ETag); len(ms) > 0 {
			if sizes[i], err = envelope.ManifestSize(ms[0].Data); err == nil {
				continue
			}
		}
		if sizes[i], err = envelope.PlaintextSize(o.Size); err != nil {
			s.log.Warn("listed object has no valid ciphertext size", "bucket", bucket, "size", o.Size)
			sizes[i] = 0
		}
	}
	return sizes, nil
}

// countingReader counts the bytes read through it into *n.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}
