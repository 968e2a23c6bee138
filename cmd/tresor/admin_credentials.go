package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tresor-gw/tresor/gateway/admin"
	"github.com/tresor-gw/tresor/internal/atomicfile"
	"github.com/tresor-gw/tresor/keystore"
)

// Credentials that an operator relays without reading (gateway/admin,
// sealed.go): the future admin runs keygen and hands over the public key,
// the operator's user create (or tenant create --user) answers the
// credentials sealed to it, and the admin runs open-credentials. These two
// commands are local: no endpoint, no credentials.

// recoveryFile is <data-dir>/recovery: the default tenant's recovery key,
// written by the first start of `tresor serve`.
const recoveryFile = "recovery"

// keygen is `tresor admin keygen --out FILE`.
func (c *adminCLI) keygen(pos []string, stderr io.Writer) error {
	if len(pos) != 1 || c.out == "" {
		return usageError("admin keygen: want --out FILE (the private key; the public key goes to FILE.pub)")
	}
	k, err := admin.GenerateRecipientKey()
	if err != nil {
		return err
	}
	priv, err := k.MarshalPEM()
	if err != nil {
		return err
	}
	pub := k.PublicKey().String() + "\n"
	if err := createFile(c.out, priv, 0o600); err != nil {
		return err
	}
	if err := createFile(c.out+".pub", []byte(pub), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tresor: private key in %s (keep it), public key in %s.pub (hand it to the operator; it is below too)\n", c.out, c.out)
	_, err = io.WriteString(c.stdout, pub)
	return err
}

// openCredentials is `tresor admin open-credentials`. It takes the sealed
// credentials alone or any --json answer that carries them.
func (c *adminCLI) openCredentials(pos []string, stdin io.Reader) error {
	if len(pos) != 1 || c.keyFile == "" {
		return usageError("admin open-credentials: want --key FILE [--in SEALED] [--out CREDS] [--recovery-out FILE]")
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return err
	}
	k, err := admin.ParseRecipientKey(keyPEM)
	if err != nil {
		return err
	}
	src := stdin
	if c.in != "" {
		f, err := os.Open(c.in)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	b, err := io.ReadAll(io.LimitReader(src, 1<<20))
	if err != nil {
		return err
	}
	sealed, err := findSealed(b)
	if err != nil {
		return err
	}
	creds, err := k.Open(sealed)
	if err != nil {
		return err
	}
	// Check every destination before writing any, so nothing is half done.
	if creds.AccessKeyID != "" && c.out == "" {
		return usageError(fmt.Sprintf("admin open-credentials: the credentials hold access key %s: give --out FILE", creds.AccessKeyID))
	}
	if creds.RecoveryKeyID != "" && c.recoveryOut == "" {
		return usageError(fmt.Sprintf("admin open-credentials: the credentials hold tenant %s's recovery key %s: give --recovery-out FILE (keep it offline, apart from the access key)", creds.Tenant, creds.RecoveryKeyID))
	}
	for _, p := range []string{c.out, c.recoveryOut} {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s exists: not overwritten", p)
		}
	}
	if creds.AccessKeyID != "" {
		what := fmt.Sprintf("access key of user %q (%s) of tenant %q", creds.User, creds.Role, creds.Tenant)
		if err := createFile(c.out, credentialsFile(what, creds.AccessKeyID, creds.SecretAccessKey), 0o600); err != nil {
			return err
		}
		exp := "never expires"
		if !creds.Expires.IsZero() {
			exp = "expires " + creds.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(c.stdout, "access key %s of user %s (%s) of tenant %s, %s: %s\n", creds.AccessKeyID, creds.User, creds.Role, creds.Tenant, exp, c.out)
	}
	if creds.RecoveryKeyID != "" {
		if err := writeRecoveryFile(c.recoveryOut, creds.Tenant, creds.RecoveryKeyID, creds.RecoverySecret); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "recovery key %s of tenant %s: %s (keep it offline; it creates a new admin when the tenant has none: tresor admin tenant recover)\n", creds.RecoveryKeyID, creds.Tenant, c.recoveryOut)
	}
	return nil
}

// findSealed finds the sealed credentials in b: the object itself, or an
// answer that holds it under "sealed" (user create, tenant recover,
// recovery-key rotate) or "admin"."sealed" (tenant create).
func findSealed(b []byte) (*admin.SealedCredentials, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("sealed credentials: %w", err)
	}
	if a, ok := top["admin"]; ok {
		if err := json.Unmarshal(a, &top); err != nil {
			return nil, fmt.Errorf("sealed credentials: %w", err)
		}
	}
	raw := b
	if s, ok := top["sealed"]; ok {
		raw = s
	} else if _, ok := top["format"]; !ok {
		return nil, errors.New("no sealed credentials in the input")
	}
	var s admin.SealedCredentials
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("sealed credentials: %w", err)
	}
	return &s, nil
}

