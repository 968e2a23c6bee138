package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/gateway/envelope"
	"github.com/tresor-gw/tresor/keystore"
)

// Multipart limits from the S3 user guide ("Amazon S3 multipart upload
// limits"): parts are numbered 1 to 10,000; each part but the last is at
// least 5 MiB and at most 5 GiB.
const (
	maxPartNumber = 10000
	minPartSize   = 5 << 20
	maxPartSize   = 5 << 30
	maxListParts  = 1000
)

// createMultipartUpload draws the object's envelope now, stores it with
// the sealed metadata in the upload session in the keystore, and starts
// the backend's upload. Any gateway node can then take any part.
func (s *Server) createMultipartUpload(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	meta, err := requestMeta(r.Header)
	if err != nil {
		return err
	}
	env, err := envelope.NewMultipart(ctx, s.store, rq.binding())
	if err != nil {
		return err
	}
	bm, err := sealMeta(env, meta)
	if err != nil {
		return err
	}
	backendID, err := s.backend.CreateMultipart(ctx, rq.bucket, rq.key, bm)
	if err != nil {
		return err
	}
	up, err := s.store.PutUpload(ctx, keystore.Upload{
		Tenant: rq.tenant(), Bucket: rq.bucket, Key: rq.key,
		Envelope: bm[metaEnvelope], Metadata: bm[metaSealed], BackendUploadID: backendID,
	})
	if err != nil {
		_ = s.backend.AbortMultipart(context.WithoutCancel(ctx), rq.bucket, rq.key, backendID)
		return err
	}
	sseHeaders(w.Header(), rq.tenant())
	return writeXML(w, initiateMultipartUploadResult{
		Xmlns: s3Namespace, Bucket: rq.bucket, Key: rq.key, UploadID: up.ID,
	})
}

// session looks up the request's upload and opens its envelope.
func (s *Server) session(ctx context.Context, r *http.Request, rq *request) (keystore.Upload, *envelope.Envelope, error) {
	up, err := s.upload(ctx, rq, r.URL.Query().Get("uploadId"))
	if errors.Is(err, keystore.ErrNotFound) || (err == nil && up.Tenant != rq.tenant()) {
		return up, nil, s3Error("NoSuchUpload")
	}
	if err != nil {
		return up, nil, err
	}
	env, err := envelope.Open(ctx, s.store, rq.binding(), up.Envelope)
	if err != nil {
		s.cryptoError("envelope")
		return up, nil, err
	}
	return up, env, nil
}

// upload reads an upload session from the local keystore replica and, if
// it is not there, once more at the linearizable level: a session created
// through this node a moment ago may not have been applied here yet
// (read-your-writes on a follower).
func (s *Server) upload(ctx context.Context, rq *request, id string) (keystore.Upload, error) {
	up, err := s.store.Upload(ctx, rq.bucket, rq.key, id)
	if errors.Is(err, keystore.ErrNotFound) {
		up, err = s.store.Upload(keystore.WithReadLevel(ctx, keystore.ReadLinearizable), rq.bucket, rq.key, id)
	}
	return up, err
}

func partNumber(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.URL.Query().Get("partNumber"))
	if err != nil || n < 1 || n > maxPartNumber {
		return 0, s3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
	}
	return n, nil
}

// uploadPart encrypts one part under its own part key (a fresh random
// nonce each attempt, so a re-uploaded part number never reuses one).
func (s *Server) uploadPart(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	n, err := partNumber(r)
	if err != nil {
		return err
	}
	size, err := rq.plaintextLength(r, maxPartSize)
	if err != nil {
		return err
	}
	up, env, err := s.session(ctx, r, rq)
	if err != nil {
		return err
	}
	body := &countingReader{r: rq.body, n: &rq.bytesIn}
	part, err := s.backend.UploadPart(ctx, rq.bucket, rq.key, up.BackendUploadID, n,
		env.EncryptPartReader(n, size, body), envelope.CiphertextSize(size))
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("ETag", part.ETag)
	sseHeaders(h, rq.tenant())
	rq.echoChecksums(h)
	w.WriteHeader(http.StatusOK)
	return nil
}

