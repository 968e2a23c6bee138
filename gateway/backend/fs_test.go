package backend_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/gateway/backend/backendtest"
)

func newFS(t *testing.T) *backend.FS {
	t.Helper()
	b, err := backend.NewFS(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestFS_Conformance(t *testing.T) {
	backendtest.RunConformance(t, backendtest.Harness{
		New: func(t *testing.T) backend.Backend { return newFS(t) },
	})
}

// TestFS_HostileKeys stores keys that look like paths, escapes and
// traversals, and checks that each reads and lists back as itself, that no
// two collide, and that nothing lands outside the data directory.
func TestFS_HostileKeys(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	b, err := backend.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	keys := []string{
		"..", "../x", "../../etc/passwd", "a/../../b", "/abs", "//", "/", "a//b", "a/", "a", "a/b",
		".", "./", "./a", "a/./b", "a/.", "%2F..", "%2f", "%", "%25", "..%2F..%2Fx", "\\..\\x", "C:\\x",
		"nul\x00byte", "\x00", "a/\x00/b", "tab\there", "new\nline", "LPT1", "con", "Aa", "aA", "A",
		"ü", "u\u0308", "日本/語", "emoji/😀", "trailing.", "trailing ", " leading",
		strings.Repeat("x", 1024), strings.Repeat("/", 1024), strings.Repeat("../", 341),
		strings.Repeat("é", 512), strings.Repeat("%", 1024), strings.Repeat("a/", 512),
		strings.Repeat("b", 80), strings.Repeat("b", 81), strings.Repeat("b", 82), strings.Repeat("b", 80) + "/x",
		strings.Repeat("b", 81) + "/x", strings.Repeat("b", 81) + ".x", strings.Repeat("b", 162), strings.Repeat("b", 163),
		strings.Repeat("\x00", 1024),
	}
	for i, k := range keys {
		body := []byte(k + "|" + string(rune('A'+i%26)))
		if _, err := b.Put(ctx, "hostile", k, bytes.NewReader(body), int64(len(body)), backend.PutOptions{}); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	refused := []string{"", strings.Repeat("x", 1025), strings.Repeat("k", 2048), strings.Repeat("../", 700), strings.Repeat("é", 513), "bad\xff", "\xc0\xaf..", "a/\xed\xa0\x80"}
	for _, k := range refused {
		_, err := b.Put(ctx, "hostile", k, strings.NewReader("x"), 1, backend.PutOptions{})
		if !errors.Is(err, backend.ErrInvalidKey) {
			t.Fatalf("Put(%q): %v, want ErrInvalidKey", k, err)
		}
	}
	for i, k := range keys {
		rc, _, err := b.Get(ctx, "hostile", k, nil)
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if want := k + "|" + string(rune('A'+i%26)); string(got) != want {
			t.Fatalf("Get(%q) = %q: keys collided", k, got)
		}
	}
	var listed []string
	for after := ""; ; {
		page, err := b.List(ctx, "hostile", backend.ListOptions{After: after, MaxKeys: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			listed = append(listed, o.Key)
		}
		if !page.Truncated {
			break
		}
		after = page.NextAfter
	}
	want := append([]string(nil), keys...)
	sort.Strings(want) // byte order
	if strings.Join(listed, "\x01") != strings.Join(want, "\x01") {
		t.Fatalf("listing:\n got %q\nwant %q", listed, want)
	}
	for _, k := range keys {
		if err := b.Delete(ctx, "hostile", k); err != nil {
			t.Fatalf("Delete(%q): %v", k, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Nothing outside the data directory, nothing left behind inside it.
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "data" {
		t.Fatalf("parent of the data directory holds %v", ents)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			t.Errorf("symlink %s", p)
		}
		if !d.IsDir() && d.Name() != "LOCK" {
			t.Errorf("file %s remains after deleting every key", p)
		}
		return nil
	})
	bucketDir := filepath.Join(dir, "objects", "hostile")
	if ents, _ := os.ReadDir(bucketDir); len(ents) != 0 {
		t.Errorf("empty directories remain in %s: %v", bucketDir, ents)
	}
}

// TestFS_OpenCleansLeftovers checks that temp files and half-created
// uploads of a crashed process are removed at open and never listed.
func TestFS_OpenCleansLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	b, err := backend.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(t.Context(), "bkt", "kept", strings.NewReader("x"), 1, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	id, err := b.CreateMultipart(t.Context(), "bkt", "up", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backend.NewFS(dir); err == nil {
		t.Fatal("a second NewFS on a data directory in use succeeded")
	}
	b.Close()
	// Simulate a crash: a temp file and an upload without its record.
	os.WriteFile(filepath.Join(dir, "tmp", "0123"), []byte("partial"), 0o600)
	os.MkdirAll(filepath.Join(dir, "uploads", "ffffffffffffffffffffffffffffffff"), 0o700)

	b, err = backend.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp holds %v after open", ents)
	}
	if _, err := os.Stat(filepath.Join(dir, "uploads", "ffffffffffffffffffffffffffffffff")); !os.IsNotExist(err) {
		t.Errorf("half-created upload survived open: %v", err)
	}
	if _, err := b.ListParts(t.Context(), "bkt", "up", id); err != nil {
		t.Errorf("a real upload did not survive reopening: %v", err)
	}
	page, err := b.List(t.Context(), "bkt", backend.ListOptions{})
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Key != "kept" {
		t.Fatalf("List = %+v, %v", page, err)
	}
}

// TestFS_ListOrderRandomKeys checks the claim of fs_paths.go that a walk
// of the mapped tree lists keys in byte order, with keys built around the
// byte values next to "/" and segments around the continuation length.
func TestFS_ListOrderRandomKeys(t *testing.T) {
	b := newFS(t)
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "/", ".", "-", "0", "\x00", "é", "%", "~"}
	seen := map[string]bool{}
	var keys []string
	for len(keys) < 300 {
		var k strings.Builder
		for range 1 + rng.IntN(6) {
			if rng.IntN(4) == 0 {
				k.WriteString(strings.Repeat("z", 78+rng.IntN(6))) // around segMax and segChunk
			}
			k.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		if key := k.String(); !seen[key] {
			seen[key] = true
			keys = append(keys, key)
			if _, err := b.Put(t.Context(), "order", key, strings.NewReader(""), 0, backend.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sort.Strings(keys)
	for _, opts := range []backend.ListOptions{{}, {Delimiter: "/"}, {Delimiter: "z"}, {Prefix: "a", Delimiter: "/"}, {MaxKeys: 9, Delimiter: "."}} {
		for {
			got, err := b.List(t.Context(), "order", opts)
			if err != nil {
				t.Fatal(err)
			}
			want := backendtest.ExpectedPage(keys, opts)
			var gk, wk []string
			for _, o := range got.Objects {
				gk = append(gk, o.Key)
			}
			for _, o := range want.Objects {
				wk = append(wk, o.Key)
			}
			if !slices.Equal(gk, wk) || !slices.Equal(got.CommonPrefixes, want.CommonPrefixes) || got.Truncated != want.Truncated || got.NextAfter != want.NextAfter {
				t.Fatalf("List(%+v):\n got %q %q %v %q\nwant %q %q %v %q", opts, gk, got.CommonPrefixes, got.Truncated, got.NextAfter,
					wk, want.CommonPrefixes, want.Truncated, want.NextAfter)
			}
			if !got.Truncated {
				break
			}
			opts.After = got.NextAfter
		}
	}
}
