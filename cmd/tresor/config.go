package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/tresor-gw/tresor/auth"
)

// Config is everything `tresor serve` needs. Built-in defaults come first,
// then TRESOR_* environment variables, then the TOML file given with
// --config, then flags: each later source wins over the earlier ones.
type Config struct {
	// DataDir holds the keystore, the root key (unless RootKeyFile says
	// otherwise), the fs backend's objects and the credentials files.
	DataDir string `toml:"data_dir"`
	// Listen is the S3 listener's address.
	Listen string `toml:"listen"`
	// AdminListen is the admin listener's address: health and metrics.
	AdminListen string `toml:"admin_listen"`
	// RootKeyFile is the root key's path, which must exist; empty means
	// <DataDir>/root.key, created with mode 0600 on first start.
	RootKeyFile string `toml:"root_key_file"`
	// Region is the region clients sign for and GetBucketLocation reports.
	Region string `toml:"region"`
	// Domains are base domains for virtual-host addressing
	// (bucket.domain); path-style addressing always works.
	Domains []string `toml:"domains"`
	// TLSCert and TLSKey, both set, make the S3 listener serve HTTPS.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// LogFormat is "text" or "json"; LogLevel is debug, info, warn or error.
	LogFormat string `toml:"log_format"`
	LogLevel  string `toml:"log_level"`
	// Backend is where ciphertext goes.
	Backend BackendConfig `toml:"backend"`
	// Cluster places the node in a Raft cluster (cluster.go); all empty
	// means a single node.
	Cluster ClusterConfig `toml:"cluster"`
	// TrustedProxies are the CIDR prefixes (or addresses) of the proxies
	// in front of the S3 listener: only from them are X-Forwarded-For and
	// PROXY protocol headers believed (auth/proxy.go). Empty trusts none:
	// the client is the TCP peer.
	TrustedProxies []string `toml:"trusted_proxies"`
}

// BackendConfig selects and configures the object backend.
type BackendConfig struct {
	// Type is "fs" (the default: objects under <DataDir>/objects) or "s3".
	Type string `toml:"type"`
	// Dir overrides the fs backend's directory.
	Dir string `toml:"dir"`
	// The s3 backend's settings.
	Endpoint     string `toml:"endpoint"`
	Bucket       string `toml:"bucket"`
	Prefix       string `toml:"prefix"`
	Region       string `toml:"region"`
	AccessKey    string `toml:"access_key"`
	SecretKey    string `toml:"secret_key"`
	PathStyle    bool   `toml:"path_style"`
	CAFile       string `toml:"ca_file"`
	Insecure     bool   `toml:"insecure_skip_verify"`
	Jurisdiction string `toml:"jurisdiction"`
}

// DefaultConfig is the embedded default: one node on loopback with
// everything under ./tresor-data.
func DefaultConfig() Config {
	return Config{
		DataDir:     "tresor-data",
		Listen:      "127.0.0.1:9000",
		AdminListen: "127.0.0.1:9001",
		Region:      "us-east-1",
		LogFormat:   "text",
		LogLevel:    "info",
		Backend:     BackendConfig{Type: "fs"},
	}
}

// Validate explains what is wrong with c, if anything.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	for name, addr := range map[string]string{"listen": c.Listen, "admin_listen": c.AdminListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not host:port: %w", name, addr, err))
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls_cert and tls_key must be given together"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log_format %q is neither text nor json", c.LogFormat))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q is not debug, info, warn or error", c.LogLevel))
	}
	switch c.Backend.Type {
	case "fs":
	case "s3":
		if c.Backend.Endpoint == "" || c.Backend.Bucket == "" {
			errs = append(errs, errors.New("the s3 backend needs an endpoint and a bucket"))
		}
	default:
		errs = append(errs, fmt.Errorf("backend type %q is neither fs nor s3", c.Backend.Type))
	}
	if err := c.Cluster.validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := auth.ParseCIDRs(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("trusted_proxies: %w", err))
	}
	return errors.Join(errs...)
}

// envDefaults applies TRESOR_* environment variables to c.
func (c *Config) envDefaults(getenv func(string) string) error {
	set := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set(&c.DataDir, "TRESOR_DATA_DIR")
	set(&c.Listen, "TRESOR_LISTEN")
	set(&c.AdminListen, "TRESOR_ADMIN_LISTEN")
	set(&c.RootKeyFile, "TRESOR_ROOT_KEY_FILE")
	set(&c.Region, "TRESOR_REGION")
	set(&c.LogFormat, "TRESOR_LOG_FORMAT")
	set(&c.LogLevel, "TRESOR_LOG_LEVEL")
	if v := getenv("TRESOR_TRUSTED_PROXIES"); v != "" {
		c.TrustedProxies = strings.Split(v, ",")
	}
	set(&c.Cluster.NodeID, "TRESOR_NODE_ID")
	set(&c.Cluster.Zone, "TRESOR_ZONE")
	set(&c.Cluster.RaftListen, "TRESOR_RAFT_LISTEN")
	set(&c.Cluster.RaftAdvertise, "TRESOR_RAFT_ADVERTISE")
	set(&c.Cluster.Join, "TRESOR_JOIN")
	// The s3 backend's credentials may come from the usual AWS variables,
	// which keeps secrets off command lines.
	set(&c.Backend.AccessKey, "AWS_ACCESS_KEY_ID")
	set(&c.Backend.SecretKey, "AWS_SECRET_ACCESS_KEY")
	if v := getenv("TRESOR_BACKEND"); v != "" {
		if err := c.Backend.parseURL(v); err != nil {
			return fmt.Errorf("TRESOR_BACKEND: %w", err)
		}
	}
	return nil
}

