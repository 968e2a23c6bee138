package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/gateway/envelope"
	"github.com/tresor-gw/tresor/keystore"
)

// copySource parses x-amz-copy-source: "bucket/key" or "/bucket/key",
// URL-encoded, optionally with "?versionId=null".
func copySource(h http.Header) (bucket, key string, err error) {
	src := h.Get("X-Amz-Copy-Source")
	src, version, _ := strings.Cut(src, "?")
	if version != "" && version != "versionId=null" {
		return "", "", s3Error("NoSuchVersion")
	}
	src, err = url.PathUnescape(strings.TrimPrefix(src, "/"))
	if err != nil {
		return "", "", s3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	bucket, key, ok := strings.Cut(src, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", s3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	return bucket, key, nil
}

// copyPreconditions evaluates x-amz-copy-source-if-* against the source.
// Where a GET would answer 304, a copy fails with 412, as in S3.
func copyPreconditions(h http.Header, info backend.ObjectInfo) error {
	src := http.Header{}
	for _, name := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if v := h.Get("X-Amz-Copy-Source-" + name); v != "" {
			src.Set(name, v)
		}
	}
	if err := preconditions(src, info.ETag, info.LastModified); err != nil {
		return s3Error("PreconditionFailed")
	}
	return nil
}

// source resolves and opens a copy's source object, which must be in a
// bucket of the caller's tenant.
func (s *Server) source(ctx context.Context, r *http.Request, rq *request) (*request, backend.ObjectInfo, *envelope.Envelope, envelope.Layout, error) {
	bucket, key, err := copySource(r.Header)
	if err != nil {
		return nil, backend.ObjectInfo{}, nil, envelope.Layout{}, err
	}
	src := &request{id: rq.id, caller: rq.caller, bucket: bucket, key: key, route: Route{Op: OpGetObject, Bucket: bucket, Key: key}}
	if err := s.authorize(ctx, src, accessRead); err != nil {
		return nil, backend.ObjectInfo{}, nil, envelope.Layout{}, err
	}
	info, env, layout, err := s.headAndOpen(ctx, src)
	if err != nil {
		return nil, backend.ObjectInfo{}, nil, envelope.Layout{}, err
	}
	if err := copyPreconditions(r.Header, info); err != nil {
		return nil, backend.ObjectInfo{}, nil, envelope.Layout{}, err
	}
	return src, info, env, layout, nil
}

// copyObject copies inside the backend without the data passing through
// the gateway: the ciphertext stays as it is, and the DEK is re-wrapped for
// the destination's bucket and key. Metadata is copied (COPY, the default)
// or replaced by the request's (REPLACE), and sealed anew either way. The
// backend copies only the source version whose envelope was opened; if
// the source was overwritten meanwhile, the copy starts over.
func (s *Server) copyObject(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	directive := r.Header.Get("X-Amz-Metadata-Directive")
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return s3Error("InvalidArgument", "Unknown metadata directive.")
	}
	for attempt := 1; ; attempt++ {
		out, err := s.copyOnce(ctx, r, rq, directive)
		if errors.Is(err, backend.ErrPreconditionFailed) {
			if attempt < maxOpenAttempts {
				continue
			}
			err = fmt.Errorf("copy source: %w", errOverwritten)
		}
		if err != nil {
			return err
		}
		sseHeaders(w.Header(), rq.tenant())
		return writeXML(w, copyObjectResult{Xmlns: s3Namespace, LastModified: s3Time(out.LastModified), ETag: out.ETag})
	}
}

