package backend

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Layout of an fs data directory:
//
//	LOCK                      flock'd by the process that has it open
//	tmp/                      files being written; emptied at open
//	objects/<bucket>/<path>   one file per object, path from keyPath (fs_paths.go)
//	uploads/<id>/upload.json  a multipart upload: bucket, key, metadata
//	uploads/<id>/part-NNNNN   its parts
//
// Object and part files hold data, then a trailer with ETag and metadata
// (fs_format.go). Every file is written in tmp/, fsynced, renamed into place
// and its directory fsynced, so a crash leaves either the old or the new
// file and, at worst, litter in tmp/ that the next Open removes. All access
// goes through an os.Root, which refuses to follow any path out of the data
// directory whatever the key mapping produced; only listing (reading
// directories) and pruning empty directories use full paths, for speed on
// deeply nested keys.
const (
	lockFile   = "LOCK"
	tmpDir     = "tmp"
	objectsDir = "objects"
	uploadsDir = "uploads"
)

// FS is the embedded backend: objects as files under one local directory.
// Reads take no lock (an open file is a snapshot, renames are atomic);
// writes stream into a temp file without a lock and take the key's lock
// only to check preconditions and rename.
type FS struct {
	dir   string
	root  *os.Root
	lockf *os.File
	locks keyLocks
}

var _ Backend = (*FS)(nil)

// copyBufSize is the chunk in which bodies stream to and from disk.
const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// NewFS opens (creating if needed) the data directory dir, takes its lock,
// and removes what a crash may have left behind: temp files and uploads
// whose creation never completed. Close releases it.
func NewFS(dir string) (*FS, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("backend: data directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backend: create data directory: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backend: open lock file: %w", err)
	}
	if err := lockDir(lf); err != nil {
		lf.Close()
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("backend: open data directory: %w", err)
	}
	f := &FS{dir: dir, root: root, lockf: lf}
	if err := f.recover(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// recover empties tmp/ and drops uploads without an upload.json (a crash
// during CreateMultipart or AbortMultipart).
func (f *FS) recover() error {
	if err := f.root.RemoveAll(tmpDir); err != nil {
		return fmt.Errorf("backend: clean %s: %w", tmpDir, err)
	}
	for _, d := range []string{tmpDir, objectsDir, uploadsDir} {
		if err := f.root.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("backend: create %s: %w", d, err)
		}
	}
	ents, err := f.readDir(uploadsDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if _, err := f.root.Stat(path.Join(uploadsDir, e.Name(), uploadFile)); errors.Is(err, fs.ErrNotExist) {
			if err := f.root.RemoveAll(path.Join(uploadsDir, e.Name())); err != nil {
				return fmt.Errorf("backend: remove unfinished upload: %w", err)
			}
		}
	}
	return f.syncDir(".")
}

// Close releases the data directory.
func (f *FS) Close() error {
	err := f.root.Close()
	if lerr := f.lockf.Close(); err == nil {
		err = lerr
	}
	return err
}

// objectPath validates bucket and key and returns the object's file.
func objectPath(bucket, key string) (string, error) {
	if err := validBucket(bucket); err != nil {
		return "", err
	}
	if err := validKey(key); err != nil {
		return "", err
	}
	return path.Join(bucketDir(bucket), keyPath(key)), nil
}

func lockName(bucket, key string) string { return "o/" + bucket + "/" + key }

// Put implements Backend.
func (f *FS) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	rel, err := objectPath(bucket, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := validMetadata(opts.Metadata); err != nil {
		return ObjectInfo{}, err
	}
	if size < 0 {
		return ObjectInfo{}, fmt.Errorf("%w: negative size %d", ErrIncompleteBody, size)
	}
	// Preconditions are evaluated under the key's lock just before the
	// rename, so they are atomic with the write; a first check here only
	// spares streaming a body that would be refused anyway.
	conditional := opts.IfMatch != "" || opts.IfNoneMatch != ""
	if conditional {
		if err := f.precondition(rel, opts); err != nil {
			return ObjectInfo{}, err
		}
	}
	tmp, t, err := f.writeTemp(ctx, newExactReader(r, size), fileTrailer{Key: key, Metadata: opts.Metadata})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("backend: put %s/%s: %w", bucket, key, err)
	}
	var check func() error
	if conditional {
		check = func() error { return f.precondition(rel, opts) }
	}
	if err := f.commit(ctx, lockName(bucket, key), tmp, rel, check); err != nil {
		return ObjectInfo{}, fmt.Errorf("backend: put %s/%s: %w", bucket, key, err)
	}
	return t.info(key), nil
}

