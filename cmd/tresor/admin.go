package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/auth/audit"
	"github.com/tresor-gw/tresor/gateway/admin"
	"github.com/tresor-gw/tresor/internal/atomicfile"
	"github.com/tresor-gw/tresor/keystore"
)

// operatorFile is <data-dir>/operator: the first operator's access key,
// written by the first start of `tresor serve` (mode 0600, the AWS
// shared-credentials format of <data-dir>/credentials). `tresor admin
// --data-dir DIR` signs with it and finds the admin listener in
// <data-dir>/admin.addr (cluster_admin.go).
const operatorFile = "operator"

const adminUsage = `usage: tresor admin [global flags] COMMAND [flags] [args]

commands:
  whoami
  keygen --out FILE                 a key pair for receiving credentials: the private key
                                    to FILE (0600), the public key to FILE.pub and stdout
  open-credentials --key FILE [--in SEALED] [--out CREDS] [--recovery-out FILE]
                                    open credentials sealed to FILE's public key (from
                                    SEALED or stdin): the access key to CREDS, the tenant's
                                    recovery key to FILE (keep it offline), both in the AWS
                                    shared-credentials format; no endpoint needed
  tenant create NAME [--jurisdiction J]... [--user ADMIN --public-key PUB [--out SEALED]]
                                    with --user, onboard its first admin (as user create)
  tenant recover NAME --user ADMIN --public-key PUB [--expires D] [--out SEALED]
                                    signed with the tenant's recovery key (--credentials
                                    RECOVERY): a new admin for a tenant that has none with
                                    a usable key, sealed to PUB, and the next recovery key
  tenant recovery-key show NAME | tenant recovery-key rotate NAME [--public-key PUB [--out SEALED]]
                                    a tenant admin replaces the tenant's recovery key
  tenant list
  tenant show NAME
  tenant suspend NAME | tenant resume NAME
  tenant key-versions NAME          list the tenant's key versions (state, destroy after)
  tenant rotate-key NAME            new active key version; the old one decrypts only
  tenant key-version disable|enable NAME VERSION
                                    a decrypt-only version stops decrypting at once,
                                    or decrypts again
  tenant key-version schedule-destroy [--grace D] NAME VERSION
                                    a disabled version may be destroyed after D
                                    (default and least 24h)
  tenant key-version cancel-destroy NAME VERSION
                                    back to disabled
  tenant key-version destroy NAME VERSION
                                    crypto-shred a scheduled version past its grace:
                                    what it encrypted is unreadable for good
  user create --tenant T [--role admin|writer|reader] [--expires D] [--public-key PUB [--out SEALED]] NAME
                                    prints the new access key id and secret, or with
                                    --public-key the credentials sealed to it (to SEALED
                                    or stdout). An operator creates only a tenant's first
                                    admin, once, and only with --public-key (the
                                    admin's, from keygen) unless --operator-is-tenant
  user list --tenant T
  user show --tenant T NAME
  user delete --tenant T NAME
  user role --tenant T NAME ROLE
  user grant --tenant T NAME BUCKET writer|reader
                                    confine a writer or reader to granted buckets,
                                    each with a role (the weaker of it and the
                                    user's role applies); it may create a bucket
                                    granted as writer
  user revoke --tenant T NAME BUCKET
                                    the user stays confined, even with no grant left
  user clear-grants --tenant T NAME its role applies to every bucket of the tenant again
  key create --tenant T --user U [--expires D]
  key list --tenant T --user U
  key disable|enable|delete --tenant T --user U KEY
  operator list | operator create NAME | operator delete NAME
  operator key create|list --user OP | operator key disable|enable|delete --user OP KEY
                                    operators' own credentials (rotation: create, then disable)
  allowlist set [--tenant T | --s3 | --admin | --cluster] CIDR...
  allowlist show [--tenant T | --s3 | --admin | --cluster]   (no scope: every list)
  allowlist clear [--tenant T | --s3 | --admin | --cluster]
  audit review [--tenant T] [--since D] [--max-failures-per-key N] [--max-failures-per-addr N]
               [--max-denied N] [--max-new-addresses N] [--max-rate-limited N] [--max-admin-actions N]
                                    the node's login audit over D (default 24h): a
                                    tenant admin's own records in clear (--tenant),
                                    an operator's all, tenant fields as pseudonyms;
                                    exits 1 when a threshold is crossed (for cron)

global flags (also accepted after COMMAND):
  --data-dir DIR     a local node: credentials from DIR/operator, address from DIR/admin.addr
  --endpoint URL     the admin listener (http://host:port)
  --credentials FILE AWS shared-credentials file to sign with ([default] profile);
                     else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else DIR/operator
  --json             machine-readable output

--public-key takes a file written by keygen or the key itself. --expires takes
a duration (720h) or an RFC 3339 time. An empty allowlist
allows every address; the admin listener always admits loopback. Only a
tenant's admins change its key versions' states; operators list and rotate.
Operators disable and delete a tenant's access keys and users, and never
create or enable one: a tenant that lost its admins recovers with its
recovery key (tenant recover).
`

