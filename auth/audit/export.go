package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tresor-gw/tresor/internal/atomicfile"
)

// Export copies the log in dir to the directory out (created; it must not
// hold a log already) in the layout Verify reads: base, checkpoints,
// segments, pubkeys.json, and the replicated checkpoints given (file
// "replicated"). Private keys are not copied. Export only reads dir, so it
// may run beside the node writing it: it copies the base, then the
// checkpoints, then the segments, each up to its last whole record, so
// every copied checkpoint is covered by the copied records. (A retention
// run on the node in between shows as deleted records; export again.)
func Export(ctx context.Context, dir, out string, replicated []SignedCheckpoint) error {
	if _, err := os.Stat(filepath.Join(dir, pubKeysFile)); err != nil {
		return fmt.Errorf("audit: %s is not an audit log: %w", dir, err)
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	if segs, _ := listSegments(out); len(segs) > 0 {
		return fmt.Errorf("%w: %s already holds a log", ErrInvalid, out)
	}
	for _, name := range []string{pubKeysFile, baseFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) && name == baseFile {
			continue
		}
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	cps, err := readCheckpointFile(filepath.Join(dir, checkpointsFile))
	if err != nil && !errors.Is(err, errTorn) { // a checkpoint being written is left out
		return err
	}
	if err := WriteCheckpoints(filepath.Join(out, checkpointsFile), cps); err != nil {
		return err
	}
	if replicated != nil {
		if err := WriteCheckpoints(filepath.Join(out, replicatedFile), replicated); err != nil {
			return err
		}
	}
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	for _, sg := range segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := copyWholeFrames(sg.path, filepath.Join(out, filepath.Base(sg.path))); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(out)
}

// copyWholeFrames copies a segment up to the end of its last whole frame
// (a record being written is left out), keeping damaged frames as they
// are for Verify to report.
func copyWholeFrames(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := readSegmentHeader(in); err != nil {
		// Copy as is: Verify will report it.
		return copyFile(in, dst, -1)
	}
	fr := newFrameReader(in, int64(segmentHeaderSize), MaxRecordSize)
	for {
		_, err := fr.next()
		if err == io.EOF || errors.Is(err, errTorn) {
			break
		}
		if err != nil && !errors.Is(err, errBadCRC) {
			return copyFile(in, dst, -1)
		}
	}
	return copyFile(in, dst, fr.off)
}

// copyFile copies the first n bytes of in (all if n < 0) to a new file dst.
func copyFile(in *os.File, dst string, n int64) error {
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var r io.Reader = in
	if n >= 0 {
		r = io.LimitReader(in, n)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ReadReplicated returns the replicated checkpoints stored in an export
// (nil if it has none).
func ReadReplicated(dir string) ([]SignedCheckpoint, error) {
	return readCheckpointFile(filepath.Join(dir, replicatedFile))
}

// ReadSystemKey returns the system key of a node's log directory, for a
// review on the node itself.
func ReadSystemKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, systemKeyFile)
	if err := checkPrivate(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// ReadDirPublicKeys returns the public keys a log directory or export
// carries. Trust them only as far as the directory.
func ReadDirPublicKeys(dir string) (PublicKeys, error) {
	return ReadPublicKeys(filepath.Join(dir, pubKeysFile))
}
