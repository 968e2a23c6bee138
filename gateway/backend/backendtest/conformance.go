// Package backendtest holds the conformance suite every backend.Backend
// must pass. Packages that wrap or implement a Backend run it against their
// own construction with RunConformance.
package backendtest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tresor-gw/tresor/gateway/backend"
)

// Harness describes the backend under test.
type Harness struct {
	// New returns an empty backend; it is called once per sub-test.
	New func(t *testing.T) backend.Backend
	// Skip names sub-tests (as in t.Run) this backend cannot run, with the
	// reason, e.g. a limitation of a fake server. Skipped checks are
	// reported, never weakened.
	Skip map[string]string
}

// RunConformance runs the whole suite against h.
func RunConformance(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend.Backend)
	}{
		{"PutGetHeadDelete", testPutGetHeadDelete},
		{"Overwrite", testOverwrite},
		{"OverwriteReplacesMetadata", testOverwriteMetadata},
		{"ReadDuringOverwrite", testReadDuringOverwrite},
		{"Ranges", testRanges},
		{"MetadataRoundTrip", testMetadata},
		{"EmptyObject", testEmpty},
		{"Copy", testCopy},
		{"InvalidNames", testInvalidNames},
		{"List", testList},
		{"ListUnknownBucket", testListUnknownBucket},
		{"Multipart", testMultipart},
		{"MultipartETag", testMultipartETag},
		{"MultipartErrors", testMultipartErrors},
		{"ConditionalPut", testConditionalPut},
		{"BodyLengthMismatch", testBodyLengthMismatch},
		{"CancelMidBody", testCancelMidBody},
		{"ConcurrentReadersWriters", testConcurrency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := h.Skip[tc.name]; ok {
				t.Skip(why)
			}
			tc.fn(t, h.New(t))
		})
	}
}

const bucket = "conformance"

func ctx(t *testing.T) context.Context { return t.Context() }

