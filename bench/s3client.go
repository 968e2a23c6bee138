package bench

import (
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// NewS3Client returns an aws-sdk-go-v2 client for a gateway at endpoint
// (http://127.0.0.1:port) with path-style addressing. It never retries: the
// load decides what a failure means and the timeline must show each
// request as it happened. timeout bounds each request, so a paused gateway
// (SIGSTOP) shows up as failures instead of stalling the load forever.
func NewS3Client(endpoint, id, secret string, timeout time.Duration) *s3.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     30 * time.Second,
	}
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Transport: tr, Timeout: timeout},
	})
}
