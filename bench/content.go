package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Object sizes of the load. The largest crosses the 64 KiB DARE package
// boundary (DESIGN.md section 3), so reads check framing over more than one
// package; the smallest is one short package.
const (
	minBodySize = 1 << 10
	maxBodySize = 80 << 10
)

// headerPrefix starts every body the load writes; the header names the key
// and version the body was derived from, so a read that returns another
// write's bytes is told apart from one that returns garbage.
const headerPrefix = "tresor-bench "

// ErrCorrupt is returned by Identify for a body that is not exactly the
// content of the (key, version) it claims, or that claims another key.
var ErrCorrupt = errors.New("bench: body differs from the content of its (key, version)")

// Body returns the content of version of key: a one-line header naming both,
// then pseudo-random bytes from ChaCha8 seeded with SHA-256 of the pair. The
// size, 1 to 80 KiB, is derived from the pair as well, so every byte of a
// read can be checked against the version it claims.
func Body(key string, version uint64) []byte {
	seed := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d", key, version))
	size := minBodySize + int(binary.BigEndian.Uint32(seed[:4])%(maxBodySize-minBodySize+1))
	b := make([]byte, size)
	h := fmt.Appendf(nil, "%sversion=%d key=%s\n", headerPrefix, version, strconv.Quote(key))
	n := copy(b, h)
	r := rand.NewChaCha8(seed)
	_, _ = r.Read(b[n:]) // ChaCha8.Read never fails
	return b
}

// Identify returns the version whose content body is, checking every byte
// against Body(key, version). It returns ErrCorrupt if the header is missing,
// names another key, or any byte differs.
func Identify(key string, body []byte) (uint64, error) {
	line, _, ok := bytes.Cut(body[:min(len(body), 64+len(key)*4)], []byte("\n"))
	if !ok || !bytes.HasPrefix(line, []byte(headerPrefix)) {
		return 0, fmt.Errorf("%w: no header (%d bytes)", ErrCorrupt, len(body))
	}
	var version uint64
	var quoted string
	if _, err := fmt.Sscanf(string(line[len(headerPrefix):]), "version=%d key=%s", &version, &quoted); err != nil {
		return 0, fmt.Errorf("%w: header %q: %v", ErrCorrupt, line, err)
	}
	if k, err := strconv.Unquote(quoted); err != nil || k != key {
		return 0, fmt.Errorf("%w: header names key %s, read %q", ErrCorrupt, quoted, key)
	}
	if !bytes.Equal(body, Body(key, version)) {
		return version, fmt.Errorf("%w: %q version %d (%d bytes)", ErrCorrupt, key, version, len(body))
	}
	return version, nil
}
