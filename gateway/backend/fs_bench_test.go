package backend_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tresor-gw/tresor/gateway/backend"
)

// fillFS writes n empty objects: n/100 directories of 100 keys each plus
// n/2 keys in one flat directory.
func fillFS(b *testing.B, n int) *backend.FS {
	fsb, err := backend.NewFS(filepath.Join(b.TempDir(), "data"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fsb.Close() })
	var wg sync.WaitGroup
	keys := make(chan string)
	for range 8 {
		wg.Go(func() {
			for k := range keys {
				if _, err := fsb.Put(b.Context(), "bench", k, strings.NewReader(""), 0, backend.PutOptions{}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range n / 2 {
		keys <- fmt.Sprintf("tree/%03d/%05d", i/100, i)
		keys <- fmt.Sprintf("flat/%06d", i)
	}
	close(keys)
	wg.Wait()
	return fsb
}

// BenchmarkFS_List pages through 20,000 keys, with and without a
// delimiter; one op is one page.
func BenchmarkFS_List(b *testing.B) {
	fsb := fillFS(b, 20_000)
	for _, tc := range []struct {
		name string
		opts backend.ListOptions
	}{
		{"flat-1000", backend.ListOptions{Prefix: "flat/"}},
		{"all-1000", backend.ListOptions{}},
		{"delimiter-tree", backend.ListOptions{Prefix: "tree/", Delimiter: "/"}},
		{"delimiter-root", backend.ListOptions{Delimiter: "/"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			opts := tc.opts
			for b.Loop() {
				page, err := fsb.List(b.Context(), "bench", opts)
				if err != nil {
					b.Fatal(err)
				}
				opts.After = page.NextAfter
				if !page.Truncated {
					opts.After = ""
				}
			}
		})
	}
}
