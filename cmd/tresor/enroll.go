package main

// Enrollment: how a new node gets its cluster certificate.
//
// A joining node holds the cluster's root key (it must: the keystore is
// encrypted under it), from a copied key file or unsealed from custody
// shares (operator.go), and nothing else. It enrolls over the admin listener
// of any member (--join ADDR), once unsealed, in two HTTP calls:
//
//	GET  /cluster/v1/challenge  -> {"challenge"}  fresh, stateless, 2 min
//	POST /cluster/v1/enroll     <- {id, zone, raft_addr, csr, challenge, proof}
//	                            -> {cluster_id, ca_cert, node_cert, ca_key,
//	                                members, proof}
//
// The challenge is 8 bytes of time, 16 random bytes and a MAC over them
// under the trust key (keystore.DeriveTrustKey), so the member keeps no state
// and refuses challenges older than challengeTTL. The joiner's proof is
// HMAC-SHA256 under the trust key over a label, the challenge, its id, zone,
// raft address and the DER of its certificate signing request: it proves
// possession of the root key and binds the request, so nobody without the
// root key can enroll, and a replayed request only yields a certificate for
// the joiner's own public key, useless without its private key, which never
// leaves the joiner (CSR).
//
// The member answers with the CA certificate, the node certificate, the CA
// key sealed with AES-256-GCM under a key derived from the trust key (bound
// to the joiner's proof), and the raft addresses of the members, all under a
// second HMAC with the trust key over the joiner's proof: the joiner checks
// it, so a man in the middle of the (plain HTTP, loopback by default) admin
// listener cannot hand it another cluster's CA.
//
// Every member receives the CA key so that any member can enroll new nodes
// after losing the first one. That widens nothing: the CA key only issues
// certificates, and a certificate is no membership without the join proof,
// whose key comes from the root key every member already holds. On disk the
// CA key and the node's own key are sealed under the root key
// (cluster_keys.go).
//
// The certificate admits the node to the raft listener; the node then Joins
// with the replication package's own proof (an HMAC bound to the TLS
// session) and is admitted as a non-voter.

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/tresor-gw/tresor/internal/atomicfile"
	"github.com/tresor-gw/tresor/replication"
)

// challengeTTL bounds how long an enrollment challenge is accepted.
const challengeTTL = 2 * time.Minute

// maxEnrollBody bounds an enrollment request: a CSR is well under 1 KiB.
const maxEnrollBody = 64 << 10

// Labels of the MACs of the enrollment exchange.
const (
	labelChallenge      = "tresor/cluster/enroll-challenge/1"
	labelEnrollRequest  = "tresor/cluster/enroll-request/1"
	labelEnrollResponse = "tresor/cluster/enroll-response/1"
)

type enrollRequest struct {
	ID        string `json:"id"`
	Zone      string `json:"zone"`
	RaftAddr  string `json:"raft_addr"`
	CSR       []byte `json:"csr"`
	Challenge []byte `json:"challenge"`
	Proof     []byte `json:"proof"`
}

type enrollResponse struct {
	ClusterID string   `json:"cluster_id"`
	CACert    []byte   `json:"ca_cert"`
	NodeCert  []byte   `json:"node_cert"`
	CAKey     []byte   `json:"ca_key"`
	Members   []string `json:"members"`
	Proof     []byte   `json:"proof"`
}

// mac is HMAC-SHA256 under key over length-prefixed fields.
func mac(key []byte, fields ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, f := range fields {
		m.Write(binary.AppendUvarint(nil, uint64(len(f))))
		m.Write(f)
	}
	return m.Sum(nil)
}

func (r *enrollRequest) proof(trustKey []byte) []byte {
	return mac(trustKey, []byte(labelEnrollRequest), r.Challenge, []byte(r.ID), []byte(r.Zone), []byte(r.RaftAddr), r.CSR)
}

func (r *enrollResponse) proof(trustKey, requestProof []byte) []byte {
	fields := [][]byte{[]byte(labelEnrollResponse), requestProof, []byte(r.ClusterID), r.CACert, r.NodeCert, r.CAKey}
	for _, m := range r.Members {
		fields = append(fields, []byte(m))
	}
	return mac(trustKey, fields...)
}

// newChallenge returns a stateless challenge: time, random bytes and a MAC.
func newChallenge(trustKey []byte, now time.Time) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(now.Unix()))
	b = append(b, make([]byte, 16)...)
	rand.Read(b[8:])
	return append(b, mac(trustKey, []byte(labelChallenge), b)[:16]...)
}

