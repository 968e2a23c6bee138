package backend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3 stores objects in one bucket of any S3-compatible service. Gateway
// bucket B and key K become backend key Prefix+B+"/"+K; since B holds no
// "/", the mapping is injective and a listing of B is a listing of the
// backend prefix Prefix+B+"/".
//
// Bodies go out as they are: exact Content-Length, no aws-chunked framing
// and no flexible checksums (RequestChecksumCalculation WhenRequired), the
// payload unsigned (UNSIGNED-PAYLOAD, so a non-seekable stream needs no
// second pass; TLS protects it in transit and the gateway has already
// sealed it with AEAD). A body whose length differs from its declared size
// is stopped before its last byte (exactReader), so the service never
// commits it.
type S3 struct {
	client *s3.Client
	bucket string
	prefix string
	cfg    S3Config
}

var _ Backend = (*S3)(nil)

// NewS3 builds the client for cfg. It makes no request: a wrong bucket or
// credentials show up on first use.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("backend: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("backend: no certificates in CA file %s", cfg.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	httpClient := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			if cfg.DialTimeout > 0 {
				d.Timeout = cfg.DialTimeout
			}
		}).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSClientConfig = tlsConf
			if cfg.DialTimeout > 0 {
				t.TLSHandshakeTimeout = cfg.DialTimeout
			}
			t.ResponseHeaderTimeout = cfg.ResponseHeaderTimeout
		})
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(cfg.Region),
		config.WithHTTPClient(httpClient),
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("backend: load AWS config: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// DESIGN.md trap 9: plain bodies, never aws-chunked with trailers.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = cfg.MaxAttempts
			if cfg.MaxBackoff > 0 {
				so.MaxBackoff = cfg.MaxBackoff
			}
		})
	})
	return &S3{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix, cfg: cfg}, nil
}

// Jurisdiction returns the configured residency label.
func (b *S3) Jurisdiction() string { return b.cfg.Jurisdiction }

// unsignedPayload makes an operation sign "UNSIGNED-PAYLOAD" instead of
// hashing the body, which would need a seekable body read twice.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// key maps a gateway object to its backend key. Besides the common checks
// it refuses control characters, which S3 stores but XML listings cannot
// carry faithfully, and backend keys over MaxKeyLen.
func (b *S3) key(bucket, key string) (string, error) {
	if err := validBucket(bucket); err != nil {
		return "", err
	}
	if err := validKey(key); err != nil {
		return "", err
	}
	if i := strings.IndexFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return "", fmt.Errorf("%w: control character %q at byte %d is not supported by the s3 backend", ErrInvalidKey, key[i], i)
	}
	bk := b.prefix + bucket + "/" + key
	if len(bk) > MaxKeyLen {
		return "", fmt.Errorf("%w: backend key of %d bytes (prefix, bucket and key) exceeds %d", ErrInvalidKey, len(bk), MaxKeyLen)
	}
	return bk, nil
}

// s3Error maps a service error onto the package's sentinels, keeping the
// original in the chain.
func s3Error(op string, err error) error {
	var sentinel error
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			sentinel = ErrNotFound
		case "NoSuchUpload":
			sentinel = ErrUploadNotFound
		case "InvalidRange":
			sentinel = ErrInvalidRange
		case "PreconditionFailed", "ConditionalRequestConflict":
			sentinel = ErrPreconditionFailed
		case "InvalidPart", "InvalidPartOrder", "EntityTooSmall":
			sentinel = ErrInvalidPart
		case "KeyTooLongError":
			sentinel = ErrInvalidKey
		case "IncompleteBody":
			sentinel = ErrIncompleteBody
		}
	}
	var re *awshttp.ResponseError
	if sentinel == nil && errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			sentinel = ErrNotFound
		case http.StatusRequestedRangeNotSatisfiable:
			sentinel = ErrInvalidRange
		case http.StatusPreconditionFailed:
			sentinel = ErrPreconditionFailed
		}
	}
	if sentinel == nil {
		return fmt.Errorf("backend: s3 %s: %w", op, err)
	}
	return fmt.Errorf("backend: s3 %s: %w: %w", op, sentinel, err)
}

// bodyError prefers the body's own failure (a length mismatch, the
// caller's reader failing) over however the HTTP stack reported it.
func bodyError(op string, body *exactReader, err error) error {
	if body.err != nil && body.err != io.EOF && !errors.Is(err, body.err) {
		return fmt.Errorf("backend: s3 %s: %w (%w)", op, body.err, err)
	}
	return s3Error(op, err)
}

