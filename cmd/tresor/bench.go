package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/tresor-gw/tresor/bench"
)

// runBench runs `tresor bench SCENARIO`: drills and measurements on real
// tresor processes on loopback (package bench).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	scenarios := []struct {
		name, summary string
		run           func(context.Context, []string, io.Writer, io.Writer) error
	}{
		{"failover", "kill, restart and pause nodes of a 3-zone cluster under verified load", benchFailover},
		{"keystore", "key writes per second with concurrent writers on a 3-zone cluster", benchKeystore},
	}
	if len(args) > 0 {
		for _, s := range scenarios {
			if s.name == args[0] {
				return s.run(ctx, args[1:], stdout, stderr)
			}
		}
	}
	fmt.Fprintln(stderr, "usage: tresor bench SCENARIO [flags]\n\nscenarios:")
	for _, s := range scenarios {
		fmt.Fprintf(stderr, "  %-10s %s\n", s.name, s.summary)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		return flag.ErrHelp
	}
	return usageError(fmt.Sprintf("unknown bench scenario %q", args[0]))
}

// benchDir is where a bench keeps its processes' data and logs: dir if
// given, else a new temporary directory. done removes a temporary directory
// unless keep is set; a failed run keeps it and says where.
func benchDir(dir string, stderr io.Writer) (path string, done func(keep bool), err error) {
	if dir != "" {
		return dir, func(bool) {}, os.MkdirAll(dir, 0o700)
	}
	path, err = os.MkdirTemp("", "tresor-bench-")
	if err != nil {
		return "", nil, err
	}
	return path, func(keep bool) {
		if keep {
			fmt.Fprintf(stderr, "tresor bench: processes' data and logs kept in %s\n", path)
			return
		}
		os.RemoveAll(path)
	}, nil
}

func benchFailover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	load := bench.DefaultLoadConfig()
	duration := fs.Duration("duration", 60*time.Second, "how long the load runs; faults are placed at fixed fractions of it")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	dir := fs.String("dir", "", "`directory` for the processes' data and logs (default: a temporary one, removed after a passing run)")
	keep := fs.Bool("keep", false, "keep the temporary directory")
	pauseLeader := fs.Bool("pause-leader", false, "SIGSTOP the leader instead of a follower")
	fs.IntVar(&load.WritersPerZone, "writers", load.WritersPerZone, "writers per zone")
	fs.IntVar(&load.ReadersPerZone, "readers", load.ReadersPerZone, "readers per zone")
	fs.Float64Var(&load.WriteRate, "write-rate", load.WriteRate, "writes per second in all, at most (0: no cap)")
	fs.Float64Var(&load.ReadRate, "read-rate", load.ReadRate, "reads per second in all, at most (0: no cap)")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *duration < 5*time.Second || load.WritersPerZone < 2 || load.ReadersPerZone < 1 {
		return usageError("bench failover: takes no arguments, --duration of at least 5s, --writers of at least 2, --readers of at least 1")
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	path, done, err := benchDir(*dir, stderr)
	if err != nil {
		return err
	}
	cfg := bench.DefaultFailoverConfig(bin, path)
	cfg.Duration, cfg.Load, cfg.PauseLeader = *duration, load, *pauseLeader
	cfg.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", args...) }
	rep, runErr := bench.Failover(ctx, cfg)
	done(*keep || runErr != nil || !rep.OK)
	if err := printReport(stdout, *asJSON, rep, failoverText); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("bench failover: %w", runErr)
	}
	if !rep.OK {
		return errors.New("bench failover: FAILED: an acknowledged write was lost or a read returned wrong bytes (see problems)")
	}
	return nil
}

func benchKeystore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench keystore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	writers := fs.Int("writers", 64, "concurrent writers, spread over the zones' gateways")
	duration := fs.Duration("duration", 20*time.Second, "how long they write")
	transfer := fs.Bool("transfer", true, "hand leadership over at half time and measure the write gap")
	single := fs.Bool("single", false, "run the same load on one plain tresor serve (no Raft, no transfer), to price replication")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	dir := fs.String("dir", "", "`directory` for the processes' data and logs (default: a temporary one)")
	keep := fs.Bool("keep", false, "keep the temporary directory")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *writers < 1 || *duration < time.Second {
		return usageError("bench keystore: takes no arguments, --writers of at least 1, --duration of at least 1s")
	}
	if *single {
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "transfer" })
		if explicit && *transfer {
			return usageError("bench keystore: --single has no leadership to transfer (leave out --transfer)")
		}
		*transfer = false
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	path, done, err := benchDir(*dir, stderr)
	if err != nil {
		return err
	}
	rep, runErr := bench.KeyWrites(ctx, bench.KeyWritesConfig{
		Bin: bin, Dir: path, Writers: *writers, Duration: *duration, Transfer: *transfer, Single: *single,
		Logf: func(format string, args ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", args...) },
	})
	done(*keep || runErr != nil)
	if err := printReport(stdout, *asJSON, rep, keystoreText); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("bench keystore: %w", runErr)
	}
	return nil
}

