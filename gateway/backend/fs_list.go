package backend

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// List implements Backend. It walks the bucket directory depth-first in key
// order (see fs_paths.go), pruning subtrees that lie wholly at or before the
// lower bound or outside the prefix, and jumps over a whole common prefix
// once it has been rolled up. A page costs the directories on its path, not
// the bucket.
func (f *FS) List(ctx context.Context, bucket string, opts ListOptions) (ListPage, error) {
	if err := validBucket(bucket); err != nil {
		return ListPage{}, err
	}
	w := fsWalk{
		f:     f,
		ctx:   ctx,
		p:     newPager(opts),
		lower: opts.After,
	}
	_, err := w.dir(bucketDir(bucket), "")
	if err != nil {
		return ListPage{}, fmt.Errorf("backend: list %s: %w", bucket, err)
	}
	return w.p.page, nil
}

// fsWalk is one listing's walk state.
type fsWalk struct {
	f     *FS
	ctx   context.Context
	p     *pager
	lower string // yield only keys sorting strictly after lower
}

type walkEntry struct {
	name string
	kind byte
	at   string // key prefix of the entry (the whole key for an object)
}

// dir walks directory rel whose keys all start with at. It returns true
// when the walk is over (page full, or past the prefix).
func (w *fsWalk) dir(rel, at string) (done bool, err error) {
	if err := w.ctx.Err(); err != nil {
		return true, err
	}
	ents, err := os.ReadDir(filepath.Join(w.f.dir, filepath.FromSlash(rel)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // unknown bucket, or pruned meanwhile
		}
		return true, err
	}
	list := make([]walkEntry, 0, len(ents))
	for _, e := range ents {
		kind, seg, ok := decodeName(e.Name())
		if !ok || (kind == kindObject) == e.IsDir() {
			continue
		}
		we := walkEntry{name: e.Name(), kind: kind, at: at + seg}
		if kind == kindDir {
			we.at += "/"
		}
		list = append(list, we)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].at < list[j].at })

	for _, e := range list {
		if e.at < w.lower && !strings.HasPrefix(w.lower, e.at) {
			continue // everything in e sorts at or before lower
		}
		if !strings.HasPrefix(e.at, w.p.prefix) && !strings.HasPrefix(w.p.prefix, e.at) {
			if e.at > w.p.prefix {
				return true, nil // past the prefix: nothing later matches
			}
			continue
		}
		child := path.Join(rel, e.name)
		if e.kind != kindObject {
			if done, err := w.dir(child, e.at); done || err != nil {
				return done, err
			}
			continue
		}
		if e.at <= w.lower || !strings.HasPrefix(e.at, w.p.prefix) {
			continue
		}
		skip, done, err := w.p.add(e.at, func() (ObjectInfo, error) {
			t, err := w.f.trailerAt(child)
			return t.info(e.at), err
		})
		if err != nil || done {
			return true, err
		}
		if skip != "" {
			// Every valid key under a common prefix sorts before prefix +
			// 0xFF, a byte UTF-8 never uses.
			w.lower = skip + "\xff"
		}
	}
	return false, nil
}

// pager builds one ListPage from keys offered in ascending order, applying
// S3's delimiter, After and MaxKeys semantics.
type pager struct {
	prefix, delim, after string
	limit, n             int
	page                 ListPage
	last                 string
}

func newPager(opts ListOptions) *pager {
	return &pager{prefix: opts.Prefix, delim: opts.Delimiter, after: opts.After, limit: pageSize(opts)}
}

// add offers key (> After, with the prefix). load fetches its info if it is
// listed. skip, when set, is a common prefix the caller may jump over; done
// means the page is complete.
func (p *pager) add(key string, load func() (ObjectInfo, error)) (skip string, done bool, err error) {
	cp := ""
	if p.delim != "" {
		if i := strings.Index(key[len(p.prefix):], p.delim); i >= 0 {
			cp = key[:len(p.prefix)+i+len(p.delim)]
		}
	}
	if cp != "" && (cp <= p.after || cp == p.last) {
		return cp, false, nil
	}
	var info ObjectInfo
	if cp == "" {
		info, err = load()
		if errors.Is(err, ErrNotFound) {
			return "", false, nil // deleted since the directory was read
		}
		if err != nil {
			return "", true, err
		}
	}
	if p.n == p.limit {
		p.page.Truncated = true
		p.page.NextAfter = p.last
		return "", true, nil
	}
	p.n++
	if cp != "" {
		p.page.CommonPrefixes = append(p.page.CommonPrefixes, cp)
		p.last = cp
		return cp, false, nil
	}
	info.Metadata = nil
	p.page.Objects = append(p.page.Objects, info)
	p.last = key
	return "", false, nil
}
