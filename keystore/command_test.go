package keystore

import (
	"bytes"
	"errors"
	"testing"
)

func TestCommand_RoundTrip(t *testing.T) {
	c := Command{Op: OpCreateBucket, RequestID: [16]byte{1, 2, 3}, Payload: []byte(`{"x":1}`)}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != commandVersion || b[1] != byte(OpCreateBucket) || len(b) != commandHeader+7 {
		t.Fatalf("encoding % x", b)
	}
	var got Command
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.Op != c.Op || got.RequestID != c.RequestID || !bytes.Equal(got.Payload, c.Payload) {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestCommand_UnmarshalRejects(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", []byte{1, 2, 3}},
		{"unknown version", append([]byte{9, 1}, make([]byte, 16)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Command
			if err := c.UnmarshalBinary(tt.b); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestCommand_TooLarge(t *testing.T) {
	c := Command{Op: OpPutManifest, Payload: make([]byte, MaxCommandSize)}
	if _, err := c.MarshalBinary(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("MarshalBinary of an oversized command: %v", err)
	}
}

func TestResult_ErrMapsCodes(t *testing.T) {
	for code, want := range codeErrors {
		if err := (Result{Code: code, Message: "m"}).Err(); !errors.Is(err, want) {
			t.Errorf("code %d: %v, want %v", code, err, want)
		}
	}
	if err := (Result{}).Err(); err != nil {
		t.Errorf("CodeOK: %v", err)
	}
}
