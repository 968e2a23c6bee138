package gateway

import (
	"context"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tresor-gw/tresor/gateway/backend"
)

// Metrics are the gateway's Prometheus collectors. Labels are bounded by
// construction: operation names, status codes and error kinds, never
// tenants, addresses, access keys or object keys (DESIGN.md section 7).
type Metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	bytesIn      prometheus.Counter
	bytesOut     prometheus.Counter
	backendTime  *prometheus.HistogramVec
	cryptoErrors *prometheus.CounterVec
}

// NewMetrics creates the gateway's collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tresor_s3_requests_total",
			Help: "S3 requests answered, by operation and HTTP status.",
		}, []string{"operation", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tresor_s3_request_duration_seconds",
			Help:    "Time from request arrival to the end of the response, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"operation"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tresor_s3_received_bytes_total",
			Help: "Plaintext object bytes received from clients.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tresor_s3_sent_bytes_total",
			Help: "Plaintext object bytes sent to clients.",
		}),
		backendTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tresor_backend_request_duration_seconds",
			Help:    "Time until the backend answered (for reads: until the body started), by backend call.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"call", "result"}),
		cryptoErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tresor_crypto_errors_total",
			Help: "Objects or envelopes that failed authentication or could not be opened, by kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.backendTime, m.cryptoErrors)
	return m
}

// observeBackend records the duration of one backend call.
func (m *Metrics) observeBackend(call string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.backendTime.WithLabelValues(call, result).Observe(time.Since(start).Seconds())
}

// instrumented wraps a Backend so that every call is timed.
type instrumented struct {
	backend.Backend
	m *Metrics
}

func (b instrumented) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts backend.PutOptions) (backend.ObjectInfo, error) {
	start := time.Now()
	info, err := b.Backend.Put(ctx, bucket, key, r, size, opts)
	b.m.observeBackend("put", start, err)
	return info, err
}

func (b instrumented) Get(ctx context.Context, bucket, key string, rng *backend.Range) (io.ReadCloser, backend.ObjectInfo, error) {
	start := time.Now()
	rc, info, err := b.Backend.Get(ctx, bucket, key, rng)
	b.m.observeBackend("get", start, err)
	return rc, info, err
}

func (b instrumented) Head(ctx context.Context, bucket, key string) (backend.ObjectInfo, error) {
	start := time.Now()
	info, err := b.Backend.Head(ctx, bucket, key)
	b.m.observeBackend("head", start, err)
	return info, err
}

func (b instrumented) Delete(ctx context.Context, bucket, key string) error {
	start := time.Now()
	err := b.Backend.Delete(ctx, bucket, key)
	b.m.observeBackend("delete", start, err)
	return err
}

func (b instrumented) Copy(ctx context.Context, src, dst backend.Location, meta backend.Metadata) (backend.ObjectInfo, error) {
	start := time.Now()
	info, err := b.Backend.Copy(ctx, src, dst, meta)
	b.m.observeBackend("copy", start, err)
	return info, err
}

func (b instrumented) List(ctx context.Context, bucket string, opts backend.ListOptions) (backend.ListPage, error) {
	start := time.Now()
	page, err := b.Backend.List(ctx, bucket, opts)
	b.m.observeBackend("list", start, err)
	return page, err
}

func (b instrumented) UploadPart(ctx context.Context, bucket, key, uploadID string, n int, r io.Reader, size int64) (backend.Part, error) {
	start := time.Now()
	p, err := b.Backend.UploadPart(ctx, bucket, key, uploadID, n, r, size)
	b.m.observeBackend("upload_part", start, err)
	return p, err
}

func (b instrumented) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []backend.Part) (backend.ObjectInfo, error) {
	start := time.Now()
	info, err := b.Backend.CompleteMultipart(ctx, bucket, key, uploadID, parts)
	b.m.observeBackend("complete_multipart", start, err)
	return info, err
}
