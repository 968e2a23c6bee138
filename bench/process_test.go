package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// tresorBin returns the tresor binary the tests run: $TRESOR_BIN if set,
// else one built from ../cmd/tresor once per test binary.
func tresorBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("TRESOR_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "tresor-bench-test-"); buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "tresor")
		out, err := exec.Command("go", "build", "-o", builtBin, "../cmd/tresor").CombinedOutput()
		if err != nil {
			buildErr = err
			builtBin = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ../cmd/tresor: %v\n%s", buildErr, builtBin)
	}
	return builtBin
}

// startSingle starts a single-node `tresor serve` (fs backend) under sup.
func startSingle(t *testing.T, ctx context.Context, sup *Supervisor, name string, args ...string) *Process {
	t.Helper()
	p, err := sup.NewProcess(name, append([]string{"--log-level", "warn"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

func newSupervisor(t *testing.T) *Supervisor {
	sup := &Supervisor{Bin: tresorBin(t), Dir: t.TempDir()}
	t.Cleanup(func() {
		if err := sup.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(sup.Dir, "*.log"))
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				t.Logf("%s:\n%s", filepath.Base(f), b)
			}
		}
	})
	return sup
}

func clientFor(t *testing.T, p *Process) *s3.Client {
	t.Helper()
	id, secret, err := readCredentials(p.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return NewS3Client("http://"+p.S3, id, secret, 2*time.Second)
}

func runLoad(ctx context.Context, l *Load, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	l.Run(ctx)
}

// TestVerify_DetectsTamperedObjects runs the load against a real gateway,
// then changes acknowledged objects behind the ledger's back: the final
// pass must call each change what it is.
func TestVerify_DetectsTamperedObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a tresor process")
	}
	ctx := context.Background()
	sup := newSupervisor(t)
	p := startSingle(t, ctx, sup, "gw")
	c := clientFor(t, p)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tamper")}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultLoadConfig()
	cfg.Clients, cfg.Bucket = []*s3.Client{c}, "tamper"
	cfg.WritersPerZone, cfg.ReadersPerZone, cfg.VersionsPerKey = 2, 1, 3
	l := NewLoad(cfg, NewTimeline())
	runLoad(ctx, l, 2*time.Second)
	if st := l.Stats(); st.LostReads+st.CorruptReads != 0 {
		t.Fatalf("untampered load saw bad reads: %+v", st)
	}
	if r := l.Verify(ctx, cfg.Clients, 3); r.LostWrites != 0 || r.CorruptReads != 0 || r.FailedReads != 0 {
		t.Fatalf("untampered verification: %+v", r)
	}

	var acked []Expectation
	for _, e := range l.Ledger.Expectations() {
		if e.Acked >= 2 && e.Unknown == 0 {
			acked = append(acked, e)
		}
	}
	if len(acked) < 4 {
		t.Fatalf("only %d keys with two acknowledged versions", len(acked))
	}
	put := func(key string, body []byte) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tamper"), Key: aws.String(key), Body: strings.NewReader(string(body))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("tamper"), Key: aws.String(acked[0].Key)}); err != nil {
		t.Fatal(err)
	}
	put(acked[1].Key, Body(acked[1].Key, acked[1].Acked-1)) // rolled back: lost
	put(acked[2].Key, Body(acked[2].Key, acked[2].Acked+7)) // a version never sent: corrupt
	wrong := Body(acked[3].Key, acked[3].Acked)
	wrong[len(wrong)/2] ^= 0x40
	put(acked[3].Key, wrong) // one bit: corrupt

	r := l.Verify(ctx, cfg.Clients, 3)
	if r.LostWrites != 4 || r.CorruptReads != 2 {
		// A corrupt read makes its key lost as well: its acknowledged
		// version is not what the zone returns.
		t.Errorf("verification after tampering: %+v; want 4 lost writes (2 of them corrupt reads)", r)
	}
}
