package keystore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpen_CreatesRootKeyFileWithMode0600(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig(dir)
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, RootKeyFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != RootKeySize {
		t.Fatalf("root.key mode %v size %d, want 0600 and %d", fi.Mode().Perm(), fi.Size(), RootKeySize)
	}
	first, _ := os.ReadFile(path)
	// A second start reads the same key instead of making a new one.
	s, err = Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	second, _ := os.ReadFile(path)
	if !bytes.Equal(first, second) {
		t.Fatal("root key replaced on second start")
	}
}

func TestLoadRootKey_Refusals(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		dir     bool
		missing bool
		create  bool
		want    string
	}{
		{name: "group readable", content: make([]byte, 32), mode: 0o640, want: "mode"},
		{name: "world readable", content: make([]byte, 32), mode: 0o644, want: "mode"},
		{name: "too short", content: make([]byte, 31), mode: 0o600, want: "31 bytes"},
		{name: "too long", content: make([]byte, 33), mode: 0o600, want: "33 bytes"},
		{name: "hex instead of raw", content: bytes.Repeat([]byte("ab"), 32), mode: 0o600, want: "64 bytes"},
		{name: "directory", dir: true, want: "not a regular file"},
		{name: "missing, not created", missing: true, want: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "root.key")
			switch {
			case tt.dir:
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			case !tt.missing:
				if err := os.WriteFile(path, tt.content, tt.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(path, tt.mode) // beat the umask
			}
			_, err := LoadRootKey(path, tt.create)
			if !errors.Is(err, ErrRootKey) || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("LoadRootKey: %v, want ErrRootKey mentioning %q", err, tt.want)
			}
		})
	}
}

func TestOpen_RefusesLooseRootKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, RootKeyFileName)
	os.WriteFile(path, make([]byte, 32), 0o644)
	os.Chmod(path, 0o644)
	_, err := Open(context.Background(), DefaultConfig(dir))
	if !errors.Is(err, ErrRootKey) {
		t.Fatalf("Open with a 0644 root key: %v, want ErrRootKey", err)
	}
}

func TestOpen_GivenRootKeyFileMustExist(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig(dir)
	cfg.RootKeyFile = filepath.Join(dir, "elsewhere.key")
	if _, err := Open(context.Background(), cfg); !errors.Is(err, ErrRootKey) {
		t.Fatalf("Open with a missing explicit key file: %v, want ErrRootKey", err)
	}
	if _, err := os.Stat(cfg.RootKeyFile); err == nil {
		t.Fatal("an explicit root key path was created")
	}
}

func TestDeriveKeys_DistinctAndStable(t *testing.T) {
	root := bytes.Repeat([]byte{7}, 32)
	a, err := deriveKeys(root)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := deriveKeys(root)
	if !bytes.Equal(a.storage, b.storage) || !bytes.Equal(a.badger, b.badger) {
		t.Fatal("derivation not deterministic")
	}
	if bytes.Equal(a.storage, a.badger) || bytes.Equal(a.storage, root) {
		t.Fatal("derived keys not distinct")
	}
}
