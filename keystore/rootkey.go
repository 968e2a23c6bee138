package keystore

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tresor-gw/tresor/internal/atomicfile"
)

// RootKeySize is the root key's length: 256 bits, raw bytes in the file.
const RootKeySize = 32

// RootKeyFileName is the root key's file name inside the data directory.
const RootKeyFileName = "root.key"

// HKDF-SHA256 info labels for the keys derived from the root key. The salt is
// empty: the root key is uniformly random already, and HKDF's extract step
// with a zero salt is then sound (RFC 5869 section 3.1). The trailing "/1" is
// the storage epoch: retiring an epoch (DESIGN.md section 4) means a new
// label, so remnants sealed under the old one become unreadable.
const (
	// labelStorageKey derives the key that seals secret records (seal.go).
	labelStorageKey = "tresor/keystore/storage-key/1"
	// labelBadgerKey derives Badger's encryption-at-rest master key, which
	// wraps the data keys Badger rotates itself.
	labelBadgerKey = "tresor/keystore/badger-key/1"
	// labelSnapshotKey derives the key snapshots are encrypted under
	// (snapshot.go); each snapshot then derives its own key with a salt.
	labelSnapshotKey = "tresor/keystore/snapshot-key/1"
)

// storageEpoch is the epoch number written into every sealed record.
const storageEpoch = 1

// LoadRootKey reads the root key from path. The file must be a regular file
// of exactly RootKeySize bytes readable by its owner only (mode 0600 or
// stricter): a root key others can read is refused rather than used, so a
// careless copy shows at start-up and not in an audit.
//
// If create is set and the file does not exist, a new random key is written
// there with mode 0600 first (the single-node default, <data-dir>/root.key).
func LoadRootKey(path string, create bool) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := createRootKey(path); err != nil {
			return nil, err
		}
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRootKey, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRootKey, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrRootKey, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o; it must be readable by its owner only (chmod 600 %s)", ErrRootKey, path, perm, path)
	}
	if fi.Size() != RootKeySize {
		return nil, fmt.Errorf("%w: %s holds %d bytes; a root key is exactly %d raw bytes", ErrRootKey, path, fi.Size(), RootKeySize)
	}
	key := make([]byte, RootKeySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrRootKey, path, err)
	}
	return key, nil
}

// createRootKey writes a fresh random root key to path atomically
// (atomicfile.Create), so a crash never leaves a short key behind that
// would later be refused.
func createRootKey(path string) error {
	key := make([]byte, RootKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("%w: %w", ErrRootKey, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrRootKey, err)
	}
	// Created, never replaced: of two concurrent creators the second
	// fails with ErrExist and reads the first one's key.
	if err := atomicfile.Create(path, key, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %w", ErrRootKey, err)
	}
	return nil
}

// derivedKeys are the keys the keystore uses, all derived from the root key.
type derivedKeys struct {
	storage  []byte // seals secret records
	badger   []byte // Badger's encryption-at-rest master key
	snapshot []byte // encrypts state machine snapshots
}

func deriveKeys(root []byte) (derivedKeys, error) {
	if len(root) != RootKeySize {
		return derivedKeys{}, fmt.Errorf("%w: root key has %d bytes, want %d", ErrRootKey, len(root), RootKeySize)
	}
	storage, err := hkdf.Key(sha256.New, root, nil, labelStorageKey, 32)
	if err != nil {
		return derivedKeys{}, fmt.Errorf("%w: derive storage key: %w", ErrRootKey, err)
	}
	bk, err := hkdf.Key(sha256.New, root, nil, labelBadgerKey, 32)
	if err != nil {
		return derivedKeys{}, fmt.Errorf("%w: derive badger key: %w", ErrRootKey, err)
	}
	snap, err := hkdf.Key(sha256.New, root, nil, labelSnapshotKey, 32)
	if err != nil {
		return derivedKeys{}, fmt.Errorf("%w: derive snapshot key: %w", ErrRootKey, err)
	}
	return derivedKeys{storage: storage, badger: bk, snapshot: snap}, nil
}
