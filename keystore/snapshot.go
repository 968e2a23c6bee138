package keystore

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4"
	"github.com/minio/sio"
)

// Snapshot format, for Raft's snapshot store and for moving a replica:
//
//	magic "TRSRSNAP" | version (1 byte, = 1) | salt (32 random bytes) | DARE 2.0 stream
//
// The DARE 2.0 stream (github.com/minio/sio, AES-256-GCM, 64 KiB packages,
// final-package flag, so truncation and reordering are detected) is under
// HKDF-SHA256(snapshot key, salt, labelSnapshotStream || magic || version):
// a fresh key per snapshot, bound to the header. Its plaintext is
//
//	applied index (8 bytes BE) | { uvarint len(key) | key | uvarint len(value) | value }* | uvarint 0
//
// with every key of the store in key order, dedup tables included (a replica
// restored from a snapshot must deduplicate as the others do). Names and
// manifests are as protected as in Badger; secrets stay sealed inside.
const (
	snapshotMagic       = "TRSRSNAP"
	snapshotVersion     = 1
	snapshotSaltSize    = 32
	labelSnapshotStream = "tresor/keystore/snapshot-stream/1"
	// maxSnapshotKey and maxSnapshotValue bound what Restore allocates per
	// record; the stream is authenticated, so they only guard against a
	// snapshot from a buggy writer.
	maxSnapshotKey   = 64 << 10
	maxSnapshotValue = 2 * MaxCommandSize
)

// Snapshot is a consistent view of the state machine at one applied index,
// taken by FSM.Snapshot. Writing it does not block Apply. Release it when
// done.
type Snapshot struct {
	txn   *badger.Txn
	index uint64
	key   []byte
}

// Snapshot captures the state machine as of the last applied batch. It is
// cheap (a Badger read transaction); the copy is made by WriteTo, which may
// run while later batches are applied. This is the split raft.FSM.Snapshot
// and FSMSnapshot.Persist expect.
func (f *FSM) Snapshot() *Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &Snapshot{txn: f.db.NewTransaction(false), index: f.applied.Load(), key: f.snapshotKey}
}

// Index is the applied index the snapshot holds.
func (s *Snapshot) Index() uint64 { return s.index }

// Release ends the snapshot's read transaction.
func (s *Snapshot) Release() { s.txn.Discard() }

// WriteTo writes the encrypted snapshot to w.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	header := make([]byte, 0, len(snapshotMagic)+1+snapshotSaltSize)
	header = append(header, snapshotMagic...)
	header = append(header, snapshotVersion)
	return s.write(w, header)
}

// WriteToCluster writes the encrypted snapshot to w bound to clusterID
// (format version 2, snapshot_cluster.go): FSM.RestoreCluster on a replica
// of another cluster refuses it.
func (s *Snapshot) WriteToCluster(w io.Writer, clusterID string) (int64, error) {
	header, err := clusterHeader(clusterID)
	if err != nil {
		return 0, err
	}
	return s.write(w, header)
}

// write writes header, a fresh salt and the encrypted stream.
func (s *Snapshot) write(w io.Writer, header []byte) (int64, error) {
	cw := &countingWriter{w: w}
	salt := make([]byte, snapshotSaltSize)
	if _, err := rand.Read(salt); err != nil {
		return 0, fmt.Errorf("keystore: snapshot salt: %w", err)
	}
	header = append(header, salt...)
	if _, err := cw.Write(header); err != nil {
		return cw.n, fmt.Errorf("keystore: write snapshot: %w", err)
	}
	key, err := snapshotStreamKey(s.key, header)
	if err != nil {
		return cw.n, err
	}
	ew, err := sio.EncryptWriter(cw, sio.Config{MinVersion: sio.Version20, Key: key})
	clear(key)
	if err != nil {
		return cw.n, fmt.Errorf("keystore: snapshot cipher: %w", err)
	}
	bw := bufio.NewWriterSize(ew, 64<<10)
	err = s.writePlain(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = ew.Close() // seals the final package
	}
	if err != nil {
		return cw.n, fmt.Errorf("keystore: write snapshot: %w", err)
	}
	return cw.n, nil
}