// parseBenchFlags parses args, reporting a bad flag as a usage error.
func parseBenchFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageError(err.Error())
	} else if err != nil {
		return err
	}
	return nil
}

// printReport writes rep as indented JSON or, for people, as text.
func printReport[R any](w io.Writer, asJSON bool, rep R, text func(*tabwriter.Writer, R)) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	text(tw, rep)
	return tw.Flush()
}

func failoverText(w *tabwriter.Writer, r *bench.Report) {
	for _, e := range r.Events {
		fmt.Fprintf(w, "%8.3fs\t%s\t%s\t%s\t%s\n", e.AtSeconds, e.Action, e.Node, e.Zone, e.Note)
	}
	fmt.Fprintln(w)
	for _, row := range []struct {
		name string
		v    any
	}{
		{"acknowledged_writes", r.AcknowledgedWrites}, {"lost_writes", r.LostWrites},
		{"corrupt_reads", r.CorruptReads}, {"stale_reads", r.StaleReads},
		{"failed_writes (surviving zones)", fmt.Sprintf("%d (%d)", r.FailedWrites, r.FailedWritesSurvivingZones)},
		{"failed_reads (surviving zones)", fmt.Sprintf("%d (%d)", r.FailedReads, r.FailedReadsSurvivingZones)},
		{"leader_elected_seconds", r.LeaderElectedSeconds},
		{"write_unavailable_seconds", r.WriteUnavailableSeconds},
		{"put_unavailable_seconds", r.PutUnavailableSeconds},
		{"read_unavailable_seconds", r.ReadUnavailableSeconds},
		{"transfer_write_unavailable_seconds", r.TransferWriteUnavailableSeconds},
		{"pause_write_unavailable_seconds", r.PauseWriteUnavailableSeconds},
		{"baseline_write_gap_seconds", r.BaselineWriteGapSeconds},
		{"final verification (keys, reads, failed)", fmt.Sprintf("%d, %d, %d", r.FinalVerificationKeys, r.FinalVerificationReads, r.FinalVerificationFailed)},
		{"ok", r.OK},
	} {
		fmt.Fprintf(w, "%s\t%v\n", row.name, row.v)
	}
	for _, k := range slices.Sorted(maps.Keys(r.FailuresByClass)) {
		fmt.Fprintf(w, "failures\t%s: %d\n", k, r.FailuresByClass[k])
	}
	for _, e := range append(r.Errors, r.Warnings...) {
		fmt.Fprintf(w, "note\t%s\n", e)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem\t%s %s zone %d got v%d want v%d..v%d (%s)\n", p.Verdict, p.Key, p.Zone, p.Got, p.Min, p.Max, p.Phase)
	}
}

func keystoreText(w *tabwriter.Writer, r *bench.KeyWritesReport) {
	fmt.Fprintf(w, "key writes\t%d in %.1fs by %d writers on %d nodes\n", r.KeyWrites, r.DurationSeconds, r.Writers, r.Nodes)
	fmt.Fprintf(w, "key_writes_per_second\t%.0f\n", r.PerSecond)
	fmt.Fprintf(w, "latency p50 / p99\t%.2f ms / %.2f ms\n", r.LatencyP50Ms, r.LatencyP99Ms)
	fmt.Fprintf(w, "failed writes\t%d\n", r.FailedWrites)
	fmt.Fprintf(w, "transfer_write_unavailable_seconds\t%.3f (baseline gap %.3f)\n", r.TransferUnavailableSeconds, r.BaselineGapSeconds)
	for _, k := range slices.Sorted(maps.Keys(r.FailuresByClass)) {
		fmt.Fprintf(w, "failures\t%s: %d\n", k, r.FailuresByClass[k])
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "note\t%s\n", e)
	}
	fmt.Fprintf(w, "definition\t%s\n", r.Definition)
}
