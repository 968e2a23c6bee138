package backend

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"
)

// Object file format of the fs backend (objects and multipart parts alike):
//
//	data     the stored bytes, at offset 0, so a range is a plain offset
//	trailer  JSON of fileTrailer: ETag, size, time, metadata, key
//	footer   16 bytes: "trfs", version 1, 3 zero bytes,
//	         trailer length (uint32 big-endian), CRC-32C of the trailer
//
// The trailer follows the data because the ETag is only known once the data
// has streamed through the hash. The whole file is written to tmp/, fsynced
// and renamed into place, so metadata and data change together atomically.
const (
	footerLen     = 16
	footerMagic   = "trfs"
	formatVersion = 1
	// maxTrailerLen bounds what a reader allocates for a trailer: 2 KiB of
	// metadata, a 1 KiB key escaped up to six times by JSON, and slack.
	maxTrailerLen = 64 << 10
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// fileTrailer is the metadata stored after an object's data.
type fileTrailer struct {
	Key      string            `json:"key,omitempty"` // for recovery tools; listing decodes paths
	Size     int64             `json:"size"`
	ETag     string            `json:"etag"`
	Modified time.Time         `json:"modified"`
	Metadata map[string]string `json:"meta,omitempty"`
}

func (t fileTrailer) info(key string) ObjectInfo {
	return ObjectInfo{Key: key, Size: t.Size, ETag: t.ETag, LastModified: t.Modified, Metadata: Metadata(t.Metadata)}
}

// appendTrailer writes t and the footer after the data.
func appendTrailer(w io.Writer, t fileTrailer) error {
	body, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode trailer: %w", err)
	}
	var foot [footerLen]byte
	copy(foot[:4], footerMagic)
	foot[4] = formatVersion
	binary.BigEndian.PutUint32(foot[8:12], uint32(len(body)))
	binary.BigEndian.PutUint32(foot[12:16], crc32.Checksum(body, crc32c))
	if _, err := w.Write(append(body, foot[:]...)); err != nil {
		return fmt.Errorf("write trailer: %w", err)
	}
	return nil
}

// readTrailer reads the trailer of an open object file and checks it
// against the file's size.
func readTrailer(f *os.File) (fileTrailer, error) {
	var t fileTrailer
	st, err := f.Stat()
	if err != nil {
		return t, err
	}
	corrupt := func(why string) error {
		return fmt.Errorf("backend: corrupt object file %s: %s", f.Name(), why)
	}
	if st.Size() < footerLen {
		return t, corrupt("too short")
	}
	var foot [footerLen]byte
	if _, err := f.ReadAt(foot[:], st.Size()-footerLen); err != nil {
		return t, fmt.Errorf("read footer: %w", err)
	}
	if string(foot[:4]) != footerMagic {
		return t, corrupt("bad magic")
	}
	if foot[4] != formatVersion {
		return t, corrupt(fmt.Sprintf("unknown version %d", foot[4]))
	}
	n := int64(binary.BigEndian.Uint32(foot[8:12]))
	if n > maxTrailerLen || n > st.Size()-footerLen {
		return t, corrupt("bad trailer length")
	}
	body := make([]byte, n)
	if _, err := f.ReadAt(body, st.Size()-footerLen-n); err != nil {
		return t, fmt.Errorf("read trailer: %w", err)
	}
	if crc32.Checksum(body, crc32c) != binary.BigEndian.Uint32(foot[12:16]) {
		return t, corrupt("trailer checksum mismatch")
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return t, corrupt(err.Error())
	}
	if t.Size != st.Size()-footerLen-n {
		return t, corrupt("size does not match")
	}
	return t, nil
}
