// Package gateway is tresor's S3 front end: it resolves S3 requests,
// authenticates them (auth), checks that the caller's tenant owns the bucket
// (keystore), encrypts bodies and metadata on the way in and decrypts them
// on the way out (envelope), and keeps only ciphertext in the backend.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/keystore"
)

// Config configures a Server.
type Config struct {
	// Region is the region clients sign for and GetBucketLocation reports.
	Region string
	// Domains are the base domains of virtual-host addressing.
	Domains []string
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Metrics, if set, receives the request and backend metrics.
	Metrics *Metrics
	// Limiter rate-limits failed authentications; nil means one with
	// auth.DefaultLimiterConfig.
	Limiter *auth.Limiter
	// Auditor, if set, receives every authentication result; a request
	// whose record it cannot take is refused.
	Auditor Auditor
	// Allowlists, if set, enforces the S3 listener's IP allowlist (before
	// authentication) and each tenant's (after it): AccessDenied.
	Allowlists *auth.Allowlists
	// TrustedProxies are the proxies whose X-Forwarded-For header names
	// the client (auth.ClientIP); empty trusts none.
	TrustedProxies auth.CIDRs
}

// DefaultConfig returns a Config for region us-east-1 with path-style
// addressing only.
func DefaultConfig() Config {
	return Config{Region: "us-east-1"}
}

// Validate explains what is wrong with c, if anything.
func (c Config) Validate() error {
	if c.Region == "" {
		return errors.New("gateway: region is empty")
	}
	return nil
}

// Server serves the S3 API. It is an http.Handler; the caller owns the
// listener and the http.Server around it.
type Server struct {
	cfg      Config
	log      *slog.Logger
	metrics  *Metrics
	router   Router
	backend  backend.Backend
	store    *keystore.Store
	verifier *auth.Verifier
	limiter  *auth.Limiter
	auditor  Auditor
}

// New returns a Server over the given parts.
func New(cfg Config, be backend.Backend, store *keystore.Store, verifier *auth.Verifier) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, router: Router{Domains: cfg.Domains},
		backend: be, store: store, verifier: verifier, limiter: cfg.Limiter, auditor: cfg.Auditor,
	}
	if s.limiter == nil {
		s.limiter = auth.NewLimiter(auth.DefaultLimiterConfig())
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics != nil {
		s.backend = instrumented{Backend: be, m: s.metrics}
	}
	return s, nil
}

// handler serves one operation. It returns an error instead of writing one
// so that errors are mapped to S3 codes in one place (errors.go).
type handler func(s *Server, ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error

// access is what an operation needs of the caller's role.
type access int

const (
	accessRead access = iota
	accessWrite
)

type operation struct {
	serve  handler
	access access
}

// operations is the dispatch table. An Op absent from it is NotImplemented.
var operations = map[Op]operation{
	OpListBuckets:             {(*Server).listBuckets, accessRead},
	OpCreateBucket:            {(*Server).createBucket, accessWrite},
	OpHeadBucket:              {(*Server).headBucket, accessRead},
	OpDeleteBucket:            {(*Server).deleteBucket, accessWrite},
	OpGetBucketLocation:       {(*Server).getBucketLocation, accessRead},
	OpGetBucketVersioning:     {(*Server).getBucketVersioning, accessRead},
	OpListObjects:             {(*Server).listObjects, accessRead},
	OpListObjectsV2:           {(*Server).listObjectsV2, accessRead},
	OpListObjectVersions:      {(*Server).listObjectVersions, accessRead},
	OpListMultipartUploads:    {(*Server).listMultipartUploads, accessRead},
	OpDeleteObjects:           {(*Server).deleteObjects, accessWrite},
	OpPutObject:               {(*Server).putObject, accessWrite},
	OpCopyObject:              {(*Server).copyObject, accessWrite},
	OpGetObject:               {(*Server).getObject, accessRead},
	OpHeadObject:              {(*Server).headObject, accessRead},
	OpDeleteObject:            {(*Server).deleteObject, accessWrite},
	OpCreateMultipartUpload:   {(*Server).createMultipartUpload, accessWrite},
	OpUploadPart:              {(*Server).uploadPart, accessWrite},
	OpUploadPartCopy:          {(*Server).uploadPartCopy, accessWrite},
	OpCompleteMultipartUpload: {(*Server).completeMultipartUpload, accessWrite},
	OpAbortMultipartUpload:    {(*Server).abortMultipartUpload, accessWrite},
	OpListParts:               {(*Server).listParts, accessRead},
}

// ServeHTTP answers one S3 request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := newRequestID()
	h := w.Header()
	h.Set("x-amz-request-id", id)
	h.Set("x-amz-id-2", id)
	h.Set("Server", "tresor")
	rw := &responseWriter{ResponseWriter: w}
	route := s.router.Resolve(r)
	rq := &request{id: id, route: route, bucket: route.Bucket, key: route.Key}

	err := s.serve(r.Context(), rw, r, rq)
	if err != nil {
		api := toAPIError(err)
		if rw.started() {
			// The status line and part of the body are out: the only honest
			// signal left is to cut the connection, so the client sees a
			// truncated response rather than wrong or missing bytes.
			s.logRequest(r, rq, rw, start, err)
			panic(http.ErrAbortHandler)
		}
		if rq.retryAfter > 0 {
			rw.Header().Set("Retry-After", strconv.Itoa(int(rq.retryAfter.Seconds())+1))
		}
		if api == errNotModified {
			rw.WriteHeader(http.StatusNotModified)
		} else {
			writeError(rw, r, id, api)
		}
	}
	s.logRequest(r, rq, rw, start, err)
}

func (s *Server) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := s.authenticate(ctx, r, rq); err != nil {
		return err
	}
	op, ok := operations[rq.route.Op]
	if !ok {
		return s3Error("NotImplemented")
	}
	if err := s.authorize(ctx, rq, op.access); err != nil {
		return err
	}
	if err := checkHeaders(r, rq); err != nil {
		return err
	}
	return op.serve(s, ctx, w, r, rq)
}

func (s *Server) logRequest(r *http.Request, rq *request, rw *responseWriter, start time.Time, err error) {
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	elapsed := time.Since(start)
	if s.metrics != nil {
		op := string(rq.route.Op)
		s.metrics.requests.WithLabelValues(op, fmt.Sprint(status)).Inc()
		s.metrics.duration.WithLabelValues(op).Observe(elapsed.Seconds())
		s.metrics.bytesOut.Add(float64(rq.bytesOut))
		s.metrics.bytesIn.Add(float64(rq.bytesIn))
	}
	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.String("request_id", rq.id),
		slog.String("op", string(rq.route.Op)),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.Int64("bytes_in", rq.bytesIn),
		slog.Int64("bytes_out", rq.bytesOut),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		if status >= 500 {
			level = slog.LevelError
		}
	}
	s.log.LogAttrs(r.Context(), level, "s3 request", attrs...)
}
