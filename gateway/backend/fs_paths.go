package backend

import (
	"path"
	"strings"
)

// Key mapping of the fs backend.
//
// An object key is split at "/" into segments and every segment becomes one
// path component named by a kind letter and the escaped segment bytes:
//
//	d<seg>   a directory: the key continues with seg + "/"
//	o<seg>   the object file: the key ends with seg
//	c<seg>   a continuation directory for a segment too long for one
//	         component: seg is exactly segChunk bytes and the key continues
//	         with the rest of the same segment
//
// Escaping keeps [a-z0-9._-] and writes every other byte as %XX (upper-case
// hex), so a component is never "." or "..", never holds "/" or NUL, and is
// the same on case-insensitive or Unicode-normalising file systems. So
// "a/b" is da/ob, "a" beside it is oa, "a/" is da/o, "/abs" is d/oabs,
// "../x" is d../ox and "%2F.." is o%252%46.. — every key has exactly one path
// inside its bucket directory and every canonical path decodes to exactly
// one key, so keys neither escape nor collide.
//
// Components stay under the common 255-byte name limit: a plain segment
// holds at most segMax bytes (3*80+1 = 241 characters escaped); a longer one
// is cut into continuation chunks of segChunk = segMax+1 bytes (244). A
// 1024-byte key yields a relative path of about 3.1 KB, under PATH_MAX.
//
// Listing order falls out of the mapping: inside a directory, entries sort
// by seg for objects, seg+"/" for directories and seg for continuations.
// No two sort keys are prefixes of one another except an object's (which
// sorts before everything under the longer one), so a depth-first walk in
// that order yields keys in ascending byte order. A continuation chunk is
// one byte longer than any plain segment for exactly this reason: its last
// byte decides its place relative to a directory of segMax bytes.
const (
	segMax   = 80
	segChunk = segMax + 1
)

// Kind letters of path components.
const (
	kindDir    = 'd'
	kindObject = 'o'
	kindCont   = 'c'
)

// keyPath maps a valid key to its path relative to the bucket directory.
func keyPath(key string) string {
	var b strings.Builder
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		for len(seg) > segMax {
			b.WriteByte(kindCont)
			escapeTo(&b, seg[:segChunk])
			b.WriteByte('/')
			seg = seg[segChunk:]
		}
		if i == len(segs)-1 {
			b.WriteByte(kindObject)
		} else {
			b.WriteByte(kindDir)
		}
		escapeTo(&b, seg)
		if i < len(segs)-1 {
			b.WriteByte('/')
		}
	}
	return b.String()
}

// bucketDir is the directory of bucket's objects, relative to the data
// directory. The bucket name has been validated, so it is one plain name.
func bucketDir(bucket string) string { return path.Join(objectsDir, bucket) }

func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

const hexDigits = "0123456789ABCDEF"

func escapeTo(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
}

// decodeName parses a path component written by keyPath. It accepts only
// the canonical form (what escapeTo writes, with the segment lengths
// keyPath produces), so two names never decode to the same key; anything
// else is not ours and is ignored by listings.
func decodeName(name string) (kind byte, seg string, ok bool) {
	if name == "" {
		return 0, "", false
	}
	kind = name[0]
	if kind != kindDir && kind != kindObject && kind != kindCont {
		return 0, "", false
	}
	var b strings.Builder
	for i := 1; i < len(name); i++ {
		c := name[i]
		if c != '%' {
			if !plainByte(c) {
				return 0, "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(name) {
			return 0, "", false
		}
		hi, lo := strings.IndexByte(hexDigits, name[i+1]), strings.IndexByte(hexDigits, name[i+2])
		if hi < 0 || lo < 0 || plainByte(byte(hi<<4|lo)) {
			return 0, "", false
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	seg = b.String()
	if kind == kindCont && len(seg) != segChunk || kind != kindCont && len(seg) > segMax {
		return 0, "", false
	}
	if strings.IndexByte(seg, '/') >= 0 {
		return 0, "", false
	}
	return kind, seg, true
}