// sendBody prepares r for an upload of size bytes. An empty body is not
// read by the HTTP stack, so it is checked here.
func sendBody(r io.Reader, size int64) (*exactReader, io.Reader, error) {
	if size < 0 {
		return nil, nil, fmt.Errorf("%w: negative size %d", ErrIncompleteBody, size)
	}
	body := newExactReader(r, size)
	if size == 0 {
		if err := probeEnd(r, nil); err != nil {
			return nil, nil, err
		}
		return body, nil, nil
	}
	return body, body, nil
}

// Put implements Backend.
func (b *S3) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	bk, err := b.key(bucket, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := validMetadata(opts.Metadata); err != nil {
		return ObjectInfo{}, err
	}
	body, send, err := sendBody(r, size)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("backend: s3 put: %w", err)
	}
	in := &s3.PutObjectInput{
		Bucket:        &b.bucket,
		Key:           &bk,
		Body:          send,
		ContentLength: aws.Int64(size),
		Metadata:      opts.Metadata,
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(opts.IfMatch)
	}
	if opts.IfNoneMatch != "" {
		in.IfNoneMatch = aws.String(opts.IfNoneMatch)
	}
	out, err := b.client.PutObject(ctx, in, unsignedPayload)
	if err != nil {
		return ObjectInfo{}, bodyError("put", body, err)
	}
	// PutObject's response has no Last-Modified; the local clock is close
	// enough for a value that Head and List report authoritatively.
	return ObjectInfo{
		Key:          key,
		Size:         size,
		ETag:         aws.ToString(out.ETag),
		LastModified: time.Now().UTC(),
		Metadata:     opts.Metadata,
	}, nil
}

// Get implements Backend.
func (b *S3) Get(ctx context.Context, bucket, key string, rng *Range) (io.ReadCloser, ObjectInfo, error) {
	bk, err := b.key(bucket, key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	in := &s3.GetObjectInput{Bucket: &b.bucket, Key: &bk}
	if rng != nil {
		if rng.Start < 0 || rng.End >= 0 && rng.End < rng.Start {
			return nil, ObjectInfo{}, fmt.Errorf("%w: bytes=%d-%d", ErrInvalidRange, rng.Start, rng.End)
		}
		h := "bytes=" + strconv.FormatInt(rng.Start, 10) + "-"
		if rng.End >= 0 {
			h += strconv.FormatInt(rng.End, 10)
		}
		in.Range = &h
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		return nil, ObjectInfo{}, s3Error("get", err)
	}
	info := ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		Metadata:     Metadata(out.Metadata),
	}
	if rng != nil {
		// "bytes 0-9/100": the whole object's size follows the slash.
		cr := aws.ToString(out.ContentRange)
		total, err := strconv.ParseInt(cr[strings.LastIndexByte(cr, '/')+1:], 10, 64)
		if err != nil {
			out.Body.Close()
			return nil, ObjectInfo{}, fmt.Errorf("backend: s3 get: bad Content-Range %q", cr)
		}
		info.Size = total
	}
	return out.Body, info, nil
}

// Head implements Backend.
func (b *S3) Head(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	bk, err := b.key(bucket, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &bk})
	if err != nil {
		return ObjectInfo{}, s3Error("head", err)
	}
	return ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		Metadata:     Metadata(out.Metadata),
	}, nil
}

