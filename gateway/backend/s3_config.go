package backend

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// S3Config configures the s3 backend. Flags, TOML and environment all fill
// this one struct; start from DefaultS3Config and call Validate.
type S3Config struct {
	// Endpoint is the service URL, e.g. "https://s3.eu-central-1.amazonaws.com"
	// or "http://127.0.0.1:9000". Empty means AWS's endpoint for Region.
	Endpoint string
	// Bucket is the one backend bucket that holds every gateway bucket.
	Bucket string
	// Prefix is prepended to every backend key, so that tresor can share a
	// bucket. It normally ends with "/". Gateway bucket B and key K are
	// stored at Prefix + B + "/" + K, which S3 limits to 1024 bytes: longer
	// keys are refused with ErrInvalidKey, so a long Prefix shortens the keys
	// clients may use.
	Prefix string
	// Region signs requests; most non-AWS services accept any value.
	Region string

	// AccessKeyID, SecretAccessKey and SessionToken are static credentials.
	// Leave AccessKeyID empty to use the SDK's default chain (environment,
	// shared files, web identity, instance or container roles).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	// PathStyle addresses the bucket as https://host/bucket/key instead of
	// https://bucket.host/key; most self-hosted services need it.
	PathStyle bool

	// CAFile is a PEM bundle to trust instead of the system roots.
	CAFile string
	// InsecureSkipVerify turns off TLS certificate checks. Tests only.
	InsecureSkipVerify bool

	// MaxAttempts is how many times a request is tried (the SDK's standard
	// retryer, exponential backoff with jitter up to MaxBackoff). Requests
	// that stream a body cannot be replayed and fail on the first error;
	// the gateway's client retries those.
	MaxAttempts int
	MaxBackoff  time.Duration

	// DialTimeout bounds connecting (TCP and TLS handshake).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers after a
	// request has been sent. There is no whole-request timeout: bodies may
	// be gigabytes; the caller's context ends requests.
	ResponseHeaderTimeout time.Duration

	// Jurisdiction labels where this backend keeps data (e.g. "EU", "DE")
	// for the residency checks of DESIGN.md section 7. Carried, not
	// interpreted, here.
	Jurisdiction string
}

// DefaultS3Config returns a configuration with sensible defaults; Bucket
// (and usually Endpoint and credentials) must still be set.
func DefaultS3Config() S3Config {
	return S3Config{
		Region:                "us-east-1",
		MaxAttempts:           3,
		MaxBackoff:            20 * time.Second,
		DialTimeout:           10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}
}

// Validate explains what is wrong with c, if anything.
func (c S3Config) Validate() error {
	var errs []error
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("Endpoint %q: %w", c.Endpoint, err))
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			errs = append(errs, fmt.Errorf("Endpoint %q must be an http:// or https:// URL", c.Endpoint))
		}
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("Bucket is required"))
	}
	if c.Region == "" {
		errs = append(errs, errors.New("Region is required (any value for most non-AWS services)"))
	}
	if len(c.Prefix) > MaxKeyLen-64-2 {
		errs = append(errs, fmt.Errorf("Prefix of %d bytes leaves no room for bucket and key in %d", len(c.Prefix), MaxKeyLen))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New("AccessKeyID and SecretAccessKey go together"))
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		errs = append(errs, errors.New("SessionToken needs AccessKeyID and SecretAccessKey"))
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("CAFile: %w", err))
		}
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("MaxAttempts must be at least 1, not %d", c.MaxAttempts))
	}
	if c.MaxBackoff < 0 || c.DialTimeout < 0 || c.ResponseHeaderTimeout < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("backend: invalid s3 config: %w", err)
	}
	return nil
}