// precondition evaluates If-Match / If-None-Match against the object at rel.
func (f *FS) precondition(rel string, opts PutOptions) error {
	t, err := f.trailerAt(rel)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if opts.IfNoneMatch != "" && exists &&
		(opts.IfNoneMatch == "*" || trimETag(opts.IfNoneMatch) == trimETag(t.ETag)) {
		return fmt.Errorf("%w: object exists (If-None-Match)", ErrPreconditionFailed)
	}
	if opts.IfMatch != "" {
		if !exists {
			return fmt.Errorf("%w: no object (If-Match)", ErrPreconditionFailed)
		}
		if opts.IfMatch != "*" && trimETag(opts.IfMatch) != trimETag(t.ETag) {
			return fmt.Errorf("%w: ETag %s does not match %s", ErrPreconditionFailed, t.ETag, opts.IfMatch)
		}
	}
	return nil
}

// writeTemp streams body into a new file in tmp/, appends the trailer and
// fsyncs it. If t.ETag is empty it becomes the quoted MD5 of the body. On
// error the temp file is removed.
func (f *FS) writeTemp(ctx context.Context, body io.Reader, t fileTrailer) (name string, _ fileTrailer, err error) {
	var id [16]byte
	rand.Read(id[:])
	name = path.Join(tmpDir, hex.EncodeToString(id[:]))
	file, err := f.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", t, fmt.Errorf("create temp file: %w", err)
	}
	defer func() {
		if cerr := file.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			f.root.Remove(name)
		}
	}()
	var sum hash.Hash
	var w io.Writer = file
	if t.ETag == "" {
		sum = md5.New()
		w = io.MultiWriter(file, sum)
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	n, err := io.CopyBuffer(w, ctxReader{ctx, body}, *buf)
	if err != nil {
		return "", t, err
	}
	t.Size = n
	if sum != nil {
		t.ETag = `"` + hex.EncodeToString(sum.Sum(nil)) + `"`
	}
	t.Modified = time.Now().UTC()
	if err := appendTrailer(file, t); err != nil {
		return "", t, err
	}
	if err := file.Sync(); err != nil {
		return "", t, fmt.Errorf("sync: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return "", t, err
	}
	return name, t, nil
}

// commit renames tmp to rel under lock, after check (if any) passes, and
// makes the rename durable. The temp file is removed if it is not renamed.
func (f *FS) commit(ctx context.Context, lock, tmp, rel string, check func() error) (err error) {
	defer func() {
		if err != nil {
			f.root.Remove(tmp)
		}
	}()
	unlock := f.locks.lock(lock)
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	dir := path.Dir(rel)
	// A concurrent Delete of a sibling may remove a directory just made
	// empty between mkdirs and Rename; make it again and retry.
	for attempt := 0; ; attempt++ {
		if err = f.mkdirs(dir); err == nil {
			err = f.root.Rename(tmp, rel)
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 10 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return f.syncDir(dir)
}

// mkdirs creates dir and its missing parents, fsyncing each parent that
// gained an entry so the new path survives a crash. It descends one
// component at a time through sub-roots, so a key nested a thousand levels
// deep costs a thousand steps, not a million.
func (f *FS) mkdirs(dir string) error {
	if st, err := f.root.Stat(dir); err == nil && st.IsDir() {
		return nil
	}
	r := f.root
	defer func() {
		if r != f.root {
			r.Close()
		}
	}()
	for _, c := range strings.Split(dir, "/") {
		err := r.Mkdir(c, 0o700)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory: %w", err)
		}
		if err == nil {
			if err := syncRoot(r); err != nil {
				return err
			}
		}
		next, err := r.OpenRoot(c)
		if err != nil {
			return fmt.Errorf("open directory: %w", err)
		}
		if r != f.root {
			r.Close()
		}
		r = next
	}
	return nil
}

func syncRoot(r *os.Root) error {
	d, err := r.Open(".")
	if err != nil {
		return fmt.Errorf("open directory for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

func (f *FS) syncDir(dir string) error {
	d, err := f.root.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

func (f *FS) readDir(dir string) ([]fs.DirEntry, error) {
	d, err := f.root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

// openObject opens the object file at rel and reads its trailer.
func (f *FS) openObject(rel string) (*os.File, fileTrailer, error) {
	file, err := f.root.Open(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fileTrailer{}, ErrNotFound
		}
		return nil, fileTrailer{}, err
	}
	t, err := readTrailer(file)
	if err != nil {
		file.Close()
		return nil, fileTrailer{}, err
	}
	return file, t, nil
}

func (f *FS) trailerAt(rel string) (fileTrailer, error) {
	file, t, err := f.openObject(rel)
	if err != nil {
		return t, err
	}
	file.Close()
	return t, nil
}

// Get implements Backend. The returned reader reads from an open file, so
// it keeps seeing the object as it was even if it is replaced meanwhile.
func (f *FS) Get(ctx context.Context, bucket, key string, rng *Range) (io.ReadCloser, ObjectInfo, error) {
	rel, err := objectPath(bucket, key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	file, t, err := f.openObject(rel)
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("backend: get %s/%s: %w", bucket, key, err)
	}
	start, n, err := span(rng, t.Size)
	if err != nil {
		file.Close()
		return nil, ObjectInfo{}, fmt.Errorf("backend: get %s/%s: %w", bucket, key, err)
	}
	body := ctxReader{ctx, io.NewSectionReader(file, start, n)}
	return readCloser{body, file}, t.info(key), nil
}

// span resolves rng against an object of size bytes into offset and length.
func span(rng *Range, size int64) (start, n int64, err error) {
	if rng == nil {
		return 0, size, nil
	}
	end := rng.End
	if end < 0 || end >= size {
		end = size - 1
	}
	if rng.Start < 0 || rng.Start >= size || rng.End >= 0 && rng.End < rng.Start {
		return 0, 0, fmt.Errorf("%w: bytes=%d-%d of %d", ErrInvalidRange, rng.Start, rng.End, size)
	}
	return rng.Start, end - rng.Start + 1, nil
}

// Head implements Backend.
func (f *FS) Head(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	rel, err := objectPath(bucket, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	t, err := f.trailerAt(rel)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("backend: head %s/%s: %w", bucket, key, err)
	}
	return t.info(key), nil
}

// Delete implements Backend. Directories left empty are removed up to the
// bucket directory, so listings stay fast and free of dead prefixes.
func (f *FS) Delete(ctx context.Context, bucket, key string) error {
	rel, err := objectPath(bucket, key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock := f.locks.lock(lockName(bucket, key))
	defer unlock()
	if err := f.root.Remove(rel); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("backend: delete %s/%s: %w", bucket, key, err)
	}
	dir := path.Dir(rel)
	if err := f.syncDir(dir); err != nil {
		return fmt.Errorf("backend: delete %s/%s: %w", bucket, key, err)
	}
	// rmdir by full path: it removes only empty directories, and the
	// mapping never yields "." or "..", so this stays inside; going through
	// the root would cost a walk from the top per level.
	for top := bucketDir(bucket); dir != top && strings.HasPrefix(dir, top+"/"); dir = path.Dir(dir) {
		if os.Remove(filepath.Join(f.dir, filepath.FromSlash(dir))) != nil { // not empty (or raced): stop
			break
		}
	}
	return nil
}

// Copy implements Backend. The source file is opened once, so the copy is
// of one consistent version even if the source is replaced meanwhile.
func (f *FS) Copy(ctx context.Context, src, dst Location, meta Metadata) (ObjectInfo, error) {
	srcRel, err := objectPath(src.Bucket, src.Key)
	if err != nil {
		return ObjectInfo{}, err
	}
	dstRel, err := objectPath(dst.Bucket, dst.Key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := validMetadata(meta); err != nil {
		return ObjectInfo{}, err
	}
	file, st, err := f.openObject(srcRel)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("backend: copy from %s/%s: %w", src.Bucket, src.Key, err)
	}
	defer file.Close()
	if src.IfMatch != "" && st.ETag != src.IfMatch {
		return ObjectInfo{}, fmt.Errorf("%w: copy source ETag %s is not %s", ErrPreconditionFailed, st.ETag, src.IfMatch)
	}
	tmp, t, err := f.writeTemp(ctx, io.NewSectionReader(file, 0, st.Size), fileTrailer{Key: dst.Key, Metadata: meta})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("backend: copy to %s/%s: %w", dst.Bucket, dst.Key, err)
	}
	if err := f.commit(ctx, lockName(dst.Bucket, dst.Key), tmp, dstRel, nil); err != nil {
		return ObjectInfo{}, fmt.Errorf("backend: copy to %s/%s: %w", dst.Bucket, dst.Key, err)
	}
	return t.info(dst.Key), nil
}
