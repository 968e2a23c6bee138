package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"testing"
)

// TestBench_Usage checks the command line of `tresor bench` without
// starting anything; bench's own tests run the drills.
func TestBench_Usage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool // a usage error (exit status 2)
	}{
		{"no scenario", []string{"bench"}, true},
		{"unknown scenario", []string{"bench", "chaos"}, true},
		{"duration too short", []string{"bench", "failover", "--duration", "1s"}, true},
		{"stray argument", []string{"bench", "keystore", "extra"}, true},
		{"unknown flag", []string{"bench", "failover", "--kills", "3"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, io.Discard, io.Discard)
			var u usageError
			if got := errors.Is(err, flag.ErrHelp) || errors.As(err, &u) || (err != nil && exitCode(err) == 2); got != tc.usage {
				t.Errorf("run(%q) = %v; usage error %v, want %v", tc.args, err, got, tc.usage)
			}
		})
	}
}