func quotedMD5(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

func data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, b backend.Backend, key string, body []byte, meta backend.Metadata) backend.ObjectInfo {
	t.Helper()
	info, err := b.Put(ctx(t), bucket, key, bytes.NewReader(body), int64(len(body)), backend.PutOptions{Metadata: meta})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func get(t *testing.T, b backend.Backend, key string, rng *backend.Range) ([]byte, backend.ObjectInfo) {
	t.Helper()
	rc, info, err := b.Get(ctx(t), bucket, key, rng)
	if err != nil {
		t.Fatalf("Get(%q, %v): %v", key, rng, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q) read: %v", key, err)
	}
	return got, info
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func sameMeta(a, b backend.Metadata) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func testPutGetHeadDelete(t *testing.T, b backend.Backend) {
	body := data(1, 70_000)
	meta := backend.Metadata{"tresor-envelope": "AAECAwQ="}
	info := put(t, b, "dir/obj.bin", body, meta)
	if info.Size != int64(len(body)) || info.ETag != quotedMD5(body) {
		t.Fatalf("Put info = %+v, want size %d ETag %s", info, len(body), quotedMD5(body))
	}
	got, ginfo := get(t, b, "dir/obj.bin", nil)
	if !bytes.Equal(got, body) {
		t.Fatal("Get returned different bytes")
	}
	if ginfo.Size != info.Size || ginfo.ETag != info.ETag || !sameMeta(ginfo.Metadata, meta) {
		t.Fatalf("Get info = %+v, want %+v", ginfo, info)
	}
	hinfo, err := b.Head(ctx(t), bucket, "dir/obj.bin")
	if err != nil {
		t.Fatal(err)
	}
	if hinfo.Size != info.Size || hinfo.ETag != info.ETag || !sameMeta(hinfo.Metadata, meta) || hinfo.LastModified.IsZero() {
		t.Fatalf("Head info = %+v, want %+v", hinfo, info)
	}
	if err := b.Delete(ctx(t), bucket, "dir/obj.bin"); err != nil {
		t.Fatal(err)
	}
	_, _, err = b.Get(ctx(t), bucket, "dir/obj.bin", nil)
	wantErr(t, "Get after Delete", err, backend.ErrNotFound)
	_, err = b.Head(ctx(t), bucket, "dir/obj.bin")
	wantErr(t, "Head after Delete", err, backend.ErrNotFound)
	if err := b.Delete(ctx(t), bucket, "dir/obj.bin"); err != nil {
		t.Fatalf("Delete of a missing object: %v, want nil", err)
	}
	_, err = b.Head(ctx(t), bucket, "never-written")
	wantErr(t, "Head of a missing object", err, backend.ErrNotFound)
}

func testOverwrite(t *testing.T, b backend.Backend) {
	put(t, b, "k", data(1, 5000), backend.Metadata{"v": "1"})
	v2 := data(2, 1234)
	put(t, b, "k", v2, backend.Metadata{"v": "2"})
	got, info := get(t, b, "k", nil)
	if !bytes.Equal(got, v2) || info.Size != int64(len(v2)) || info.ETag != quotedMD5(v2) || info.Metadata["v"] != "2" {
		t.Fatalf("after overwrite got %d bytes, info %+v", len(got), info)
	}
}

func testOverwriteMetadata(t *testing.T, b backend.Backend) {
	put(t, b, "k", data(1, 10), backend.Metadata{"one": "1", "both": "a"})
	put(t, b, "k", data(2, 10), backend.Metadata{"two": "2", "both": "b"})
	_, info := get(t, b, "k", nil)
	if want := (backend.Metadata{"two": "2", "both": "b"}); !sameMeta(info.Metadata, want) {
		t.Fatalf("metadata after overwrite = %v, want %v (old keys must go)", info.Metadata, want)
	}
}

// testReadDuringOverwrite checks that a reader that has started keeps
// reading the version it opened, whole, while the key is replaced.
func testReadDuringOverwrite(t *testing.T, b backend.Backend) {
	old := data(5, 1<<20)
	put(t, b, "k", old, nil)
	rc, _, err := b.Get(ctx(t), bucket, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 100)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	put(t, b, "k", data(6, 1<<19), nil)
	if err := b.Delete(ctx(t), bucket, "k"); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(head, rest...), old) {
		t.Fatal("a reader saw bytes of the object that replaced the one it opened")
	}
}

func testRanges(t *testing.T, b backend.Backend) {
	body := data(3, 1000)
	put(t, b, "r", body, nil)
	for _, tc := range []struct {
		rng        backend.Range
		start, end int // expected slice
	}{
		{backend.Range{Start: 0, End: 0}, 0, 1},
		{backend.Range{Start: 10, End: 19}, 10, 20},
		{backend.Range{Start: 990, End: -1}, 990, 1000},
		{backend.Range{Start: 999, End: 999}, 999, 1000},
		{backend.Range{Start: 0, End: 999}, 0, 1000},
		{backend.Range{Start: 500, End: 5000}, 500, 1000},
	} {
		got, info := get(t, b, "r", &tc.rng)
		if !bytes.Equal(got, body[tc.start:tc.end]) {
			t.Errorf("range %+v: got %d bytes, want body[%d:%d]", tc.rng, len(got), tc.start, tc.end)
		}
		if info.Size != 1000 {
			t.Errorf("range %+v: info.Size = %d, want the whole object's 1000", tc.rng, info.Size)
		}
	}
	for _, rng := range []backend.Range{{Start: 1000, End: -1}, {Start: 1000, End: 1001}, {Start: 5000, End: 6000}} {
		_, _, err := b.Get(ctx(t), bucket, "r", &rng)
		wantErr(t, fmt.Sprintf("range %+v", rng), err, backend.ErrInvalidRange)
	}
	put(t, b, "empty", nil, nil)
	_, _, err := b.Get(ctx(t), bucket, "empty", &backend.Range{Start: 0, End: -1})
	wantErr(t, "range of an empty object", err, backend.ErrInvalidRange)
	_, _, err = b.Get(ctx(t), bucket, "missing", &backend.Range{Start: 0, End: 1})
	wantErr(t, "range of a missing object", err, backend.ErrNotFound)
}

func testMetadata(t *testing.T, b backend.Backend) {
	meta := backend.Metadata{
		"tresor-envelope": "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QA==",
		"tresor-sealed":   strings.Repeat("+/9z", 200) + "==",
		"x":               "with inner  spaces, commas; and \"quotes\"",
		"dash-and_under":  "~!@#$%^&*()",
	}
	put(t, b, "m", []byte("x"), meta)
	_, info := get(t, b, "m", nil)
	if !sameMeta(info.Metadata, meta) {
		t.Fatalf("Get metadata = %q, want %q", info.Metadata, meta)
	}
	h, err := b.Head(ctx(t), bucket, "m")
	if err != nil {
		t.Fatal(err)
	}
	if !sameMeta(h.Metadata, meta) {
		t.Fatalf("Head metadata = %q, want %q", h.Metadata, meta)
	}
}

func testEmpty(t *testing.T, b backend.Backend) {
	info := put(t, b, "empty", nil, backend.Metadata{"k": "v"})
	if info.Size != 0 || info.ETag != `"d41d8cd98f00b204e9800998ecf8427e"` {
		t.Fatalf("empty Put info = %+v", info)
	}
	got, ginfo := get(t, b, "empty", nil)
	if len(got) != 0 || ginfo.Size != 0 || !sameMeta(ginfo.Metadata, backend.Metadata{"k": "v"}) {
		t.Fatalf("empty Get: %d bytes, info %+v", len(got), ginfo)
	}
}

func testCopy(t *testing.T, b backend.Backend) {
	body := data(4, 300_000)
	put(t, b, "src/a+b c", body, backend.Metadata{"tresor-envelope": "old"})
	dst := backend.Location{Bucket: "other-bucket", Key: "dst/copy"}
	info, err := b.Copy(ctx(t), backend.Location{Bucket: bucket, Key: "src/a+b c"}, dst, backend.Metadata{"tresor-envelope": "new"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(body)) || info.ETag == "" {
		t.Fatalf("Copy info = %+v", info)
	}
	rc, ginfo, err := b.Get(ctx(t), dst.Bucket, dst.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) || !sameMeta(ginfo.Metadata, backend.Metadata{"tresor-envelope": "new"}) {
		t.Fatalf("copy holds %d bytes, metadata %v", len(got), ginfo.Metadata)
	}
	_, sinfo := get(t, b, "src/a+b c", nil)
	if !sameMeta(sinfo.Metadata, backend.Metadata{"tresor-envelope": "old"}) {
		t.Fatalf("source metadata changed to %v", sinfo.Metadata)
	}

	// Copy onto itself re-wraps the envelope (DESIGN.md section 3).
	self := backend.Location{Bucket: bucket, Key: "src/a+b c"}
	if _, err := b.Copy(ctx(t), self, self, backend.Metadata{"tresor-envelope": "rewrapped"}); err != nil {
		t.Fatal(err)
	}
	got, sinfo = get(t, b, "src/a+b c", nil)
	if !bytes.Equal(got, body) || !sameMeta(sinfo.Metadata, backend.Metadata{"tresor-envelope": "rewrapped"}) {
		t.Fatalf("self copy: %d bytes, metadata %v", len(got), sinfo.Metadata)
	}

	_, err = b.Copy(ctx(t), backend.Location{Bucket: bucket, Key: "missing"}, dst, nil)
	wantErr(t, "Copy of a missing object", err, backend.ErrNotFound)

	// IfMatch copies only the named version of the source, and leaves the
	// destination alone otherwise.
	cur := backend.Location{Bucket: bucket, Key: "src/a+b c", IfMatch: sinfo.ETag}
	if _, err := b.Copy(ctx(t), cur, dst, backend.Metadata{"tresor-envelope": "matched"}); err != nil {
		t.Fatalf("Copy with the source's ETag: %v", err)
	}
	stale := backend.Location{Bucket: bucket, Key: "src/a+b c", IfMatch: `"0123456789abcdef0123456789abcdef"`}
	_, err = b.Copy(ctx(t), stale, dst, backend.Metadata{"tresor-envelope": "stale"})
	wantErr(t, "Copy of another version", err, backend.ErrPreconditionFailed)
	drc, dinfo, err := b.Get(ctx(t), dst.Bucket, dst.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	drc.Close()
	if !sameMeta(dinfo.Metadata, backend.Metadata{"tresor-envelope": "matched"}) {
		t.Fatalf("a refused copy changed the destination: %v", dinfo.Metadata)
	}
}

func testInvalidNames(t *testing.T, b backend.Backend) {
	for _, name := range []string{"", "ab", "UPPER", "under_score", "-lead", "trail-", "a..b", "192.168.1.1", strings.Repeat("a", 64), "with/slash", "../up"} {
		_, err := b.Put(ctx(t), name, "k", strings.NewReader("x"), 1, backend.PutOptions{})
		wantErr(t, fmt.Sprintf("Put to bucket %q", name), err, backend.ErrInvalidBucket)
		_, err = b.List(ctx(t), name, backend.ListOptions{})
		wantErr(t, fmt.Sprintf("List of bucket %q", name), err, backend.ErrInvalidBucket)
	}
	for _, key := range []string{"", strings.Repeat("k", backend.MaxKeyLen+1), "bad\xffutf8"} {
		_, err := b.Put(ctx(t), bucket, key, strings.NewReader("x"), 1, backend.PutOptions{})
		wantErr(t, fmt.Sprintf("Put of key %.20q", key), err, backend.ErrInvalidKey)
		_, _, err = b.Get(ctx(t), bucket, key, nil)
		wantErr(t, fmt.Sprintf("Get of key %.20q", key), err, backend.ErrInvalidKey)
	}
}

func testListUnknownBucket(t *testing.T, b backend.Backend) {
	page, err := b.List(ctx(t), "never-used", backend.ListOptions{})
	if err != nil || len(page.Objects) != 0 || len(page.CommonPrefixes) != 0 || page.Truncated {
		t.Fatalf("List of an unknown bucket = %+v, %v; want empty", page, err)
	}
}

// listKeys is a key set with the shapes that trip listings: keys that are
// prefixes of others, empty segments, neighbours of "/" in byte order,
// multi-byte UTF-8, and a wide flat directory.
func listKeys() []string {
	keys := []string{
		"a", "a/", "a/b", "a//b", "a/b/c", "a-b", "a.b", "a0", "a/b-c", "a/b.c", "a/b0",
		"b", "b/x", "b/y/z", "c.txt", "d/", "d/e/", "d/e/f", "zz/ü", "zz/é/1", "zz/日本",
		"%2F..", "+plus", " space", "~tilde", "..", "./x",
	}
	for i := range 120 {
		keys = append(keys, fmt.Sprintf("flat/%04d", i))
	}
	for i := range 40 {
		keys = append(keys, fmt.Sprintf("deep/%d/%d/leaf", i%4, i))
	}
	return keys
}

// ExpectedPage computes the page a backend holding exactly keys (sorted in
// byte order) must return for opts: the reference the List checks compare
// against.
func ExpectedPage(keys []string, opts backend.ListOptions) backend.ListPage {
	limit := opts.MaxKeys
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var page backend.ListPage
	var items []string
	var isPrefix []bool
	for _, k := range keys {
		if !strings.HasPrefix(k, opts.Prefix) {
			continue
		}
		item, cp := k, false
		if opts.Delimiter != "" {
			if i := strings.Index(k[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				item, cp = k[:len(opts.Prefix)+i+len(opts.Delimiter)], true
			}
		}
		if item <= opts.After || len(items) > 0 && items[len(items)-1] == item {
			continue
		}
		items = append(items, item)
		isPrefix = append(isPrefix, cp)
	}
	if len(items) > limit {
		items, isPrefix = items[:limit], isPrefix[:limit]
		page.Truncated = true
		page.NextAfter = items[limit-1]
	}
	for i, it := range items {
		if isPrefix[i] {
			page.CommonPrefixes = append(page.CommonPrefixes, it)
		} else {
			page.Objects = append(page.Objects, backend.ObjectInfo{Key: it})
		}
	}
	return page
}

func testList(t *testing.T, b backend.Backend) {
	keys := listKeys()
	sizes := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	sem := make(chan struct{}, 8)
	for i, k := range keys {
		sizes[k] = i % 7
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			body := data(uint64(i), i%7)
			if _, err := b.Put(ctx(t), bucket, k, bytes.NewReader(body), int64(len(body)), backend.PutOptions{}); err != nil {
				errs <- fmt.Errorf("Put(%q): %w", k, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Another bucket's keys must not show.
	if _, err := b.Put(ctx(t), "conformance-x", "a/b", strings.NewReader("x"), 1, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)

	type combo struct {
		prefix, delim string
		max           int
	}
	var combos []combo
	for _, p := range []string{"", "a", "a/", "d/e/", "flat/", "zz/", "nothing"} {
		for _, d := range []string{"", "/", "b"} {
			combos = append(combos, combo{p, d, 11}, combo{p, d, 0})
		}
	}
	combos = append(combos, combo{"", "/", 1}, combo{"a", "/", 2}, combo{"", "", 50})
	for _, c := range combos {
		opts := backend.ListOptions{Prefix: c.prefix, Delimiter: c.delim, MaxKeys: c.max}
		for pages := 0; ; pages++ {
			if pages > len(keys)+1 {
				t.Fatalf("%+v: listing does not end", opts)
			}
			got, err := b.List(ctx(t), bucket, opts)
			if err != nil {
				t.Fatalf("List(%+v): %v", opts, err)
			}
			want := ExpectedPage(keys, opts)
			if msg := diffPage(got, want, sizes); msg != "" {
				t.Fatalf("List(%+v): %s", opts, msg)
			}
			if !got.Truncated {
				break
			}
			opts.After = got.NextAfter
		}
	}
	// After can be any key, stored or not.
	for _, after := range []string{"a/b", "a/b/", "a0", "flat/0050", "b/x0", "zzz"} {
		opts := backend.ListOptions{After: after, Delimiter: "/", MaxKeys: 5}
		got, err := b.List(ctx(t), bucket, opts)
		if err != nil {
			t.Fatal(err)
		}
		if msg := diffPage(got, ExpectedPage(keys, opts), sizes); msg != "" {
			t.Fatalf("List(%+v): %s", opts, msg)
		}
	}
}

func diffPage(got, want backend.ListPage, sizes map[string]int) string {
	var gk, wk []string
	for _, o := range got.Objects {
		gk = append(gk, o.Key)
		if o.Size != int64(sizes[o.Key]) || o.ETag == "" || o.LastModified.IsZero() {
			return fmt.Sprintf("object %q listed as %+v", o.Key, o)
		}
	}
	for _, o := range want.Objects {
		wk = append(wk, o.Key)
	}
	if !reflect.DeepEqual(gk, wk) || !reflect.DeepEqual(got.CommonPrefixes, want.CommonPrefixes) ||
		got.Truncated != want.Truncated || got.Truncated && got.NextAfter != want.NextAfter {
		return fmt.Sprintf("got keys %q prefixes %q truncated %v next %q;\nwant keys %q prefixes %q truncated %v next %q",
			gk, got.CommonPrefixes, got.Truncated, got.NextAfter, wk, want.CommonPrefixes, want.Truncated, want.NextAfter)
	}
	return ""
}

func uploadPart(t *testing.T, b backend.Backend, key, id string, n int, body []byte) backend.Part {
	t.Helper()
	p, err := b.UploadPart(ctx(t), bucket, key, id, n, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("UploadPart(%d): %v", n, err)
	}
	if p.Number != n || p.Size != int64(len(body)) || p.ETag != quotedMD5(body) {
		t.Fatalf("UploadPart(%d) = %+v", n, p)
	}
	return p
}

func testMultipart(t *testing.T, b backend.Backend) {
	meta := backend.Metadata{"tresor-envelope": "mp"}
	id, err := b.CreateMultipart(ctx(t), bucket, "mp/obj", meta)
	if err != nil {
		t.Fatal(err)
	}
	p1 := data(10, 70_001)
	p2 := data(11, 300)
	p2b := data(12, 123_457)
	p3 := data(13, 17)
	uploadPart(t, b, "mp/obj", id, 3, p3)
	uploadPart(t, b, "mp/obj", id, 1, p1)
	uploadPart(t, b, "mp/obj", id, 2, p2)
	uploadPart(t, b, "mp/obj", id, 2, p2b) // replaces the first part 2

	parts, err := b.ListParts(ctx(t), bucket, "mp/obj", id)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{p1, p2b, p3}
	if len(parts) != 3 {
		t.Fatalf("ListParts = %+v, want 3 parts", parts)
	}
	for i, p := range parts {
		if p.Number != i+1 || p.Size != int64(len(want[i])) || p.ETag != quotedMD5(want[i]) {
			t.Fatalf("ListParts[%d] = %+v", i, p)
		}
	}
	info, err := b.CompleteMultipart(ctx(t), bucket, "mp/obj", id, parts)
	if err != nil {
		t.Fatal(err)
	}
	whole := bytes.Join(want, nil)
	if info.Size != int64(len(whole)) || info.ETag == "" {
		t.Fatalf("Complete info = %+v", info)
	}
	got, ginfo := get(t, b, "mp/obj", nil)
	if !bytes.Equal(got, whole) || !sameMeta(ginfo.Metadata, meta) || ginfo.Size != int64(len(whole)) {
		t.Fatalf("completed object: %d bytes (want %d), info %+v", len(got), len(whole), ginfo)
	}
	// A range across the part boundary.
	rng := backend.Range{Start: int64(len(p1)) - 5, End: int64(len(p1)) + 5}
	if got, _ := get(t, b, "mp/obj", &rng); !bytes.Equal(got, whole[rng.Start:rng.End+1]) {
		t.Fatal("range across parts differs")
	}
	_, err = b.ListParts(ctx(t), bucket, "mp/obj", id)
	wantErr(t, "ListParts after Complete", err, backend.ErrUploadNotFound)

	// Abort discards.
	id2, err := b.CreateMultipart(ctx(t), bucket, "mp/aborted", nil)
	if err != nil {
		t.Fatal(err)
	}
	uploadPart(t, b, "mp/aborted", id2, 1, p3)
	if err := b.AbortMultipart(ctx(t), bucket, "mp/aborted", id2); err != nil {
		t.Fatal(err)
	}
	_, err = b.ListParts(ctx(t), bucket, "mp/aborted", id2)
	wantErr(t, "ListParts after Abort", err, backend.ErrUploadNotFound)
	_, err = b.UploadPart(ctx(t), bucket, "mp/aborted", id2, 2, bytes.NewReader(p3), int64(len(p3)))
	wantErr(t, "UploadPart after Abort", err, backend.ErrUploadNotFound)
	_, err = b.Head(ctx(t), bucket, "mp/aborted")
	wantErr(t, "Head of aborted upload's key", err, backend.ErrNotFound)

	// Uploads are not objects.
	id3, err := b.CreateMultipart(ctx(t), bucket, "mp/pending", nil)
	if err != nil {
		t.Fatal(err)
	}
	uploadPart(t, b, "mp/pending", id3, 1, p3)
	page, err := b.List(ctx(t), bucket, backend.ListOptions{Prefix: "mp/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 1 || page.Objects[0].Key != "mp/obj" {
		t.Fatalf("listing shows %+v, want only mp/obj", page.Objects)
	}
}

func testMultipartETag(t *testing.T, b backend.Backend) {
	id, err := b.CreateMultipart(ctx(t), bucket, "etag", nil)
	if err != nil {
		t.Fatal(err)
	}
	bodies := [][]byte{data(20, 1000), data(21, 2000)}
	var parts []backend.Part
	sums := md5.New()
	for i, body := range bodies {
		parts = append(parts, uploadPart(t, b, "etag", id, i+1, body))
		s := md5.Sum(body)
		sums.Write(s[:])
	}
	info, err := b.CompleteMultipart(ctx(t), bucket, "etag", id, parts)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`"%s-2"`, hex.EncodeToString(sums.Sum(nil)))
	if info.ETag != want {
		t.Fatalf("multipart ETag = %s, want %s", info.ETag, want)
	}
	if h, err := b.Head(ctx(t), bucket, "etag"); err != nil || h.ETag != want {
		t.Fatalf("Head ETag = %s (%v), want %s", h.ETag, err, want)
	}
	if _, g := get(t, b, "etag", nil); g.ETag != want {
		t.Fatalf("Get ETag = %s, want %s", g.ETag, want)
	}
	page, err := b.List(ctx(t), bucket, backend.ListOptions{Prefix: "etag"})
	if err != nil || len(page.Objects) != 1 || page.Objects[0].ETag != want {
		t.Fatalf("listed as %+v (%v), want ETag %s", page.Objects, err, want)
	}
}

func testMultipartErrors(t *testing.T, b backend.Backend) {
	const unknown = "0123456789abcdef0123456789abcdef"
	for _, id := range []string{unknown, "not-an-upload"} {
		_, err := b.UploadPart(ctx(t), bucket, "k", id, 1, strings.NewReader("x"), 1)
		wantErr(t, "UploadPart to unknown upload", err, backend.ErrUploadNotFound)
		_, err = b.ListParts(ctx(t), bucket, "k", id)
		wantErr(t, "ListParts of unknown upload", err, backend.ErrUploadNotFound)
		_, err = b.CompleteMultipart(ctx(t), bucket, "k", id, []backend.Part{{Number: 1, ETag: quotedMD5([]byte("x"))}})
		wantErr(t, "Complete of unknown upload", err, backend.ErrUploadNotFound)
		err = b.AbortMultipart(ctx(t), bucket, "k", id)
		wantErr(t, "Abort of unknown upload", err, backend.ErrUploadNotFound)
	}
	id, err := b.CreateMultipart(ctx(t), bucket, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	p1 := uploadPart(t, b, "k", id, 1, []byte("first"))
	p2 := uploadPart(t, b, "k", id, 2, []byte("second"))
	for name, parts := range map[string][]backend.Part{
		"descending":   {p2, p1},
		"wrong ETag":   {p1, {Number: 2, ETag: quotedMD5([]byte("other"))}},
		"missing part": {p1, p2, {Number: 3, ETag: p2.ETag}},
	} {
		_, err := b.CompleteMultipart(ctx(t), bucket, "k", id, parts)
		wantErr(t, "Complete with "+name, err, backend.ErrInvalidPart)
	}
	_, err = b.UploadPart(ctx(t), bucket, "k", id, 0, strings.NewReader("x"), 1)
	wantErr(t, "UploadPart number 0", err, backend.ErrInvalidPart)
	_, err = b.UploadPart(ctx(t), bucket, "k", id, 10001, strings.NewReader("x"), 1)
	wantErr(t, "UploadPart number 10001", err, backend.ErrInvalidPart)
	// The upload survives failed completions.
	if _, err := b.CompleteMultipart(ctx(t), bucket, "k", id, []backend.Part{p1, p2}); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, b, "k", nil); string(got) != "firstsecond" {
		t.Fatalf("completed object = %q", got)
	}
}

func testConditionalPut(t *testing.T, b backend.Backend) {
	putIf := func(body string, opts backend.PutOptions) (backend.ObjectInfo, error) {
		return b.Put(ctx(t), bucket, "cond", strings.NewReader(body), int64(len(body)), opts)
	}
	v1, err := putIf("one", backend.PutOptions{IfNoneMatch: "*"})
	if err != nil {
		t.Fatalf("If-None-Match * on a new key: %v", err)
	}
	_, err = putIf("two", backend.PutOptions{IfNoneMatch: "*"})
	wantErr(t, "If-None-Match * on an existing key", err, backend.ErrPreconditionFailed)
	_, err = putIf("two", backend.PutOptions{IfMatch: quotedMD5([]byte("other"))})
	wantErr(t, "If-Match with a stale ETag", err, backend.ErrPreconditionFailed)
	if got, _ := get(t, b, "cond", nil); string(got) != "one" {
		t.Fatalf("failed conditional put changed the object to %q", got)
	}
	if _, err := putIf("three", backend.PutOptions{IfMatch: v1.ETag}); err != nil {
		t.Fatalf("If-Match with the current ETag: %v", err)
	}
	if got, _ := get(t, b, "cond", nil); string(got) != "three" {
		t.Fatalf("object = %q, want three", got)
	}
	_, err = b.Put(ctx(t), bucket, "cond-missing", strings.NewReader("x"), 1, backend.PutOptions{IfMatch: v1.ETag})
	wantErr(t, "If-Match on a missing key", err, backend.ErrPreconditionFailed)

	// Racing creators: exactly one wins.
	var wins, losses int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			body := fmt.Sprint(i)
			_, err := b.Put(ctx(t), bucket, "cond-race", strings.NewReader(body), int64(len(body)), backend.PutOptions{IfNoneMatch: "*"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, backend.ErrPreconditionFailed):
				losses++
			default:
				t.Errorf("racing Put: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || losses != 7 {
		t.Fatalf("racing If-None-Match: %d wins, %d losses; want 1 and 7", wins, losses)
	}
}

// failingReader yields data and then an error.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func testBodyLengthMismatch(t *testing.T, b backend.Backend) {
	old := data(30, 4000)
	put(t, b, "body", old, backend.Metadata{"v": "old"})
	body := data(31, 200_000)
	errBroken := errors.New("client went away")
	for _, tc := range []struct {
		name string
		r    io.Reader
		size int64
		want error
	}{
		{"short", bytes.NewReader(body[:len(body)-1]), int64(len(body)), backend.ErrIncompleteBody},
		{"long", bytes.NewReader(body), int64(len(body) - 1), backend.ErrIncompleteBody},
		{"long by a lot", bytes.NewReader(body), 1000, backend.ErrIncompleteBody},
		{"non-empty for size 0", bytes.NewReader(body[:1]), 0, backend.ErrIncompleteBody},
		{"reader error", &failingReader{bytes.NewReader(body[:1000]), errBroken}, int64(len(body)), errBroken},
	} {
		for _, key := range []string{"body", "body-new"} {
			_, err := b.Put(ctx(t), bucket, key, tc.r, tc.size, backend.PutOptions{Metadata: backend.Metadata{"v": "new"}})
			wantErr(t, tc.name+" body to "+key, err, tc.want)
			if r, ok := tc.r.(*bytes.Reader); ok {
				r.Seek(0, io.SeekStart)
			} else {
				tc.r = &failingReader{bytes.NewReader(body[:1000]), errBroken}
			}
		}
		got, info := get(t, b, "body", nil)
		if !bytes.Equal(got, old) || info.Metadata["v"] != "old" {
			t.Fatalf("%s body changed the object", tc.name)
		}
		_, err := b.Head(ctx(t), bucket, "body-new")
		wantErr(t, tc.name+" body created an object", err, backend.ErrNotFound)
	}

	// The same holds for parts.
	id, err := b.CreateMultipart(ctx(t), bucket, "body-mp", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.UploadPart(ctx(t), bucket, "body-mp", id, 1, bytes.NewReader(body[:10]), 11)
	wantErr(t, "short part", err, backend.ErrIncompleteBody)
	_, err = b.UploadPart(ctx(t), bucket, "body-mp", id, 1, bytes.NewReader(body[:12]), 11)
	wantErr(t, "long part", err, backend.ErrIncompleteBody)
	if parts, err := b.ListParts(ctx(t), bucket, "body-mp", id); err != nil || len(parts) != 0 {
		t.Fatalf("ListParts after failed parts = %+v, %v; want none", parts, err)
	}
}

// cancelReader cancels its context after the first chunk and then keeps
// producing, as a client that is still sending when the request is dropped.
type cancelReader struct {
	cancel func()
	n      int
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n > 0 {
		c.cancel()
	}
	n := min(len(p), 64<<10)
	clear(p[:n])
	c.n += n
	return n, nil
}

func testCancelMidBody(t *testing.T, b backend.Backend) {
	old := data(40, 1000)
	put(t, b, "cancel", old, nil)
	for _, key := range []string{"cancel", "cancel-new"} {
		cctx, cancel := context.WithCancel(ctx(t))
		_, err := b.Put(cctx, bucket, key, &cancelReader{cancel: cancel}, 64<<20, backend.PutOptions{})
		cancel()
		if err == nil {
			t.Fatal("Put succeeded although its context was cancelled mid-body")
		}
	}
	if got, _ := get(t, b, "cancel", nil); !bytes.Equal(got, old) {
		t.Fatal("cancelled Put changed the object")
	}
	_, err := b.Head(ctx(t), bucket, "cancel-new")
	wantErr(t, "cancelled Put created an object", err, backend.ErrNotFound)
}

// Bodies of the concurrency test: 24-byte header (writer, sequence, length)
// and a SHA-256 of the rest, then pseudo-random bytes from the header.
func stamped(writer, seq int) []byte {
	n := 1000 + (writer*7919+seq*104729)%300_000
	body := make([]byte, 56+n)
	binary.BigEndian.PutUint64(body[0:], uint64(writer))
	binary.BigEndian.PutUint64(body[8:], uint64(seq))
	binary.BigEndian.PutUint64(body[16:], uint64(n))
	copy(body[56:], data(uint64(writer)<<32|uint64(seq), n))
	sum := sha256.Sum256(body[56:])
	copy(body[24:56], sum[:])
	return body
}

func checkStamped(body []byte, meta backend.Metadata) error {
	if len(body) < 56 {
		return fmt.Errorf("%d bytes: too short for a header", len(body))
	}
	w, s, n := binary.BigEndian.Uint64(body[0:]), binary.BigEndian.Uint64(body[8:]), binary.BigEndian.Uint64(body[16:])
	if uint64(len(body)-56) != n {
		return fmt.Errorf("writer %d seq %d: %d bytes, header says %d", w, s, len(body)-56, n)
	}
	if sum := sha256.Sum256(body[56:]); !bytes.Equal(sum[:], body[24:56]) {
		return fmt.Errorf("writer %d seq %d: content mixes writes", w, s)
	}
	if want := fmt.Sprintf("%d-%d", w, s); meta["writer"] != want {
		return fmt.Errorf("body of %s carries metadata of %s", want, meta["writer"])
	}
	return nil
}

func testConcurrency(t *testing.T, b backend.Backend) {
	const writers, rounds, readers = 6, 6, 4
	shared := []string{"hot/one", "hot/two"}
	for _, k := range shared {
		body := stamped(99, 0)
		put(t, b, k, body, backend.Metadata{"writer": "99-0"})
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for s := range rounds {
				key := shared[(w+s)%len(shared)]
				if s%3 == 2 {
					key = fmt.Sprintf("own/%d", w) // a key nobody else writes
				}
				body := stamped(w, s)
				if _, err := b.Put(ctx(t), bucket, key, bytes.NewReader(body), int64(len(body)),
					backend.PutOptions{Metadata: backend.Metadata{"writer": fmt.Sprintf("%d-%d", w, s)}}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	var rwg sync.WaitGroup
	var reads sync.Map
	for r := range readers {
		rwg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := shared[(r+i)%len(shared)]
				rc, info, err := b.Get(ctx(t), bucket, key, nil)
				if err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				body, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				if err := checkStamped(body, info.Metadata); err != nil {
					t.Errorf("reader %d on %s: %v", r, key, err)
					return
				}
				if int64(len(body)) != info.Size || info.ETag != quotedMD5(body) {
					t.Errorf("reader %d on %s: info %+v does not describe the %d bytes read", r, key, info, len(body))
					return
				}
				reads.Store(r, i)
			}
		})
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	for _, k := range shared {
		body, info := get(t, b, k, nil)
		if err := checkStamped(body, info.Metadata); err != nil {
			t.Fatalf("final %s: %v", k, err)
		}
	}
}
