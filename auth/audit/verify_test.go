package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// frameAt returns the segment file holding record pos and the offsets of
// its frame [start, end).
func frameAt(t *testing.T, dir string, pos uint64) (string, int64, int64) {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, sg := range segs {
		if i+1 < len(segs) && segs[i+1].first <= pos {
			continue
		}
		b, err := os.ReadFile(sg.path)
		if err != nil {
			t.Fatal(err)
		}
		off := int64(segmentHeaderSize)
		for p := sg.first; off < int64(len(b)); p++ {
			n := int64(binary.BigEndian.Uint32(b[off:]))
			if p == pos {
				return sg.path, off, off + frameHeaderSize + n
			}
			off += frameHeaderSize + n
		}
	}
	t.Fatalf("record %d not found", pos)
	return "", 0, 0
}

func editFile(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// editCheckpoint changes the i-th signed checkpoint of a checkpoints file.
func editCheckpoint(t *testing.T, path string, i int, fn func(*SignedCheckpoint)) {
	t.Helper()
	cps, err := readCheckpointFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fn(&cps[i])
	if err := WriteCheckpoints(path, cps); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestVerify_TamperMatrix exports a log of 20 records with a checkpoint
// every 5, damages a copy of the export in one way each, and checks Verify
// reports the first bad position with the right kind.
func TestVerify_TamperMatrix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := &MemoryCheckpoints{}
	keys := newFakeKeys(tenantA, tenantB)
	pub := writeLog(t, dir, 20, 5, keys, store)
	export := filepath.Join(t.TempDir(), "export")
	replicated := mustCheckpoints(t, store, pub)
	if err := Export(context.Background(), dir, export, replicated); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(context.Background(), export, pub, VerifyOptions{Replicated: replicated}); err != nil || !rep.OK() {
		t.Fatalf("untouched export: %v %+v", err, rep.Problems)
	}

	// A log rewritten on the node with the node's own keys: consistent
	// with itself, not with the replicated checkpoints.
	forged := t.TempDir()
	for _, f := range []string{signingKeyFile, systemKeyFile} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		os.WriteFile(filepath.Join(forged, f), b, 0o600)
	}
	clock := &testClock{t: t0}
	fl := openLog(t, testConfig(forged, 5, keys, nil, clock))
	for i := range 20 {
		r := record(i, t0)
		if i == 12 {
			r.Kind = AuthSuccess // the attacker hides a failure
		}
		if err := fl.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	fl.Close()
	if _, err := Open(context.Background(), testConfig(forged, 5, keys, store, nil)); !errors.Is(err, ErrTampered) {
		t.Fatalf("Open of a rewritten log against the replicated checkpoints: %v", err)
	}

	ckPath := func(d string) string { return filepath.Join(d, checkpointsFile) }
	tests := []struct {
		name   string
		dir    string // default: a copy of the export
		tamper func(t *testing.T, d string)
		kind   ProblemKind
		pos    uint64
		detail string
	}{
		{name: "modified record byte", tamper: func(t *testing.T, d string) {
			p, start, end := frameAt(t, d, 7)
			editFile(t, p, func(b []byte) []byte { b[(start+end)/2] ^= 1; return b })
		}, kind: Modified, pos: 7, detail: "checksum"},
		{name: "modified record with checksum fixed", tamper: func(t *testing.T, d string) {
			p, start, end := frameAt(t, d, 7)
			editFile(t, p, func(b []byte) []byte {
				pl := b[start+frameHeaderSize : end]
				pl[len(pl)-1] ^= 1
				binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(pl, crcTable))
				return b
			})
		}, kind: Modified, pos: 5, detail: "[5, 10)"},
		{name: "deleted record", tamper: func(t *testing.T, d string) {
			p, start, end := frameAt(t, d, 7)
			editFile(t, p, func(b []byte) []byte { return append(b[:start:start], b[end:]...) })
		}, kind: Deleted, pos: 7, detail: "record 7 is missing"},
		{name: "swapped records", tamper: func(t *testing.T, d string) {
			p, s3, e3 := frameAt(t, d, 3)
			p4, s4, e4 := frameAt(t, d, 4)
			if p != p4 {
				t.Fatal("records 3 and 4 in different segments")
			}
			editFile(t, p, func(b []byte) []byte {
				out := append([]byte(nil), b[:s3]...)
				out = append(out, b[s4:e4]...)
				out = append(out, b[s3:e3]...)
				return append(out, b[e4:]...)
			})
		}, kind: Reordered, pos: 3, detail: "record 3 is at position 4"},
		{name: "truncated inside a record", tamper: func(t *testing.T, d string) {
			p, start, _ := frameAt(t, d, 19)
			editFile(t, p, func(b []byte) []byte { return b[:start+10] })
		}, kind: Truncated, pos: 19},
		{name: "last segment removed", tamper: func(t *testing.T, d string) {
			p, _, _ := frameAt(t, d, 19)
			os.Remove(p)
		}, kind: Truncated},
		{name: "forged Ed25519 signature", tamper: func(t *testing.T, d string) {
			editCheckpoint(t, ckPath(d), 1, func(c *SignedCheckpoint) { c.Ed25519[3] ^= 1 })
		}, kind: BadSignature, pos: 10, detail: "Ed25519"},
		{name: "forged ML-DSA-65 signature", tamper: func(t *testing.T, d string) {
			editCheckpoint(t, ckPath(d), 2, func(c *SignedCheckpoint) { c.MLDSA65[100] ^= 1 })
		}, kind: BadSignature, pos: 15, detail: "ML-DSA-65"},
		{name: "checkpoint root replaced", tamper: func(t *testing.T, d string) {
			editCheckpoint(t, ckPath(d), 0, func(c *SignedCheckpoint) { c.Root[0] ^= 1 })
		}, kind: BadSignature, pos: 5},
		{name: "checkpoint signed by another key", tamper: func(t *testing.T, d string) {
			other := newSigner(pub.LogID, "node-1", make([]byte, 32), make([]byte, mldsa65.SeedSize))
			editCheckpoint(t, ckPath(d), 3, func(c *SignedCheckpoint) {
				sc, _ := other.Sign(c.Checkpoint)
				*c = sc
			})
		}, kind: BadSignature, pos: 20, detail: "Ed25519"},
		{name: "checkpoints reordered", tamper: func(t *testing.T, d string) {
			cps, _ := readCheckpointFile(ckPath(d))
			cps[1], cps[2] = cps[2], cps[1]
			WriteCheckpoints(ckPath(d), cps)
		}, kind: Inconsistent, pos: 10},
		{name: "rewritten with the node's own keys", dir: forged, kind: Rewritten, pos: 0, detail: "replicated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := tt.dir
			if d == "" {
				d = copyDir(t, export)
				tt.tamper(t, d)
			}
			rep, err := Verify(context.Background(), d, pub, VerifyOptions{Replicated: replicated})
			if err != nil {
				t.Fatal(err)
			}
			p, bad := rep.First()
			if !bad {
				t.Fatal("tampering not detected")
			}
			if p.Kind != tt.kind || p.Position != tt.pos && tt.pos != 0 || !strings.Contains(p.Detail, tt.detail) {
				t.Fatalf("first problem %v, want %s at %d (%q); all: %v", p, tt.kind, tt.pos, tt.detail, rep.Problems)
			}
		})
	}
}