// adminCLI is one `tresor admin` invocation.
type adminCLI struct {
	fs       *flag.FlagSet
	dataDir  string
	endpoint string
	credFile string
	asJSON   bool
	timeout  time.Duration
	// command flags
	tenant, user, role, expires string
	grace                       time.Duration
	jurisdictions               multiFlag
	s3, adminScope, cluster     bool
	since                       time.Duration
	thresholds                  map[string]*int
	// credentials in and out
	publicKey, out, recoveryOut, keyFile, in string
	operatorIsTenant                         bool

	stdout io.Writer
	client *admin.Client
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// runAdmin is `tresor admin`.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := &adminCLI{stdout: stdout}
	c.fs = flag.NewFlagSet("admin", flag.ContinueOnError)
	c.fs.SetOutput(stderr)
	c.fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	c.fs.StringVar(&c.dataDir, "data-dir", "", "data `directory` of a local node")
	c.fs.StringVar(&c.endpoint, "endpoint", "", "admin listener `URL`")
	c.fs.StringVar(&c.credFile, "credentials", "", "shared-credentials `file` to sign with")
	c.fs.BoolVar(&c.asJSON, "json", false, "print JSON")
	c.fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up after `duration`")
	c.fs.StringVar(&c.tenant, "tenant", "", "tenant `name`")
	c.fs.StringVar(&c.user, "user", "", "user `name`")
	c.fs.StringVar(&c.role, "role", "", "user `role`: admin, writer or reader (default writer; admin when an operator onboards a tenant)")
	c.fs.StringVar(&c.expires, "expires", "", "access key expiry: a `duration` or an RFC 3339 time")
	c.fs.DurationVar(&c.grace, "grace", 0, "time from schedule-destroy to destroy: a `duration`, at least 24h (default 24h)")
	c.fs.Var(&c.jurisdictions, "jurisdiction", "allowed `jurisdiction` of a new tenant (repeatable)")
	c.fs.BoolVar(&c.s3, "s3", false, "allowlist of the S3 listener (all tenants)")
	c.fs.BoolVar(&c.adminScope, "admin", false, "allowlist of the admin listener")
	c.fs.BoolVar(&c.cluster, "cluster", false, "allowlist of the cluster (Raft) listener")
	c.fs.DurationVar(&c.since, "since", 24*time.Hour, "audit review: the `period` up to now")
	c.fs.StringVar(&c.publicKey, "public-key", "", "public key (a `file` from keygen, or the key) to seal new credentials to")
	c.fs.StringVar(&c.publicKey, "admin-public-key", "", "the same as --public-key")
	c.fs.BoolVar(&c.operatorIsTenant, "operator-is-tenant", false, "an operator onboards a first admin in clear: it is the tenant too (audited)")
	c.fs.StringVar(&c.out, "out", "", "`file` to write (keygen: the private key; open-credentials: the access key; else the sealed credentials)")
	c.fs.StringVar(&c.recoveryOut, "recovery-out", "", "open-credentials: `file` for the tenant's recovery key")
	c.fs.StringVar(&c.keyFile, "key", "", "open-credentials: the private key `file` from keygen")
	c.fs.StringVar(&c.in, "in", "", "open-credentials: the sealed credentials `file` (default stdin)")
	c.thresholds = map[string]*int{}
	for _, name := range []string{"max-failures-per-key", "max-failures-per-addr", "max-denied", "max-new-addresses", "max-rate-limited", "max-admin-actions"} {
		c.thresholds[name] = c.fs.Int(name, 0, "audit review: fail above `N` (0: no limit)")
	}
	// Flags may come anywhere: before the command, between its words,
	// after its arguments.
	var pos []string
	for rest := args; ; {
		if err := c.fs.Parse(rest); err != nil {
			return err
		}
		if c.fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, c.fs.Arg(0)), c.fs.Args()[1:]
	}
	if len(pos) == 0 || pos[0] == "help" {
		fmt.Fprint(stderr, adminUsage)
		if len(pos) == 0 {
			return usageError("admin: no command given")
		}
		return nil
	}
	switch pos[0] {
	case "keygen":
		return c.keygen(pos, stderr)
	case "open-credentials":
		return c.openCredentials(pos, os.Stdin)
	}
	client, err := c.connect()
	if err != nil {
		return err
	}
	c.client = client
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.run(ctx, pos)
}

