package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/keystore"
)

// staleBackend answers the next stale Gets and Heads of one key with an
// earlier version of it: what a reader sees when it fetched the object
// just before an overwrite completed, while the keystore already holds the
// new write's manifest.
type staleBackend struct {
	backend.Backend
	mu    sync.Mutex
	key   string
	body  []byte
	info  backend.ObjectInfo
	stale int
	// getsOnly leaves Head alone: every GET meets a fresh overwrite.
	getsOnly bool
	// rangedOnly answers only ranged Gets from the earlier version: the
	// object was overwritten between a range GET's HEAD and its GET.
	rangedOnly bool
}

func (b *staleBackend) arm(key string, body []byte, info backend.ObjectInfo, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.key, b.body, b.info, b.stale = key, body, info, n
}

func (b *staleBackend) take(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if key != b.key || b.stale == 0 {
		return false
	}
	b.stale--
	return true
}

func (b *staleBackend) Get(ctx context.Context, bucket, key string, rng *backend.Range) (io.ReadCloser, backend.ObjectInfo, error) {
	switch {
	case rng == nil && !b.rangedOnly && b.take(key):
		return io.NopCloser(bytes.NewReader(b.body)), b.info, nil
	case rng != nil && b.rangedOnly && b.take(key):
		end := min(rng.End+1, int64(len(b.body)))
		return io.NopCloser(bytes.NewReader(b.body[rng.Start:end])), b.info, nil
	}
	return b.Backend.Get(ctx, bucket, key, rng)
}

func (b *staleBackend) Head(ctx context.Context, bucket, key string) (backend.ObjectInfo, error) {
	if !b.getsOnly && !b.rangedOnly && b.take(key) {
		return b.info, nil
	}
	return b.Backend.Head(ctx, bucket, key)
}

// countingClient counts the requests an SDK client sends.
type countingClient struct {
	c *http.Client
	n *atomic.Int32
}

func (c countingClient) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.c.Do(r)
}

