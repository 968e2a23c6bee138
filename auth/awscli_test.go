package auth

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestAWSCLI_PutObject drives the aws command (botocore), when installed,
// against the verifier: s3api put-object and s3 cp, over HTTP and TLS.
// Recent botocore sends aws-chunked bodies with a CRC32 trailer by default.
func TestAWSCLI_PutObject(t *testing.T) {
	t.Parallel()
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws command not installed")
	}
	dir := t.TempDir()
	data := payload(3<<20+5, 61)
	file := filepath.Join(dir, "object.bin")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tls  bool
		args []string
	}{
		{"PutObjectHTTP", false, []string{"s3api", "put-object", "--bucket", testBucket, "--key", "cli/obj", "--body", file}},
		{"PutObjectTLS", true, []string{"s3api", "put-object", "--bucket", testBucket, "--key", "cli/obj", "--body", file}},
		{"CpTLS", true, []string{"s3", "cp", file, "s3://" + testBucket + "/cli/cp obj"}},
		{"PutObjectSHA256TLS", true, []string{"s3api", "put-object", "--bucket", testBucket, "--key", "k", "--body", file, "--checksum-algorithm", "SHA256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec, srv := newRecorder(t, tc.tls)
			env := []string{
				"HOME=" + os.Getenv("HOME"), "PATH=" + os.Getenv("PATH"),
				"AWS_ACCESS_KEY_ID=" + testAK, "AWS_SECRET_ACCESS_KEY=" + testSK,
				"AWS_DEFAULT_REGION=" + testRegion, "AWS_CONFIG_FILE=/dev/null",
				"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
				"AWS_MAX_ATTEMPTS=1",
			}
			if p := os.Getenv("PYENV_ROOT"); p != "" {
				env = append(env, "PYENV_ROOT="+p)
			}
			if tc.tls {
				ca := filepath.Join(t.TempDir(), "ca.pem")
				pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
				if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
					t.Fatal(err)
				}
				env = append(env, "AWS_CA_BUNDLE="+ca)
			}
			cmd := exec.CommandContext(t.Context(), awsBin, append([]string{"--endpoint-url", srv.URL}, tc.args...)...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("aws: %v\n%s", err, out)
			}
			got := rec.last(t)
			checkReceived(t, got, data)
			t.Logf("mode %s, Content-Length %d, TE %v, decoded length %d, trailer %q, checksums %v", got.mode, got.contentLength, got.te, got.decodedLength, got.header.Get("X-Amz-Trailer"), got.checksums)
		})
	}
}
