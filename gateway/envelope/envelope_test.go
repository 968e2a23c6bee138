package envelope

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestOpen_RoundTripsEnvelope(t *testing.T) {
	kr := NewMemoryKeyring()
	for _, multipart := range []bool{false, true} {
		var env *Envelope
		var err error
		if multipart {
			env, err = NewMultipart(t.Context(), kr, bindA)
		} else {
			env, err = New(t.Context(), kr, bindA, 12345)
		}
		if err != nil {
			t.Fatal(err)
		}
		v := env.Marshal()
		if len(v) != EncodedSize || strings.ContainsAny(v, "+/=") {
			t.Fatalf("value %q: want %d base64url characters", v, EncodedSize)
		}
		got, err := Open(t.Context(), kr, bindA, v)
		if err != nil {
			t.Fatal(err)
		}
		if got.dek != env.dek || got.oid != env.oid || got.Multipart() != multipart || got.Size() != env.Size() || got.Marshal() != v {
			t.Fatalf("opened envelope differs: %+v vs %+v", got, env)
		}
	}
}

func TestOpen_FailsForAnotherBinding(t *testing.T) {
	kr := NewMemoryKeyring()
	env, err := New(t.Context(), kr, bindA, 5)
	if err != nil {
		t.Fatal(err)
	}
	kr.ActiveKey(t.Context(), tenantB) // tenant B exists and has keys
	v := env.Marshal()
	tests := []struct {
		name string
		b    Binding
		want error
	}{
		{"another tenant", Binding{Tenant: tenantB, Bucket: bindA.Bucket, Key: bindA.Key}, ErrWrongTenant},
		{"another bucket", Binding{Tenant: tenantA, Bucket: "photos2", Key: bindA.Key}, ErrAuthentication},
		{"another key", Binding{Tenant: tenantA, Bucket: bindA.Bucket, Key: bindA.Key + "x"}, ErrAuthentication},
		{"bucket and key boundary moved", Binding{Tenant: tenantA, Bucket: "photos2", Key: "026/cat.jpg"}, ErrAuthentication},
		{"empty key", Binding{Tenant: tenantA, Bucket: bindA.Bucket}, ErrAuthentication},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(t.Context(), kr, tt.b, v); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpen_FailsForEveryFlippedBit(t *testing.T) {
	kr := NewMemoryKeyring()
	env, _ := New(t.Context(), kr, bindA, 77)
	raw := env.marshal()
	for i := range raw {
		for bit := range 8 {
			bad := bytes.Clone(raw)
			bad[i] ^= 1 << bit
			_, err := Open(t.Context(), kr, bindA, encoding.EncodeToString(bad))
			if err == nil {
				t.Fatalf("byte %d bit %d: opened", i, bit)
			}
			ok := errors.Is(err, ErrAuthentication) || errors.Is(err, ErrMalformed) ||
				errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, ErrUnsupportedSuite) || errors.Is(err, ErrNoKey)
			if !ok {
				t.Fatalf("byte %d bit %d: untyped error %v", i, bit, err)
			}
		}
	}
}

func TestOpen_RejectsMalformedValues(t *testing.T) {
	kr := NewMemoryKeyring()
	env, _ := New(t.Context(), kr, bindA, 1)
	v := env.Marshal()
	raw := env.marshal()
	with := func(f func(b []byte)) string {
		b := bytes.Clone(raw)
		f(b)
		return encoding.EncodeToString(b)
	}
	tests := []struct {
		name, value string
		want        error
	}{
		{"empty", "", ErrMalformed},
		{"one byte short", v[:len(v)-1], ErrMalformed},
		{"trailing character", v + "A", ErrMalformed},
		{"trailing byte", encoding.EncodeToString(append(bytes.Clone(raw), 0)), ErrMalformed},
		{"padded std base64", strings.NewReplacer("-", "+", "_", "/").Replace(v) + "=", ErrMalformed},
		{"whitespace", " " + v[1:], ErrMalformed},
		{"line break inside", v[:100] + "\n" + v[100:], ErrMalformed},
		{"carriage return at end", v + "\r", ErrMalformed},
		{"huge", strings.Repeat("A", 1<<20), ErrMalformed},
		{"version 2", with(func(b []byte) { b[offVersion] = 2 }), ErrUnsupportedVersion},
		{"version 0", with(func(b []byte) { b[offVersion] = 0 }), ErrUnsupportedVersion},
		{"future version, other length", encoding.EncodeToString([]byte{9, 9, 9}), ErrUnsupportedVersion},
		{"suite 2", with(func(b []byte) { b[offSuite] = 2 }), ErrUnsupportedSuite},
		{"unknown flag", with(func(b []byte) { b[offFlags] = 0x02 }), ErrMalformed},
		{"multipart with a size", with(func(b []byte) { b[offFlags] = flagMultipart }), ErrMalformed},
		{"size over 5 TiB", with(func(b []byte) { binary.BigEndian.PutUint64(b[offSize:], MaxSize+1) }), ErrMalformed},
		{"size negative as int64", with(func(b []byte) { binary.BigEndian.PutUint64(b[offSize:], 1<<63) }), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(t.Context(), kr, bindA, tt.value); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpen_FailsWhenKeyVersionGone(t *testing.T) {
	kr := NewMemoryKeyring()
	env, _ := New(t.Context(), kr, bindA, 1)
	kr.Disable(tenantA, env.KeyVersion())
	if _, err := Open(t.Context(), kr, bindA, env.Marshal()); !errors.Is(err, ErrNoKey) {
		t.Fatalf("error %v, want the keyring's ErrNoKey", err)
	}
}

// TestOpen_ChecksKeyCommitment forges an envelope whose wrap is valid but
// whose commitment does not match its DEK, as only a holder of the tenant
// key could: the DEK must not be used.
func TestOpen_ChecksKeyCommitment(t *testing.T) {
	kr := NewMemoryKeyring()
	env, _ := New(t.Context(), kr, bindA, 1)
	forged := *env
	forged.commitment[0] ^= 1
	if err := forged.wrap(t.Context(), kr); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), kr, bindA, forged.Marshal()); !errors.Is(err, ErrKeyCommitment) {
		t.Fatalf("error %v, want ErrKeyCommitment", err)
	}
}

func TestOpen_EnvelopeOfAnotherObjectFailsItsCiphertext(t *testing.T) {
	kr := NewMemoryKeyring()
	plain := plaintext(1000, 1)
	_, ct := newSingle(t, kr, bindA, plain)
	other, _ := New(t.Context(), kr, bindA, 1000) // same binding and size
	layout, _ := other.SingleLayout()
	checkFailsClosed(t, openAll(other, layout, ct), plain, ErrAuthentication)
}

func TestRewrap_KeepsCiphertextForNewBindingOnly(t *testing.T) {
	kr := NewMemoryKeyring()
	plain := plaintext(PackageSize+5, 2)
	env, ct := newSingle(t, kr, bindA, plain)
	meta, _ := env.SealMetadata(map[string]string{"content-type": "image/jpeg"})
	old := env.KeyVersion()
	rotated := kr.Rotate(tenantA)
	dst := Binding{Tenant: tenantA, Bucket: "archive", Key: "cat.jpg"}
	moved, err := env.Rewrap(t.Context(), kr, dst)
	if err != nil {
		t.Fatal(err)
	}
	if moved.KeyVersion() != rotated || moved.KeyVersion() == old {
		t.Fatal("rewrap did not use the active key version")
	}
	opened, err := Open(t.Context(), kr, dst, moved.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	layout, _ := opened.SingleLayout()
	if got, err := decrypt(opened, layout, ct, 0, layout.Size()-1); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("ciphertext does not decrypt under the re-wrapped envelope: %v", err)
	}
	if _, err := Open(t.Context(), kr, bindA, moved.Marshal()); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("re-wrapped envelope opens at the old binding: %v", err)
	}
	if _, err := opened.OpenMetadata(meta); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("the source's metadata blob opens at the new binding: %v", err)
	}
	if _, err := env.Rewrap(t.Context(), kr, Binding{Tenant: tenantB, Bucket: "x", Key: "y"}); !errors.Is(err, ErrWrongTenant) {
		t.Fatalf("rewrap to another tenant: %v", err)
	}
	// The old key version still opens the original envelope after rotation.
	if _, err := Open(t.Context(), kr, bindA, env.Marshal()); err != nil {
		t.Fatalf("old key version no longer decrypts: %v", err)
	}
}