// credentialsFile is an AWS shared-credentials file with one profile.
func credentialsFile(what, id, secret string) []byte {
	return fmt.Appendf(nil, "# tresor: %s\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", what, id, secret)
}

// writeRecoveryFile writes a tenant's recovery key, which `tresor admin
// --credentials FILE tenant recover` signs with.
func writeRecoveryFile(path, tenant, id, secret string) error {
	return createFile(path, credentialsFile(recoveryWhat(tenant), id, secret), 0o600)
}

func recoveryWhat(tenant string) string {
	return fmt.Sprintf("recovery key of tenant %q: signs `tresor admin tenant recover` and nothing else; keep it offline", tenant)
}

// createFile writes a new file and never replaces one: credentials and keys
// are not overwritten by mistake.
func createFile(path string, data []byte, perm os.FileMode) error {
	err := atomicfile.Create(path, data, perm)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: not overwritten", path)
	}
	return err
}

// readPublicKey reads --public-key: a file from keygen, or the key itself.
// It returns "" without the flag.
func (c *adminCLI) readPublicKey() (string, error) {
	if c.publicKey == "" {
		return "", nil
	}
	s := c.publicKey
	if !strings.HasPrefix(s, admin.PublicKeyPrefix) {
		b, err := os.ReadFile(s)
		if err != nil {
			return "", fmt.Errorf("--public-key: %w", err)
		}
		s = string(b)
	}
	pk, err := admin.ParsePublicKey(s)
	if err != nil {
		return "", usageError(fmt.Sprintf("--public-key %s: %v", c.publicKey, err))
	}
	return pk.String(), nil
}

// createUserRequest builds the request of user create, tenant create
// --user and tenant recover.
func (c *adminCLI) createUserRequest(name string, role keystore.Role) (admin.CreateUserRequest, error) {
	exp, err := c.expiry()
	if err != nil {
		return admin.CreateUserRequest{}, err
	}
	pk, err := c.readPublicKey()
	if err != nil {
		return admin.CreateUserRequest{}, err
	}
	if pk != "" && c.operatorIsTenant {
		return admin.CreateUserRequest{}, usageError("admin: --public-key or --operator-is-tenant, not both")
	}
	return admin.CreateUserRequest{Name: name, Role: role, Expires: exp, PublicKey: pk, OperatorIsTenant: c.operatorIsTenant}, nil
}

// deliverSealed writes sealed credentials to --out, if both are there.
func (c *adminCLI) deliverSealed(s *admin.SealedCredentials) error {
	if s == nil || c.out == "" {
		return nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return createFile(c.out, append(b, '\n'), 0o600)
}

// showNewKey prints a new access key: its secrets, or its sealed
// credentials (alone on stdout without --out, for a pipe).
func (c *adminCLI) showNewKey(w *tabwriter.Writer, tenant string, nk admin.NewAccessKey) {
	if nk.Sealed == nil {
		printNewKey(w, nk)
		return
	}
	what := fmt.Sprintf("access key %s of user %s (%s) of tenant %s", nk.AccessKeyID, nk.User.Name, nk.User.Role, tenant)
	if nk.RecoveryKeyID != "" {
		what += ", and the tenant's recovery key " + nk.RecoveryKeyID
	}
	c.showSealed(w, nk.Sealed, what)
}

func (c *adminCLI) showSealed(w *tabwriter.Writer, s *admin.SealedCredentials, what string) {
	if c.out == "" {
		b, _ := json.MarshalIndent(s, "", "  ")
		fmt.Fprintln(w, string(b))
		return
	}
	fmt.Fprintf(w, "%s: sealed to public key %s, in %s.\n", what, s.Recipient, c.out)
	fmt.Fprintf(w, "Relay that file; its recipient opens it with: tresor admin open-credentials --key KEY --in %s --out CREDENTIALS --recovery-out RECOVERY\n", c.out)
}
