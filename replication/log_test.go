package replication

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// raft's repeated complaints about a peer that stays down are logged once
// per repeatWindow with a count, not every few hundred milliseconds; other
// lines go through, with slog's level and without hclog's prefix.
func TestSlogWriter_QuietsRepeats(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1e9, 0)
	w := newSlogWriter(slog.New(slog.NewTextHandler(&buf, nil)), func() time.Time { return now })
	down := `2026-11-29T04:00:00.000Z [ERROR] raft: failed to appendEntries to: peer="{Voter n2 10.0.0.2:9002}" error="connection refused"`
	for range 50 {
		w.Write([]byte(down + "\n"))
		now = now.Add(500 * time.Millisecond) // 25 s in all
	}
	w.Write([]byte("2026-11-29T04:00:30.000Z [WARN]  raft: heartbeat timeout reached, starting election\n"))
	now = now.Add(repeatWindow)
	w.Write([]byte(down + "\n"))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], `msg="raft: failed to appendEntries`) || strings.Contains(lines[0], "repeated") {
		t.Errorf("first line: %s", lines[0])
	}
	if !strings.Contains(lines[1], "level=WARN") || !strings.Contains(lines[1], "starting election") {
		t.Errorf("other line: %s", lines[1])
	}
	if !strings.Contains(lines[2], "repeated=49") {
		t.Errorf("line after the window does not count the 49 quieted: %s", lines[2])
	}
}
