package audit

import (
	"bytes"
	"testing"
)

// FuzzParseEntry feeds record bytes as an attacker could leave them in a
// segment: parsing must not panic, and what parses re-encodes identically
// (one record, one encoding, so one leaf hash).
func FuzzParseEntry(f *testing.F) {
	k, _ := deriveKeys(make([]byte, 32))
	for i := range 5 {
		e, _ := seal(record(i, t0), [16]byte{1}, k)
		f.Add(e.marshal())
	}
	agg, _ := seal(Record{Time: t0, Kind: Aggregated, Of: AuthFailure, Count: 1234, SourceAddr: "198.51.100.1", Reason: "AccessDenied"}, [16]byte{}, k)
	f.Add(agg.marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.marshal(), b) {
			t.Fatalf("entry re-encodes differently")
		}
	})
}

// FuzzSignedCheckpoint checks that checkpoint decoding never panics and
// never yields a checkpoint that verifies unless it was signed.
func FuzzSignedCheckpoint(f *testing.F) {
	s := newSigner([16]byte{1}, "n", make([]byte, 32), make([]byte, 32))
	sc, _ := s.Sign(Checkpoint{LogID: [16]byte{1}, Size: 3, Root: EmptyRoot, Time: t0})
	good, _ := sc.MarshalBinary()
	f.Add(good)
	f.Add(good[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		var c SignedCheckpoint
		if c.UnmarshalBinary(b) != nil {
			return
		}
		// Signing is hedged (randomised), so compare the signed message:
		// only the one message signed may verify.
		if s.public.Verify(c) == nil && !bytes.Equal(c.Message(), sc.Message()) {
			t.Fatal("a checkpoint that was not signed verifies")
		}
	})
}