func (s *Snapshot) writePlain(w *bufio.Writer) error {
	var buf [binary.MaxVarintLen64]byte
	if _, err := w.Write(binary.BigEndian.AppendUint64(buf[:0], s.index)); err != nil {
		return err
	}
	it := s.txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 100})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		w.Write(binary.AppendUvarint(buf[:0], uint64(len(item.Key()))))
		w.Write(item.Key())
		err := item.Value(func(v []byte) error {
			w.Write(binary.AppendUvarint(buf[:0], uint64(len(v))))
			_, err := w.Write(v)
			return err
		})
		if err != nil {
			return err
		}
	}
	_, err := w.Write(binary.AppendUvarint(buf[:0], 0))
	return err
}

// Restore replaces the whole state machine with a snapshot written by
// Snapshot.WriteTo under the same root key. The snapshot is read and
// authenticated completely before the store is touched, so a bad snapshot
// (ErrSnapshot) leaves the store as it was; the price is holding the
// snapshot's records in memory while restoring, which the keystore's size
// (records of a few hundred bytes) makes affordable.
func (f *FSM) Restore(r io.Reader) error {
	return f.restore(r, "")
}

// restore restores a snapshot of version 1 (clusterID empty) or one bound
// to clusterID.
func (f *FSM) restore(r io.Reader, clusterID string) error {
	kvs, index, err := f.readSnapshot(r, clusterID)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.db.DropAll(); err != nil {
		return fmt.Errorf("keystore: restore: drop: %w", err)
	}
	wb := f.db.NewWriteBatch()
	defer wb.Cancel()
	for _, kv := range kvs {
		if err := wb.Set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("keystore: restore: write: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("keystore: restore: write: %w", err)
	}
	if err := f.loadApplied(); err != nil {
		return err
	}
	if got := f.applied.Load(); got != index {
		return fmt.Errorf("%w: header says index %d, records say %d", ErrSnapshot, index, got)
	}
	f.cache.forgetAll()
	f.logger.Info("keystore restored from snapshot", "applied_index", index, "records", len(kvs))
	return nil
}

func (f *FSM) readSnapshot(r io.Reader, clusterID string) ([][2][]byte, uint64, error) {
	header, err := readSnapshotHeader(r, clusterID)
	if err != nil {
		return nil, 0, err
	}
	key, err := snapshotStreamKey(f.snapshotKey, header)
	if err != nil {
		return nil, 0, err
	}
	dr, err := sio.DecryptReader(r, sio.Config{MinVersion: sio.Version20, Key: key})
	clear(key)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	br := bufio.NewReaderSize(dr, 64<<10)
	var idx [8]byte
	if _, err := io.ReadFull(br, idx[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	var kvs [][2][]byte
	var prev []byte
	for {
		k, err := readChunk(br, maxSnapshotKey)
		if err != nil {
			return nil, 0, err
		}
		if len(k) == 0 {
			break
		}
		if prev != nil && bytes.Compare(k, prev) <= 0 {
			return nil, 0, fmt.Errorf("%w: keys out of order", ErrSnapshot)
		}
		v, err := readChunk(br, maxSnapshotValue)
		if err != nil {
			return nil, 0, err
		}
		kvs = append(kvs, [2][]byte{k, v})
		prev = k
	}
	// Nothing may follow the end marker, and the stream must end properly
	// (sio reports a missing final package here).
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return nil, 0, fmt.Errorf("%w: data after the end: %v", ErrSnapshot, err)
	}
	return kvs, binary.BigEndian.Uint64(idx[:]), nil
}

func readChunk(br *bufio.Reader, max uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	if n > max {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrSnapshot, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	return b, nil
}

func snapshotStreamKey(snapshotKey, header []byte) ([]byte, error) {
	salt := header[len(header)-snapshotSaltSize:]
	info := labelSnapshotStream + string(header[:len(header)-snapshotSaltSize])
	k, err := hkdf.Key(sha256.New, snapshotKey, salt, info, 32)
	if err != nil {
		return nil, fmt.Errorf("keystore: snapshot key: %w", err)
	}
	return k, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