// completeMultipartUpload completes an upload with the parts its document
// lists, read whole and verified (readBody) before anything is looked up.
func (s *Server) completeMultipartUpload(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	body, err := readBody(rq, maxCompleteBody)
	if err != nil {
		return err
	}
	req, err := parseComplete(body)
	if err != nil {
		return err
	}
	id := r.URL.Query().Get("uploadId")
	up, env, err := s.session(ctx, r, rq)
	if err != nil {
		return s.completedBefore(ctx, w, rq, id, err)
	}
	uploaded, err := s.backend.ListParts(ctx, rq.bucket, rq.key, up.BackendUploadID)
	if err != nil {
		return s.completedBefore(ctx, w, rq, id, err)
	}
	byNumber := make(map[int]backend.Part, len(uploaded))
	for _, p := range uploaded {
		byNumber[p.Number] = p
	}
	// S3 checks the list's order, then that every part exists with its
	// ETag, then the sizes.
	for i := 1; i < len(req.Parts); i++ {
		if req.Parts[i].PartNumber <= req.Parts[i-1].PartNumber {
			return s3Error("InvalidPartOrder")
		}
	}
	parts := make([]backend.Part, 0, len(req.Parts))
	for _, p := range req.Parts {
		got, ok := byNumber[p.PartNumber]
		if !ok || normalizeETag(got.ETag) != normalizeETag(p.ETag) {
			return s3Error("InvalidPart")
		}
		parts = append(parts, got)
	}
	sizes := make([]envelope.PartSize, 0, len(parts))
	for i, p := range parts {
		plain, err := envelope.PlaintextSize(p.Size)
		if err != nil {
			s.cryptoError("part")
			return err
		}
		if i < len(parts)-1 && plain < minPartSize {
			return s3Error("EntityTooSmall")
		}
		sizes = append(sizes, envelope.PartSize{Number: p.Number, Size: plain})
	}
	if err := checkObjectSize(r, sizes); err != nil {
		return err
	}
	manifest, err := env.SealManifest(sizes)
	if err != nil {
		return err
	}
	// From here on the completion must not be half done: the manifest goes
	// into the session first, so that if the backend completes and this
	// process dies (or the client goes away) before CompleteUpload, the next
	// read of the object finds the manifest and rolls the completion
	// forward (recoverManifest).
	ctx = context.WithoutCancel(ctx)
	if err := s.store.PrepareUpload(ctx, rq.tenant(), rq.bucket, rq.key, up.ID, manifest); err != nil {
		return s.completedBefore(ctx, w, rq, id, err)
	}
	info, err := s.backend.CompleteMultipart(ctx, rq.bucket, rq.key, up.BackendUploadID, parts)
	if err != nil {
		return s.completedBefore(ctx, w, rq, id, err)
	}
	if err := s.store.CompleteUpload(ctx, rq.tenant(), rq.bucket, rq.key, up.ID,
		keystore.Manifest{ETag: info.ETag, Data: manifest}); err != nil {
		return s.completedBefore(ctx, w, rq, id, err)
	}
	return s.writeCompleted(w, rq, info.ETag)
}

// checkObjectSize holds a completion to x-amz-mp-object-size, the size
// the client expects the object to have: S3 refuses the completion
// (InvalidRequest) when the parts add up to another.
func checkObjectSize(r *http.Request, sizes []envelope.PartSize) error {
	v, ok := r.Header["X-Amz-Mp-Object-Size"]
	if !ok {
		return nil
	}
	want, err := strconv.ParseInt(v[0], 10, 64)
	switch {
	case err != nil || len(v) > 1:
		return s3Error("InvalidRequest", "Value for x-amz-mp-object-size header is invalid: '"+truncateValue(v[0])+"'")
	case want < 0:
		return s3Error("InvalidRequest", fmt.Sprintf("Value for x-amz-mp-object-size header is less than zero: '%d'", want))
	}
	var got int64
	for _, p := range sizes {
		got += p.Size
	}
	if got != want {
		return s3Error("InvalidRequest", fmt.Sprintf("The provided 'x-amz-mp-object-size' header value %d does not match what was computed: %d", want, got))
	}
	return nil
}

func (s *Server) writeCompleted(w http.ResponseWriter, rq *request, etag string) error {
	sseHeaders(w.Header(), rq.tenant())
	return writeXML(w, completeMultipartUploadResult{
		Xmlns: s3Namespace, Location: "/" + rq.bucket + "/" + rq.key,
		Bucket: rq.bucket, Key: rq.key, ETag: etag,
	})
}

