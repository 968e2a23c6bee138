package gateway

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tresor-gw/tresor/gateway/backend"
)

// benchSize is the object size of the end-to-end benchmarks.
const benchSize = 64 << 20

// The gateway's benchmarks run beside their ceiling, the fs backend used
// directly with the same bytes, so that one run shows what encryption,
// SigV4 and HTTP cost:
//
//	go test -run '^$' -bench 'Gateway|BackendDirect' ./gateway

func BenchmarkGatewayPut(b *testing.B) {
	c := benchGateway(b)
	body := randomBytes(b, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGatewayGet(b *testing.B) {
	c := benchGateway(b)
	body := randomBytes(b, benchSize)
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	for b.Loop() {
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String("k")})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, out.Body); err != nil {
			b.Fatal(err)
		}
		out.Body.Close()
	}
}

func BenchmarkBackendDirectPut(b *testing.B) {
	be, err := backend.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	body := randomBytes(b, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := be.Put(context.Background(), "bench", "k", bytes.NewReader(body), benchSize, backend.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBackendDirectGet(b *testing.B) {
	be, err := backend.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	if _, err := be.Put(context.Background(), "bench", "k", bytes.NewReader(randomBytes(b, benchSize)), benchSize, backend.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	for b.Loop() {
		rc, _, err := be.Get(context.Background(), "bench", "k", nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// benchGateway is a plain-HTTP gateway on the fs backend with bucket
// "bench", and an SDK client that sends plain bodies with a signed
// payload hash (its default over HTTP).
func benchGateway(b *testing.B) *s3.Client {
	b.Helper()
	c := newTestGateway(b, "fs", false).client()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}
	return c
}
