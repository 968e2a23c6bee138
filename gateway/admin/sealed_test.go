package admin

import (
	"strings"
	"testing"
	"time"
)

// TestSealedCredentials seals credentials to a key and checks that only
// that key opens them, and that no field of the sealed object can be
// changed unnoticed: a relay cannot pass one tenant's or user's
// credentials off as another's.
func TestSealedCredentials(t *testing.T) {
	alice, mallory := newRecipient(t), newRecipient(t)
	in := Credentials{Tenant: "acme", User: "alice", Role: "admin", AccessKeyID: "TRSRAAAAAAAAAAAAAAAA", SecretAccessKey: "s3cr3t",
		Expires: time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC), RecoveryKeyID: "TRRCAAAAAAAAAAAAAAAA", RecoverySecret: "r3c0very"}
	pk, err := ParsePublicKey(" " + alice.PublicKey().String() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	s, err := pk.Seal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{in.SecretAccessKey, in.RecoverySecret} {
		if strings.Contains(string(s.Ciphertext), secret) {
			t.Fatalf("the ciphertext holds %q", secret)
		}
	}
	out, err := alice.Open(s)
	if err != nil || out != in {
		t.Fatalf("Open = %+v, %v; want %+v", out, err, in)
	}
	// The private key survives its PEM encoding.
	b, err := alice.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseRecipientKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := again.Open(s); err != nil || out != in {
		t.Fatalf("Open with the key read back: %+v, %v", out, err)
	}
	if _, err := mallory.Open(s); err == nil {
		t.Fatal("another key opened the credentials")
	}
	tampers := map[string]func(c *SealedCredentials){
		"tenant":          func(c *SealedCredentials) { c.Tenant = "globex" },
		"user":            func(c *SealedCredentials) { c.User = "mallory" },
		"access key id":   func(c *SealedCredentials) { c.AccessKeyID = "TRSRBBBBBBBBBBBBBBBB" },
		"recovery key id": func(c *SealedCredentials) { c.RecoveryKeyID = "" },
		"recipient":       func(c *SealedCredentials) { c.Recipient = mallory.PublicKey().Fingerprint() },
		"format":          func(c *SealedCredentials) { c.Format = "tresor-sealed-credentials-0" },
		"ciphertext":      func(c *SealedCredentials) { c.Ciphertext[len(c.Ciphertext)-1] ^= 1 },
		"encapsulation":   func(c *SealedCredentials) { c.Ciphertext[0] ^= 1 },
		"truncated":       func(c *SealedCredentials) { c.Ciphertext = c.Ciphertext[:len(c.Ciphertext)-1] },
	}
	for name, tamper := range tampers {
		c := *s
		c.Ciphertext = append([]byte(nil), s.Ciphertext...)
		tamper(&c)
		if out, err := alice.Open(&c); err == nil {
			t.Errorf("%s changed: opened as %+v", name, out)
		}
	}
	for _, bad := range []string{"", "tresor-admin-pk-1:", PublicKeyPrefix + "!!", PublicKeyPrefix + "AAAA", alice.PublicKey().String()[len(PublicKeyPrefix):]} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%.30q) accepted", bad)
		}
	}
	if _, err := ParseRecipientKey([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil {
		t.Error("ParseRecipientKey accepted a PEM block of another type")
	}
}
