package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tresor-gw/tresor/auth/audit"
)

// runAudit dispatches `tresor audit verify|export|review`. The commands
// only read the log's files (segments are opened read-only and a record
// being written is skipped), so they run beside a serving node; they have
// no access to the keystore, so tenant fields stay opaque in a review (the
// node's own records without a tenant are opened with its system key when
// the user running the command can read it).
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"verify": runAuditVerify, "export": runAuditExport, "review": runAuditReview,
	}
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintln(stderr, "usage: tresor audit verify|export|review [flags]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return usageError("audit: want verify, export or review")
	}
	return sub[args[0]](ctx, args[1:], stdout, stderr)
}

// auditDir finds the audit log of a node data directory (<dir>/audit), or
// takes dir as the log directory itself.
func auditDir(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "audit", "pubkeys.json")); err == nil {
		return filepath.Join(dir, "audit")
	}
	return dir
}

func newAuditFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("audit "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// logSource resolves --data-dir and --export to a directory.
func logSource(dataDir, export string) (dir string, live bool, err error) {
	switch {
	case dataDir != "" && export != "":
		return "", false, usageError("give --data-dir or --export, not both")
	case dataDir != "":
		return auditDir(dataDir), true, nil
	case export != "":
		return export, false, nil
	}
	return "", false, usageError("give --data-dir DIR or --export PATH")
}

func runAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newAuditFlags("verify", stderr)
	dataDir := fs.String("data-dir", "", "node data `directory` (its audit/ log is checked in place, read-only)")
	export := fs.String("export", "", "exported log `directory`")
	pubkeys := fs.String("pubkeys", "", "public keys `file` (pubkeys.json kept off the node); default with --data-dir: the one in the log directory")
	checkpoints := fs.String("checkpoints", "", "replicated checkpoints `file`; default with --export: its replicated file")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, live, err := logSource(*dataDir, *export)
	if err != nil {
		return err
	}
	var pub audit.PublicKeys
	switch {
	case *pubkeys != "":
		pub, err = audit.ReadPublicKeys(*pubkeys)
	case live:
		fmt.Fprintln(stderr, "warning: trusting the public keys in", dir, "(pass --pubkeys with a copy kept elsewhere)")
		pub, err = audit.ReadDirPublicKeys(dir)
	default:
		return usageError("--export needs --pubkeys FILE")
	}
	if err != nil {
		return err
	}
	var replicated []audit.SignedCheckpoint
	switch {
	case *checkpoints != "":
		replicated, err = audit.ReadCheckpoints(*checkpoints)
	case !live:
		replicated, err = audit.ReadReplicated(dir)
	}
	if err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, dir, pub, audit.VerifyOptions{Replicated: replicated, Live: live})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "records %d (removed by retention %d), checkpoints %d local, %d replicated, %d older than retention\n",
			rep.Records, rep.Base, rep.Checkpoints, rep.Replicated, rep.Pruned)
		fmt.Fprintf(stdout, "verified up to record %d\n", rep.Verified)
		for _, p := range rep.Problems {
			fmt.Fprintln(stdout, "PROBLEM", p)
		}
	}
	if p, bad := rep.First(); bad {
		return fmt.Errorf("audit log does not verify: %s", p)
	}
	if !*asJSON {
		fmt.Fprintln(stdout, "OK")
	}
	return nil
}

func runAuditExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newAuditFlags("export", stderr)
	dataDir := fs.String("data-dir", "", "node data `directory`")
	out := fs.String("out", "", "new export `directory`")
	checkpoints := fs.String("checkpoints", "", "replicated checkpoints `file` to include")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" || *out == "" {
		return usageError("audit export needs --data-dir and --out")
	}
	var replicated []audit.SignedCheckpoint
	if *checkpoints != "" {
		var err error
		if replicated, err = audit.ReadCheckpoints(*checkpoints); err != nil {
			return err
		}
	}
	if err := audit.Export(ctx, auditDir(*dataDir), *out, replicated); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "exported to", *out)
	return nil
}

