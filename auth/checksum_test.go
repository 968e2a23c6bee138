package auth

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/iotest"
)

func TestChecksumReader_Alone(t *testing.T) {
	t.Parallel()
	data := payload(100_000, 21)
	crc := Checksum{Algorithm: ChecksumCRC32C, Sum: sumOf(ChecksumCRC32C, data)}
	md := Checksum{Algorithm: ChecksumMD5, Sum: sumOf(ChecksumMD5, data)}
	bad := Checksum{Algorithm: ChecksumSHA256, Sum: make([]byte, 32)}

	t.Run("Match", func(t *testing.T) {
		c := NewChecksumReader(iotest.OneByteReader(bytes.NewReader(data)), int64(len(data)), crc, md, Checksum{Algorithm: ChecksumSHA1})
		if len(c.Checksums()) != 0 {
			t.Fatal("checksums before EOF")
		}
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatal(err)
		}
		cs := c.Checksums()
		if len(cs) != 2 || cs[0].String() != crc.String() || !bytes.Equal(cs[1].Sum, sumOf(ChecksumSHA1, data)) {
			t.Fatalf("checksums %v", cs)
		}
	})
	t.Run("MismatchBeforeEOF", func(t *testing.T) {
		c := NewChecksumReader(bytes.NewReader(data), -1, bad)
		_, err := io.ReadAll(c)
		if !errors.Is(err, ErrChecksumMismatch) {
			t.Fatalf("error = %v", err)
		}
		var ae *Error
		errors.As(err, &ae)
		if ae.Code != "BadDigest" || ae.Message != "The x-amz-checksum-sha256 you specified did not match the calculated checksum." {
			t.Fatalf("error = %#v", ae)
		}
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			t.Fatal("io.EOF after a mismatch")
		}
	})
	t.Run("Short", func(t *testing.T) {
		_, err := io.ReadAll(NewChecksumReader(bytes.NewReader(data), int64(len(data))+1))
		if !errors.Is(err, ErrIncompleteBody) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("Long", func(t *testing.T) {
		_, err := io.ReadAll(NewChecksumReader(bytes.NewReader(data), int64(len(data))-1))
		if !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("UnknownAlgorithm", func(t *testing.T) {
		_, err := io.ReadAll(NewChecksumReader(bytes.NewReader(data), -1, Checksum{Algorithm: "MD4"}))
		if !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("UnexpectedEOF", func(t *testing.T) {
		r := io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(io.ErrUnexpectedEOF))
		_, err := io.ReadAll(NewChecksumReader(r, -1))
		if !errors.Is(err, ErrIncompleteBody) {
			t.Fatalf("error = %v", err)
		}
	})
}

func TestPlanChecksums(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		h    map[string]string
		alg  ChecksumAlgorithm
		err  *Error
	}{
		{"None", nil, "", nil},
		{"Header", map[string]string{"X-Amz-Checksum-Crc64nvme": "AAAAAAAAAAA="}, ChecksumCRC64NVME, nil},
		{"Trailer", map[string]string{"X-Amz-Trailer": "x-amz-checksum-sha256", "X-Amz-Sdk-Checksum-Algorithm": "SHA256"}, ChecksumSHA256, nil},
		{"SDKOnly", map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "crc32c"}, ChecksumCRC32C, nil},
		{"SDKDisagrees", map[string]string{"X-Amz-Trailer": "x-amz-checksum-sha256", "X-Amz-Sdk-Checksum-Algorithm": "CRC32"}, "", ErrInvalidRequest},
		{"UnknownTrailer", map[string]string{"X-Amz-Trailer": "x-amz-meta-x"}, "", ErrInvalidRequest},
		{"HeaderAndTrailer", map[string]string{"X-Amz-Trailer": "x-amz-checksum-sha256", "X-Amz-Checksum-Crc32": "AAAAAA=="}, "", ErrInvalidRequest},
		{"WrongLength", map[string]string{"X-Amz-Checksum-Crc32": "AAAAAAA="}, "", ErrInvalidRequest},
		{"UnknownSDKAlgorithm", map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "MD5"}, "", ErrInvalidRequest},
		{"BadMD5", map[string]string{"Content-Md5": "AAAA"}, "", ErrInvalidDigest},
	}
	for _, tc := range cases {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		p, err := planChecksums(h)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: error = %v, want %s", tc.name, err, tc.err.Code)
			}
			continue
		}
		if err != nil || p.alg != tc.alg {
			t.Errorf("%s: alg %q, %v; want %q", tc.name, p.alg, err, tc.alg)
		}
	}
}
