package replication

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestNetwork_AdminFromAnyMember promotes, transfers leadership and removes
// through ChangeMembership called on followers (forwarded to the leader over
// the control protocol), and reads ClusterStatus with each member's own view.
func TestNetwork_AdminFromAnyMember(t *testing.T) {
	if testing.Short() {
		t.Skip("real network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca, err := NewCA("tresor test cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	trust := make([]byte, 32)
	rand.Read(trust)
	nodes := make([]*netNode, 3)
	for i := range nodes {
		nodes[i] = &netNode{cfg: netConfig(t, ca, trust, fmt.Sprintf("n%d", i), fmt.Sprintf("z%d", i))}
		nodes[i].open(t)
	}
	t.Cleanup(func() {
		for _, nn := range nodes {
			nn.node.Close()
		}
	})
	n0, n1, n2 := nodes[0].node, nodes[1].node, nodes[2].node
	if err := n0.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, "n0 to lead", n0.IsLeader)
	for _, n := range []*Node{n1, n2} {
		if n.HasState() {
			t.Fatalf("%s has raft state before joining", n.ID())
		}
		if err := n.Join(ctx, n0.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	// A non-voter promotes itself through the leader.
	if err := n1.ChangeMembership(ctx, OpPromote, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := n2.ChangeMembership(ctx, OpPromote, "n2"); err != nil {
		t.Fatal(err)
	}
	// n2 learns of its own promotion when the leader's commit reaches it.
	poll(t, "n2 to see three voters", func() bool {
		s, err := n2.Servers(ctx)
		return err == nil && len(s) == 3 && countVoters(s) == 3
	})

	members, err := n2.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 {
		t.Fatalf("%d members, want 3", len(members))
	}
	for _, m := range members {
		if m.Status == nil || !m.Voter || m.Status.ID != m.ID || m.Status.Zone != m.Zone {
			t.Errorf("member %+v (status %+v)", m.Server, m.Status)
		}
		if m.ID == "n0" && m.Status != nil && m.Status.State != "Leader" {
			t.Errorf("n0 reports state %s, want Leader", m.Status.State)
		}
	}

	// Leadership moves on a follower's request.
	if err := n1.ChangeMembership(ctx, OpTransferLeadership, "n2"); err != nil {
		t.Fatal(err)
	}
	poll(t, "n2 to lead", n2.IsLeader)

	// A follower removes another member; the status shows it gone.
	if err := n1.ChangeMembership(ctx, OpRemove, "n0"); err != nil {
		t.Fatal(err)
	}
	poll(t, "n0 to leave the configuration", func() bool {
		s, err := n1.Servers(ctx)
		return err == nil && len(s) == 2
	})
	if err := n1.ChangeMembership(ctx, OpRemove, "n9"); err == nil {
		t.Error("removing a non-member succeeded")
	}
	if err := n1.ChangeMembership(ctx, "demolish", "n1"); err == nil {
		t.Error("an unknown operation succeeded")
	}
}

func countVoters(servers []Server) int {
	v := 0
	for _, s := range servers {
		if s.Voter {
			v++
		}
	}
	return v
}

func TestSignCSR(t *testing.T) {
	ca, err := NewCA("tresor test cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "n7"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.7")},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.SignCSR(csr, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "n7" || len(cert.IPAddresses) != 1 || !cert.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Errorf("certificate %v %v does not carry the request's name and key", cert.Subject, cert.IPAddresses)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: nodeServerName, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not verify as a node's: %v", err)
	}
	csr.Signature[len(csr.Signature)-1] ^= 1
	if _, err := ca.SignCSR(csr, time.Hour); err == nil {
		t.Error("a request with a broken signature was signed")
	}
}
