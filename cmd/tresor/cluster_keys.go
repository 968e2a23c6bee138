package main

// The cluster's private keys at rest.
//
// A member keeps two private keys under <data-dir>/cluster: ca.key, the
// cluster CA's (every member holds it, enroll.go), and node.key, its own key
// for the mutual-TLS Raft transport. The transport admits any peer with a
// certificate of the cluster CA, so either key lets its holder speak Raft as
// a member or mint members. Neither is written in clear: both are sealed
// under a key derived from the root key, which a node holds in memory only
// (read from its key file, or unsealed from custody shares). A copy of a data
// directory without the root key, or a node still sealed under custody,
// holds no usable TLS key.
//
// A sealed key file is one PEM block:
//
//	-----BEGIN TRESOR SEALED PRIVATE KEY-----
//	base64(nonce (12 bytes) || AES-256-GCM ciphertext of the PKCS #8 DER || tag (16 bytes))
//	-----END TRESOR SEALED PRIVATE KEY-----
//
// The AES-256 key is HKDF-SHA256 of the trust key (keystore.DeriveTrustKey,
// itself derived from the root key) with no salt and info labelKeySeal. The
// GCM additional data is the file's name ("ca.key" or "node.key"), so one
// sealed file cannot stand in for the other. The nonce is random: a file is
// sealed a handful of times in a node's life, far from GCM's 2^32 bound.
//
// A key file in clear (PEM "PRIVATE KEY", PKCS #8), as earlier versions wrote
// it, is accepted once and rewritten sealed. A sealed file that does not
// open (sealed under another cluster's root key, or altered) stops the node
// with an error naming the file: it never falls back to anything.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tresor-gw/tresor/internal/atomicfile"
)

// labelKeySeal is the HKDF label of the key that seals the cluster's private
// key files; the version changes with the format.
const labelKeySeal = "tresor/cluster/key-seal/1"

// PEM block types of a private key file: sealed (this version) and in clear
// (PKCS #8, earlier versions).
const (
	sealedKeyPEMType = "TRESOR SEALED PRIVATE KEY"
	clearKeyPEMType  = "PRIVATE KEY"
)

// errKeyNotOpened reports a sealed key file that does not open under this
// node's root key.
var errKeyNotOpened = errors.New("sealed key does not open under this node's root key " +
	"(sealed under another cluster's root key, or altered)")

// keySealAEAD returns AES-256-GCM under the key-file sealing key derived
// from trustKey.
func keySealAEAD(trustKey []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, trustKey, nil, labelKeySeal, 32)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealKey returns the contents of key file name holding keyPEM (a PKCS #8
// PEM key) sealed under trustKey.
func sealKey(trustKey []byte, name string, keyPEM []byte) ([]byte, error) {
	b, rest := pem.Decode(keyPEM)
	if b == nil || b.Type != clearKeyPEMType || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("cluster: %s: not one PKCS #8 PEM private key", name)
	}
	aead, err := keySealAEAD(trustKey)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, b.Bytes, []byte(name))
	return pem.EncodeToMemory(&pem.Block{Type: sealedKeyPEMType, Bytes: sealed}), nil
}

// openKey returns the PKCS #8 PEM key in data, the contents of key file
// name. legacy reports a key in clear, written by an earlier version.
func openKey(trustKey []byte, name string, data []byte) (keyPEM []byte, legacy bool, err error) {
	b, rest := pem.Decode(data)
	if b == nil || len(bytes.TrimSpace(rest)) != 0 {
		return nil, false, errors.New("not one PEM block")
	}
	switch b.Type {
	case clearKeyPEMType:
		if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
			return nil, false, fmt.Errorf("key in clear: %w", err)
		}
		return data, true, nil
	case sealedKeyPEMType:
	default:
		return nil, false, fmt.Errorf("PEM block %q is neither %q nor %q", b.Type, sealedKeyPEMType, clearKeyPEMType)
	}
	aead, err := keySealAEAD(trustKey)
	if err != nil {
		return nil, false, err
	}
	if len(b.Bytes) < aead.NonceSize()+aead.Overhead() {
		return nil, false, errKeyNotOpened
	}
	n := aead.NonceSize()
	der, err := aead.Open(nil, b.Bytes[:n], b.Bytes[n:], []byte(name))
	if err != nil {
		return nil, false, errKeyNotOpened
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: clearKeyPEMType, Bytes: der}), false, nil
}

// sealKeyFile returns the contents of key file name (caKeyFile,
// nodeKeyFile) holding keyPEM sealed under the node's root key.
func (c *clusterNode) sealKeyFile(name string, keyPEM []byte) ([]byte, error) {
	return sealKey(c.trustKey, name, keyPEM)
}

// readKeyFile returns the PKCS #8 PEM key in key file name of the cluster
// directory. A key in clear, from an earlier version, is rewritten sealed.
// An error wraps os.ErrNotExist if the file is missing.
func (c *clusterNode) readKeyFile(name string) ([]byte, error) {
	path := filepath.Join(c.dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	keyPEM, legacy, err := openKey(c.trustKey, name, data)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", path, err)
	}
	if legacy {
		sealed, err := c.sealKeyFile(name, keyPEM)
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(path, sealed, 0o600); err != nil {
			return nil, fmt.Errorf("cluster: seal %s: %w", path, err)
		}
		c.log.Info("sealed a private key file written in clear by an earlier version; copies made before (backups) still hold it in clear",
			"file", path)
	}
	return keyPEM, nil
}
