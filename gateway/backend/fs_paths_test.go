package backend

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

// decodePath inverts keyPath through decodeName, as a listing does.
func decodePath(t testing.TB, p string) string {
	var key strings.Builder
	comps := strings.Split(p, "/")
	for i, c := range comps {
		if len(c) > 255 {
			t.Fatalf("component of %d bytes exceeds the 255-byte name limit", len(c))
		}
		kind, seg, ok := decodeName(c)
		if !ok {
			t.Fatalf("component %q does not decode", c)
		}
		key.WriteString(seg)
		switch {
		case kind == kindDir:
			key.WriteByte('/')
		case kind == kindObject && i != len(comps)-1, kind != kindObject && i == len(comps)-1:
			t.Fatalf("object component %q not last in %q", c, p)
		}
	}
	return key.String()
}

func FuzzKeyPath(f *testing.F) {
	for _, seed := range []string{"a", "a/b", "a/", "/", "//", "..", "../x", "%2F..", "nul\x00", "ü/日本",
		strings.Repeat("b", 81) + "/x", strings.Repeat("/", 1024), strings.Repeat("é", 512)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if validKey(key) != nil {
			return
		}
		p := keyPath(key)
		if path.Clean(p) != p || strings.HasPrefix(p, "/") {
			t.Fatalf("keyPath(%q) = %q is not a clean relative path", key, p)
		}
		for _, c := range strings.Split(p, "/") {
			if c == "." || c == ".." || c == "" || strings.IndexByte(c, 0) >= 0 {
				t.Fatalf("keyPath(%q) has component %q", key, c)
			}
		}
		if got := decodePath(t, p); got != key {
			t.Fatalf("keyPath(%q) = %q decodes to %q", key, p, got)
		}
		if !utf8.ValidString(p) || len(p) > 3*MaxKeyLen+2*(MaxKeyLen/segMax+1)+MaxKeyLen {
			t.Fatalf("keyPath(%q) = %d bytes", key, len(p))
		}
	})
}

func TestDecodeName_RejectsNonCanonical(t *testing.T) {
	for _, name := range []string{"", "x", "oA", "o%2f", "o%61", "o%4", "o%", "o/", "c" + strings.Repeat("a", 80), "o" + strings.Repeat("a", 81), "d%2F"} {
		if _, _, ok := decodeName(name); ok {
			t.Errorf("decodeName(%q) accepted a name keyPath never writes", name)
		}
	}
}
