//go:build unix

package backend

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on f so that two processes never
// serve (and clean up temp files in) the same data directory.
func lockDir(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("backend: data directory is in use by another process: %w", err)
	}
	return nil
}
