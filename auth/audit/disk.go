package audit

import (
	"os"

	"github.com/tresor-gw/tresor/internal/atomicfile"
)

// disk is what a Log writes its files through: the operating system, or in
// tests a layer that runs out of space on demand (FaultyDisk, testing.go).
// Reads (Open's scan, Verify, the re-check of the tail after a failed
// write) go to the os package directly: what was written must be read
// back from the real file.
type disk interface {
	// OpenFile opens a file for writing, as os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (file, error)
	// WriteFile replaces name with data atomically, as atomicfile.WriteFile.
	WriteFile(name string, data []byte, perm os.FileMode) error
}

// file is an open file the log appends to.
type file interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Seek(offset int64, whence int) (int64, error)
	Close() error
}

// osDisk is the real disk.
type osDisk struct{}

func (osDisk) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return f, nil
}

func (osDisk) WriteFile(name string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(name, data, perm)
}