// Delete implements Backend.
func (b *S3) Delete(ctx context.Context, bucket, key string) error {
	bk, err := b.key(bucket, key)
	if err != nil {
		return err
	}
	if _, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &bk}); err != nil {
		if err := s3Error("delete", err); !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// copySource encodes bucket/key for x-amz-copy-source: every byte outside
// the unreserved set and "/" is percent-encoded, which S3 and simple
// servers that query-unescape it ("+" would turn into a space) both decode.
func copySource(bucket, key string) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	sb.WriteString(bucket)
	sb.WriteByte('/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return sb.String()
}

// Copy implements Backend with CopyObject (MetadataDirective REPLACE).
// The source is examined first and the copy made conditional on its ETag,
// so the returned size belongs to the copied version. CopyObject is limited
// to 5 GiB sources by S3; larger objects fail with the service's error.
func (b *S3) Copy(ctx context.Context, src, dst Location, meta Metadata) (ObjectInfo, error) {
	sk, err := b.key(src.Bucket, src.Key)
	if err != nil {
		return ObjectInfo{}, err
	}
	dk, err := b.key(dst.Bucket, dst.Key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := validMetadata(meta); err != nil {
		return ObjectInfo{}, err
	}
	head, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &sk})
	if err != nil {
		return ObjectInfo{}, s3Error("copy", err)
	}
	if src.IfMatch != "" && aws.ToString(head.ETag) != src.IfMatch {
		return ObjectInfo{}, fmt.Errorf("%w: copy source ETag %s is not %s", ErrPreconditionFailed, aws.ToString(head.ETag), src.IfMatch)
	}
	out, err := b.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:            &b.bucket,
		Key:               &dk,
		CopySource:        aws.String(copySource(b.bucket, sk)),
		CopySourceIfMatch: head.ETag,
		MetadataDirective: types.MetadataDirectiveReplace,
		Metadata:          meta,
	})
	if err != nil {
		return ObjectInfo{}, s3Error("copy", err)
	}
	info := ObjectInfo{Key: dst.Key, Size: aws.ToInt64(head.ContentLength), Metadata: meta}
	if r := out.CopyObjectResult; r != nil {
		info.ETag = aws.ToString(r.ETag)
		info.LastModified = aws.ToTime(r.LastModified)
	}
	return info, nil
}

// List implements Backend with ListObjectsV2 under Prefix+bucket+"/".
// Common prefixes at or before After are dropped (the gateway continues a
// delimited listing after a common prefix), and backend pages are merged
// until the page is full.
func (b *S3) List(ctx context.Context, bucket string, opts ListOptions) (ListPage, error) {
	if err := validBucket(bucket); err != nil {
		return ListPage{}, err
	}
	base := b.prefix + bucket + "/"
	limit := pageSize(opts)
	in := &s3.ListObjectsV2Input{
		Bucket:       &b.bucket,
		Prefix:       aws.String(base + opts.Prefix),
		MaxKeys:      aws.Int32(int32(limit) + 1),
		EncodingType: types.EncodingTypeUrl,
	}
	if opts.Delimiter != "" {
		in.Delimiter = aws.String(opts.Delimiter)
	}
	if opts.After != "" {
		in.StartAfter = aws.String(base + opts.After)
	}
	type item struct {
		key    string
		prefix bool
		info   ObjectInfo
	}
	var items []item
	for len(items) <= limit {
		out, err := b.client.ListObjectsV2(ctx, in)
		if err != nil {
			return ListPage{}, s3Error("list", err)
		}
		decode := func(s *string) (string, bool) {
			k := aws.ToString(s)
			if out.EncodingType == types.EncodingTypeUrl {
				var err error
				if k, err = url.QueryUnescape(k); err != nil {
					return "", false
				}
			}
			return strings.CutPrefix(k, base)
		}
		var batch []item
		for _, o := range out.Contents {
			k, ok := decode(o.Key)
			if !ok {
				continue
			}
			if cp := commonPrefix(k, opts); cp != "" {
				// Roll up here too: some servers return such keys as
				// contents (gofakes3 does for a key equal to the prefix).
				if cp > opts.After {
					batch = append(batch, item{key: cp, prefix: true})
				}
				continue
			}
			if k > opts.After {
				batch = append(batch, item{key: k, info: ObjectInfo{
					Key:          k,
					Size:         aws.ToInt64(o.Size),
					ETag:         aws.ToString(o.ETag),
					LastModified: aws.ToTime(o.LastModified),
				}})
			}
		}
		for _, p := range out.CommonPrefixes {
			if k, ok := decode(p.Prefix); ok && k > opts.After {
				batch = append(batch, item{key: k, prefix: true})
			}
		}
		sort.Slice(batch, func(i, j int) bool { return batch[i].key < batch[j].key })
		for _, it := range batch {
			if n := len(items); n > 0 && items[n-1].key == it.key {
				continue // a common prefix seen on an earlier backend page
			}
			items = append(items, it)
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	var page ListPage
	if len(items) > limit {
		items = items[:limit]
		page.Truncated = true
		page.NextAfter = items[limit-1].key
	}
	for _, it := range items {
		if it.prefix {
			page.CommonPrefixes = append(page.CommonPrefixes, it.key)
		} else {
			page.Objects = append(page.Objects, it.info)
		}
	}
	return page, nil
}

// commonPrefix returns the common prefix key rolls up into, or "".
func commonPrefix(key string, opts ListOptions) string {
	if opts.Delimiter == "" || !strings.HasPrefix(key, opts.Prefix) {
		return ""
	}
	if i := strings.Index(key[len(opts.Prefix):], opts.Delimiter); i >= 0 {
		return key[:len(opts.Prefix)+i+len(opts.Delimiter)]
	}
	return ""
}

// CreateMultipart implements Backend.
func (b *S3) CreateMultipart(ctx context.Context, bucket, key string, meta Metadata) (string, error) {
	bk, err := b.key(bucket, key)
	if err != nil {
		return "", err
	}
	if err := validMetadata(meta); err != nil {
		return "", err
	}
	out, err := b.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b.bucket, Key: &bk, Metadata: meta})
	if err != nil {
		return "", s3Error("create multipart upload", err)
	}
	return aws.ToString(out.UploadId), nil
}

