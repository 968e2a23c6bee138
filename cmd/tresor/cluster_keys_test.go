package main

import (
	"bytes"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tresor-gw/tresor/internal/atomicfile"
	"github.com/tresor-gw/tresor/keystore"
	"github.com/tresor-gw/tresor/replication"
)

// keyFileNode returns a cluster node on a fresh cluster directory whose
// join key derives from a random root key, logging into logs.
func keyFileNode(t *testing.T, logs *bytes.Buffer) *clusterNode {
	t.Helper()
	root := make([]byte, keystore.RootKeySize)
	rand.Read(root)
	trustKey, err := keystore.DeriveTrustKey(root)
	if err != nil {
		t.Fatal(err)
	}
	if logs == nil {
		logs = new(bytes.Buffer)
	}
	return &clusterNode{dir: t.TempDir(), trustKey: trustKey, log: slog.New(slog.NewTextHandler(logs, nil))}
}

// testKeys returns a CA key and a node key, PKCS #8 PEM.
func testKeys(t *testing.T) map[string][]byte {
	t.Helper()
	ca, err := replication.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := ca.Issue("n1", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	nodeKey, err := creds.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{caKeyFile: caKey, nodeKeyFile: nodeKey}
}

// writeSealed seals keyPEM as file name in c's directory.
func writeSealed(t *testing.T, c *clusterNode, name string, keyPEM []byte) {
	t.Helper()
	sealed, err := c.sealKeyFile(name, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteFile(filepath.Join(c.dir, name), sealed, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFile_RoundTrip(t *testing.T) {
	c := keyFileNode(t, nil)
	for name, keyPEM := range testKeys(t) {
		writeSealed(t, c, name, keyPEM)
		onDisk, err := os.ReadFile(filepath.Join(c.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := pem.Decode(onDisk); b == nil || b.Type != sealedKeyPEMType {
			t.Fatalf("%s on disk is not a %q block:\n%s", name, sealedKeyPEMType, onDisk)
		}
		if bytes.Contains(onDisk, keyPEM) || bytes.Contains(onDisk, []byte("BEGIN PRIVATE KEY")) {
			t.Fatalf("%s holds the key in clear", name)
		}
		got, err := c.readKeyFile(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, keyPEM) {
			t.Errorf("%s: read back\n%s\nwant\n%s", name, got, keyPEM)
		}
		again, _ := os.ReadFile(filepath.Join(c.dir, name))
		if !bytes.Equal(again, onDisk) {
			t.Errorf("%s: a sealed file was rewritten on read", name)
		}
	}
}

// TestKeyFile_RefusedNeverFallsBack: a sealed file that does not open under
// the node's root key is an error naming the file, and stays as it was.
func TestKeyFile_RefusedNeverFallsBack(t *testing.T) {
	keys := testKeys(t)
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, c *clusterNode) // writes c's node.key
	}{
		{"sealed under another root key", func(t *testing.T, c *clusterNode) {
			other := keyFileNode(t, nil)
			writeSealed(t, other, nodeKeyFile, keys[nodeKeyFile])
			copyFile(t, filepath.Join(other.dir, nodeKeyFile), filepath.Join(c.dir, nodeKeyFile))
		}},
		{"ca.key in node.key's place", func(t *testing.T, c *clusterNode) {
			writeSealed(t, c, caKeyFile, keys[caKeyFile])
			copyFile(t, filepath.Join(c.dir, caKeyFile), filepath.Join(c.dir, nodeKeyFile))
		}},
		{"flipped byte in the nonce", func(t *testing.T, c *clusterNode) { writeAltered(t, c, keys, 0) }},
		{"flipped byte in the ciphertext", func(t *testing.T, c *clusterNode) { writeAltered(t, c, keys, 20) }},
		{"flipped byte in the tag", func(t *testing.T, c *clusterNode) { writeAltered(t, c, keys, -1) }},
		{"truncated", func(t *testing.T, c *clusterNode) {
			writeBlock(t, c, &pem.Block{Type: sealedKeyPEMType, Bytes: make([]byte, 27)})
		}},
		{"unknown block type", func(t *testing.T, c *clusterNode) {
			writeBlock(t, c, &pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("key")})
		}},
		{"not PEM", func(t *testing.T, c *clusterNode) {
			os.WriteFile(filepath.Join(c.dir, nodeKeyFile), []byte("key"), 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := keyFileNode(t, &logs)
			tc.write(t, c)
			path := filepath.Join(c.dir, nodeKeyFile)
			before, _ := os.ReadFile(path)
			got, err := c.readKeyFile(nodeKeyFile)
			if err == nil {
				t.Fatalf("read %q", got)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
				t.Errorf("a refused file was rewritten")
			}
			if logs.Len() != 0 {
				t.Errorf("logged: %s", &logs)
			}
		})
	}
}

// TestKeyFile_SealedErrorSaysWhy: a sealed file that does not open says
// that it was sealed under another root key or altered.
func TestKeyFile_SealedErrorSaysWhy(t *testing.T) {
	keys := testKeys(t)
	c, other := keyFileNode(t, nil), keyFileNode(t, nil)
	writeSealed(t, other, caKeyFile, keys[caKeyFile])
	copyFile(t, filepath.Join(other.dir, caKeyFile), filepath.Join(c.dir, caKeyFile))
	if _, err := c.readKeyFile(caKeyFile); !errors.Is(err, errKeyNotOpened) {
		t.Errorf("got %v, want %v", err, errKeyNotOpened)
	}
	if _, err := c.readKeyFile(nodeKeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: got %v, want os.ErrNotExist", err)
	}
}

// TestKeyFile_LegacyClearMigrated: a key in clear, as earlier versions
// wrote it, is read, rewritten sealed (0600) and logged once.
func TestKeyFile_LegacyClearMigrated(t *testing.T) {
	for name, keyPEM := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			c := keyFileNode(t, &logs)
			path := filepath.Join(c.dir, name)
			if err := os.WriteFile(path, keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := c.readKeyFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, keyPEM) {
				t.Errorf("read\n%s\nwant\n%s", got, keyPEM)
			}
			onDisk, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(onDisk); b == nil || b.Type != sealedKeyPEMType {
				t.Errorf("not rewritten sealed:\n%s", onDisk)
			}
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, %v; want 0600", st.Mode().Perm(), err)
			}
			if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), path) {
				t.Errorf("migration not logged at INFO with the file: %q", &logs)
			}
			logs.Reset()
			if got, err := c.readKeyFile(name); err != nil || !bytes.Equal(got, keyPEM) {
				t.Errorf("second read: %v", err)
			}
			if again, _ := os.ReadFile(path); !bytes.Equal(again, onDisk) || logs.Len() != 0 {
				t.Errorf("the sealed file was rewritten or logged again: %q", &logs)
			}
		})
	}
}

