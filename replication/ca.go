package replication

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// The cluster CA is the cluster's network identity: every node certificate
// is issued by it, nodes accept only peers whose certificate chains to it
// (mutual TLS 1.3), and the cluster id is derived from its public key.
// The first node of a cluster creates it with NewCA (`tresor serve` without
// --join); nodes that join send a certificate request and get a certificate
// from SignCSR (cmd/tresor/enroll.go).

// nodeServerName is the DNS name in every node certificate. Raft dials
// addresses, not names, so nodes verify each other by chain to the cluster
// CA and this fixed name; the node id is the certificate's common name.
const nodeServerName = "node.tresor.internal"

// CA is a cluster certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA creates a self-signed cluster CA (ECDSA P-256) valid for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("replication: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"tresor cluster"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("replication: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// ParseCA reads a CA from its PEM certificate and PKCS #8 PEM key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("replication: certificate is not a CA")
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("replication: CA key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("replication: CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("replication: CA key cannot sign")
	}
	return &CA{Cert: cert, Key: signer}, nil
}

// CertPEM returns the CA certificate in PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM returns the CA key as PKCS #8 PEM. Keep it off the nodes that do
// not issue certificates.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ClusterID is the cluster id derived from the CA: the first 16 bytes of
// SHA-256 over its public key, in hex.
func (ca *CA) ClusterID() string { return ClusterID(ca.Cert) }

// ClusterID derives the cluster id from the cluster CA certificate.
func ClusterID(caCert *x509.Certificate) string {
	sum := sha256.Sum256(caCert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:16])
}

// Issue creates node id's key and certificate, good for both ends of a
// connection, naming hosts (IP addresses or DNS names) besides the fixed
// node name, valid for validity.
func (ca *CA) Issue(id string, hosts []string, validity time.Duration) (*Credentials, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("replication: node key: %w", err)
	}
	leaf, err := ca.sign(id, hosts, key.Public(), validity)
	if err != nil {
		return nil, err
	}
	return &Credentials{
		CA:   ca.Cert,
		Cert: tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf},
	}, nil
}

// sign issues node id's certificate for pub (Issue, SignCSR).
func (ca *CA) sign(id string, hosts []string, pub crypto.PublicKey, validity time.Duration) (*x509.Certificate, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: id, Organization: []string{"tresor cluster"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{nodeServerName},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("replication: node certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("replication: no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// Credentials are a node's TLS identity: its certificate and key, and the
// cluster CA it trusts peers by.
type Credentials struct {
	CA   *x509.Certificate
	Cert tls.Certificate
}

// LoadCredentials reads credentials from PEM: the CA certificate, the node
// certificate and its key.
func LoadCredentials(caPEM, certPEM, keyPEM []byte) (*Credentials, error) {
	ca, err := parseCertPEM(caPEM)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("replication: node certificate: %w", err)
	}
	return &Credentials{CA: ca, Cert: cert}, nil
}

// CertPEM and KeyPEM return the node certificate and key in PEM, for
// writing to disk.
func (c *Credentials) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Certificate[0]})
}

// KeyPEM returns the node key as PKCS #8 PEM.
func (c *Credentials) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.Cert.PrivateKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// tlsConfig is the one TLS configuration of the cluster listener and its
// dialer: TLS 1.3 only, client certificates required, peers trusted only by
// chain to the cluster CA. Key exchange is Go's default, which with go 1.26
// in go.mod is the hybrid post-quantum X25519MLKEM768 first.
func (c *Credentials) tlsConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(c.CA)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		RootCAs:      pool,
		ServerName:   nodeServerName,
	}
}