// A read that meets an overwrite of a multipart object (its backend
// version from before, the keystore's manifest from after) starts over and
// serves the new version; it is neither an integrity failure (500) nor
// served from the old version under the wrong manifest. Reads that keep
// meeting overwrites get a retryable 503, and a read whose object was
// deleted meanwhile gets NoSuchKey.
func TestGateway_ReadRacingOverwrite(t *testing.T) {
	fs, _ := newTestBackend(t, "fs")
	be := &staleBackend{Backend: fs}
	g := newTestGatewayWith(t, keystore.OpenTest(t), be, false)
	// No SDK retries: a request that fails must not pass on its second try.
	c := g.client(func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	bucket := "overwrites"
	mustCreateBucket(t, c, bucket)

	putMultipart := func(key string, body []byte) {
		t.Helper()
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	v1 := []byte(strings.Repeat("version one ", 100))
	v2 := []byte(strings.Repeat("version two, longer ", 100))
	// prepare writes version 1, keeps its stored form, writes version 2
	// and arms the backend to answer n reads with version 1. With forget,
	// version 1's manifest is gone from the key's set, as if many later
	// versions had pushed it out: version 1 can no longer be opened.
	prepare := func(key string, n int, forget bool) {
		t.Helper()
		putMultipart(key, v1)
		body, info, err := fs.Get(ctx, bucket, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		old, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			t.Fatal(err)
		}
		first, err := g.store.ManifestSet(ctx, bucket, key)
		if err != nil {
			t.Fatal(err)
		}
		putMultipart(key, v2)
		if forget {
			tn, err := g.store.Bucket(ctx, bucket)
			if err != nil {
				t.Fatal(err)
			}
			if err := g.store.DeleteManifests(ctx, tn.Tenant, bucket, key, first.Digests()); err != nil {
				t.Fatal(err)
			}
		}
		be.arm(key, old, info, n)
	}

	tests := []struct {
		name string
		read func(key string) ([]byte, error)
	}{
		{"GET", func(key string) ([]byte, error) {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				return nil, err
			}
			defer out.Body.Close()
			return io.ReadAll(out.Body)
		}},
		{"ranged GET", func(key string) ([]byte, error) {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String("bytes=0-")})
			if err != nil {
				return nil, err
			}
			defer out.Body.Close()
			return io.ReadAll(out.Body)
		}},
		{"HEAD", func(key string) ([]byte, error) {
			out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				return nil, err
			}
			return bytes.Repeat([]byte{'?'}, int(aws.ToInt64(out.ContentLength))), nil
		}},
		{"CopyObject", func(key string) ([]byte, error) {
			dst := key + "-copy"
			if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: &dst, CopySource: aws.String(bucket + "/" + key)}); err != nil {
				return nil, err
			}
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &dst})
			if err != nil {
				return nil, err
			}
			defer out.Body.Close()
			return io.ReadAll(out.Body)
		}},
	}
	tests = append(tests, struct {
		name string
		read func(key string) ([]byte, error)
	}{"UploadPartCopy", func(key string) ([]byte, error) {
		dst := key + "-part-copy"
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &dst})
		if err != nil {
			return nil, err
		}
		part, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &bucket, Key: &dst, UploadId: up.UploadId,
			PartNumber: aws.Int32(1), CopySource: aws.String(bucket + "/" + key)})
		if err != nil {
			return nil, err
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &dst, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.CopyPartResult.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
			return nil, err
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &dst})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}})
	// A read that fetched version 1 just before version 2 completed
	// serves version 1 whole (its manifest is still in the key's set), or,
	// once version 1 cannot be opened any more, starts over and serves
	// version 2: one whole version either way, as from S3.
	for _, forget := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/forgotten=%v", tt.name, forget), func(t *testing.T) {
				key := fmt.Sprintf("racy-%s-%v", strings.ReplaceAll(tt.name, " ", "-"), forget)
				prepare(key, 1, forget)
				got, err := tt.read(key)
				if err != nil {
					t.Fatalf("read racing an overwrite: %v (%s)", err, apiCode(err))
				}
				// A copy copies what the backend holds, and a range GET
				// reads its packages with a second request, which meets
				// version 2 and starts over.
				want := v1
				if forget || tt.name == "CopyObject" || tt.name == "ranged GET" || tt.name == "UploadPartCopy" {
					want = v2
				}
				if tt.name == "HEAD" {
					if len(got) != len(want) {
						t.Fatalf("HEAD says %d bytes, want %d", len(got), len(want))
					}
					return
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("read %d bytes, want the %d of that version", len(got), len(want))
				}
			})
		}
	}

	t.Run("overwritten at every attempt", func(t *testing.T) {
		key := "racy-forever"
		prepare(key, 1000, true)
		be.getsOnly = true
		defer func() { be.getsOnly = false }()
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key},
			func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			out.Body.Close()
			t.Fatal("served an object that never matched its manifest")
		}
		if code := apiCode(err); code != "ServiceUnavailable" {
			t.Fatalf("got %s (%v), want the retryable ServiceUnavailable", code, err)
		}
	})

	// Overwritten between a range GET's HEAD (envelope and layout) and
	// its ranged GET (the packages), here with a single-part object: the
	// packages of the old version are never decrypted under the new
	// envelope, the read starts over.
	t.Run("ranged GET overwritten between its two requests", func(t *testing.T) {
		key := "racy-between"
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(strings.Repeat("old ", 50))}); err != nil {
			t.Fatal(err)
		}
		body, info, err := fs.Get(ctx, bucket, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		old, _ := io.ReadAll(body)
		body.Close()
		want := strings.Repeat("new ", 50)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(want)}); err != nil {
			t.Fatal(err)
		}
		be.rangedOnly = true
		defer func() { be.rangedOnly = false }()
		be.arm(key, old, info, 1)
		// One request: no retry, by the SDK or by net/http's transport
		// (which resends an idempotent request on a reused connection that
		// closed before answering), may be what rescues it.
		var sent atomic.Int32
		fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String("bytes=4-11")},
			func(o *s3.Options) {
				o.RetryMaxAttempts = 1
				o.HTTPClient = countingClient{fresh, &sent}
			})
		if err != nil {
			t.Fatalf("range GET racing an overwrite: %v", err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || string(got) != want[4:12] || sent.Load() != 1 {
			t.Fatalf("range GET racing an overwrite read %q, %v in %d requests; want %q in one", got, err, sent.Load(), want[4:12])
		}
	})

	// The same mismatch with no overwrite behind it is an integrity
	// failure: the object is not served.
	t.Run("stale for good", func(t *testing.T) {
		key := "racy-stale"
		prepare(key, 1000, true)
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key},
			func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		if code := apiCode(err); code != "InternalError" {
			t.Fatalf("got %s (%v), want InternalError", code, err)
		}
		be.arm("", nil, backend.ObjectInfo{}, 0)
	})

	t.Run("deleted meanwhile", func(t *testing.T) {
		key := "racy-deleted"
		prepare(key, 1, true)
		if err := fs.Delete(ctx, bucket, key); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if code := apiCode(err); code != "NoSuchKey" {
			t.Fatalf("got %s (%v), want NoSuchKey", code, err)
		}
	})
}