// parseURL reads the --backend flag's form:
//
//	fs:///path/to/dir
//	s3+https://host:port/bucket[/prefix]?region=eu-central-1&jurisdiction=EU&path_style=true&ca_file=...&insecure_skip_verify=true
//	s3+http://... for a backend without TLS (tests, loopback)
//
// Credentials may be given as user:secret@ but are better left to
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the TOML file.
func (b *BackendConfig) parseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("backend %q: %w", raw, err)
	}
	switch u.Scheme {
	case "fs":
		b.Type, b.Dir = "fs", u.Path
		return nil
	case "s3+https", "s3+http":
	default:
		return fmt.Errorf("backend %q: scheme must be fs, s3+https or s3+http", raw)
	}
	b.Type = "s3"
	b.Endpoint = strings.TrimPrefix(u.Scheme, "s3+") + "://" + u.Host
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	b.Bucket, b.Prefix = bucket, prefix
	if u.User != nil {
		b.AccessKey = u.User.Username()
		b.SecretKey, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "region", "jurisdiction", "ca_file", "path_style", "insecure_skip_verify":
		default:
			return fmt.Errorf("backend %q: unknown parameter %q", raw, k)
		}
	}
	if v := q.Get("region"); v != "" {
		b.Region = v
	}
	if v := q.Get("jurisdiction"); v != "" {
		b.Jurisdiction = v
	}
	if v := q.Get("ca_file"); v != "" {
		b.CAFile = v
	}
	for name, dst := range map[string]*bool{"path_style": &b.PathStyle, "insecure_skip_verify": &b.Insecure} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				return fmt.Errorf("backend %q: %s: %w", raw, name, err)
			}
		}
	}
	return nil
}

// loadConfig builds the serve configuration from defaults, environment,
// the --config file and flags, in that order of precedence.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	if err := cfg.envDefaults(getenv); err != nil {
		return cfg, err
	}

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configFile := fs.String("config", "", "TOML configuration `file` (flags win over it)")
	dataDir := fs.String("data-dir", "", "data `directory` (default ./tresor-data)")
	listen := fs.String("listen", "", "S3 listener `address` (default 127.0.0.1:9000)")
	adminListen := fs.String("admin-listen", "", "admin listener `address`: health, metrics (default 127.0.0.1:9001)")
	rootKey := fs.String("root-key", "", "root key `file` (default <data-dir>/root.key, created on first start)")
	region := fs.String("region", "", "`region` clients sign for (default us-east-1)")
	domain := fs.String("domain", "", "base `domain` for virtual-host addressing (bucket.domain)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `file` for the S3 listener")
	tlsKey := fs.String("tls-key", "", "TLS private key `file` for the S3 listener")
	logFormat := fs.String("log-format", "", "log `format`: text or json")
	logLevel := fs.String("log-level", "", "log `level`: debug, info, warn, error")
	clusterFlags := addClusterFlags(fs)
	trustedProxies := fs.String("trusted-proxies", "", "comma-separated `CIDRs` of proxies whose X-Forwarded-For and PROXY protocol headers count")
	backendURL := fs.String("backend", "", "object backend `URL`: fs:///dir or s3+https://host/bucket[/prefix]?region=R&jurisdiction=J&path_style=true")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, usageError(fmt.Sprintf("serve takes no arguments, got %q", fs.Args()))
	}
	if *configFile != "" {
		md, err := toml.DecodeFile(*configFile, &cfg)
		if err != nil {
			return cfg, fmt.Errorf("config %s: %w", *configFile, err)
		}
		if undecoded := md.Undecoded(); len(undecoded) > 0 {
			return cfg, fmt.Errorf("config %s: unknown settings %v", *configFile, undecoded)
		}
	}
	for dst, v := range map[*string]string{
		&cfg.DataDir: *dataDir, &cfg.Listen: *listen, &cfg.AdminListen: *adminListen,
		&cfg.RootKeyFile: *rootKey, &cfg.Region: *region, &cfg.TLSCert: *tlsCert,
		&cfg.TLSKey: *tlsKey, &cfg.LogFormat: *logFormat, &cfg.LogLevel: *logLevel,
	} {
		if v != "" {
			*dst = v
		}
	}
	if *domain != "" {
		cfg.Domains = []string{*domain}
	}
	if *trustedProxies != "" {
		cfg.TrustedProxies = strings.Split(*trustedProxies, ",")
	}
	if *backendURL != "" {
		if err := cfg.Backend.parseURL(*backendURL); err != nil {
			return cfg, err
		}
	}
	if cfg.Backend.Type == "fs" && cfg.Backend.Dir == "" {
		cfg.Backend.Dir = filepath.Join(cfg.DataDir, "objects")
	}
	clusterFlags.apply(&cfg.Cluster)
	return cfg, cfg.Validate()
}
