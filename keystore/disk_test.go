package keystore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestDisk_NoSecretsOrNamesInClear creates tenant keys and access keys,
// closes the store so everything reaches its files, and scans every file
// under the data directory for the secrets (raw, hex and base64) and for
// tenant, user and bucket names: the storage key seals secrets and Badger's
// encryption at rest hides the rest.
func TestDisk_NoSecretsOrNamesInClear(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig(dir) // root key file, fsync: the real layout
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var needles [][]byte
	addSecret := func(b []byte) {
		needles = append(needles, bytes.Clone(b), []byte(hex.EncodeToString(b)), []byte(base64.StdEncoding.EncodeToString(b)))
	}
	cred, err := s.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	needles = append(needles, []byte(cred.SecretAccessKey), []byte(cred.RecoverySecret))
	for _, name := range []string{"zebra-marker-tenant", "okapi-marker-tenant"} {
		tn := mustTenant(t, s, name)
		needles = append(needles, []byte(name))
		if _, err := s.RotateKey(ctx, tn.ID); err != nil {
			t.Fatal(err)
		}
		kvs, _ := s.KeyVersions(ctx, tn.ID)
		for _, kv := range kvs {
			secret, err := s.Key(ctx, tn.ID, kv.ID)
			if err != nil {
				t.Fatal(err)
			}
			addSecret(secret)
		}
		u := mustUser(t, s, tn.ID, "marker-user-"+name, RoleAdmin)
		needles = append(needles, []byte(u.Name))
		for i := 0; i < 3; i++ {
			ak, err := s.CreateAccessKey(ctx, u.ID, noExpiry)
			if err != nil {
				t.Fatal(err)
			}
			needles = append(needles, []byte(ak.Secret))
		}
		rk, err := s.RotateRecoveryKey(ctx, tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		needles = append(needles, []byte(rk.Secret))
		b := mustBucket(t, s, tn.ID, "marker-bucket-"+name)
		needles = append(needles, []byte(b.Name))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s holds %q in clear", path, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Fatalf("scanned only %d files", files)
	}
	// And the data is all there after reopening.
	s = openStore(t, cfg)
	if _, err := s.AccessKey(ctx, cred.AccessKeyID); err != nil {
		t.Fatal(err)
	}
}