func checkChallenge(trustKey, c []byte, now time.Time) error {
	if len(c) != 40 || !hmac.Equal(c[24:], mac(trustKey, []byte(labelChallenge), c[:24])[:16]) {
		return errors.New("challenge not issued by this cluster")
	}
	age := now.Sub(time.Unix(int64(binary.BigEndian.Uint64(c)), 0))
	if age > challengeTTL || age < -time.Minute {
		return fmt.Errorf("challenge expired (%v old)", age.Round(time.Second))
	}
	return nil
}

// caWrapKey derives the key the CA key travels under, bound to one
// request's proof.
func caWrapKey(trustKey, requestProof []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, trustKey, requestProof, labelCAWrap, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// handleChallenge serves GET /cluster/v1/challenge.
func (c *clusterNode) handleChallenge(w http.ResponseWriter, r *http.Request) {
	writeClusterJSON(w, http.StatusOK, map[string][]byte{"challenge": newChallenge(c.trustKey, time.Now())})
}

// handleEnroll serves POST /cluster/v1/enroll.
func (c *clusterNode) handleEnroll(w http.ResponseWriter, r *http.Request) {
	var req enrollRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEnrollBody)).Decode(&req); err != nil {
		clusterError(w, http.StatusBadRequest, fmt.Errorf("enroll: %w", err))
		return
	}
	if err := checkChallenge(c.trustKey, req.Challenge, time.Now()); err != nil {
		clusterError(w, http.StatusForbidden, fmt.Errorf("enroll: %w", err))
		return
	}
	if !hmac.Equal(req.Proof, req.proof(c.trustKey)) {
		c.log.Warn("enrollment refused: wrong proof of the root key", "joiner", req.ID)
		clusterError(w, http.StatusForbidden, errors.New("enroll: proof of the root key does not verify (is the node's root key the cluster's?)"))
		return
	}
	csr, err := x509.ParseCertificateRequest(req.CSR)
	if err != nil {
		clusterError(w, http.StatusBadRequest, fmt.Errorf("enroll: %w", err))
		return
	}
	switch {
	case !nodeIDPattern.MatchString(req.ID) || csr.Subject.CommonName != req.ID:
		err = fmt.Errorf("enroll: node id %q unusable or not the request's common name %q", req.ID, csr.Subject.CommonName)
	case req.Zone == "":
		err = errors.New("enroll: no zone")
	case c.ca == nil:
		clusterError(w, http.StatusServiceUnavailable, errors.New("enroll: this node holds no cluster CA key; join through another member"))
		return
	}
	if err != nil {
		clusterError(w, http.StatusBadRequest, err)
		return
	}
	ctx := r.Context()
	servers, err := c.node.Servers(ctx)
	if err != nil {
		clusterError(w, http.StatusServiceUnavailable, err)
		return
	}
	var members []string
	for _, s := range servers {
		if s.ID == req.ID {
			c.log.Warn("enrolling a node id that is already a member: it replaces the member's certificate", "joiner", req.ID)
		}
		members = append(members, s.Address)
	}
	cert, err := c.ca.SignCSR(csr, nodeValidity)
	if err != nil {
		clusterError(w, http.StatusBadRequest, err)
		return
	}
	caKey, err := c.ca.KeyPEM()
	if err != nil {
		clusterError(w, http.StatusInternalServerError, err)
		return
	}
	aead, err := caWrapKey(c.trustKey, req.Proof)
	if err != nil {
		clusterError(w, http.StatusInternalServerError, err)
		return
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	resp := enrollResponse{
		ClusterID: c.conf.ClusterID,
		CACert:    c.ca.CertPEM(),
		NodeCert:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		CAKey:     aead.Seal(nonce, nonce, caKey, []byte(c.conf.ClusterID)),
		Members:   members,
	}
	resp.Proof = resp.proof(c.trustKey, req.Proof)
	c.log.Info("enrolled a node", "joiner", req.ID, "joiner_zone", req.Zone, "joiner_raft", req.RaftAddr)
	writeClusterJSON(w, http.StatusOK, resp)
}

