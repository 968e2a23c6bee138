package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tresor-gw/tresor/auth/audit"
)

// writeAuditLog writes a node's audit log under dataDir/audit: one login
// and six failures of one access key.
func writeAuditLog(t *testing.T, dataDir string) {
	t.Helper()
	cfg := audit.DefaultConfig(filepath.Join(dataDir, "audit"), "node-1")
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.CheckpointEvery = 3
	l, err := audit.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	recs := []audit.Record{{Kind: audit.AuthSuccess, AccessKeyID: "TRSRAAAA", User: "u", SourceAddr: "192.0.2.1"}}
	for range 6 {
		recs = append(recs, audit.Record{Kind: audit.AuthFailure, AccessKeyID: "TRSRAAAA", SourceAddr: "192.0.2.9", Reason: "signature mismatch"})
	}
	for _, r := range recs {
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAuditCommands(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	writeAuditLog(t, data)
	pub := filepath.Join(t.TempDir(), "pubkeys.json")
	b, _ := os.ReadFile(filepath.Join(data, "audit", "pubkeys.json"))
	os.WriteFile(pub, b, 0o644)
	export := filepath.Join(t.TempDir(), "export")

	tamper := func(t *testing.T) {
		segs, _ := filepath.Glob(filepath.Join(export, "seg-*.log"))
		b, _ := os.ReadFile(segs[0])
		b[len(b)-5] ^= 1
		os.WriteFile(segs[0], b, 0o600)
	}
	tests := []struct {
		name    string
		args    []string
		before  func(t *testing.T)
		wantErr string // "" = success
		usage   bool
		out     string
	}{
		{name: "verify data dir", args: []string{"audit", "verify", "--data-dir", data}, out: "OK"},
		{name: "export", args: []string{"audit", "export", "--data-dir", data, "--out", export}, out: "exported"},
		{name: "verify export", args: []string{"audit", "verify", "--export", export, "--pubkeys", pub}, out: "verified up to record 7"},
		{name: "verify export needs pubkeys", args: []string{"audit", "verify", "--export", export}, usage: true},
		{name: "review under threshold", args: []string{"audit", "review", "--data-dir", data, "--since", "1h", "--max-failures", "6"}, out: "auth_failure    6"},
		{name: "review crosses threshold", args: []string{"audit", "review", "--data-dir", data, "--since", "1h", "--max-failures", "5"},
			wantErr: "failures per access key: 6 > 5", out: "THRESHOLD"},
		{name: "review JSON", args: []string{"audit", "review", "--export", export, "--since", "1h", "--max-denied", "1", "--json"}, out: `"auth_failure": 6`},
		{name: "verify tampered export", args: []string{"audit", "verify", "--export", export, "--pubkeys", pub}, before: tamper,
			wantErr: "modified at position 6", out: "PROBLEM"},
		{name: "unknown subcommand", args: []string{"audit", "frobnicate"}, usage: true},
	}
	for _, tt := range tests { // in order: they share the export
		if tt.before != nil {
			tt.before(t)
		}
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, &stdout, &stderr)
		var u usageError
		switch {
		case tt.usage:
			if !errors.As(err, &u) {
				t.Errorf("%s: want a usage error, got %v", tt.name, err)
			}
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v\n%s%s", tt.name, err, stdout.String(), stderr.String())
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want %q\n%s", tt.name, err, tt.wantErr, stdout.String())
		}
		if err != nil && !tt.usage && exitCode(err) == 0 {
			t.Errorf("%s: exit code 0 for an error", tt.name)
		}
		if !strings.Contains(stdout.String(), tt.out) {
			t.Errorf("%s: output lacks %q:\n%s", tt.name, tt.out, stdout.String())
		}
		if strings.Contains(tt.name, "JSON") {
			var v map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
	}
}
