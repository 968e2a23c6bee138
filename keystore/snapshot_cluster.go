package keystore

import (
	"errors"
	"fmt"
	"io"
)

// Under Raft a snapshot is bound to its cluster. Format version 2 is
//
//	magic "TRSRSNAP" | version (1 byte, = 2) | len(cluster id) (1 byte) | cluster id | salt (32 bytes) | DARE 2.0 stream
//
// with the stream as in version 1. The cluster id is inside the header that
// the stream key is derived from (HKDF info), so it is authenticated: a
// snapshot of another cluster is refused by its id before decryption, and a
// header edited to carry this cluster's id no longer decrypts. This guards
// against installing another cluster's state (a backup restored to the wrong
// cluster, or two clusters sharing a root key) as much as the root key does.
const snapshotVersionCluster = 2

// ErrOtherCluster: a snapshot was written by another cluster (or by no
// cluster, or for one when none was expected).
var ErrOtherCluster = errors.New("keystore: snapshot of another cluster")

func clusterHeader(clusterID string) ([]byte, error) {
	if clusterID == "" || len(clusterID) > 255 {
		return nil, fmt.Errorf("%w: cluster id of %d bytes", ErrInvalid, len(clusterID))
	}
	h := make([]byte, 0, len(snapshotMagic)+2+len(clusterID)+snapshotSaltSize)
	h = append(h, snapshotMagic...)
	h = append(h, snapshotVersionCluster, byte(len(clusterID)))
	return append(h, clusterID...), nil
}

// readSnapshotHeader reads a snapshot's header, salt included, and checks
// that it is bound to clusterID (empty: a version 1 snapshot, bound to no
// cluster).
func readSnapshotHeader(r io.Reader, clusterID string) ([]byte, error) {
	head := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrSnapshot, err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: unknown magic or version", ErrSnapshot)
	}
	got := ""
	switch head[len(snapshotMagic)] {
	case snapshotVersion:
	case snapshotVersionCluster:
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return nil, fmt.Errorf("%w: header: %w", ErrSnapshot, err)
		}
		id := make([]byte, n[0])
		if _, err := io.ReadFull(r, id); err != nil {
			return nil, fmt.Errorf("%w: header: %w", ErrSnapshot, err)
		}
		head = append(append(head, n[0]), id...)
		got = string(id)
		if got == "" {
			return nil, fmt.Errorf("%w: empty cluster id", ErrSnapshot)
		}
	default:
		return nil, fmt.Errorf("%w: unknown magic or version", ErrSnapshot)
	}
	if got != clusterID {
		return nil, fmt.Errorf("%w: %w: snapshot of cluster %q, this is %q", ErrSnapshot, ErrOtherCluster, got, clusterID)
	}
	salt := make([]byte, snapshotSaltSize)
	if _, err := io.ReadFull(r, salt); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrSnapshot, err)
	}
	return append(head, salt...), nil
}

// RestoreCluster is Restore for a snapshot written by WriteToCluster with
// the same clusterID; a snapshot of another cluster, or one bound to none,
// is refused with ErrOtherCluster and the store is left as it was.
func (f *FSM) RestoreCluster(r io.Reader, clusterID string) error {
	if clusterID == "" {
		return fmt.Errorf("%w: empty cluster id", ErrInvalid)
	}
	return f.restore(r, clusterID)
}
