// Package dynalite runs dynalite, an independent implementation of the
// DynamoDB API on Node.js (npm package dynalite), for tests of code that
// talks to DynamoDB. Install puts the npm package in a cache folder shared
// by every test binary on the machine; Start runs one in-memory server on a
// free loopback port; StartT does both for a test and stops the server when
// the test ends.
//
// Node.js (node) and npm must be on PATH, and the npm registry reachable
// the first time; the developers' machines and CI have both.
package dynalite

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Version is the dynalite release Install installs.
const Version = "4.0.0"

// completeMarker is written into the install folder last, before the
// folder is renamed into place: a folder without it is not trusted.
const completeMarker = ".ohfp-install-complete"

// Dir returns the cache folder dynalite is installed in:
// $OHFP_TEST_CACHE/dynalite-4.0.0, else
// os.UserCacheDir()/ohfp-test/dynalite-4.0.0 (else under os.TempDir()).
func Dir() string {
	name := "dynalite-" + Version
	if d := os.Getenv("OHFP_TEST_CACHE"); d != "" {
		return filepath.Join(d, name)
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ohfp-test", name)
	}
	return filepath.Join(os.TempDir(), "ohfp-test", name)
}

// cliPath is where the dynalite command sits inside an install folder.
func cliPath(dir string) string {
	return filepath.Join(dir, "node_modules", "dynalite", "cli.js")
}

func installed(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err != nil {
		return false
	}
	_, err := os.Stat(cliPath(dir))
	return err == nil
}

// Install installs dynalite into Dir unless it is there already, and
// returns the path of its cli.js. It is safe to call from several
// processes at once: they take turns on a lock file beside Dir, and npm
// installs into a temporary folder that is renamed into place when
// complete, so a crash never leaves a half-installed Dir.
func Install(ctx context.Context) (string, error) {
	dir := Dir()
	if installed(dir) {
		return cliPath(dir), nil
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("dynalite needs Node.js (node) and npm on PATH, and %s is missing (Debian: apt-get install nodejs npm): %w", tool, err)
		}
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("dynalite: cache folder: %w", err)
	}
	unlock, err := lock(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if installed(dir) { // another process installed it while we waited
		return cliPath(dir), nil
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".tmp-")
	if err != nil {
		return "", fmt.Errorf("dynalite: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "dynalite@"+Version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("dynalite: npm install dynalite@%s in %s failed: %w\n%s", Version, tmp, err, tail(out, 20))
	}
	if _, err := os.Stat(cliPath(tmp)); err != nil {
		return "", fmt.Errorf("dynalite: npm install dynalite@%s left no %s: %w\n%s", Version, cliPath(tmp), err, tail(out, 20))
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), []byte(Version+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("dynalite: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil { // an incomplete install
		return "", fmt.Errorf("dynalite: removing an incomplete install: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("dynalite: %w", err)
	}
	return cliPath(dir), nil
}

// lock takes an exclusive flock on path, polling so that ctx can end the
// wait; the returned function releases it.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dynalite: lock file: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("dynalite: locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("dynalite: waiting for another process installing dynalite (lock %s): %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Server is a running dynalite process, in memory, on a loopback port.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT

	cmd      *exec.Cmd
	stderr   *syncBuffer
	stopOnce sync.Once
	stopped  bool // Stop was called (under stopOnce)
	exited   chan struct{}
}

// Died says how the server ended when it ended before Stop (a crash, a
// signal from elsewhere), with the tail of its standard error; "" while
// it runs or once Stop ended it.
func (s *Server) Died() string {
	select {
	case <-s.exited:
	default:
		return ""
	}
	if s.stopped {
		return ""
	}
	return fmt.Sprintf("%s\n%s", s.cmd.ProcessState, tail([]byte(s.stderr.String()), 20))
}

// startTimeout bounds how long Start waits for the server to listen when
// ctx has no earlier deadline.
const startTimeout = 20 * time.Second

// Start runs the dynalite at cli (from Install) on a free loopback port and
// returns once it accepts connections. The server keeps its tables in
// memory; Stop ends it.
func Start(ctx context.Context, cli string) (*Server, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return nil, fmt.Errorf("dynalite needs Node.js (node) on PATH (Debian: apt-get install nodejs npm): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var err error
	// dynalite cannot be asked for a port of the kernel's choosing
	// (cli.js takes --port 0 for its default, 4567), so a free port is
	// found first. Between closing the probe listener and node binding the port another
	// process may take it: try again with another port.
	for range 3 {
		var s *Server
		s, err = start(ctx, cli)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) {
			return nil, err
		}
	}
	return nil, err
}

var errPortTaken = errors.New("port taken")

func start(ctx context.Context, cli string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("dynalite: finding a free port: %w", err)
	}
	guard, err := writeGuard(cli)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "--require", guard, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.SysProcAttr = procAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dynalite: starting node %s: %w", cli, err)
	}
	s := &Server{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, stderr: &stderr, exited: make(chan struct{})}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "listening at") {
				said = true
				close(listening)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	select {
	case <-listening:
	case <-s.exited:
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "EADDRINUSE") {
			return nil, errPortTaken
		}
		return nil, fmt.Errorf("dynalite: node %s exited before listening: %s\n%s", cli, cmd.ProcessState, tail([]byte(msg), 20))
	case <-ctx.Done():
		s.Stop()
		return nil, fmt.Errorf("dynalite: not listening on port %d after waiting: %w\n%s", port, ctx.Err(), tail([]byte(stderr.String()), 20))
	}
	// It said so; prove it.
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("dynalite: port %d refuses connections: %w", port, err)
		case <-s.exited:
			return nil, fmt.Errorf("dynalite: node exited: %s\n%s", cmd.ProcessState, tail([]byte(stderr.String()), 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills the server's process group and waits for it to exit. It may
// be called more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
		default:
			s.stopped = true
		}
		if s.cmd.Process != nil {
			// The negative pid names the process group (Setpgid).
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
		}
	})
}

// guardJS is loaded before dynalite (node --require). dynalite 4.0.0
// throws from a request's 'error' handler (index.js: req.on('error',
// function (err) { throw err })), so a client that hangs up in the middle
// of sending a request (a daemon SIGKILLed mid-call, a call given up at
// its deadline) ends the whole server with ECONNRESET "aborted". DynamoDB
// does not go down when one client disconnects, and the failover tests
// kill clients on purpose: the guard logs such an error and keeps
// serving; any other uncaught error still ends node, as before.
const guardJS = `process.on('uncaughtException', function (err) {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error('dynalite: a client hung up mid-request (' + err.message + '); serving on');
    return;
  }
  console.error(err);
  process.exit(1);
});
`

// writeGuard writes guardJS beside the installed package (once; the same
// bytes each time, renamed into place) and returns its path.
func writeGuard(cli string) (string, error) {
	path := filepath.Join(filepath.Dir(cli), "..", "..", "ohfp-guard.js")
	if b, err := os.ReadFile(path); err == nil && string(b) == guardJS {
		return path, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ohfp-guard-*.js")
	if err != nil {
		return "", fmt.Errorf("dynalite: writing its guard: %w", err)
	}
	_, err = tmp.WriteString(guardJS)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("dynalite: writing its guard: %w", err)
	}
	return path, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine exec starts
// and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 64<<10 {
		return len(p), nil // enough to explain a failure
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