// connect finds the endpoint and the credentials.
func (c *adminCLI) connect() (*admin.Client, error) {
	endpoint := c.endpoint
	if endpoint == "" {
		if c.dataDir == "" {
			return nil, usageError("admin: give --data-dir DIR (a local node) or --endpoint URL")
		}
		addr, err := readAdminAddr(c.dataDir)
		if err != nil {
			return nil, err
		}
		endpoint = addr
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	var id, secret string
	switch {
	case c.credFile != "":
		var err error
		if id, secret, err = readCredentialsFile(c.credFile); err != nil {
			return nil, err
		}
	case os.Getenv("AWS_ACCESS_KEY_ID") != "" && c.dataDir == "":
		id, secret = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	case c.dataDir != "":
		var err error
		if id, secret, err = readCredentialsFile(filepath.Join(c.dataDir, operatorFile)); err != nil {
			return nil, fmt.Errorf("operator credentials (written by the first start of tresor serve): %w", err)
		}
	default:
		return nil, usageError("admin: no credentials: give --credentials FILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --data-dir DIR")
	}
	return &admin.Client{Endpoint: endpoint, AccessKeyID: id, SecretAccessKey: secret}, nil
}

// readCredentialsFile reads the [default] profile of an AWS
// shared-credentials file (the first profile if there is no [default]).
func readCredentialsFile(path string) (id, secret string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	profiles := map[string]map[string]string{}
	var order []string
	profile := ""
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			profile = strings.TrimSpace(line[1 : len(line)-1])
			if profiles[profile] == nil {
				profiles[profile] = map[string]string{}
				order = append(order, profile)
			}
		case profiles[profile] != nil:
			if k, v, ok := strings.Cut(line, "="); ok {
				profiles[profile][strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	p := profiles["default"]
	if p == nil && len(order) > 0 {
		p = profiles[order[0]]
	}
	if p["aws_access_key_id"] == "" || p["aws_secret_access_key"] == "" {
		return "", "", fmt.Errorf("%s: no aws_access_key_id and aws_secret_access_key", path)
	}
	return p["aws_access_key_id"], p["aws_secret_access_key"], nil
}

func (c *adminCLI) need(pos []string, n int, what string) error {
	if len(pos) != n {
		return usageError(fmt.Sprintf("admin %s: want %s", strings.Join(pos[:min(len(pos), 2)], " "), what))
	}
	return nil
}

func (c *adminCLI) needFlag(v, name string) (string, error) {
	if v == "" {
		return "", usageError("admin: --" + name + " is required")
	}
	return v, nil
}

func (c *adminCLI) expiry() (time.Time, error) {
	if c.expires == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(c.expires); err == nil {
		return time.Now().Add(d).UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, c.expires)
	if err != nil {
		return time.Time{}, usageError(fmt.Sprintf("admin: --expires %q is neither a duration nor an RFC 3339 time", c.expires))
	}
	return t, nil
}

// tenantPath returns tenants/<escaped name>.
func tenantPath(name string) string { return "tenants/" + pathEscape(name) }

func pathEscape(s string) string {
	return strings.NewReplacer("/", "%2F", "?", "%3F", "#", "%23", "%", "%25").Replace(s)
}

func (c *adminCLI) run(ctx context.Context, pos []string) error {
	cmd := pos[0]
	if len(pos) > 1 && cmd != "whoami" {
		cmd += " " + pos[1]
	}
	var (
		method, path string
		in           any
		out          any
		show         func(w *tabwriter.Writer)
		// check, if set, judges the answer once it is printed.
		check func() error
		// deliver, if set, writes what the answer carries to --out
		// before anything is printed.
		deliver func() error
	)
	if c.out != "" {
		if c.publicKey == "" {
			return usageError("admin: --out goes with --public-key (it receives the sealed credentials)")
		}
		if _, err := os.Lstat(c.out); err == nil {
			return fmt.Errorf("%s exists: not overwritten", c.out) // checked before the secrets are made
		}
	}
	switch cmd {
	case "whoami":
		var me admin.Whoami
		method, path, out = "GET", "whoami", &me
		show = func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "ACCESS KEY\tROLE\tTENANT\tUSER\n%s\t%s\t%s\t%s\n", me.AccessKeyID, me.Role, orDash(me.Tenant), me.User)
		}
	case "tenant create":
		if err := c.need(pos, 3, "NAME"); err != nil {
			return err
		}
		var t admin.NewTenant
		req := admin.CreateTenantRequest{Name: pos[2], Jurisdictions: c.jurisdictions}
		if c.user != "" {
			cu, err := c.createUserRequest(c.user, keystore.RoleAdmin)
			if err != nil {
				return err
			}
			req.Admin = &cu
		} else if c.publicKey != "" || c.operatorIsTenant {
			return usageError("admin tenant create: --public-key and --operator-is-tenant go with --user ADMIN")
		}
		method, path, in, out = "POST", "tenants", req, &t
		show = func(w *tabwriter.Writer) {
			printTenants(w, []keystore.Tenant{t.Tenant})
			if t.Admin != nil {
				fmt.Fprintln(w)
				c.showNewKey(w, pos[2], *t.Admin)
			}
		}
		deliver = func() error {
			if t.Admin == nil {
				return nil
			}
			return c.deliverSealed(t.Admin.Sealed)
		}
	case "tenant recover":
		if err := c.need(pos, 3, "NAME"); err != nil {
			return err
		}
		u, err := c.needFlag(c.user, "user")
		if err != nil {
			return err
		}
		if c.publicKey == "" {
			return usageError("admin tenant recover: --public-key PUB is required (the new admin's, from keygen)")
		}
		cu, err := c.createUserRequest(u, keystore.RoleAdmin)
		if err != nil {
			return err
		}
		var nk admin.NewAccessKey
		method, path, out = "POST", tenantPath(pos[2])+"/recover", &nk
		in = admin.RecoverRequest{Name: u, PublicKey: cu.PublicKey, Expires: cu.Expires}
		show = func(w *tabwriter.Writer) { c.showNewKey(w, pos[2], nk) }
		deliver = func() error { return c.deliverSealed(nk.Sealed) }
	case "tenant recovery-key":
		if len(pos) != 4 || (pos[2] != "show" && pos[2] != "rotate") {
			return usageError("admin tenant recovery-key: want show NAME or rotate NAME")
		}
		if pos[2] == "show" {
			var rk keystore.RecoveryKey
			method, path, out = "GET", tenantPath(pos[3])+"/recovery-key", &rk
			show = func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "RECOVERY KEY\tTENANT\tCREATED\n%s\t%s\t%s\n", rk.ID, pos[3], rk.Created.Format(time.RFC3339))
			}
			break
		}
		pk, err := c.readPublicKey()
		if err != nil {
			return err
		}
		var rk admin.NewRecoveryKey
		method, path, in, out = "POST", tenantPath(pos[3])+"/recovery-key", admin.RecoveryKeyRequest{PublicKey: pk}, &rk
		show = func(w *tabwriter.Writer) {
			switch {
			case rk.Sealed == nil:
				fmt.Fprintf(w, "recovery_key_id\t%s\nrecovery_secret\t%s\n\nThe secret is not shown again; the tenant's previous recovery key no longer works.\n", rk.RecoveryKeyID, rk.RecoverySecret)
			default:
				c.showSealed(w, rk.Sealed, fmt.Sprintf("recovery key %s of tenant %s", rk.RecoveryKeyID, rk.Tenant))
			}
		}
		deliver = func() error { return c.deliverSealed(rk.Sealed) }
	case "tenant list":
		var ts []keystore.Tenant
		method, path, out = "GET", "tenants", &ts
		show = func(w *tabwriter.Writer) { printTenants(w, ts) }
	case "tenant show", "tenant suspend", "tenant resume":
		if err := c.need(pos, 3, "NAME"); err != nil {
			return err
		}
		var t keystore.Tenant
		method, path, out = "GET", tenantPath(pos[2]), &t
		if pos[1] != "show" {
			method, path = "POST", path+"/"+pos[1]
		}
		show = func(w *tabwriter.Writer) { printTenants(w, []keystore.Tenant{t}) }
	case "tenant key-versions":
		if err := c.need(pos, 3, "NAME"); err != nil {
			return err
		}
		var kvs []keystore.KeyVersion
		method, path, out = "GET", tenantPath(pos[2])+"/key-versions", &kvs
		show = func(w *tabwriter.Writer) { printKeyVersions(w, kvs) }
	case "tenant rotate-key":
		if err := c.need(pos, 3, "NAME"); err != nil {
			return err
		}
		var kv keystore.KeyVersion
		method, path, out = "POST", tenantPath(pos[2])+"/key-versions/rotate", &kv
		show = func(w *tabwriter.Writer) { printKeyVersions(w, []keystore.KeyVersion{kv}) }
	case "tenant key-version":
		if len(pos) < 3 {
			return usageError("admin tenant key-version: want disable, enable, schedule-destroy, cancel-destroy or destroy")
		}
		switch pos[2] {
		case "disable", "enable", "schedule-destroy", "cancel-destroy", "destroy":
		default:
			return usageError(fmt.Sprintf("admin tenant key-version %s: want disable, enable, schedule-destroy, cancel-destroy or destroy", pos[2]))
		}
		if len(pos) != 5 {
			return usageError(fmt.Sprintf("admin tenant key-version %s: want NAME VERSION", pos[2]))
		}
		if c.grace != 0 && pos[2] != "schedule-destroy" {
			return usageError("admin tenant key-version: --grace goes with schedule-destroy")
		}
		var kv keystore.KeyVersion
		method, path, out = "POST", tenantPath(pos[3])+"/key-versions/"+pathEscape(pos[4])+"/"+pos[2], &kv
		if c.grace != 0 {
			in = admin.ScheduleDestroyRequest{Grace: c.grace.String()}
		}
		show = func(w *tabwriter.Writer) { printKeyVersions(w, []keystore.KeyVersion{kv}) }
	case "user create":
		if err := c.need(pos, 3, "NAME"); err != nil {
			return err
		}
		t, err := c.needFlag(c.tenant, "tenant")
		if err != nil {
			return err
		}
		cu, err := c.createUserRequest(pos[2], keystore.Role(c.role))
		if err != nil {
			return err
		}
		var nk admin.NewAccessKey
		method, path, out, in = "POST", tenantPath(t)+"/users", &nk, cu
		show = func(w *tabwriter.Writer) { c.showNewKey(w, t, nk) }
		deliver = func() error { return c.deliverSealed(nk.Sealed) }
	case "user list":
		t, err := c.needFlag(c.tenant, "tenant")
		if err != nil {
			return err
		}
		var us []keystore.User
		method, path, out = "GET", tenantPath(t)+"/users", &us
		show = func(w *tabwriter.Writer) { printUsers(w, us) }
	case "user show", "user delete":
		if err := c.need(pos, 3, "NAME"); err != nil {
			return err
		}
		t, err := c.needFlag(c.tenant, "tenant")
		if err != nil {
			return err
		}
		var u keystore.User
		method, path, out = "GET", tenantPath(t)+"/users/"+pathEscape(pos[2]), &u
		show = func(w *tabwriter.Writer) { printUsers(w, []keystore.User{u}) }
		if pos[1] == "delete" {
			method = "DELETE"
			show = func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted user %s and its access keys\n", pos[2]) }
		}
	case "user role":
		if err := c.need(pos, 4, "NAME ROLE"); err != nil {
			return err
		}
		t, err := c.needFlag(c.tenant, "tenant")
		if err != nil {
			return err
		}
		var u keystore.User
		method, path, out = "PUT", tenantPath(t)+"/users/"+pathEscape(pos[2])+"/role", &u
		in = admin.SetRoleRequest{Role: keystore.Role(pos[3])}
		show = func(w *tabwriter.Writer) { printUsers(w, []keystore.User{u}) }
	case "user grant", "user revoke", "user clear-grants":
		t, err := c.needFlag(c.tenant, "tenant")
		if err != nil {
			return err
		}
		var u keystore.User
		out = &u
		show = func(w *tabwriter.Writer) { printUsers(w, []keystore.User{u}) }
		switch pos[1] {
		case "grant":
			if err := c.need(pos, 5, "NAME BUCKET writer|reader"); err != nil {
				return err
			}
			method, path = "PUT", tenantPath(t)+"/users/"+pathEscape(pos[2])+"/grants/"+pathEscape(pos[3])
			in = admin.GrantRequest{Role: keystore.Role(pos[4])}
		case "revoke":
			if err := c.need(pos, 4, "NAME BUCKET"); err != nil {
				return err
			}
			method, path = "DELETE", tenantPath(t)+"/users/"+pathEscape(pos[2])+"/grants/"+pathEscape(pos[3])
		default:
			if err := c.need(pos, 3, "NAME"); err != nil {
				return err
			}
			method, path = "DELETE", tenantPath(t)+"/users/"+pathEscape(pos[2])+"/grants"
		}
	case "audit review":
		if err := c.need(pos, 2, "no arguments"); err != nil {
			return err
		}
		q := url.Values{"since": {c.since.String()}}
		for name, n := range c.thresholds {
			if *n > 0 {
				q.Set(name, strconv.Itoa(*n))
			}
		}
		path = "audit/review"
		if c.tenant != "" {
			path = tenantPath(c.tenant) + "/audit/review"
		}
		var sum audit.Summary
		method, path, out = "GET", path+"?"+q.Encode(), &sum
		show = func(w *tabwriter.Writer) { printSummary(w, sum) }
		check = func() error {
			if len(sum.Exceeded) > 0 {
				return errors.New("audit review: thresholds crossed: " + strings.Join(sum.Exceeded, "; "))
			}
			return nil
		}
	case "key create", "key list", "key disable", "key enable", "key delete":
		t, err := c.needFlag(c.tenant, "tenant")
		if err != nil {
			return err
		}
		u, err := c.needFlag(c.user, "user")
		if err != nil {
			return err
		}
		base := tenantPath(t) + "/users/" + pathEscape(u) + "/keys"
		switch pos[1] {
		case "create":
			exp, err := c.expiry()
			if err != nil {
				return err
			}
			var nk admin.NewAccessKey
			method, path, in, out = "POST", base, admin.CreateKeyRequest{Expires: exp}, &nk
			show = func(w *tabwriter.Writer) { printNewKey(w, nk) }
		case "list":
			var keys []keystore.AccessKey
			method, path, out = "GET", base, &keys
			show = func(w *tabwriter.Writer) { printKeys(w, keys) }
		default:
			if err := c.need(pos, 3, "KEY"); err != nil {
				return err
			}
			var k keystore.AccessKey
			method, path, out = "POST", base+"/"+pathEscape(pos[2])+"/"+pos[1], &k
			show = func(w *tabwriter.Writer) { printKeys(w, []keystore.AccessKey{k}) }
			if pos[1] == "delete" {
				method, path = "DELETE", base+"/"+pathEscape(pos[2])
				show = func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted access key %s\n", pos[2]) }
			}
		}
	case "operator list":
		var us []keystore.User
		method, path, out = "GET", "operators", &us
		show = func(w *tabwriter.Writer) { printUsers(w, us) }
	case "operator create", "operator delete":
		if err := c.need(pos, 3, "NAME"); err != nil {
			return err
		}
		var nk admin.NewAccessKey
		method, path, in, out = "POST", "operators", admin.CreateOperatorRequest{Name: pos[2]}, &nk
		show = func(w *tabwriter.Writer) { printNewKey(w, nk) }
		if pos[1] == "delete" {
			method, path, in = "DELETE", "operators/"+pathEscape(pos[2]), nil
			show = func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted operator %s and its access keys\n", pos[2]) }
		}
	case "operator key":
		if len(pos) < 3 {
			return usageError("admin operator key: want create, list, disable, enable or delete")
		}
		u, err := c.needFlag(c.user, "user")
		if err != nil {
			return err
		}
		base := "operators/" + pathEscape(u) + "/keys"
		switch pos[2] {
		case "create":
			exp, err := c.expiry()
			if err != nil {
				return err
			}
			var nk admin.NewAccessKey
			method, path, in, out = "POST", base, admin.CreateKeyRequest{Expires: exp}, &nk
			show = func(w *tabwriter.Writer) { printNewKey(w, nk) }
		case "list":
			var keys []keystore.AccessKey
			method, path, out = "GET", base, &keys
			show = func(w *tabwriter.Writer) { printKeys(w, keys) }
		case "disable", "enable", "delete":
			if err := c.need(pos, 4, "KEY"); err != nil {
				return err
			}
			var k keystore.AccessKey
			method, path, out = "POST", base+"/"+pathEscape(pos[3])+"/"+pos[2], &k
			show = func(w *tabwriter.Writer) { printKeys(w, []keystore.AccessKey{k}) }
			if pos[2] == "delete" {
				method, path = "DELETE", base+"/"+pathEscape(pos[3])
				show = func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted access key %s\n", pos[3]) }
			}
		default:
			return usageError(fmt.Sprintf("admin operator key %s: want create, list, disable, enable or delete", pos[2]))
		}
	case "allowlist set", "allowlist show", "allowlist clear":
		scopePath, all, err := c.allowlistPath()
		if err != nil {
			return err
		}
		switch pos[1] {
		case "set":
			if len(pos) < 3 {
				return usageError("admin allowlist set: want CIDR... (use clear to remove a list)")
			}
			if all {
				return usageError("admin allowlist set: give --tenant T, --s3, --admin or --cluster")
			}
			if _, err := auth.ParseCIDRs(pos[2:]); err != nil {
				return usageError(err.Error())
			}
			var al admin.Allowlist
			method, path, in, out = "PUT", scopePath, admin.AllowlistRequest{CIDRs: pos[2:]}, &al
			show = func(w *tabwriter.Writer) { printAllowlists(w, []admin.Allowlist{al}) }
		case "clear":
			if all {
				return usageError("admin allowlist clear: give --tenant T, --s3, --admin or --cluster")
			}
			var al admin.Allowlist
			method, path, out = "DELETE", scopePath, &al
			show = func(w *tabwriter.Writer) { printAllowlists(w, []admin.Allowlist{al}) }
		default:
			if all {
				var als []admin.Allowlist
				method, path, out = "GET", scopePath, &als
				show = func(w *tabwriter.Writer) { printAllowlists(w, als) }
			} else {
				var al admin.Allowlist
				method, path, out = "GET", scopePath, &al
				show = func(w *tabwriter.Writer) { printAllowlists(w, []admin.Allowlist{al}) }
			}
		}
	default:
		return usageError(fmt.Sprintf("admin: unknown command %q (tresor admin help)", strings.Join(pos, " ")))
	}

	var raw json.RawMessage
	if err := c.client.Do(ctx, method, path, in, &raw); err != nil {
		var e *admin.Error
		if errors.As(err, &e) {
			if c.asJSON {
				b, _ := json.Marshal(e)
				fmt.Fprintln(c.stdout, string(b))
			}
			return fmt.Errorf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
		}
		return err
	}
	if len(raw) > 0 && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return err
		}
	}
	if deliver != nil {
		if err := deliver(); err != nil {
			return err
		}
	}
	if c.asJSON {
		if len(raw) == 0 {
			raw = json.RawMessage("{}")
		}
		if _, err := fmt.Fprintln(c.stdout, strings.TrimSpace(string(raw))); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		show(w)
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if check != nil {
		return check()
	}
	return nil
}

