package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sys/cpu"

	"github.com/tresor-gw/tresor/auth"
	"github.com/tresor-gw/tresor/gateway"
	"github.com/tresor-gw/tresor/gateway/backend"
	"github.com/tresor-gw/tresor/internal/atomicfile"
	"github.com/tresor-gw/tresor/keystore"
)

// Limits of the S3 listener.
const (
	// maxHeaderBytes bounds request headers. S3 limits a PUT's headers to
	// 8 KiB ("Working with object metadata"); presigned URLs and proxies
	// add some, so allow 64 KiB before the server answers 431.
	maxHeaderBytes = 64 << 10
	// readHeaderTimeout stops slow-loris clients holding connections open.
	readHeaderTimeout = 30 * time.Second
	// idleTimeout closes keep-alive connections nobody uses.
	idleTimeout = 2 * time.Minute
	// drainTimeout is how long shutdown waits for in-flight requests.
	drainTimeout = 60 * time.Second
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(args, os.Getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	if !cpu.X86.HasAES && !cpu.ARM64.HasAES {
		log.Warn("this CPU has no AES instructions: encryption will be slow and not constant-time")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}

	kcfg := keystore.DefaultConfig(cfg.DataDir)
	kcfg.RootKeyFile = cfg.RootKeyFile
	kcfg.Logger = log.With("component", "keystore")
	// Cluster mode (cluster.go): nil for a single node. Checked before the
	// node seals, so a wrong flag is reported before shares are collected.
	plan, err := planCluster(cfg)
	if err != nil {
		return err
	}
	// A data dir with root.custody.json starts sealed until T shares come
	// in (operator.go); a cluster member listens on raft only once unsealed.
	if kcfg.RootKey, err = unsealRootKey(ctx, cfg, log); errors.Is(err, errStoppedSealed) {
		return nil
	} else if err != nil {
		return err
	}
	// The keystore runs on Raft in cluster mode, and a joining node
	// enrolls here first.
	cl, err := prepareCluster(ctx, cfg, plan, log, &kcfg)
	if err != nil {
		return err
	}
	// Refused admin and cluster connections go to the login audit once it
	// is open (denials.go).
	refusals := newDenials(log.With("component", "audit"))
	cl.setDenials(refusals)
	store, err := keystore.Open(ctx, kcfg)
	clear(kcfg.RootKey) // the store keeps derived keys only
	if err != nil {
		return err
	}
	defer store.Close()
	if err := cl.start(ctx, store); err != nil { // bootstrap or join, then wait for a leader
		return err
	}
	defer cl.Close()
	if err := bootstrap(ctx, store, cfg, stdout); err != nil {
		return err
	}
	if err := bootstrapOperator(ctx, store, cfg.DataDir); err != nil { // <data-dir>/operator (admin.go)
		return err
	}
	nodeID := cfg.Cluster.NodeID
	if nodeID == "" {
		nodeID = "single"
	}
	alog, err := openAudit(ctx, cfg.DataDir, nodeID, store, log.With("component", "audit"))
	if err != nil {
		return fmt.Errorf("login audit: %w", err)
	}
	defer alog.Close()
	refusalsCtx, stopRefusals := context.WithCancel(ctx)
	refusalsDone := make(chan struct{})
	go func() {
		defer close(refusalsDone)
		refusals.run(refusalsCtx, alog)
	}()
	defer func() { stopRefusals(); <-refusalsDone }() // before alog.Close

	be, err := openBackend(ctx, cfg)
	if err != nil {
		return err
	}
	if c, ok := be.(io.Closer); ok {
		defer c.Close()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(alog.Collectors()...)
	gcfg := gateway.DefaultConfig()
	gcfg.Region = cfg.Region
	gcfg.Domains = cfg.Domains
	gcfg.Logger = log.With("component", "s3")
	gcfg.Metrics = gateway.NewMetrics(reg)
	gcfg.Auditor = alog
	// IP allowlists (admin.go) and the proxies whose forwarding headers count.
	allowlists := newAllowlists(store)
	cl.setAllowlists(allowlists) // and the cluster listener's (cluster.go)
	// Config.Validate checked the trusted proxies.
	trusted, _ := auth.ParseCIDRs(cfg.TrustedProxies)
	gcfg.Allowlists, gcfg.TrustedProxies = allowlists, trusted
	verifier, err := auth.NewVerifier(gateway.Secrets(store), auth.DefaultConfig(cfg.Region))
	if err != nil {
		return err
	}
	srv, err := gateway.New(gcfg, be, store, verifier)
	if err != nil {
		return err
	}

	s3Listener, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("S3 listener: %w", err)
	}
	// PROXY protocol from trusted proxies only, under TLS (auth/proxy.go).
	s3Listener = auth.ProxyListener(s3Listener, trusted)
	adminListener, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		s3Listener.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	s3Server := &http.Server{
		Handler:           srv,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		s3Server.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s3Listener = tls.NewListener(s3Listener, s3Server.TLSConfig)
		scheme = "https"
	}
	adminServer := &http.Server{
		Handler: gateway.AdminHandler(reg, map[string]gateway.Check{
			// Ready only once caught up with the leader (a linearizable read).
			"keystore": func(ctx context.Context) error {
				_, err := store.Tenants(keystore.WithReadLevel(ctx, keystore.ReadLinearizable))
				return err
			},
			"backend": func(ctx context.Context) error {
				_, err := be.List(ctx, "tresor-health", backend.ListOptions{MaxKeys: 1})
				return err
			},
			// Not ready while the login audit cannot write: every request is refused then.
			"audit": alog.Ready,
		}),
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// The cluster's endpoints (/cluster/v1/...) beside the admin API, its
	// metrics, and the admin address for `tresor cluster --data-dir` (cluster_admin.go).
	adminServer.Handler = cl.adminHandler(adminServer.Handler)
	// The admin API under /admin/v1/ and the admin listener's IP allowlist (admin.go).
	if adminServer.Handler, err = adminAPI(adminServer.Handler, store, cfg.Region, allowlists, alog, filepath.Join(cfg.DataDir, "audit"), cl.adminCluster(), log.With("component", "admin")); err != nil {
		return err
	}
	adminListener = filterAdminListener(ctx, adminListener, allowlists, refusals)
	cl.registerMetrics(reg)
	if err := writeAdminAddr(cfg.DataDir, adminListener.Addr()); err != nil {
		log.Warn("cannot record the admin address", "error", err)
	}

	log.Info("tresor serving",
		"s3", scheme+"://"+s3Listener.Addr().String(),
		"admin", "http://"+adminListener.Addr().String(),
		"data_dir", cfg.DataDir, "backend", cfg.Backend.Type)

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for _, p := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{s3Server, s3Listener}, {adminServer, adminListener}} {
		wg.Go(func() {
			if err := p.srv.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight requests", "timeout", drainTimeout)
	case err = <-errc:
		log.Error("listener failed", "error", err)
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	shutdownErr := errors.Join(s3Server.Shutdown(drainCtx), adminServer.Shutdown(drainCtx))
	wg.Wait()
	return errors.Join(err, shutdownErr)
}

// bootstrap prepares an empty keystore: tenant "default", its admin, and
// the admin's access key written to <data-dir>/credentials in the AWS
// shared-credentials format, mode 0600; the tenant's recovery key goes to
// <data-dir>/recovery in the same format (gateway/admin, onboarding.go).
// They are written in clear: whoever runs serve holds the root key too.
func bootstrap(ctx context.Context, store *keystore.Store, cfg Config, stdout io.Writer) error {
	path := filepath.Join(cfg.DataDir, "credentials")
	creds, err := store.Bootstrap(ctx)
	switch {
	case errors.Is(err, keystore.ErrExists):
		return nil // not the first start
	case err != nil:
		return fmt.Errorf("bootstrap: %w", err)
	}
	content := fmt.Sprintf("# tresor: access key of user %q of tenant %q\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		creds.UserName, creds.TenantName, creds.AccessKeyID, creds.SecretAccessKey)
	if err := atomicfile.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	recovery := filepath.Join(cfg.DataDir, recoveryFile)
	if err := atomicfile.WriteFile(recovery, credentialsFile(recoveryWhat(creds.TenantName), creds.RecoveryKeyID, creds.RecoverySecret), 0o600); err != nil {
		return fmt.Errorf("write recovery key: %w", err)
	}
	endpoint := "http://" + reachableAddr(cfg.Listen)
	if cfg.TLSCert != "" {
		endpoint = "https://" + reachableAddr(cfg.Listen)
	}
	fmt.Fprintf(stdout, `tresor: created tenant %q with admin user %q; its access key is in %s
(the tenant's recovery key, for when it has no admin left, is in %s: move it offline)
Use it, for example:

  AWS_SHARED_CREDENTIALS_FILE=%s aws --endpoint-url %s s3 ls

`, creds.TenantName, creds.UserName, path, recovery, shellQuote(path), endpoint)
	return nil
}

// reachableAddr turns a listen address on all interfaces (":9000",
// "0.0.0.0:9000", "[::]:9000") into one a local client can dial.
func reachableAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func shellQuote(s string) string {
	if strings.ContainsAny(s, " '\"$`\\") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// openBackend opens the configured object backend.
func openBackend(ctx context.Context, cfg Config) (backend.Backend, error) {
	b := cfg.Backend
	switch b.Type {
	case "fs":
		return backend.NewFS(b.Dir)
	case "s3":
		s3cfg := backend.DefaultS3Config()
		s3cfg.Endpoint = b.Endpoint
		s3cfg.Bucket = b.Bucket
		s3cfg.Prefix = b.Prefix
		if b.Region != "" {
			s3cfg.Region = b.Region
		}
		s3cfg.AccessKeyID = b.AccessKey
		s3cfg.SecretAccessKey = b.SecretKey
		s3cfg.PathStyle = b.PathStyle
		s3cfg.CAFile = b.CAFile
		s3cfg.InsecureSkipVerify = b.Insecure
		s3cfg.Jurisdiction = b.Jurisdiction
		return backend.NewS3(ctx, s3cfg)
	}
	return nil, fmt.Errorf("unknown backend type %q", b.Type)
}
