package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tresor-gw/tresor/internal/atomicfile"
	"github.com/tresor-gw/tresor/keystore"
)

// Root-key custody (DESIGN.md section 4): `tresor operator init` splits a new
// root key into M-of-N shares and keeps only the public custody record in
// <data-dir>/root.custody.json; `tresor serve` on such a data dir starts
// sealed and waits for shares on the admin listener's
// POST /operator/v1/unseal; `tresor operator unseal` posts one share.

// unsealPath is the sealed node's share endpoint.
const unsealPath = "/operator/v1/unseal"

// maxShareBody bounds an unseal request: a share's text is under 100 bytes.
const maxShareBody = 4 << 10

// errStoppedSealed reports a node stopped (SIGTERM) before it was unsealed.
var errStoppedSealed = errors.New("stopped while sealed")

const operatorUsage = `usage:
  tresor operator init --shares N --threshold T [--data-dir DIR] [--out-dir DIR]
      split a new root key into N shares, any T of which unseal the node;
      prints the shares (or writes DIR/share-I.txt, mode 0600) and writes
      the public DATA-DIR/root.custody.json; the key itself is never written.
      A cluster runs under one split: copy root.custody.json into the data
      directory of every other node before its first start
  tresor operator unseal [--data-dir DIR | --admin HOST:PORT] SHARE|-
      post one share to the sealed local node ("-" reads it from stdin)
`

func runOperator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, operatorUsage)
		return usageError("operator: no sub-command given")
	}
	switch args[0] {
	case "init":
		return runOperatorInit(args[1:], stdout, stderr)
	case "unseal":
		return runOperatorUnseal(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stderr, operatorUsage)
		return nil
	}
	fmt.Fprint(stderr, operatorUsage)
	return usageError(fmt.Sprintf("operator: unknown sub-command %q", args[0]))
}

func runOperatorInit(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("operator init", flag.ContinueOnError)
	fl.SetOutput(stderr)
	n := fl.Int("shares", 5, "number of shares N")
	t := fl.Int("threshold", 3, "shares needed to unseal T")
	dataDir := fl.String("data-dir", DefaultConfig().DataDir, "data directory of the node")
	outDir := fl.String("out-dir", "", "write share-I.txt files (mode 0600) here instead of printing the shares")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return usageError("operator init: unexpected arguments")
	}
	for _, name := range []string{keystore.RootKeyFileName, "keystore", keystore.CustodyFileName} {
		if _, err := os.Stat(filepath.Join(*dataDir, name)); err == nil {
			return fmt.Errorf("operator init: %s already exists: custody is set up on a new data directory only", filepath.Join(*dataDir, name))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("operator init: %w", err)
		}
	}
	key, shares, c, err := keystore.SplitRootKey(rand.Reader, *n, *t)
	if err != nil {
		return fmt.Errorf("operator init: %w", err)
	}
	clear(key) // the node recombines it at every start; it is never stored
	rec, err := keystore.MarshalCustody(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("operator init: %w", err)
	}
	if *outDir != "" {
		if err := os.MkdirAll(*outDir, 0o700); err != nil {
			return fmt.Errorf("operator init: %w", err)
		}
		for _, s := range shares {
			path := filepath.Join(*outDir, fmt.Sprintf("share-%d.txt", s.Index))
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("operator init: %w", err)
			}
			_, werr := fmt.Fprintln(f, s.String())
			if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
				return fmt.Errorf("operator init: %s: %w", path, err)
			}
		}
	}
	// The custody record last: a data dir with it and missing shares would
	// start sealed for ever.
	if err := atomicfile.WriteFile(filepath.Join(*dataDir, keystore.CustodyFileName), rec, 0o600); err != nil {
		return fmt.Errorf("operator init: %w", err)
	}
	if *outDir != "" {
		fmt.Fprintf(stdout, "tresor: %d shares written to %s (any %d unseal); custody record %s\n",
			*n, *outDir, *t, filepath.Join(*dataDir, keystore.CustodyFileName))
		return nil
	}
	for _, s := range shares {
		fmt.Fprintln(stdout, s.String())
	}
	fmt.Fprintf(stderr, "tresor: %d shares above, any %d unseal; give each to its holder and keep no copy here. Custody record: %s\n",
		*n, *t, filepath.Join(*dataDir, keystore.CustodyFileName))
	return nil
}

// unsealStatus is the unseal endpoint's answer.
type unsealStatus struct {
	Sealed    bool   `json:"sealed"`
	Threshold int    `json:"threshold"`
	Received  int    `json:"received"`
	Needed    int    `json:"needed"`
	Error     string `json:"error,omitempty"`
	Index     int    `json:"index,omitempty"` // the share refused
}

func runOperatorUnseal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("operator unseal", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dataDir := fl.String("data-dir", DefaultConfig().DataDir, "data directory of the local node (address from DIR/admin.addr)")
	admin := fl.String("admin", "", "admin address host:port of the node (instead of --data-dir)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return usageError("operator unseal: give one SHARE, or - to read it from stdin")
	}
	text := fl.Arg(0)
	if text == "-" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("operator unseal: stdin: %w", err)
		}
		text = line
	}
	// Catch a mistyped share here, before it reaches the node.
	if _, err := keystore.ParseShare(text); err != nil {
		return fmt.Errorf("operator unseal: %w", err)
	}
	addr := *admin
	if addr == "" {
		var err error
		if addr, err = readAdminAddr(*dataDir); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+unsealPath, strings.NewReader(strings.TrimSpace(text)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("operator unseal: %w", err)
	}
	defer resp.Body.Close()
	var st unsealStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&st); err != nil {
		return fmt.Errorf("operator unseal: %s: answer %s: %w", addr, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("operator unseal: refused (%s): %s", resp.Status, st.Error)
	}
	if st.Sealed {
		fmt.Fprintf(stdout, "share accepted: %d of %d; %d more needed\n", st.Received, st.Threshold, st.Needed)
	} else {
		fmt.Fprintln(stdout, "unsealed")
	}
	return nil
}