// UploadPart implements Backend.
func (b *S3) UploadPart(ctx context.Context, bucket, key, uploadID string, n int, r io.Reader, size int64) (Part, error) {
	bk, err := b.key(bucket, key)
	if err != nil {
		return Part{}, err
	}
	if n < 1 || n > maxPartNumber {
		return Part{}, fmt.Errorf("%w: part number %d outside 1..%d", ErrInvalidPart, n, maxPartNumber)
	}
	body, send, err := sendBody(r, size)
	if err != nil {
		return Part{}, fmt.Errorf("backend: s3 upload part: %w", err)
	}
	out, err := b.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:        &b.bucket,
		Key:           &bk,
		UploadId:      &uploadID,
		PartNumber:    aws.Int32(int32(n)),
		Body:          send,
		ContentLength: aws.Int64(size),
	}, unsignedPayload)
	if err != nil {
		return Part{}, bodyError("upload part", body, err)
	}
	return Part{Number: n, Size: size, ETag: aws.ToString(out.ETag), LastModified: time.Now().UTC()}, nil
}

// CompleteMultipart implements Backend.
func (b *S3) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []Part) (ObjectInfo, error) {
	bk, err := b.key(bucket, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if len(parts) == 0 {
		return ObjectInfo{}, fmt.Errorf("%w: no parts to complete %s", ErrInvalidPart, uploadID)
	}
	var size int64
	done := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		if i > 0 && p.Number <= parts[i-1].Number {
			return ObjectInfo{}, fmt.Errorf("%w: part %d after part %d (order must ascend)", ErrInvalidPart, p.Number, parts[i-1].Number)
		}
		done[i] = types.CompletedPart{PartNumber: aws.Int32(int32(p.Number)), ETag: aws.String(p.ETag)}
		size += p.Size
	}
	out, err := b.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &b.bucket,
		Key:             &bk,
		UploadId:        &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	})
	if err != nil {
		return ObjectInfo{}, s3Error("complete multipart upload", err)
	}
	// The response carries no size or metadata; ask rather than trust the
	// caller's part sizes.
	info, err := b.Head(ctx, bucket, key)
	if err != nil {
		return ObjectInfo{Key: key, Size: size, ETag: aws.ToString(out.ETag), LastModified: time.Now().UTC()}, nil
	}
	info.ETag = aws.ToString(out.ETag)
	return info, nil
}

// AbortMultipart implements Backend.
func (b *S3) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	bk, err := b.key(bucket, key)
	if err != nil {
		return err
	}
	if _, err := b.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: &bk, UploadId: &uploadID}); err != nil {
		return s3Error("abort multipart upload", err)
	}
	return nil
}

// ListParts implements Backend, following the service's pagination.
func (b *S3) ListParts(ctx context.Context, bucket, key, uploadID string) ([]Part, error) {
	bk, err := b.key(bucket, key)
	if err != nil {
		return nil, err
	}
	in := &s3.ListPartsInput{Bucket: &b.bucket, Key: &bk, UploadId: &uploadID}
	var parts []Part
	for {
		out, err := b.client.ListParts(ctx, in)
		if err != nil {
			return nil, s3Error("list parts", err)
		}
		for _, p := range out.Parts {
			parts = append(parts, Part{
				Number:       int(aws.ToInt32(p.PartNumber)),
				Size:         aws.ToInt64(p.Size),
				ETag:         aws.ToString(p.ETag),
				LastModified: aws.ToTime(p.LastModified),
			})
		}
		if !aws.ToBool(out.IsTruncated) || out.NextPartNumberMarker == nil {
			break
		}
		in.PartNumberMarker = out.NextPartNumberMarker
	}
	return parts, nil
}
