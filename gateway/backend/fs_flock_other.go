//go:build !unix

package backend

import "os"

// lockDir is a no-op where flock is unavailable: run one process per data
// directory.
func lockDir(*os.File) error { return nil }
