package backend

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Multipart uploads of the fs backend live in uploads/<id>/ (see fs.go):
// upload.json, written atomically at creation, says which bucket and key the
// upload belongs to and carries the object's metadata; its presence is what
// makes the upload exist. Parts are object files (fs_format.go) named
// part-NNNNN, each replaced atomically when its number is uploaded again.
// An upload's own lock serialises part commits against Complete and Abort;
// the object's lock is taken only for the final rename.
const (
	uploadFile = "upload.json"
	partPrefix = "part-"
	// maxPartNumber is S3's highest part number.
	maxPartNumber = 10000
)

type uploadRecord struct {
	Bucket   string            `json:"bucket"`
	Key      string            `json:"key"`
	Metadata map[string]string `json:"meta,omitempty"`
	Created  time.Time         `json:"created"`
}

func uploadLock(id string) string { return "u/" + id }

// uploadDir validates an upload id (32 hex digits, as CreateMultipart makes
// them) before it becomes part of a path.
func uploadDir(id string) (string, error) {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: %q", ErrUploadNotFound, id)
	}
	return path.Join(uploadsDir, id), nil
}

func partName(n int) string { return fmt.Sprintf("%s%05d", partPrefix, n) }

// CreateMultipart implements Backend.
func (f *FS) CreateMultipart(ctx context.Context, bucket, key string, meta Metadata) (string, error) {
	if _, err := objectPath(bucket, key); err != nil {
		return "", err
	}
	if err := validMetadata(meta); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	dir := path.Join(uploadsDir, id)
	rec, err := json.Marshal(uploadRecord{Bucket: bucket, Key: key, Metadata: meta, Created: time.Now().UTC()})
	if err != nil {
		return "", err
	}
	if err := f.root.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("backend: create upload: %w", err)
	}
	if err := f.syncDir(uploadsDir); err != nil {
		return "", fmt.Errorf("backend: create upload: %w", err)
	}
	if err := f.writeSmall(path.Join(dir, uploadFile), rec); err != nil {
		f.root.RemoveAll(dir)
		return "", fmt.Errorf("backend: create upload: %w", err)
	}
	return id, nil
}

// writeSmall writes data to rel atomically (temp file, fsync, rename,
// directory fsync).
func (f *FS) writeSmall(rel string, data []byte) error {
	var raw [16]byte
	rand.Read(raw[:])
	tmp := path.Join(tmpDir, hex.EncodeToString(raw[:]))
	file, err := f.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = file.Write(data)
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.root.Rename(tmp, rel)
	}
	if err != nil {
		f.root.Remove(tmp)
		return err
	}
	return f.syncDir(path.Dir(rel))
}

