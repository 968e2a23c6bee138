// Command tresor runs and operates the tresor encrypting S3 gateway.
//
//	tresor serve [flags]      start a gateway (single node on embedded defaults;
//	                          --node-id, --zone, --raft-listen, --join: a cluster)
//	tresor cluster COMMAND    status | transfer-leader [NODE] | promote NODE | remove NODE
//	tresor version            print the version
//
// Run `tresor COMMAND -h` for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one sub-command of tresor.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "start a gateway", runServe},
		{"admin", "tenants, users, access keys, allowlists, key versions (admin API)", runAdmin},
		{"cluster", "status, transfer-leader, promote, remove: operate a cluster", runCluster},
		{"audit", "verify, export and review the login audit log", runAudit},
		{"operator", "init, unseal: root key held as M-of-N shares", runOperator},
		{"bench", "failover drills and keystore write rates on real processes", runBench},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintln(stdout, "tresor", version)
			return err
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tresor:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for usage errors, as the flag package does, and 1 otherwise.
func exitCode(err error) int {
	var u usageError
	if errors.Is(err, flag.ErrHelp) || errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError reports a command line that cannot be run.
type usageError string

func (e usageError) Error() string { return string(e) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return usageError("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return usageError(fmt.Sprintf("unknown command %q", args[0]))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tresor COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}