// TestVerify_ForkedCheckpoints checks that two validly signed roots for
// one size are reported, whichever log the records come from.
func TestVerify_ForkedCheckpoints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := &MemoryCheckpoints{}
	pub := writeLog(t, dir, 10, 5, nil, store)
	cps := mustCheckpoints(t, store, pub)
	// Sign a different root for size 10 with the node's key.
	s, err := loadOrCreateSigner(filepath.Join(dir, signingKeyFile), "")
	if err != nil {
		t.Fatal(err)
	}
	c := cps[len(cps)-1].Checkpoint
	c.Root[5] ^= 1
	fork, _ := s.Sign(c)
	rep, _ := Verify(context.Background(), dir, pub, VerifyOptions{Replicated: append(cps, fork)})
	var found bool
	for _, p := range rep.Problems {
		found = found || p.Kind == Inconsistent && p.Position == 10
	}
	if !found {
		t.Fatalf("fork not reported: %v", rep.Problems)
	}
}

func TestSignedCheckpoint_Encoding(t *testing.T) {
	t.Parallel()
	s := newSigner([16]byte{1}, "n", bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32))
	sc, err := s.Sign(Checkpoint{LogID: [16]byte{1}, NodeID: "node-7", Size: 42, Root: EmptyRoot, Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sc.MarshalBinary()
	var back SignedCheckpoint
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if err := s.public.Verify(back); err != nil || back.Size != 42 || back.NodeID != "node-7" || !back.Time.Equal(t0) {
		t.Fatalf("%v %+v", err, back.Checkpoint)
	}
	for i := range len(b) - 1 {
		var x SignedCheckpoint
		if x.UnmarshalBinary(b[:i]) == nil {
			t.Fatalf("prefix of %d bytes decodes", i)
		}
	}
}

// TestVerify_WhileNodeWrites reads a log (Verify in live mode, Export,
// Review) while it is being appended to, as the CLI does on a serving
// node: every read must verify.
func TestVerify_WhileNodeWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := &MemoryCheckpoints{}
	l := openLog(t, testConfig(dir, 7, nil, store, nil))
	pub := l.PublicKeys()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := l.Append(context.Background(), record(i, time.Time{})); err != nil {
				done <- err
				return
			}
		}
	}()
	for i := range 10 {
		rep, err := Verify(context.Background(), dir, pub, VerifyOptions{Live: true})
		if err != nil || !rep.OK() {
			t.Fatalf("live verify %d: %v %v", i, err, rep.Problems)
		}
		out := filepath.Join(t.TempDir(), "x")
		if err := Export(context.Background(), dir, out, nil); err != nil {
			t.Fatal(err)
		}
		if rep, _ := Verify(context.Background(), out, pub, VerifyOptions{}); !rep.OK() {
			t.Fatalf("export %d taken while writing: %v", i, rep.Problems)
		}
		if _, err := Review(context.Background(), dir, ReviewConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// TestOpen_RefusesModifiedLog checks that a node does not start on a log
// that does not match its own checkpoints.
func TestOpen_RefusesModifiedLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeLog(t, dir, 10, 5, nil, nil)
	p, start, end := frameAt(t, dir, 2)
	editFile(t, p, func(b []byte) []byte { b[(start+end)/2] ^= 0x80; return b })
	if _, err := Open(context.Background(), testConfig(dir, 5, nil, nil, nil)); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "position 2") {
		t.Fatalf("Open of a modified log: %v", err)
	}
}