// upload loads the record of upload id and checks it belongs to bucket/key.
func (f *FS) upload(bucket, key, id string) (string, uploadRecord, error) {
	var rec uploadRecord
	if _, err := objectPath(bucket, key); err != nil {
		return "", rec, err
	}
	dir, err := uploadDir(id)
	if err != nil {
		return "", rec, err
	}
	data, err := f.root.ReadFile(path.Join(dir, uploadFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", rec, fmt.Errorf("%w: %s", ErrUploadNotFound, id)
	}
	if err != nil {
		return "", rec, fmt.Errorf("backend: read upload %s: %w", id, err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return "", rec, fmt.Errorf("backend: corrupt upload record %s: %w", id, err)
	}
	if rec.Bucket != bucket || rec.Key != key {
		return "", rec, fmt.Errorf("%w: %s is not an upload of %s/%s", ErrUploadNotFound, id, bucket, key)
	}
	return dir, rec, nil
}

// UploadPart implements Backend.
func (f *FS) UploadPart(ctx context.Context, bucket, key, uploadID string, n int, r io.Reader, size int64) (Part, error) {
	if n < 1 || n > maxPartNumber {
		return Part{}, fmt.Errorf("%w: part number %d outside 1..%d", ErrInvalidPart, n, maxPartNumber)
	}
	if size < 0 {
		return Part{}, fmt.Errorf("%w: negative size %d", ErrIncompleteBody, size)
	}
	dir, _, err := f.upload(bucket, key, uploadID)
	if err != nil {
		return Part{}, err
	}
	tmp, t, err := f.writeTemp(ctx, newExactReader(r, size), fileTrailer{})
	if err != nil {
		return Part{}, fmt.Errorf("backend: upload part %d of %s: %w", n, uploadID, err)
	}
	check := func() error { _, _, err := f.upload(bucket, key, uploadID); return err }
	if err := f.commit(ctx, uploadLock(uploadID), tmp, path.Join(dir, partName(n)), check); err != nil {
		return Part{}, fmt.Errorf("backend: upload part %d of %s: %w", n, uploadID, err)
	}
	return Part{Number: n, Size: t.Size, ETag: t.ETag, LastModified: t.Modified}, nil
}

// ListParts implements Backend.
func (f *FS) ListParts(ctx context.Context, bucket, key, uploadID string) ([]Part, error) {
	dir, _, err := f.upload(bucket, key, uploadID)
	if err != nil {
		return nil, err
	}
	parts, err := f.parts(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("backend: list parts of %s: %w", uploadID, err)
	}
	return parts, nil
}

func (f *FS) parts(ctx context.Context, dir string) ([]Part, error) {
	ents, err := f.readDir(dir)
	if err != nil {
		return nil, err
	}
	var parts []Part
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name(), partPrefix)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || partName(n) != e.Name() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := f.trailerAt(path.Join(dir, e.Name()))
		if errors.Is(err, ErrNotFound) {
			continue // aborted meanwhile
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, Part{Number: n, Size: t.Size, ETag: t.ETag, LastModified: t.Modified})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// CompleteMultipart implements Backend. The ETag is S3's: the MD5 of the
// concatenated binary MD5s of the parts, "-" and the part count.
func (f *FS) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []Part) (ObjectInfo, error) {
	if _, err := uploadDir(uploadID); err != nil {
		return ObjectInfo{}, err
	}
	unlock := f.locks.lock(uploadLock(uploadID))
	defer unlock()
	dir, rec, err := f.upload(bucket, key, uploadID)
	if err != nil {
		return ObjectInfo{}, err
	}
	if len(parts) == 0 {
		return ObjectInfo{}, fmt.Errorf("%w: no parts to complete %s", ErrInvalidPart, uploadID)
	}
	var files []*os.File
	defer func() {
		for _, file := range files {
			file.Close()
		}
	}()
	var readers []io.Reader
	etags := md5.New()
	for i, p := range parts {
		if i > 0 && p.Number <= parts[i-1].Number {
			return ObjectInfo{}, fmt.Errorf("%w: part %d after part %d (order must ascend)", ErrInvalidPart, p.Number, parts[i-1].Number)
		}
		if p.Number < 1 || p.Number > maxPartNumber {
			return ObjectInfo{}, fmt.Errorf("%w: part number %d", ErrInvalidPart, p.Number)
		}
		file, t, err := f.openObject(path.Join(dir, partName(p.Number)))
		if errors.Is(err, ErrNotFound) {
			return ObjectInfo{}, fmt.Errorf("%w: part %d was not uploaded", ErrInvalidPart, p.Number)
		}
		if err != nil {
			return ObjectInfo{}, fmt.Errorf("backend: complete %s: %w", uploadID, err)
		}
		files = append(files, file)
		if trimETag(p.ETag) != trimETag(t.ETag) {
			return ObjectInfo{}, fmt.Errorf("%w: part %d has ETag %s, not %s", ErrInvalidPart, p.Number, t.ETag, p.ETag)
		}
		sum, err := hex.DecodeString(trimETag(t.ETag))
		if err != nil {
			return ObjectInfo{}, fmt.Errorf("backend: complete %s: part %d: bad stored ETag: %w", uploadID, p.Number, err)
		}
		etags.Write(sum)
		readers = append(readers, io.NewSectionReader(file, 0, t.Size))
	}
	etag := fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(etags.Sum(nil)), len(parts))
	tmp, t, err := f.writeTemp(ctx, io.MultiReader(readers...), fileTrailer{Key: key, ETag: etag, Metadata: rec.Metadata})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("backend: complete %s: %w", uploadID, err)
	}
	rel, _ := objectPath(bucket, key)
	if err := f.commit(ctx, lockName(bucket, key), tmp, rel, nil); err != nil {
		return ObjectInfo{}, fmt.Errorf("backend: complete %s: %w", uploadID, err)
	}
	// The object is in place; the upload goes. A crash here leaves an
	// upload that can be completed again to the same result, or aborted.
	if err := f.removeUpload(dir); err != nil {
		return ObjectInfo{}, fmt.Errorf("backend: complete %s: remove upload: %w", uploadID, err)
	}
	return t.info(key), nil
}

// AbortMultipart implements Backend.
func (f *FS) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	if _, err := uploadDir(uploadID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock := f.locks.lock(uploadLock(uploadID))
	defer unlock()
	dir, _, err := f.upload(bucket, key, uploadID)
	if err != nil {
		return err
	}
	if err := f.removeUpload(dir); err != nil {
		return fmt.Errorf("backend: abort %s: %w", uploadID, err)
	}
	return nil
}

// removeUpload first removes upload.json, which ends the upload atomically,
// then the rest; Open finishes the job after a crash in between.
func (f *FS) removeUpload(dir string) error {
	if err := f.root.Remove(path.Join(dir, uploadFile)); err != nil {
		return err
	}
	if err := f.syncDir(dir); err != nil {
		return err
	}
	return f.root.RemoveAll(dir)
}
