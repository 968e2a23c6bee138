package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// mth is RFC 6962 section 2.1's definition, written out independently of
// Frontier: split at the largest power of two smaller than n.
func mth(leaves [][]byte) Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := mth(leaves[:k]), mth(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// ctLeaves are the leaves of the Certificate Transparency reference test
// tree (certificate-transparency-go merkle tests, trillian's
// merkle/rfc6962 testdata), whose roots are published for sizes 1 to 8.
var ctLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

var ctRoots = []string{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func TestFrontier_RFC6962Vectors(t *testing.T) {
	t.Parallel()
	if got := hex.EncodeToString(EmptyRoot[:]); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("empty root %s", got)
	}
	var f Frontier
	var leaves [][]byte
	for i, lh := range ctLeaves {
		d, _ := hex.DecodeString(lh)
		leaves = append(leaves, d)
		f.Append(LeafHash(d))
		root := f.Root()
		if got := hex.EncodeToString(root[:]); got != ctRoots[i] {
			t.Errorf("size %d: root %s, want %s", i+1, got, ctRoots[i])
		}
		if want := mth(leaves); root != want {
			t.Errorf("size %d: frontier root differs from the RFC definition", i+1)
		}
	}
}

func TestFrontier_MatchesDefinition(t *testing.T) {
	t.Parallel()
	var f Frontier
	var leaves [][]byte
	for n := 1; n <= 70; n++ {
		d := []byte{byte(n), byte(n >> 8)}
		leaves = append(leaves, d)
		f.Append(LeafHash(d))
		if err := f.check(); err != nil {
			t.Fatal(err)
		}
		if f.Root() != mth(leaves) {
			t.Fatalf("size %d: root differs from RFC 6962 MTH", n)
		}
	}
}
