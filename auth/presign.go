package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Query parameters of a presigned URL ("Authenticating Requests: Using Query
// Parameters (AWS Signature Version 4)").
const (
	queryAlgorithm     = "X-Amz-Algorithm"
	queryCredential    = "X-Amz-Credential"
	queryDate          = "X-Amz-Date"
	queryExpires       = "X-Amz-Expires"
	querySignedHeaders = "X-Amz-SignedHeaders"
	querySignature     = "X-Amz-Signature"

	// maxPresignExpiry is the longest X-Amz-Expires S3 accepts: 604800
	// seconds, seven days.
	maxPresignExpiry = 7 * 24 * time.Hour
)

// isPresigned reports whether the query carries SigV4 query authentication.
func isPresigned(q url.Values) bool {
	return q.Has(queryAlgorithm) || q.Has(querySignature) || q.Has(queryCredential)
}

// isPresignedV2 reports whether the query carries SigV2 query authentication,
// which is refused.
func isPresignedV2(q url.Values) bool {
	return q.Has("AWSAccessKeyId") && q.Has("Signature")
}

// parsePresigned parses and checks the form of the six X-Amz-* parameters.
// Each must appear exactly once.
func parsePresigned(q url.Values) (request, error) {
	p := request{presigned: true}
	get := func(name string) (string, error) {
		vs := q[name]
		if len(vs) != 1 {
			return "", fmt.Errorf("query parameter %s appears %d times", name, len(vs))
		}
		return vs[0], nil
	}
	var vals [6]string
	for i, name := range []string{queryAlgorithm, queryCredential, queryDate, queryExpires, querySignedHeaders, querySignature} {
		v, err := get(name)
		if err != nil {
			return p, err
		}
		vals[i] = v
	}
	if vals[0] != algorithm {
		return p, fmt.Errorf("X-Amz-Algorithm %q is not %s", truncate(vals[0]), algorithm)
	}
	c, err := parseCredential(vals[1])
	if err != nil {
		return p, err
	}
	p.cred = c
	t, err := time.Parse(amzDateFormat, vals[2])
	if err != nil {
		return p, fmt.Errorf("X-Amz-Date %q is not ISO 8601 basic format", truncate(vals[2]))
	}
	p.amzDate, p.time = vals[2], t
	secs, err := strconv.ParseInt(vals[3], 10, 64)
	if err != nil {
		return p, errors.New("X-Amz-Expires should be a number")
	}
	if secs < 1 || secs > int64(maxPresignExpiry/time.Second) {
		return p, errors.New("X-Amz-Expires must be between 1 and 604800 seconds (seven days)")
	}
	p.expires = time.Duration(secs) * time.Second
	if p.signedHeaders, err = parseSignedHeaders(vals[4]); err != nil {
		return p, err
	}
	if p.signature, err = parseSignature(vals[5]); err != nil {
		return p, err
	}
	return p, nil
}