// TestLoadCredentials_SealedKeys: the credentials load from sealed key
// files, and a clear ca.key of an earlier version is migrated on the way.
func TestLoadCredentials_SealedKeys(t *testing.T) {
	var logs bytes.Buffer
	c := keyFileNode(t, &logs)
	c.conf.ID = "n1"
	ca, err := replication.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := ca.Issue("n1", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caKey, _ := ca.KeyPEM()
	nodeKey, _ := creds.KeyPEM()
	writeSealed(t, c, nodeKeyFile, nodeKey)
	for name, data := range map[string][]byte{caKeyFile: caKey, caCertFile: ca.CertPEM(), nodeCertFile: creds.CertPEM()} {
		if err := os.WriteFile(filepath.Join(c.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.loadCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if c.ca == nil || !c.ca.Cert.Equal(ca.Cert) || got.Cert.Leaf.Subject.CommonName != "n1" {
		t.Errorf("credentials %+v, CA %+v", got, c.ca)
	}
	if b, _ := os.ReadFile(filepath.Join(c.dir, caKeyFile)); bytes.Contains(b, []byte("BEGIN PRIVATE KEY")) {
		t.Errorf("ca.key still in clear")
	}
}

// writeAltered writes a sealed node.key with byte at of its sealed bytes
// flipped (negative: from the end).
func writeAltered(t *testing.T, c *clusterNode, keys map[string][]byte, at int) {
	t.Helper()
	sealed, err := c.sealKeyFile(nodeKeyFile, keys[nodeKeyFile])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(sealed)
	if at < 0 {
		at += len(b.Bytes)
	}
	b.Bytes[at] ^= 1
	writeBlock(t, c, b)
}

func writeBlock(t *testing.T, c *clusterNode, b *pem.Block) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, nodeKeyFile), pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
