package envelope

import (
	"bytes"
	"errors"
	"testing"
)

func TestManifest_RoundTripsAndSizes(t *testing.T) {
	kr := NewMemoryKeyring()
	env, _ := NewMultipart(t.Context(), kr, bindA)
	parts := []PartSize{{1, 5 << 20}, {3, 5 << 20}, {10000, 17}}
	m, err := env.SealManifest(parts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := env.OpenManifest(m)
	if err != nil || l.Size() != 10<<20+17 || l.Parts() != 3 {
		t.Fatalf("layout %+v, %v", l, err)
	}
	if n, err := ManifestSize(m); err != nil || n != l.Size() {
		t.Fatalf("ManifestSize = %d, %v", n, err)
	}
}

func TestManifest_RejectsInvalidParts(t *testing.T) {
	env, _ := NewMultipart(t.Context(), NewMemoryKeyring(), bindA)
	tests := map[string][]PartSize{
		"none":            nil,
		"part 0":          {{0, 1}},
		"part 10001":      {{10001, 1}},
		"descending":      {{2, 1}, {1, 1}},
		"duplicate":       {{1, 1}, {1, 1}},
		"negative size":   {{1, -1}},
		"part over 5 GiB": {{1, MaxPartSize + 1}},
		"too many parts":  make([]PartSize, 10001),
		"object over 5TiB": func() []PartSize {
			p := make([]PartSize, 1025)
			for i := range p {
				p[i] = PartSize{i + 1, MaxPartSize}
			}
			return p
		}(),
	}
	for name, parts := range tests {
		if _, err := env.SealManifest(parts); err == nil {
			t.Errorf("%s: sealed", name)
		}
	}
}

func TestOpenManifest_FailsClosed(t *testing.T) {
	kr := NewMemoryKeyring()
	env, _ := NewMultipart(t.Context(), kr, bindA)
	other, _ := NewMultipart(t.Context(), kr, bindA)
	m, _ := env.SealManifest([]PartSize{{1, 100}, {2, 200}})
	foreign, _ := other.SealManifest([]PartSize{{1, 100}, {2, 200}})
	if _, err := env.OpenManifest(foreign); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("another object's manifest: %v", err)
	}
	for i := range m {
		for bit := range 8 {
			bad := bytes.Clone(m)
			bad[i] ^= 1 << bit
			_, err := env.OpenManifest(bad)
			if !errors.Is(err, ErrAuthentication) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("byte %d bit %d: %v", i, bit, err)
			}
		}
	}
	for _, bad := range [][]byte{nil, m[:len(m)-1], append(bytes.Clone(m), 0)} {
		if _, err := env.OpenManifest(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d-byte manifest: %v", len(bad), err)
		}
	}
}