func TestEnvelope_LayoutMisuseFails(t *testing.T) {
	kr := NewMemoryKeyring()
	single, _ := New(t.Context(), kr, bindA, 1)
	multi, _ := NewMultipart(t.Context(), kr, bindA)
	if _, err := multi.SingleLayout(); !errors.Is(err, ErrLayout) {
		t.Errorf("SingleLayout of multipart: %v", err)
	}
	if _, err := io.ReadAll(multi.EncryptReader(bytes.NewReader([]byte{1}))); !errors.Is(err, ErrLayout) {
		t.Errorf("EncryptReader of multipart: %v", err)
	}
	for _, n := range []int{0, 10001} {
		if _, err := io.ReadAll(multi.EncryptPartReader(n, 1, bytes.NewReader([]byte{1}))); !errors.Is(err, ErrLayout) {
			t.Errorf("EncryptPartReader(%d): %v", n, err)
		}
	}
	if _, err := io.ReadAll(single.EncryptPartReader(1, 1, bytes.NewReader([]byte{1}))); !errors.Is(err, ErrLayout) {
		t.Errorf("EncryptPartReader of single-part: %v", err)
	}
	if _, err := single.SealManifest([]PartSize{{1, 1}}); !errors.Is(err, ErrLayout) {
		t.Errorf("SealManifest of single-part: %v", err)
	}
	if _, err := New(t.Context(), kr, bindA, -1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("New(-1): %v", err)
	}
}

type failingKeyring struct{ err error }

func (f failingKeyring) ActiveKey(context.Context, [16]byte) ([16]byte, []byte, error) {
	return [16]byte{}, nil, f.err
}
func (f failingKeyring) Key(context.Context, [16]byte, [16]byte) ([]byte, error) { return nil, f.err }

func TestNew_PassesKeyringErrorsOn(t *testing.T) {
	boom := errors.New("keystore unavailable")
	if _, err := New(t.Context(), failingKeyring{boom}, bindA, 1); !errors.Is(err, boom) {
		t.Fatalf("error %v, want the keyring's", err)
	}
}

func TestEnvelope_ConcurrentUse(t *testing.T) {
	kr := NewMemoryKeyring()
	plain := plaintext(3*PackageSize+9, 8)
	env, ct := newSingle(t, kr, bindA, plain)
	layout, _ := env.SingleLayout()
	done := make(chan error)
	for i := range 8 {
		go func() {
			got, err := decrypt(env, layout, ct, int64(i), layout.Size()-1)
			if err == nil && !bytes.Equal(got, plain[i:]) {
				err = errors.New("wrong plaintext")
			}
			if err == nil {
				_, err = env.Rewrap(context.Background(), kr, Binding{Tenant: tenantA, Bucket: "b", Key: string(rune('a' + i))})
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
