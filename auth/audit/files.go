package audit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tresor-gw/tresor/internal/atomicfile"
)

// File names inside a log directory (FORMAT.md).
const (
	signingKeyFile  = "signing.key"
	systemKeyFile   = "system.key"
	pubKeysFile     = "pubkeys.json"
	baseFile        = "base"
	checkpointsFile = "checkpoints"
	replicatedFile  = "replicated"
	segmentPrefix   = "seg-"
	segmentSuffix   = ".log"
)

// segmentMagic starts every segment file, followed by the sequence number
// of its first record (8 bytes big endian).
const (
	segmentMagic      = "tresor audit seg1"
	segmentHeaderSize = len(segmentMagic) + 8
)

// Frames: length 4 | CRC-32C of payload 4 | payload. The CRC finds torn
// writes and accidental damage and pins a modified record to its position;
// it is not what makes the log tamper-evident (the signed Merkle roots
// are).
const frameHeaderSize = 8

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func appendFrame(b, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(payload, crcTable))
	return append(b, payload...)
}

// Frame reading outcomes besides a good frame.
var (
	errTorn   = errors.New("frame cut short")
	errBadCRC = errors.New("frame checksum mismatch")
)

// frameReader reads frames from r, tracking the offset of the end of the
// last whole frame.
type frameReader struct {
	r   *bufio.Reader
	off int64
	max int
	buf []byte
}

func newFrameReader(r io.Reader, off int64, max int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10), off: off, max: max}
}

// next returns the next payload (valid until the next call), io.EOF at a
// clean end, errTorn for a partial frame, errBadCRC for a frame whose bytes
// do not match its checksum (its payload is still returned, and the
// reader moves past it).
func (f *frameReader) next() ([]byte, error) {
	var h [frameHeaderSize]byte
	n, err := io.ReadFull(f.r, h[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		if n > 0 || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errTorn
		}
		return nil, err
	}
	size := binary.BigEndian.Uint32(h[:])
	if int64(size) > int64(f.max) {
		return nil, fmt.Errorf("%w: frame length %d exceeds %d", ErrCorrupt, size, f.max)
	}
	if cap(f.buf) < int(size) {
		f.buf = make([]byte, size)
	}
	f.buf = f.buf[:size]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			return nil, errTorn
		}
		return nil, err
	}
	f.off += frameHeaderSize + int64(size)
	if crc32.Checksum(f.buf, crcTable) != binary.BigEndian.Uint32(h[4:]) {
		return f.buf, errBadCRC
	}
	return f.buf, nil
}

// segment is a segment file and the sequence number its name gives.
type segment struct {
	first uint64
	path  string
}

func segmentName(first uint64) string {
	return fmt.Sprintf("%s%020d%s", segmentPrefix, first, segmentSuffix)
}

// listSegments returns dir's segments in order.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, segmentPrefix) || !strings.HasSuffix(n, segmentSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, segmentPrefix), segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{first: first, path: filepath.Join(dir, n)})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	return segs, nil
}

// readSegmentHeader checks the header and returns the first sequence number
// it names.
func readSegmentHeader(r io.Reader) (uint64, error) {
	var h [segmentHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, fmt.Errorf("%w: segment header: %v", ErrCorrupt, err)
	}
	if string(h[:len(segmentMagic)]) != segmentMagic {
		return 0, fmt.Errorf("%w: segment header magic", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(h[len(segmentMagic):]), nil
}

func segmentHeader(first uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(segmentMagic), first)
}

// baseMagic starts the base file: the Merkle frontier of the records that
// retention removed.
const baseMagic = "tresor audit base v1\x00"

// marshalBase encodes f: magic | size 8 | peaks (32 each, as many as bits
// set in size) | CRC-32C of all before, 4.
func marshalBase(f Frontier) []byte {
	b := append([]byte(baseMagic), binary.BigEndian.AppendUint64(nil, f.Size)...)
	for _, p := range f.Peaks {
		b = append(b, p[:]...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// readBase reads dir's base; a missing file is the empty frontier.
func readBase(dir string) (Frontier, error) {
	b, err := os.ReadFile(filepath.Join(dir, baseFile))
	if errors.Is(err, os.ErrNotExist) {
		return Frontier{}, nil
	}
	if err != nil {
		return Frontier{}, err
	}
	bad := fmt.Errorf("%w: base file", ErrCorrupt)
	if len(b) < len(baseMagic)+12 || string(b[:len(baseMagic)]) != baseMagic || (len(b)-len(baseMagic)-12)%32 != 0 {
		return Frontier{}, bad
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return Frontier{}, bad
	}
	f := Frontier{Size: binary.BigEndian.Uint64(b[len(baseMagic):])}
	for p := body[len(baseMagic)+8:]; len(p) > 0; p = p[32:] {
		f.Peaks = append(f.Peaks, Hash(p[:32]))
	}
	return f, f.check()
}

// maxCheckpointSize bounds a checkpoint frame.
const maxCheckpointSize = 8 << 10

// readCheckpointFile reads signed checkpoints from a frames file; a missing
// file holds none. A damaged frame ends the list with an error saying at
// which checkpoint; a frame cut short at the end (a checkpoint being
// written, or torn by a crash) gives an error wrapping errTorn.
func readCheckpointFile(path string) ([]SignedCheckpoint, error) {
	cps, _, err := readCheckpointFrames(path)
	return cps, err
}

// readCheckpointFrames is readCheckpointFile that also returns the end of
// the last whole frame.
func readCheckpointFrames(path string) ([]SignedCheckpoint, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fr := newFrameReader(f, 0, maxCheckpointSize)
	var out []SignedCheckpoint
	for {
		p, err := fr.next()
		if err == io.EOF {
			return out, fr.off, nil
		}
		if errors.Is(err, errTorn) {
			return out, fr.off, fmt.Errorf("checkpoint %d in %s: %w", len(out), filepath.Base(path), errTorn)
		}
		if err != nil {
			return out, fr.off, fmt.Errorf("%w: checkpoint %d in %s: %v", ErrCorrupt, len(out), filepath.Base(path), err)
		}
		var sc SignedCheckpoint
		if err := sc.UnmarshalBinary(p); err != nil {
			return out, fr.off, fmt.Errorf("checkpoint %d in %s: %w", len(out), filepath.Base(path), err)
		}
		out = append(out, sc)
	}
}

// WriteCheckpoints writes cps as a checkpoint frames file (the format of
// the log's own checkpoints file), for handing replicated checkpoints to
// Verify or `tresor audit verify --checkpoints`.
func WriteCheckpoints(path string, cps []SignedCheckpoint) error {
	b, err := encodeCheckpoints(cps)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

// encodeCheckpoints frames cps.
func encodeCheckpoints(cps []SignedCheckpoint) ([]byte, error) {
	var b []byte
	for _, c := range cps {
		m, err := c.MarshalBinary()
		if err != nil {
			return nil, err
		}
		b = appendFrame(b, m)
	}
	return b, nil
}

// ReadCheckpoints reads a file written by WriteCheckpoints.
func ReadCheckpoints(path string) ([]SignedCheckpoint, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return readCheckpointFile(path)
}
