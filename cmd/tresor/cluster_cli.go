package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tresor-gw/tresor/gateway/admin"
	"github.com/tresor-gw/tresor/keystore"
)

const clusterUsage = `usage: tresor cluster COMMAND [flags]

commands:
  status                  every node: id, zone, role, voter, last contact, applied index
  transfer-leader [NODE]  hand leadership to NODE (any up-to-date voter if omitted)
  promote NODE            make non-voter NODE a voter
  remove NODE             take NODE out of the cluster

The command talks to a node's admin listener: --admin host:port, or the
address the node in --data-dir recorded in admin.addr. Changes are
authenticated with the root key (--root-key, default <data-dir>/root.key)
or, where there is no key file (a root key held in shares) or with
--credentials FILE, with an operator's access key through the admin API
(default <data-dir>/operator), which records them in the login audit.
`

// runCluster is `tresor cluster`.
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, clusterUsage)
		if len(args) == 0 {
			return usageError("cluster: no command given")
		}
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("cluster "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "tresor-data", "data `directory` of the local node")
	admin := fs.String("admin", "", "admin listener `address` host:port (default: <data-dir>/admin.addr)")
	fs.StringVar(admin, "endpoint", "", "same as --admin")
	rootKey := fs.String("root-key", "", "root key `file` that authenticates changes (default <data-dir>/root.key)")
	credFile := fs.String("credentials", "", "operator's shared-credentials `file` to sign changes with instead of the root key")
	asJSON := fs.Bool("json", false, "status: print JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after `duration`")
	// Flags may come before or after the node id.
	var pos []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	var op, id string
	switch sub {
	case "status":
		if len(pos) != 0 {
			return usageError("cluster status takes no arguments")
		}
	case "transfer-leader":
		if len(pos) > 1 {
			return usageError("cluster transfer-leader takes at most one node id")
		}
		op = "transfer-leadership"
		if len(pos) == 1 {
			id = pos[0]
		}
	case "promote", "remove":
		if len(pos) != 1 {
			return usageError(fmt.Sprintf("cluster %s takes one node id", sub))
		}
		op, id = sub, pos[0]
	default:
		fmt.Fprint(stderr, clusterUsage)
		return usageError(fmt.Sprintf("unknown cluster command %q", sub))
	}
	addr := *admin
	if addr == "" {
		var err error
		if addr, err = readAdminAddr(*dataDir); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client := &http.Client{}
	base := "http://" + addr + "/cluster/v1/"

	if sub == "status" {
		var ans statusAnswer
		if _, err := doJSON(ctx, client, http.MethodGet, base+"status", nil, &ans); err != nil {
			return fmt.Errorf("cluster status: %w", err)
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(ans)
		}
		return printStatus(stdout, ans)
	}

	path := *rootKey
	if path == "" {
		if path = os.Getenv("TRESOR_ROOT_KEY_FILE"); path == "" {
			path = filepath.Join(*dataDir, keystore.RootKeyFileName)
		}
	}
	if *credFile != "" || (*rootKey == "" && !exists(path)) {
		return operatorChange(ctx, addr, *dataDir, *credFile, sub, op, id, stdout)
	}
	root, err := keystore.LoadRootKey(path, false)
	if err != nil {
		return fmt.Errorf("cluster %s is authenticated with the root key: %w", sub, err)
	}
	trustKey, err := keystore.DeriveTrustKey(root)
	clear(root)
	if err != nil {
		return err
	}
	key, err := adminKeyFrom(trustKey)
	if err != nil {
		return err
	}
	var ch struct {
		Challenge []byte `json:"challenge"`
	}
	if _, err := doJSON(ctx, client, http.MethodGet, base+"challenge", nil, &ch); err != nil {
		return fmt.Errorf("cluster %s: %w", sub, err)
	}
	req := changeRequest{Op: op, ID: id, Challenge: ch.Challenge}
	req.MAC = req.mac(key)
	if _, err := doJSON(ctx, client, http.MethodPost, base+"change", req, nil); err != nil {
		return fmt.Errorf("cluster %s: %w", sub, err)
	}
	fmt.Fprintln(stdout, strings.TrimSpace("cluster "+sub+" "+id)+": done")
	return nil
}

func printStatus(w io.Writer, ans statusAnswer) error {
	fmt.Fprintf(w, "cluster %s (asked %s, leader %s)\n", ans.ClusterID, ans.Node, orDash(ans.Leader))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tZONE\tROLE\tVOTER\tLAST CONTACT\tAPPLIED\tADDRESS")
	for _, n := range ans.Nodes {
		contact := "-"
		if !n.LastContact.IsZero() {
			contact = time.Since(n.LastContact).Round(time.Millisecond).String() + " ago"
			if n.Role == "leader" {
				contact = "(leader)"
			}
		}
		voter := "no"
		if n.Voter {
			voter = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", n.ID, n.Zone, n.Role, voter, contact, n.AppliedIndex, n.Address)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if ans.Placement != "" {
		fmt.Fprintln(w, "warning:", ans.Placement)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// operatorChange makes a membership change through the admin API, signed
// with an operator's access key: from credFile, else <data-dir>/operator.
func operatorChange(ctx context.Context, addr, dataDir, credFile, sub, op, id string, stdout io.Writer) error {
	if credFile == "" {
		credFile = filepath.Join(dataDir, operatorFile)
	}
	key, secret, err := readCredentialsFile(credFile)
	if err != nil {
		return fmt.Errorf("cluster %s: no root key file, and no operator credentials: %w", sub, err)
	}
	c := &admin.Client{Endpoint: "http://" + addr, AccessKeyID: key, SecretAccessKey: secret}
	if err := c.Do(ctx, http.MethodPost, "cluster/"+op, admin.ClusterChangeRequest{Node: id}, nil); err != nil {
		return fmt.Errorf("cluster %s: %w", sub, err)
	}
	fmt.Fprintln(stdout, strings.TrimSpace("cluster "+sub+" "+id)+": done")
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
