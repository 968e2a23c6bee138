package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readyTimeout bounds how long a started `tresor serve` may take to answer
// /health/ready: opening Badger and raft's store, joining a cluster.
const readyTimeout = 60 * time.Second

// Process is one `tresor serve` child. Its ports stay the same across
// restarts, so a restarted node keeps its raft address. Signal, Kill, Pause,
// Resume and Restart are safe to call from any goroutine.
type Process struct {
	Name    string // for logs and file names: "backend", "node1", ...
	Bin     string
	DataDir string
	S3      string // host:port of the S3 listener
	Admin   string // host:port of the admin listener
	Args    []string
	Env     []string
	LogDir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	starts int
	paused bool
}

// Start starts the process and waits until /health/ready answers 200, or ctx
// ends, or readyTimeout passes.
func (p *Process) Start(ctx context.Context) error {
	if err := p.spawn(); err != nil {
		return err
	}
	return p.WaitReady(ctx, readyTimeout)
}

func (p *Process) spawn() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s: already running", p.Name)
	}
	p.starts++
	out, err := os.OpenFile(filepath.Join(p.LogDir, fmt.Sprintf("%s.%d.log", p.Name, p.starts)), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	args := append([]string{"serve", "--data-dir", p.DataDir, "--listen", p.S3, "--admin-listen", p.Admin}, p.Args...)
	cmd := exec.Command(p.Bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), p.Env...)
	// Its own process group keeps a terminal's Ctrl-C away from the
	// children: the drill decides when they die, and cleans up after
	// itself. Pdeathsig kills a child if the drill itself is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
	p.cmd, p.done, p.paused = cmd, done, false
	return nil
}

// WaitReady polls /health/ready until it answers 200.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last error
	for {
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("%s exited before it was ready; see %s", p.Name, p.LogFile())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Admin+"/health/ready", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (last: %v); see %s", p.Name, ctx.Err(), last, p.LogFile())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LogFile returns the path of the current run's log.
func (p *Process) LogFile() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return filepath.Join(p.LogDir, fmt.Sprintf("%s.%d.log", p.Name, p.starts))
}

// Running reports whether the process is alive (paused counts as alive).
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Paused reports whether the process was paused (SIGSTOP) and not resumed.
func (p *Process) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// Kill sends SIGKILL, as a crash or a lost machine would, and waits until
// the process is gone.
func (p *Process) Kill() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.paused = nil, false
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	err := cmd.Process.Kill() // SIGKILL also ends a stopped process
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: still there 10s after SIGKILL", p.Name)
	}
	if errors.Is(err, os.ErrProcessDone) {
		err = nil
	}
	return err
}

// Pause sends SIGSTOP: the process stops answering anything, like a node in
// a long GC pause or a frozen VM, without closing its connections.
func (p *Process) Pause() error { return p.signal(syscall.SIGSTOP, true) }

// Resume sends SIGCONT to a paused process.
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT, false) }

func (p *Process) signal(sig syscall.Signal, paused bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s: not running", p.Name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %v: %w", p.Name, sig, err)
	}
	p.paused = paused
	return nil
}

// Stop asks the process to shut down (SIGTERM), waits up to grace, then
// kills it.
func (p *Process) Stop(grace time.Duration) {
	p.mu.Lock()
	cmd, done, paused := p.cmd, p.done, p.paused
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	if paused {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
	case <-time.After(grace):
		_ = p.Kill()
	}
}

// Restart starts a killed process again on the same data directory and
// ports and waits until it is ready.
func (p *Process) Restart(ctx context.Context) error {
	if p.Running() {
		return fmt.Errorf("%s: still running", p.Name)
	}
	// The kernel frees a killed process's listening ports at once, but
	// poll briefly in case a port is still held.
	deadline := time.Now().Add(5 * time.Second)
	for _, addr := range []string{p.S3, p.Admin} {
		for {
			l, err := net.Listen("tcp", addr)
			if err == nil {
				l.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: port %s still taken: %w", p.Name, addr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return p.Start(ctx)
}

// Supervisor owns child processes and kills every one of them on Close.
// Close is safe to call more than once and from a deferred call on a panic
// path; the children also run with Pdeathsig, so they die with the drill.
type Supervisor struct {
	Bin    string
	Dir    string // data directories and logs live under it
	mu     sync.Mutex
	procs  []*Process
	closed bool
}

// NewProcess registers a child named name with its own data directory and
// free loopback ports; it does not start it.
func (s *Supervisor) NewProcess(name string, args ...string) (*Process, error) {
	ports, err := FreePorts(2)
	if err != nil {
		return nil, err
	}
	p := &Process{
		Name: name, Bin: s.Bin, DataDir: filepath.Join(s.Dir, name),
		S3: ports[0], Admin: ports[1], Args: args, LogDir: s.Dir,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("bench: supervisor closed")
	}
	s.procs = append(s.procs, p)
	return p, nil
}

// Close kills every child (SIGKILL: the drill's data is thrown away).
func (s *Supervisor) Close() error {
	s.mu.Lock()
	procs := s.procs
	s.closed = true
	s.mu.Unlock()
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.Kill())
	}
	return errors.Join(errs...)
}

// FreePorts returns n distinct free loopback addresses. A port may be taken
// by someone else before the child binds it; the child then fails to start
// and says so in its log.
func FreePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// readCredentials reads the access key `tresor serve` wrote to
// <data-dir>/credentials on its first start.
func readCredentials(dataDir string) (id, secret string, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "credentials"))
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "aws_access_key_id = "); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "aws_secret_access_key = "); ok {
			secret = v
		}
	}
	if id == "" || secret == "" {
		return "", "", fmt.Errorf("%s/credentials holds no access key", dataDir)
	}
	return id, secret, nil
}