// A client that retries CompleteMultipartUpload after losing the first
// answer (a timeout, a node failing over) gets the first completion's
// answer, as from S3, even once later uploads overwrote the object; an
// upload that was aborted or never existed is NoSuchUpload.
func TestGateway_RetriedCompletion(t *testing.T) {
	for _, kind := range backends {
		t.Run(kind, func(t *testing.T) {
			g := newTestGateway(t, kind, false)
			c := g.client()
			ctx := context.Background()
			bucket := "retries"
			mustCreateBucket(t, c, bucket)

			start := func(key string, v ...string) (*string, []types.CompletedPart) {
				t.Helper()
				up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
				if err != nil {
					t.Fatal(err)
				}
				part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
					PartNumber: aws.Int32(1), Body: strings.NewReader("the only part of " + key + strings.Join(v, ""))})
				if err != nil {
					t.Fatal(err)
				}
				return up.UploadId, []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}
			}
			complete := func(key string, id *string, parts []types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
				return c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: id,
					MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
			}

			key := "once"
			id, parts := start(key)
			first, err := complete(key, id, parts)
			if err != nil {
				t.Fatal(err)
			}
			again, err := complete(key, id, parts)
			if err != nil {
				t.Fatalf("retried completion: %v", err)
			}
			if aws.ToString(again.ETag) != aws.ToString(first.ETag) {
				t.Fatalf("retried completion answers ETag %s, the first %s", aws.ToString(again.ETag), aws.ToString(first.ETag))
			}
			if body, _ := getAll(t, c, bucket, key, ""); string(body) != "the only part of once" {
				t.Fatalf("object after a retried completion: %q", body)
			}

			// Overwritten by a later upload since: the retry still gets
			// its own answer, and the object stays the later one.
			id2, parts2 := start(key, ", version two")
			second, err := complete(key, id2, parts2)
			if err != nil || aws.ToString(second.ETag) == aws.ToString(first.ETag) {
				t.Fatalf("second upload: %v, %v", second, err)
			}
			again, err = complete(key, id, parts)
			if err != nil || aws.ToString(again.ETag) != aws.ToString(first.ETag) {
				t.Fatalf("completion retried after an overwrite: %v, %v; want ETag %s", err, again, aws.ToString(first.ETag))
			}
			if body, _ := getAll(t, c, bucket, key, ""); string(body) != "the only part of once, version two" {
				t.Fatalf("object after a late retry: %q", body)
			}

			// Aborted, and never existing.
			id3, parts3 := start("aborted")
			if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: aws.String("aborted"), UploadId: id3}); err != nil {
				t.Fatal(err)
			}
			if _, err := complete("aborted", id3, parts3); apiCode(err) != "NoSuchUpload" {
				t.Fatalf("completing an aborted upload: %v, want NoSuchUpload", err)
			}
			if _, err := complete(key, aws.String("no-such-upload-id"), parts); apiCode(err) != "NoSuchUpload" {
				t.Fatalf("completing an unknown upload: %v, want NoSuchUpload", err)
			}
		})
	}
}

// Readers of a multipart object that writers keep overwriting by multipart
// uploads see one whole version or another, never an error: a read may
// straddle a completion (its manifest read before the completion commits,
// the upload sessions after), and must look again rather than fail.
func TestGateway_ReadsDuringMultipartOverwrites(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	g := newTestGateway(t, "fs", false)
	c := g.client()
	ctx := context.Background()
	bucket, key := "busy", "hot"
	mustCreateBucket(t, c, bucket)
	version := func(v int) []byte { return []byte(strings.Repeat(fmt.Sprintf("version %04d ", v), 40)) }
	put := func(v int) error {
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return err
		}
		part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(version(v))})
		if err != nil {
			return err
		}
		_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}})
		return err
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	const writers, versions, readers = 2, 60, 4
	var wg sync.WaitGroup
	var done atomic.Bool
	for w := range writers {
		wg.Go(func() {
			for v := 1; v <= versions; v++ {
				if err := put(w*versions + v); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	var reads, failures atomic.Int64
	var rg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			for !done.Load() {
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
				if err != nil {
					failures.Add(1)
					t.Errorf("read during overwrites: %v", err)
					continue
				}
				b, err := io.ReadAll(out.Body)
				out.Body.Close()
				reads.Add(1)
				if err != nil || len(b) != len(version(0)) || !bytes.HasPrefix(b, []byte("version ")) {
					t.Errorf("read %d bytes (%v): not one whole version", len(b), err)
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	rg.Wait()
	t.Logf("%d reads during %d overwrites, %d failed", reads.Load(), writers*versions, failures.Load())
}
