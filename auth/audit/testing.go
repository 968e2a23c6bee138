package audit

import (
	"os"
	"sync"
	"syscall"
)

// FaultyDisk is a disk for tests in this and other packages that runs out
// of space on demand, as a full file system does: a write larger than the
// space left writes what fits and fails with ENOSPC (so a record or a
// checkpoint can be left half written), and an atomic file replacement
// that does not fit fails whole. Open a Log on it with WithDisk. Space
// freed by truncating a file is not given back: SetFree says what there is.
type FaultyDisk struct {
	mu   sync.Mutex
	free int64 // bytes that can still be written; < 0: no limit
	torn int
}

// NewFaultyDisk returns a FaultyDisk with no limit.
func NewFaultyDisk() *FaultyDisk { return &FaultyDisk{free: -1} }

// SetFree leaves n bytes of space (n < 0: no limit).
func (d *FaultyDisk) SetFree(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.free = n
}

// Torn counts the writes cut short by a lack of space.
func (d *FaultyDisk) Torn() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.torn
}

// WithDisk returns cfg with the log's writes going through d.
func WithDisk(cfg Config, d *FaultyDisk) Config {
	cfg.disk = d
	return cfg
}

// take reserves up to n bytes and returns how many fit.
func (d *FaultyDisk) take(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.free < 0 {
		return n
	}
	k := int(min(int64(n), d.free))
	d.free -= int64(k)
	if k < n {
		d.torn++
	}
	return k
}

func (d *FaultyDisk) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: f, d: d}, nil
}

func (d *FaultyDisk) WriteFile(name string, data []byte, perm os.FileMode) error {
	if k := d.take(len(data)); k < len(data) {
		return &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	}
	return osDisk{}.WriteFile(name, data, perm)
}

type faultyFile struct {
	*os.File
	d *FaultyDisk
}

func (f *faultyFile) Write(p []byte) (int, error) {
	k := f.d.take(len(p))
	n, err := f.File.Write(p[:k])
	if err == nil && k < len(p) {
		err = &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}