// copyOnce makes one attempt of copyObject.
func (s *Server) copyOnce(ctx context.Context, r *http.Request, rq *request, directive string) (backend.ObjectInfo, error) {
	src, info, env, _, err := s.source(ctx, r, rq)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	if src.bucket == rq.bucket && src.key == rq.key && directive != "REPLACE" {
		return backend.ObjectInfo{}, s3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	var meta map[string]string
	if directive == "REPLACE" {
		meta, err = requestMeta(r.Header)
	} else {
		meta, err = env.OpenMetadata(info.Metadata[metaSealed])
	}
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	dst, err := env.Rewrap(ctx, s.store, rq.binding())
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	bm, err := sealMeta(dst, meta)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	var manifest keystore.Manifest
	if env.Multipart() {
		// The source's manifest (the one that opened it) describes the
		// copy too: same ciphertext, same parts. It goes in before the
		// copy, so that the copy is never without one; readers take the
		// manifest that authenticates, whatever ETag it names.
		set, err := s.store.ManifestSet(keystore.WithReadLevel(ctx, keystore.ReadLinearizable), src.bucket, src.key)
		if err != nil {
			return backend.ObjectInfo{}, err
		}
		m, _, ok := pickManifest(set, env, info.ETag)
		if !ok {
			return backend.ObjectInfo{}, fmt.Errorf("copy %s/%s: %w", src.bucket, src.key, backend.ErrPreconditionFailed)
		}
		manifest = keystore.Manifest{ETag: info.ETag, Data: m.Data}
		if err := s.store.PutManifest(context.WithoutCancel(ctx), rq.tenant(), rq.bucket, rq.key, manifest); err != nil {
			return backend.ObjectInfo{}, err
		}
	}
	out, err := s.backend.Copy(ctx, backend.Location{Bucket: src.bucket, Key: src.key, IfMatch: info.ETag},
		backend.Location{Bucket: rq.bucket, Key: rq.key}, bm)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	if env.Multipart() && out.ETag != manifest.ETag {
		// LIST finds sizes by the object's ETag.
		manifest.ETag = out.ETag
		if err := s.store.PutManifest(context.WithoutCancel(ctx), rq.tenant(), rq.bucket, rq.key, manifest); err != nil {
			return backend.ObjectInfo{}, err
		}
	}
	return out, nil
}

// copyRange resolves UploadPartCopy's x-amz-copy-source-range against
// the source's plaintext size to an inclusive [start, end]; no header is
// the whole source (end = -1 for an empty one). It is stricter than a
// GET's Range, which S3 ignores when malformed and clamps at the end:
// a copy of other bytes than the ones named would be a different part.
// The answers are S3's: "bytes=first-last" with first <= last or
// InvalidArgument; a first byte past the source, InvalidRequest; a last
// byte past it, InvalidArgument naming the size; more than a part can
// hold (5 GiB), InvalidRequest.
func copyRange(values []string, size int64) (start, end int64, err error) {
	start, end = 0, size-1
	if len(values) > 0 {
		if start, end, err = parseCopyRange(values, size); err != nil {
			return 0, 0, err
		}
	}
	if end-start+1 > maxPartSize {
		return 0, 0, s3Error("InvalidRequest", fmt.Sprintf("The specified copy source is larger than the maximum allowable size for a copy source: %d", int64(maxPartSize)))
	}
	return start, end, nil
}

func parseCopyRange(values []string, size int64) (start, end int64, err error) {
	v := values[0]
	first, last, ok := strings.Cut(strings.TrimPrefix(v, "bytes="), "-")
	start, err1 := strconv.ParseInt(first, 10, 64)
	end, err2 := strconv.ParseInt(last, 10, 64)
	if len(values) > 1 || !strings.HasPrefix(v, "bytes=") || !ok || !digits(first) || !digits(last) ||
		err1 != nil || err2 != nil || start > end {
		e := s3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
		e.ArgumentName, e.ArgumentValue = "x-amz-copy-source-range", v
		return 0, 0, e
	}
	switch {
	case start >= size:
		return 0, 0, s3Error("InvalidRequest", "The specified copy range is invalid for the source object size")
	case end >= size:
		e := s3Error("InvalidArgument", fmt.Sprintf("Range specified is not valid for source object of size: %d", size))
		e.ArgumentName, e.ArgumentValue = "x-amz-copy-source-range", v
		return 0, 0, e
	}
	return start, end, nil
}

// digits reports whether s is a non-empty run of ASCII digits (no sign,
// no spaces, which strconv.ParseInt would take or report alike).
func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// uploadPartCopy decrypts the source (range) and encrypts it again as a
// part of the destination upload: parts are encrypted under the upload's
// own keys, so ciphertext can never be copied across (DESIGN.md trap 6).
func (s *Server) uploadPartCopy(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	n, err := partNumber(r)
	if err != nil {
		return err
	}
	up, env, err := s.session(ctx, r, rq)
	if err != nil {
		return err
	}
	var (
		plain io.Reader = strings.NewReader("")
		size  int64
	)
	for attempt := 1; ; attempt++ {
		src, info, srcEnv, layout, err := s.source(ctx, r, rq)
		if err != nil {
			return err
		}
		start, end, err := copyRange(r.Header.Values("X-Amz-Copy-Source-Range"), layout.Size())
		if err != nil {
			return err
		}
		size = end - start + 1
		if size == 0 {
			break
		}
		plan := layout.Plan(start, end)
		body, got, err := s.backend.Get(ctx, src.bucket, src.key, &backend.Range{Start: plan.CipherStart, End: plan.CipherEnd})
		if err != nil {
			return err
		}
		if got.ETag != info.ETag {
			// Overwritten since its envelope was opened: start over.
			body.Close()
			if attempt == maxOpenAttempts {
				return fmt.Errorf("copy source %s/%s: %w", src.bucket, src.key, errOverwritten)
			}
			continue
		}
		defer body.Close()
		if plain, err = srcEnv.DecryptReader(body, plan); err != nil {
			return err
		}
		break
	}
	part, err := s.backend.UploadPart(ctx, rq.bucket, rq.key, up.BackendUploadID, n,
		env.EncryptPartReader(n, size, plain), envelope.CiphertextSize(size))
	if err != nil {
		if errors.Is(err, envelope.ErrAuthentication) {
			s.cryptoError("package")
		}
		return err
	}
	sseHeaders(w.Header(), rq.tenant())
	return writeXML(w, copyPartResult{Xmlns: s3Namespace, LastModified: s3Time(part.LastModified), ETag: part.ETag})
}
