package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfig_Precedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tresor.toml")
	if err := os.WriteFile(file, []byte(`
data_dir = "/from-file"
listen = "127.0.0.1:7000"
region = "eu-central-1"
log_format = "json"
[backend]
type = "s3"
endpoint = "https://s3.example.eu"
bucket = "file-bucket"
jurisdiction = "EU"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"TRESOR_DATA_DIR":     "/from-env",
		"TRESOR_LISTEN":       "127.0.0.1:6000",
		"TRESOR_ADMIN_LISTEN": "127.0.0.1:6001",
		"TRESOR_LOG_LEVEL":    "debug",
	}
	getenv := func(k string) string { return env[k] }

	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c Config)
	}{
		{"defaults", nil, func(t *testing.T, c Config) {
			d := DefaultConfig()
			if c.Listen != "127.0.0.1:6000" || c.AdminListen != "127.0.0.1:6001" || c.DataDir != "/from-env" || c.LogLevel != "debug" {
				t.Errorf("environment did not override defaults: %+v", c)
			}
			if c.Region != d.Region || c.Backend.Type != "fs" || c.Backend.Dir != filepath.Join("/from-env", "objects") {
				t.Errorf("defaults lost: %+v", c)
			}
		}},
		{"file over environment", []string{"--config", file}, func(t *testing.T, c Config) {
			if c.DataDir != "/from-file" || c.Listen != "127.0.0.1:7000" || c.Region != "eu-central-1" || c.LogFormat != "json" {
				t.Errorf("file did not override the environment: %+v", c)
			}
			if c.AdminListen != "127.0.0.1:6001" || c.LogLevel != "debug" {
				t.Errorf("environment values the file does not set were lost: %+v", c)
			}
			if c.Backend.Type != "s3" || c.Backend.Bucket != "file-bucket" || c.Backend.Jurisdiction != "EU" {
				t.Errorf("backend from file: %+v", c.Backend)
			}
		}},
		{"flags over file", []string{"--config", file, "--listen", "127.0.0.1:8000", "--data-dir", "/from-flag",
			"--backend", "s3+http://127.0.0.1:9999/flag-bucket/pre/?region=eu-west-1&path_style=true&jurisdiction=DE"}, func(t *testing.T, c Config) {
			if c.Listen != "127.0.0.1:8000" || c.DataDir != "/from-flag" || c.Region != "eu-central-1" {
				t.Errorf("flags did not override the file: %+v", c)
			}
			b := c.Backend
			if b.Endpoint != "http://127.0.0.1:9999" || b.Bucket != "flag-bucket" || b.Prefix != "pre/" ||
				b.Region != "eu-west-1" || !b.PathStyle || b.Jurisdiction != "DE" {
				t.Errorf("backend flag: %+v", b)
			}
		}},
		{"fs backend flag", []string{"--backend", "fs:///srv/objects"}, func(t *testing.T, c Config) {
			if c.Backend.Type != "fs" || c.Backend.Dir != "/srv/objects" {
				t.Errorf("fs backend flag: %+v", c.Backend)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.args, getenv)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfig_Errors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.toml")
	os.WriteFile(unknown, []byte("listne = \"x\"\n"), 0o600)
	noenv := func(string) string { return "" }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad listen", []string{"--listen", "nonsense"}, "listen"},
		{"tls half", []string{"--tls-cert", "c.pem"}, "tls_cert and tls_key"},
		{"log format", []string{"--log-format", "xml"}, "log_format"},
		{"backend scheme", []string{"--backend", "ftp://x"}, "scheme"},
		{"backend parameter", []string{"--backend", "s3+https://h/b?colour=blue"}, "unknown parameter"},
		{"s3 without bucket", []string{"--backend", "s3+https://h/"}, "endpoint and a bucket"},
		{"unknown setting in file", []string{"--config", unknown}, "unknown settings"},
		{"missing file", []string{"--config", filepath.Join(dir, "absent.toml")}, "absent.toml"},
		{"stray argument", []string{"extra"}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.args, noenv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
