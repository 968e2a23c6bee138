package backend

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is S3's limit on an object key: 1024 bytes of UTF-8.
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html
const MaxKeyLen = 1024

// maxListKeys is S3's cap on one listing page (ListObjectsV2 max-keys).
const maxListKeys = 1000

// validBucket checks a gateway bucket name against S3's naming rules
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
// 3 to 63 characters of lower-case letters, digits, dots and hyphens,
// starting and ending with a letter or digit, no two adjacent dots and not
// shaped like an IPv4 address. Both backends use the name inside a path or
// a backend key, so the check is also what keeps a bucket from escaping.
func validBucket(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q %s", ErrInvalidBucket, name, why)
	}
	if len(name) < 3 || len(name) > 63 {
		return bad("must be 3 to 63 characters long")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad("may hold only lower-case letters, digits, dots and hyphens")
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return bad("must start and end with a letter or digit")
	}
	if strings.Contains(name, "..") {
		return bad("must not hold two adjacent dots")
	}
	if isIPv4(name) {
		return bad("must not be formatted as an IP address")
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// validKey checks an object key: non-empty, at most MaxKeyLen bytes, valid
// UTF-8 (S3's rules). Everything else, "..", "//", NUL and friends included,
// is a legal S3 key; each backend decides what it can store faithfully.
func validKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes exceeds %d", ErrInvalidKey, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidKey)
	}
	return nil
}

// validMetadata checks that metadata can travel as x-amz-meta-* headers and
// round-trip exactly: keys are lower-case HTTP tokens, values printable
// ASCII without leading or trailing spaces (HTTP trims those).
func validMetadata(m Metadata) error {
	for k, v := range m {
		if k == "" {
			return fmt.Errorf("backend: empty metadata key")
		}
		for i := 0; i < len(k); i++ {
			c := k[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
				return fmt.Errorf("backend: metadata key %q is not a lower-case HTTP token", k)
			}
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return fmt.Errorf("backend: metadata value of %q is not printable ASCII", k)
			}
		}
		if strings.TrimSpace(v) != v {
			return fmt.Errorf("backend: metadata value of %q has surrounding spaces", k)
		}
	}
	return nil
}

// trimETag drops the quotes around an ETag so that quoted and unquoted
// forms compare equal.
func trimETag(s string) string { return strings.Trim(s, `"`) }

// pageSize is the number of entries a listing page may hold.
func pageSize(opts ListOptions) int {
	if opts.MaxKeys <= 0 || opts.MaxKeys > maxListKeys {
		return maxListKeys
	}
	return opts.MaxKeys
}