// allowlistPath returns the API path of the scope the flags name; all is
// set when none is named.
func (c *adminCLI) allowlistPath() (path string, all bool, err error) {
	n := 0
	for _, b := range []bool{c.s3, c.adminScope, c.cluster, c.tenant != ""} {
		if b {
			n++
		}
	}
	switch {
	case n > 1:
		return "", false, usageError("admin allowlist: give one of --tenant T, --s3, --admin, --cluster")
	case c.tenant != "":
		return tenantPath(c.tenant) + "/allowlist", false, nil
	case c.s3:
		return "allowlists/s3", false, nil
	case c.adminScope:
		return "allowlists/admin", false, nil
	case c.cluster:
		return "allowlists/cluster", false, nil
	}
	return "allowlists", true, nil
}

func printTenants(w io.Writer, ts []keystore.Tenant) {
	fmt.Fprintln(w, "NAME\tID\tSTATE\tJURISDICTIONS\tCREATED")
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.ID, t.State, orDash(strings.Join(t.Jurisdictions, ",")), t.Created.Format(time.RFC3339))
	}
}

func printUsers(w io.Writer, us []keystore.User) {
	fmt.Fprintln(w, "NAME\tID\tROLE\tBUCKETS\tCREATED")
	for _, u := range us {
		buckets := "all"
		if u.Confined {
			var gs []string
			for _, b := range slices.Sorted(maps.Keys(u.Grants)) {
				gs = append(gs, b+":"+string(u.Grants[b]))
			}
			buckets = strings.Join(gs, ",")
			if buckets == "" {
				buckets = "none"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.ID, u.Role, buckets, u.Created.Format(time.RFC3339))
	}
}

func printKeys(w io.Writer, keys []keystore.AccessKey) {
	fmt.Fprintln(w, "ACCESS KEY\tUSER\tSTATE\tCREATED\tEXPIRES")
	for _, k := range keys {
		exp := "never"
		if !k.Expires.IsZero() {
			exp = k.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.UserName, k.State, k.Created.Format(time.RFC3339), exp)
	}
}

func printNewKey(w io.Writer, nk admin.NewAccessKey) {
	exp := "never"
	if !nk.Expires.IsZero() {
		exp = nk.Expires.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "user\t%s (%s)\naccess_key_id\t%s\nsecret_access_key\t%s\nexpires\t%s\n", nk.User.Name, nk.User.Role, nk.AccessKeyID, nk.SecretAccessKey, exp)
	if nk.RecoveryKeyID != "" {
		fmt.Fprintf(w, "recovery_key_id\t%s\nrecovery_secret\t%s\t(the tenant's: keep it offline)\n", nk.RecoveryKeyID, nk.RecoverySecret)
	}
	fmt.Fprintln(w, "\nThe secrets are not shown again.")
}

// printKeyVersions shows DESTROY AFTER for scheduled and destroyed
// versions: when the destruction may be, or could first have been, carried
// out.
func printKeyVersions(w io.Writer, kvs []keystore.KeyVersion) {
	fmt.Fprintln(w, "KEY VERSION\tSTATE\tCREATED\tCHANGED\tDESTROY AFTER")
	for _, kv := range kvs {
		after := "-"
		if !kv.DestroyAfter.IsZero() {
			after = kv.DestroyAfter.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", kv.ID, kv.State, kv.Created.Format(time.RFC3339), kv.Changed.Format(time.RFC3339), after)
	}
}

func printAllowlists(w io.Writer, als []admin.Allowlist) {
	fmt.Fprintln(w, "SCOPE\tTENANT\tCIDRS")
	for _, al := range als {
		cidrs := strings.Join(al.CIDRs, " ")
		if cidrs == "" {
			cidrs = "(none: every address allowed)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", al.Scope, orDash(al.Tenant), cidrs)
	}
}

// Serving side: what `tresor serve` adds for the admin API.

// bootstrapOperator creates the first operator on a keystore that has none
// and writes its credentials to <data-dir>/operator (0600). Later starts
// change nothing. As with <data-dir>/credentials, a crash between the
// keystore write and the file write loses the secret; in a cluster the file
// is on the node that bootstrapped.
func bootstrapOperator(ctx context.Context, store *keystore.Store, dataDir string) error {
	creds, err := store.BootstrapOperator(ctx)
	switch {
	case errors.Is(err, keystore.ErrExists):
		return nil
	case err != nil:
		return fmt.Errorf("bootstrap operator: %w", err)
	}
	content := fmt.Sprintf("# tresor: access key of operator %q (admin API only; no S3 access)\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		creds.UserName, creds.AccessKeyID, creds.SecretAccessKey)
	if err := atomicfile.WriteFile(filepath.Join(dataDir, operatorFile), []byte(content), 0o600); err != nil {
		return fmt.Errorf("write operator credentials: %w", err)
	}
	return nil
}

// adminAPI mounts the admin API (admin.Prefix) in front of next (health,
// metrics, cluster endpoints). auditDir is the node's login audit log, for
// reviews through the API.
func adminAPI(next http.Handler, store *keystore.Store, region string, lists *auth.Allowlists, auditor admin.Auditor, auditDir string, cluster admin.Cluster, log *slog.Logger) (http.Handler, error) {
	cfg := admin.Config{Region: region, Logger: log, Allowlists: lists, Auditor: auditor, AuditDir: auditDir, Cluster: cluster}
	if key, err := audit.ReadSystemKey(auditDir); err == nil {
		cfg.AuditSystemKey = key // opens the node's own records in an operator's review
	} else {
		log.Warn("audit system key unreadable: an operator's review shows the node's records sealed", "error", err)
	}
	h, err := admin.New(store, cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(admin.Prefix, h)
	mux.Handle("/", next)
	return mux, nil
}

// newAllowlists returns the IP allowlist checker over the keystore's
// replicated lists, for the admin listener here and the S3 server.
func newAllowlists(store *keystore.Store) *auth.Allowlists {
	return auth.NewAllowlists(admin.AllowlistLoader(store), 0)
}

// filterAdminListener closes connections to the admin listener from
// addresses outside the admin allowlist, and records each refusal in the
// login audit (kind allowlist_deny, through denials). Loopback is always
// admitted, so a list that shuts out the operator's own address can still
// be repaired from the node itself (whoever is on the node can read the
// root key anyway).
func filterAdminListener(ctx context.Context, ln net.Listener, lists *auth.Allowlists, d *denials) net.Listener {
	return auth.FilterListener(ln, func(ip netip.Addr) bool {
		return ip.IsLoopback() || lists.Allow(ctx, auth.ScopeAdmin, ip)
	}, func(ip netip.Addr) { d.refused("admin", ip) })
}
