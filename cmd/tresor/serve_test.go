package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// buildTresor builds the tresor binary once per test binary run.
func buildTresor(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tresor")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serveProcess is a running `tresor serve`.
type serveProcess struct {
	cmd     *exec.Cmd
	exited  bool // the test waited for it already
	dataDir string
	s3      string // http://host:port
	admin   string
	stdout  *syncBuffer
}

// syncBuffer is a bytes.Buffer safe to read while the process writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe starts `tresor serve` on free loopback ports and waits until
// /health/ready answers 200.
func startServe(t *testing.T, bin, dataDir string, extra ...string) *serveProcess {
	t.Helper()
	s3, admin := freePort(t), freePort(t)
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", s3, "--admin-listen", admin, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	var stdout syncBuffer
	cmd.Stdout = &stdout
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, dataDir: dataDir, s3: "http://" + s3, admin: "http://" + admin, stdout: &stdout}
	t.Cleanup(func() {
		if p.exited {
			return
		}
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(stderr.Name())
			t.Logf("serve stderr:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(stderr.Name())
			t.Fatalf("serve not ready after 30s: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServe_FirstStart checks what a new user sees: credentials in the AWS
// format with mode 0600, the root key with mode 0600, and the hint printed.
func TestServe_FirstStart(t *testing.T) {
	bin := buildTresor(t)
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, bin, dir)

	for _, name := range []string{"credentials", "root.key"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	f, err := os.Open(filepath.Join(dir, "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var profile, id, secret bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		profile = profile || line == "[default]"
		id = id || strings.HasPrefix(line, "aws_access_key_id = ")
		secret = secret || strings.HasPrefix(line, "aws_secret_access_key = ")
	}
	if !profile || !id || !secret {
		t.Errorf("credentials file lacks the default profile's keys (profile %v, id %v, secret %v)", profile, id, secret)
	}
	if want := "aws --endpoint-url " + p.s3 + " s3 ls"; !strings.Contains(p.stdout.String(), want) {
		t.Errorf("serve did not print how to use it; stdout:\n%s", p.stdout.String())
	}
}

// TestServe_RealClients drives a real `tresor serve` with the aws cli and
// boto3 (testdata/realclients.sh). CI installs the aws cli; elsewhere the
// test is skipped when it is missing.
func TestServe_RealClients(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the aws cli is not installed; .ci/run installs it")
		}
		t.Skip("the aws cli is not installed")
	}
	bin := buildTresor(t)
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, bin, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	script, err := filepath.Abs("testdata/realclients.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(os.Environ(),
		"ENDPOINT="+p.s3,
		"DATA_DIR="+dir,
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
	)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("real-client script: %v", err)
	}
	if !strings.Contains(string(out), "real clients: all steps passed") {
		t.Fatal("real-client script did not reach its end")
	}

	// Every login of that run is in the audit, and the log verifies while
	// the node keeps writing it.
	verify, err := exec.Command(bin, "audit", "verify", "--data-dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("tresor audit verify after the run: %v\n%s", err, verify)
	}
	review, err := exec.Command(bin, "audit", "review", "--data-dir", dir, "--since", "1h", "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("tresor audit review: %v\n%s", err, review)
	}
	if !strings.Contains(string(review), "auth_success") && !strings.Contains(string(review), "success") {
		t.Errorf("review shows no successful logins:\n%s", review)
	}
}

// TestServe_DrainsOnShutdown sends SIGTERM while an upload is still
// streaming: the server stops accepting connections but lets the upload
// finish, stores the object, and exits cleanly.
func TestServe_DrainsOnShutdown(t *testing.T) {
	bin := buildTresor(t)
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, bin, dir)
	ctx := context.Background()
	c := s3Client(t, p)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("drain")}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("d"), 1<<20)
	g := &gatedReader{reached: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		// The body stops half way until the server is shutting down.
		r := io.MultiReader(bytes.NewReader(body[:1<<19]), g, bytes.NewReader(body[1<<19:]))
		// A body that cannot be rewound goes out unsigned (UNSIGNED-PAYLOAD).
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("drain"), Key: aws.String("k"),
			Body: r, ContentLength: aws.Int64(int64(len(body)))},
			s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware),
			func(o *s3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired })
		done <- err
	}()
	<-g.reached
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Shutdown has begun once the listener refuses new connections.
	addr := strings.TrimPrefix(p.s3, "http://")
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts connections 30s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatalf("in-flight upload during shutdown: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after draining")
	}
	p.exited = true

	// The object is there after a restart.
	p2 := startServe(t, bin, dir)
	out, err := s3Client(t, p2).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("drain"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("stored object differs (%d bytes)", len(got))
	}
}

// gatedReader signals reached on its first Read and then blocks until
// release is closed; it yields no bytes.
type gatedReader struct {
	once             sync.Once
	reached, release chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	g.once.Do(func() { close(g.reached) })
	<-g.release
	return 0, io.EOF
}

// s3Client is an aws-sdk-go-v2 client with the credentials serve wrote.
func s3Client(t *testing.T, p *serveProcess) *s3.Client {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dataDir, "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	var id, secret string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "aws_access_key_id = "); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "aws_secret_access_key = "); ok {
			secret = v
		}
	}
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(p.s3), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
	})
}

// TestServe_TLS serves S3 over HTTPS with the given certificate.
func TestServe_TLS(t *testing.T) {
	bin := buildTresor(t)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	p := startServe(t, bin, filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	p.s3 = strings.Replace(p.s3, "http://", "https://", 1)
	c := s3Client(t, p)
	c = s3.New(c.Options(), func(o *s3.Options) {
		o.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tls")}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("t"), 200000)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tls"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PutObject over TLS (aws-chunked with a CRC32 trailer): %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tls"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Error("object differs over TLS")
	}
	// Plain HTTP to the TLS listener gets no S3 answer.
	resp, err := http.Get(strings.Replace(p.s3, "https://", "http://", 1) + "/tls/k")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the TLS listener served plain HTTP")
		}
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tresor test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	must(err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