// completedBefore answers a completion that failed because its upload is
// gone: if the upload was completed already (a client retrying a
// completion whose answer it lost, two completions racing, or a reader
// that rolled this completion forward, recoverManifest), the key's
// manifest set remembers it, even if later uploads overwrote the object since,
// and the retry gets the first completion's answer, as S3 gives it. Any other failure is returned as it is, a missing upload as
// NoSuchUpload.
func (s *Server) completedBefore(ctx context.Context, w http.ResponseWriter, rq *request, id string, err error) error {
	gone := errors.Is(err, keystore.ErrNotFound) || errors.Is(err, backend.ErrUploadNotFound)
	var api *APIError
	if errors.As(err, &api) && api.Code == "NoSuchUpload" {
		gone = true
	}
	if !gone || id == "" {
		return err
	}
	set, merr := s.store.ManifestSet(keystore.WithReadLevel(ctx, keystore.ReadLinearizable), rq.bucket, rq.key)
	if etag, ok := set.CompletedBy(id); merr == nil && ok {
		return s.writeCompleted(w, rq, etag)
	}
	return s3Error("NoSuchUpload")
}

func (s *Server) abortMultipartUpload(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	up, err := s.upload(ctx, rq, r.URL.Query().Get("uploadId"))
	if errors.Is(err, keystore.ErrNotFound) || (err == nil && up.Tenant != rq.tenant()) {
		return s3Error("NoSuchUpload")
	}
	if err != nil {
		return err
	}
	if err := s.backend.AbortMultipart(ctx, rq.bucket, rq.key, up.BackendUploadID); err != nil && !errors.Is(err, backend.ErrUploadNotFound) {
		return err
	}
	if err := s.store.AbortUpload(ctx, rq.tenant(), rq.bucket, rq.key, up.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listParts(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	maxParts := maxListParts
	if v := q.Get("max-parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s3Error("InvalidArgument", "Provided max-parts not an integer or within integer range")
		}
		maxParts = min(n, maxListParts)
	}
	marker := 0
	if v := q.Get("part-number-marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s3Error("InvalidArgument", "Provided part-number-marker not an integer or within integer range")
		}
		marker = n
	}
	up, _, err := s.session(ctx, r, rq)
	if err != nil {
		return err
	}
	parts, err := s.backend.ListParts(ctx, rq.bucket, rq.key, up.BackendUploadID)
	if err != nil {
		return err
	}
	res := listPartsResult{
		Xmlns: s3Namespace, Bucket: rq.bucket, Key: rq.key, UploadID: up.ID,
		Initiator: rq.owner(), Owner: rq.owner(), StorageClass: "STANDARD",
		PartNumberMarker: marker, MaxParts: maxParts,
	}
	for _, p := range parts {
		if p.Number <= marker {
			continue
		}
		if len(res.Parts) == maxParts {
			res.IsTruncated = true
			break
		}
		plain, err := envelope.PlaintextSize(p.Size)
		if err != nil {
			return err
		}
		res.Parts = append(res.Parts, partInfo{
			PartNumber: p.Number, LastModified: s3Time(p.LastModified), ETag: p.ETag, Size: plain,
		})
		res.NextPartNumberMarker = p.Number
	}
	return writeXML(w, res)
}

func (s *Server) listMultipartUploads(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	p, err := parseListParams(q, "max-uploads")
	if err != nil {
		return err
	}
	page, err := s.store.ListUploads(ctx, rq.bucket, keystore.ListUploadsOptions{
		Prefix: p.prefix, Delimiter: p.delimiter, KeyMarker: q.Get("key-marker"),
		UploadIDMarker: q.Get("upload-id-marker"), MaxUploads: p.maxKeys,
	})
	if err != nil {
		return err
	}
	res := listMultipartUploadsResult{
		Xmlns: s3Namespace, Bucket: rq.bucket, KeyMarker: p.encode(q.Get("key-marker")),
		UploadIDMarker: q.Get("upload-id-marker"), Prefix: p.encode(p.prefix),
		Delimiter: p.encode(p.delimiter), MaxUploads: p.maxKeys, EncodingType: p.encoding,
		IsTruncated: page.IsTruncated,
	}
	if page.IsTruncated {
		res.NextKeyMarker = p.encode(page.NextKeyMarker)
		res.NextUploadIDMarker = page.NextUploadIDMarker
	}
	for _, u := range page.Uploads {
		if u.Tenant != rq.tenant() {
			continue
		}
		res.Uploads = append(res.Uploads, uploadInfo{
			Key: p.encode(u.Key), UploadID: u.ID, Initiator: rq.owner(), Owner: rq.owner(),
			StorageClass: "STANDARD", Initiated: s3Time(u.Initiated),
		})
	}
	for _, cp := range page.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: p.encode(cp)})
	}
	return writeXML(w, res)
}
