package audit

import (
	"crypto/sha256"
	"fmt"
)

// Hash is a SHA-256 digest: a leaf hash, an interior node hash or a tree
// root.
type Hash [sha256.Size]byte

// Domain separation prefixes of RFC 6962 section 2.1, so that a leaf can
// never be passed off as an interior node (second-preimage resistance).
const (
	leafPrefix = 0x00
	nodePrefix = 0x01
)

// LeafHash is MTH({d}) = SHA-256(0x00 || d) of RFC 6962 section 2.1, where d
// is a record exactly as stored (its encrypted form).
func LeafHash(d []byte) Hash {
	h := sha256.New()
	h.Write([]byte{leafPrefix})
	h.Write(d)
	var out Hash
	h.Sum(out[:0])
	return out
}

// NodeHash is SHA-256(0x01 || left || right), RFC 6962 section 2.1.
func NodeHash(left, right Hash) Hash {
	var b [1 + 2*sha256.Size]byte
	b[0] = nodePrefix
	copy(b[1:], left[:])
	copy(b[1+sha256.Size:], right[:])
	return sha256.Sum256(b[:])
}

// EmptyRoot is the root of the empty tree, SHA-256 of the empty string
// (RFC 6962 section 2.1).
var EmptyRoot = Hash(sha256.Sum256(nil))

// Frontier is the compact form of a Merkle tree of Size leaves: the roots of
// its maximal perfect subtrees, left (largest) to right, one per bit set in
// Size. It is all that appending and computing the root need, O(log n)
// hashes whatever the size, and it is what retention keeps in place of the
// records it removes (see Prune).
type Frontier struct {
	Size  uint64
	Peaks []Hash
}

// Append adds a leaf hash. Like a binary counter, every trailing one bit of
// the old size merges two equal perfect subtrees into one.
func (f *Frontier) Append(leaf Hash) {
	f.Peaks = append(f.Peaks, leaf)
	for n := f.Size; n&1 == 1; n >>= 1 {
		k := len(f.Peaks)
		f.Peaks[k-2] = NodeHash(f.Peaks[k-2], f.Peaks[k-1])
		f.Peaks = f.Peaks[:k-1]
	}
	f.Size++
}

// Root returns MTH of the tree, RFC 6962 section 2.1. For n leaves the RFC
// splits at k, the largest power of two below n; k is exactly the first
// peak, so folding the peaks from the right gives the same hash.
func (f *Frontier) Root() Hash {
	if len(f.Peaks) == 0 {
		return EmptyRoot
	}
	h := f.Peaks[len(f.Peaks)-1]
	for i := len(f.Peaks) - 2; i >= 0; i-- {
		h = NodeHash(f.Peaks[i], h)
	}
	return h
}

// Clone returns an independent copy of f.
func (f *Frontier) Clone() Frontier {
	return Frontier{Size: f.Size, Peaks: append([]Hash(nil), f.Peaks...)}
}

// check reports whether the number of peaks matches the size.
func (f *Frontier) check() error {
	n, ones := f.Size, 0
	for ; n > 0; n >>= 1 {
		ones += int(n & 1)
	}
	if ones != len(f.Peaks) {
		return fmt.Errorf("%w: frontier of size %d has %d peaks, want %d", ErrCorrupt, f.Size, len(f.Peaks), ones)
	}
	return nil
}
