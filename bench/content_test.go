package bench

import (
	"errors"
	"testing"
)

func TestBody_IdentifiesItsVersion(t *testing.T) {
	for _, v := range []uint64{1, 2, 1000} {
		b := Body("put/z0-w0-1", v)
		if len(b) < minBodySize || len(b) > maxBodySize {
			t.Fatalf("size %d outside [%d, %d]", len(b), minBodySize, maxBodySize)
		}
		got, err := Identify("put/z0-w0-1", b)
		if err != nil || got != v {
			t.Fatalf("Identify = %d, %v; want %d", got, err, v)
		}
	}
}

func TestIdentify_RejectsWrongBytes(t *testing.T) {
	good := Body("k", 3)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name string
		key  string
		body []byte
	}{
		{"last byte flipped", "k", flipped},
		{"truncated", "k", good[:len(good)-1]},
		{"extended", "k", append(append([]byte(nil), good...), 0)},
		{"another key's body", "other", good},
		{"empty", "k", nil},
		{"no header", "k", []byte("hello world\n")},
		{"header of another version", "k", append(Body("k", 4)[:40:40], good[40:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Identify(tc.key, tc.body); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Identify = %v, want ErrCorrupt", err)
			}
		})
	}
}