func runAuditReview(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newAuditFlags("review", stderr)
	dataDir := fs.String("data-dir", "", "node data `directory`")
	export := fs.String("export", "", "exported log `directory`")
	since := fs.Duration("since", 24*time.Hour, "review the records of this `period` up to now")
	var th audit.Thresholds
	maxFailures := fs.Int("max-failures", 0, "fail when one access key or one address has more than `N` authentication failures")
	fs.IntVar(&th.MaxFailuresPerKey, "max-failures-per-key", 0, "fail above `N` failures of one access key")
	fs.IntVar(&th.MaxFailuresPerAddr, "max-failures-per-addr", 0, "fail above `N` failures from one address")
	fs.IntVar(&th.MaxDenied, "max-denied", 0, "fail above `N` allowlist denials")
	fs.IntVar(&th.MaxNewAddresses, "max-new-addresses", 0, "fail above `N` logins from addresses new for their user")
	fs.IntVar(&th.MaxRateLimited, "max-rate-limited", 0, "fail above `N` rate-limited requests")
	fs.IntVar(&th.MaxAdminActions, "max-admin-actions", 0, "fail above `N` admin actions")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, live, err := logSource(*dataDir, *export)
	if err != nil {
		return err
	}
	if *maxFailures > 0 {
		th.MaxFailuresPerKey = orGeneral(th.MaxFailuresPerKey, *maxFailures)
		th.MaxFailuresPerAddr = orGeneral(th.MaxFailuresPerAddr, *maxFailures)
	}
	cfg := audit.ReviewConfig{Since: time.Now().Add(-*since), Thresholds: th}
	if live {
		if k, err := audit.ReadSystemKey(dir); err == nil {
			cfg.SystemKey = k
		}
	}
	s, err := audit.Review(ctx, dir, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return err
		}
	} else {
		printSummary(stdout, s)
	}
	if len(s.Exceeded) > 0 {
		return errors.New("audit review: thresholds crossed: " + strings.Join(s.Exceeded, "; "))
	}
	return nil
}

// orGeneral keeps an explicit per-kind threshold over the general one.
func orGeneral(specific, general int) int {
	if specific > 0 {
		return specific
	}
	return general
}

func printSummary(w io.Writer, s audit.Summary) {
	fmt.Fprintf(w, "audit review since %s: %d records", s.Since.UTC().Format(time.RFC3339), s.Records)
	if s.Opaque > 0 {
		fmt.Fprintf(w, " (%d with tenant fields sealed: ~ids are opaque per-tenant pseudonyms)", s.Opaque)
	}
	if s.Aggregated > 0 {
		fmt.Fprintf(w, "; %d refusals counted in aggregated records (included below)", s.Aggregated)
	}
	fmt.Fprintln(w)
	for _, k := range []audit.Kind{audit.AuthSuccess, audit.AuthFailure, audit.AllowlistDeny, audit.RateLimited, audit.AdminAction} {
		fmt.Fprintf(w, "  %-15s %d\n", k, s.ByKind[k])
	}
	counts := func(title string, cs []audit.Count) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintln(w, title)
		for i, c := range cs {
			if i == 20 {
				fmt.Fprintf(w, "  ... %d more\n", len(cs)-i)
				break
			}
			fmt.Fprintf(w, "  %6d  %s  tenant %s\n", c.Count, c.Value, orNone(c.Tenant))
		}
	}
	counts("failures per access key:", s.FailuresByKey)
	counts("failures per address:", s.FailuresByAddr)
	counts("allowlist denials per address:", s.DeniedByAddr)
	counts("rate-limited per address:", s.RateLimited)
	if len(s.NewAddresses) > 0 {
		fmt.Fprintln(w, "logins from new addresses:")
		for _, e := range s.NewAddresses {
			fmt.Fprintf(w, "  %s  user %s from %s  tenant %s\n", e.Time.Format(time.RFC3339), e.User, e.Addr, orNone(e.Tenant))
		}
	}
	if len(s.AdminActions) > 0 {
		fmt.Fprintln(w, "admin actions:")
		for _, e := range s.AdminActions {
			fmt.Fprintf(w, "  %s  %s by %s  tenant %s\n", e.Time.Format(time.RFC3339), e.Operation, e.User, orNone(e.Tenant))
		}
	}
	if s.Unreadable > 0 {
		fmt.Fprintf(w, "%d records unreadable: run tresor audit verify\n", s.Unreadable)
	}
	for _, x := range s.Exceeded {
		fmt.Fprintln(w, "THRESHOLD", x)
	}
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