// unsealRootKey returns nil if the data dir holds no custody record (the
// root key comes from a file, as before). Otherwise the node is sealed: it
// serves only the unseal endpoint on the admin listener, writes
// <data-dir>/admin.addr, and returns the root key once threshold valid
// shares have been combined and the key check value matches. It returns
// errStoppedSealed when ctx ends first.
//
// In a cluster every member holds a copy of the same public record and is
// unsealed on its own, with any T shares. A sealed member does not listen
// on raft and cannot enroll (every proof a member gives is derived from the
// root key), so it only starts its cluster work once unsealed: the others
// see it as unreachable meanwhile, never removed, and raft's retries (at
// most about 10 s apart) bring it back in once it listens.
func unsealRootKey(ctx context.Context, cfg Config, log *slog.Logger) ([]byte, error) {
	path := filepath.Join(cfg.DataDir, keystore.CustodyFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("custody: %w", err)
	}
	c, err := keystore.ParseCustody(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Fail closed on an ambiguous root of trust.
	if _, err := os.Stat(filepath.Join(cfg.DataDir, keystore.RootKeyFileName)); err == nil || cfg.RootKeyFile != "" {
		return nil, fmt.Errorf("custody: %s holds %s and a root key file is present or given (--root-key): keep one", cfg.DataDir, keystore.CustodyFileName)
	}

	u := &unsealer{custody: c, done: make(chan []byte, 1), log: log.With("component", "custody")}
	ln, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if err := writeAdminAddr(cfg.DataDir, ln.Addr()); err != nil {
		log.Warn("cannot record the admin address", "error", err)
	}
	log.Warn("tresor sealed: waiting for root-key shares", "admin", "http://"+ln.Addr().String()+unsealPath,
		"threshold", c.Threshold, "shares", c.Shares)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var key []byte
	select {
	case key = <-u.done:
	case <-ctx.Done():
	case err = <-errc:
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shutErr := srv.Shutdown(shutCtx) // lets the last answer reach its client
	u.wipe()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		clear(key)
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	if key == nil {
		return nil, errStoppedSealed
	}
	if shutErr != nil {
		log.Warn("sealed listener shutdown", "error", shutErr)
	}
	log.Info("tresor unsealed")
	return key, nil
}

// unsealer collects shares one request at a time.
type unsealer struct {
	custody *keystore.Custody
	log     *slog.Logger
	done    chan []byte // receives the key once

	mu       sync.Mutex
	shares   map[int]keystore.Share
	unsealed bool
}

func (u *unsealer) wipe() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, s := range u.shares {
		clear(s.Value[:])
		delete(u.shares, i)
	}
}

func (u *unsealer) status() unsealStatus {
	return unsealStatus{Sealed: !u.unsealed, Threshold: u.custody.Threshold, Received: len(u.shares),
		Needed: max(u.custody.Threshold-len(u.shares), 0)}
}

func (u *unsealer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, st unsealStatus) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(st)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case r.URL.Path == "/health/live":
		w.WriteHeader(http.StatusOK)
		return
	case r.URL.Path != unsealPath:
		st := u.status()
		st.Error = "sealed: only " + unsealPath + " is served until the root key is unsealed"
		reply(http.StatusServiceUnavailable, st)
		return
	case r.Method == http.MethodGet:
		reply(http.StatusOK, u.status())
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", "GET, POST")
		reply(http.StatusMethodNotAllowed, unsealStatus{Sealed: !u.unsealed, Error: "method not allowed"})
		return
	case u.unsealed:
		reply(http.StatusOK, u.status())
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxShareBody))
	if err != nil {
		reply(http.StatusRequestEntityTooLarge, unsealStatus{Sealed: true, Error: "body too large"})
		return
	}
	share, err := keystore.ParseShare(string(body))
	if err == nil {
		err = u.custody.VerifyShare(share)
	}
	if err != nil {
		st := u.status()
		st.Error = err.Error()
		var se *keystore.ShareError
		if errors.As(err, &se) {
			st.Index = se.Index
		}
		u.log.Warn("unseal share refused", "index", share.Index, "error", err) // never the share
		reply(http.StatusBadRequest, st)
		return
	}
	if u.shares == nil {
		u.shares = make(map[int]keystore.Share)
	}
	u.shares[share.Index] = share
	u.log.Info("unseal share accepted", "index", share.Index, "received", len(u.shares), "threshold", u.custody.Threshold)
	if len(u.shares) < u.custody.Threshold {
		reply(http.StatusOK, u.status())
		return
	}
	list := make([]keystore.Share, 0, len(u.shares))
	for _, s := range u.shares {
		list = append(list, s)
	}
	key, err := keystore.CombineRootKey(list, u.custody)
	for i := range list {
		clear(list[i].Value[:])
	}
	if err != nil {
		// Every share verified, so the record itself is inconsistent:
		// start over rather than keep shares that led nowhere.
		for i, s := range u.shares {
			clear(s.Value[:])
			delete(u.shares, i)
		}
		u.log.Error("unseal: combine failed; shares discarded", "error", err)
		st := u.status()
		st.Error = "combining the shares failed (" + err.Error() + "); all shares discarded"
		reply(http.StatusInternalServerError, st)
		return
	}
	u.unsealed = true
	u.done <- key
	reply(http.StatusOK, u.status())
}