// enroll obtains this node's certificate from the member at c.conf.Join and
// writes the cluster's files, retrying while the member is unreachable
// (it may still be starting) until ctx ends. A refusal is final.
func (c *clusterNode) enroll(ctx context.Context) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	adv, err := ClusterConfig{RaftListen: c.conf.RaftListen, RaftAdvertise: c.conf.RaftAdvertise}.advertise()
	if err != nil {
		return err
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: c.conf.ID}}
	if host, _, _ := net.SplitHostPort(adv); net.ParseIP(host) != nil {
		tmpl.IPAddresses = []net.IP{net.ParseIP(host)}
	} else {
		tmpl.DNSNames = []string{host}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return err
	}
	base := "http://" + c.conf.Join + "/cluster/v1/"
	client := &http.Client{Timeout: 10 * time.Second}
	var resp *enrollResponse
	var req enrollRequest
	for attempt := 0; ; attempt++ {
		var final bool
		resp, req, final, err = enrollOnce(ctx, client, base, c, adv, csr)
		if err == nil {
			break
		}
		if final {
			return fmt.Errorf("cluster: enrollment through %s refused: %w", c.conf.Join, err)
		}
		if attempt%10 == 0 {
			c.log.Warn("enrollment: member not reachable, sealed or starting, retrying (--join takes a member's admin address, not its raft address)",
				"join", c.conf.Join, "error", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: enrollment through %s: %w (last error: %v)", c.conf.Join, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if !hmac.Equal(resp.Proof, resp.proof(c.trustKey, req.Proof)) {
		return fmt.Errorf("cluster: the member at %s did not prove it holds the cluster's root key", c.conf.Join)
	}
	aead, err := caWrapKey(c.trustKey, req.Proof)
	if err != nil {
		return err
	}
	if len(resp.CAKey) < aead.NonceSize() {
		return errors.New("cluster: enrollment answer: CA key truncated")
	}
	caKey, err := aead.Open(nil, resp.CAKey[:aead.NonceSize()], resp.CAKey[aead.NonceSize():], []byte(resp.ClusterID))
	if err != nil {
		return fmt.Errorf("cluster: enrollment answer: CA key: %w", err)
	}
	ca, err := replication.ParseCA(resp.CACert, caKey)
	if err != nil {
		return err
	}
	if ca.ClusterID() != resp.ClusterID {
		return errors.New("cluster: enrollment answer: CA does not match the cluster id")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if _, err := replication.LoadCredentials(resp.CACert, resp.NodeCert, keyPEM); err != nil {
		return fmt.Errorf("cluster: enrollment answer: %w", err)
	}
	c.conf.Seeds = resp.Members
	c.conf.ClusterID = resp.ClusterID
	if err := c.writeNodeFile(); err != nil { // the seeds, before the certificate marks enrollment done
		return err
	}
	if caKey, err = c.sealKeyFile(caKeyFile, caKey); err != nil {
		return err
	}
	if keyPEM, err = c.sealKeyFile(nodeKeyFile, keyPEM); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{caKeyFile, caKey}, {caCertFile, resp.CACert}, {nodeKeyFile, keyPEM}, {nodeCertFile, resp.NodeCert}} {
		if err := atomicfile.WriteFile(filepath.Join(c.dir, f.name), f.data, 0o600); err != nil {
			return fmt.Errorf("cluster: write %s: %w", f.name, err)
		}
	}
	c.log.Info("enrolled in the cluster", "cluster", resp.ClusterID, "via", c.conf.Join, "members", resp.Members)
	return nil
}

// enrollOnce runs one challenge and enrollment exchange. final reports a
// refusal that retrying will not change.
func enrollOnce(ctx context.Context, client *http.Client, base string, c *clusterNode, adv string, csr []byte) (*enrollResponse, enrollRequest, bool, error) {
	var ch struct {
		Challenge []byte `json:"challenge"`
	}
	if _, err := doJSON(ctx, client, http.MethodGet, base+"challenge", nil, &ch); err != nil {
		return nil, enrollRequest{}, false, err
	}
	req := enrollRequest{ID: c.conf.ID, Zone: c.conf.Zone, RaftAddr: adv, CSR: csr, Challenge: ch.Challenge}
	req.Proof = req.proof(c.trustKey)
	var resp enrollResponse
	status, err := doJSON(ctx, client, http.MethodPost, base+"enroll", req, &resp)
	if err != nil {
		final := status == http.StatusForbidden || status == http.StatusBadRequest || status == http.StatusConflict
		return nil, req, final, err
	}
	return &resp, req, false, nil
}

// doJSON sends body (if not nil) as JSON and decodes a 2xx answer into out; any other status is an error carrying the
// answer's "error" message.
func doJSON(ctx context.Context, client *http.Client, method, url string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return resp.StatusCode, fmt.Errorf("%s: %.200s", resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("answer of %s: %w", url, err)
		}
	}
	return resp.StatusCode, nil
}

func writeClusterJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func clusterError(w http.ResponseWriter, status int, err error) {
	writeClusterJSON(w, status, map[string]string{"error": err.Error()})
}
