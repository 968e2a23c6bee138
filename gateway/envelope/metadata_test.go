package envelope

import (
	"bytes"
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestMetadata_RoundTrips(t *testing.T) {
	env, _ := New(t.Context(), NewMemoryKeyring(), bindA, 1)
	for _, meta := range []map[string]string{
		{},
		{"content-type": "image/jpeg", "content-disposition": `attachment; filename="cat.jpg"`,
			"content-encoding": "gzip", "content-language": "de", "cache-control": "no-cache",
			"expires": "Wed, 21 Oct 2026 07:28:00 GMT", "x-amz-meta-owner": "Zoë", "x-amz-meta-empty": ""},
	} {
		v, err := env.SealMetadata(meta)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != SealedMetadataSize(meta) {
			t.Fatalf("sealed %d characters, SealedMetadataSize says %d", len(v), SealedMetadataSize(meta))
		}
		got, err := env.OpenMetadata(v)
		if err != nil || !maps.Equal(got, meta) {
			t.Fatalf("got %v, %v; want %v", got, err, meta)
		}
	}
}

func TestMetadata_FailsClosed(t *testing.T) {
	kr := NewMemoryKeyring()
	env, _ := New(t.Context(), kr, bindA, 1)
	other, _ := New(t.Context(), kr, bindA, 1)
	v, _ := env.SealMetadata(map[string]string{"content-type": "text/plain"})
	if _, err := other.OpenMetadata(v); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("another object's blob: %v", err)
	}
	raw, _ := encoding.DecodeString(v)
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x10
		if _, err := env.OpenMetadata(encoding.EncodeToString(bad)); !errors.Is(err, ErrAuthentication) && !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, bad := range []string{"", "!!", v[:10], v[:20] + "\n" + v[20:], strings.Repeat("A", 4096)} {
		if _, err := env.OpenMetadata(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestMetadata_RefusesMoreThanTheBackendHolds(t *testing.T) {
	env, _ := New(t.Context(), NewMemoryKeyring(), bindA, 1)
	if _, err := env.SealMetadata(map[string]string{"x-amz-meta-a": strings.Repeat("a", MaxBackendMetadata)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
}

func TestParseMetadata_IsStrict(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":         {},
		"count only 1":  {0},
		"short name":    {0, 1, 0, 5, 'a'},
		"unsorted":      {0, 2, 0, 1, 'b', 0, 0, 0, 1, 'a', 0, 0},
		"duplicate":     {0, 2, 0, 1, 'a', 0, 0, 0, 1, 'a', 0, 0},
		"trailing byte": {0, 0, 7},
	} {
		if _, err := parseMetadata(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
