// Package docker holds tresor's container image: a Dockerfile FROM scratch
// around a static binary, and build.sh, which builds it without pulling
// any base image.
package docker

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestImage builds the image, runs it with a data volume, and checks that
// the gateway inside becomes ready and bootstraps its credentials. It is
// skipped where no Docker engine answers.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("no Docker engine answers: ", err)
	}
	tag := "tresor:test"
	if out, err := exec.Command("bash", "build.sh", tag).CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	data := t.TempDir()
	if err := os.Chown(data, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	name := "tresor-image-test-" + strings.ReplaceAll(port, ":", "-")
	run := exec.Command("docker", "run", "-d", "--rm", "--name", name,
		"-p", "127.0.0.1:"+port+":9001", "-v", data+":/data", tag)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://127.0.0.1:" + port + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if ctx.Err() != nil {
			logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Fatalf("the container's gateway is not ready: %v\n%s", err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(data, "credentials")); err != nil {
		t.Errorf("no credentials in the data volume: %v", err)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
