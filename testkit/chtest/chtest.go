// Package chtest starts real ClickHouse servers for tests.
//
// Two engines, chosen per test run by CHTEST_ENGINE (see Engine):
//
//   - "clickhouse-server" (the default): the locally installed
//     clickhouse-server binary, Debian's 18.16.1 — the oldest server
//     changelens supports;
//   - "chdb": a current engine (26.x) from PyPI's chdb, served with real
//     native-TCP and HTTP listeners by deploy/local/chdb-server.py, run by the
//     Python of the repository's .venv (or CHTEST_CHDB_PYTHON).
//
// `make test` runs every ClickHouse-backed package once per engine. Every
// server gets a config written into a temporary directory: free TCP/HTTP
// ports on 127.0.0.1, data, tmp and log paths inside that directory, timezone
// UTC. Readiness is checked by pinging over the native protocol. With
// CHTEST_EXPECT_VERSION set (e.g. "18.16." or "26."), a server whose version
// does not start with it is an error, so a leg cannot silently test the other
// engine. If the engine is missing the test FAILS (it does not skip):
// integration tests are part of the suite.
//
// Two ways to get a server:
//
//   - Shared(tb) returns one server per test binary, started on first use.
//     Give each test its own database with NewDatabase(tb). Call Main from
//     TestMain to stop it cleanly when the tests end; without that it is
//     killed when the test process exits (parent-death signal) and a janitor
//     process removes its directory (or, failing that, the next run does).
//   - New(tb) starts a dedicated server, stopped and removed at tb.Cleanup.
//     Use it when a test stops and restarts ClickHouse (Stop/Kill then Start:
//     same data directory, same ports).
//
// Pitfalls on 18.16 with clickhouse-go v2.50: batch inserts need an explicit
// column list ("INSERT INTO t (a, b)"), and conn.Exec("INSERT ... VALUES ...")
// hangs until its context expires; use a batch or INSERT ... SELECT.
package chtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// EnvBinary names an environment variable that overrides the server binary.
// A value with a space is split into arguments, e.g. "/usr/bin/clickhouse server".
const EnvBinary = "CHTEST_CLICKHOUSE_SERVER"

// EnvEngine selects the engine: EngineServer (default) or EngineChdb.
const EnvEngine = "CHTEST_ENGINE"

// Engines.
const (
	EngineServer = "clickhouse-server"
	EngineChdb   = "chdb"
)

// EnvExpectVersion, when set, is a prefix every started server's version must have.
const EnvExpectVersion = "CHTEST_EXPECT_VERSION"

// EnvChdbPython overrides the Python interpreter that has chdb installed
// (default: .venv/bin/python at the repository root).
const EnvChdbPython = "CHTEST_CHDB_PYTHON"

// chdbLauncher is the launcher's path relative to the repository root.
const chdbLauncher = "deploy/local/chdb-server.py"

// Engine is the engine this test run uses (CHTEST_ENGINE, default EngineServer).
func Engine() string {
	if e := strings.TrimSpace(os.Getenv(EnvEngine)); e != "" {
		return e
	}
	return EngineServer
}

// DefaultBinary is where Debian's clickhouse-server package installs the server.
const DefaultBinary = "/usr/sbin/clickhouse-server"

// defaultBinary is DefaultBinary; a variable so the "not installed" path can be tested.
var defaultBinary = DefaultBinary

const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// Server is one clickhouse-server process and its directory.
type Server struct {
	dir      string
	tcpPort  int
	httpPort int
	argv     []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been reaped
	version string
}

// Addr is the native-protocol endpoint, "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tcpPort)) }

// HTTPAddr is the HTTP endpoint, "127.0.0.1:port".
func (s *Server) HTTPAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.httpPort)) }

// DSN is a clickhouse-go DSN for the native endpoint, e.g.
// DSN(ReadOnlyUser, ReadOnlyPassword, db) for the query API's read-only user.
func (s *Server) DSN(user, password, database string) string {
	u := url.URL{Scheme: "clickhouse", Host: s.Addr(), Path: "/" + database}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// Dir is the server's directory (config.xml, users.xml, data/, log/).
func (s *Server) Dir() string { return s.dir }

// LogPath is the server's main log file; ErrLogPath its error log.
func (s *Server) LogPath() string    { return filepath.Join(s.dir, "log", "clickhouse-server.log") }
func (s *Server) ErrLogPath() string { return filepath.Join(s.dir, "log", "clickhouse-server.err.log") }

// Version is the server's version string as reported by SELECT version().
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

func (s *Server) runningLocked() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// PID is the server's process id, or 0 when it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runningLocked() {
		return 0
	}
	return s.cmd.Process.Pid
}

// Options returns clickhouse-go options for the admin user (no database set,
// LZ4 compression). Callers may modify the returned value.
func (s *Server) Options() *clickhouse.Options {
	return &clickhouse.Options{
		Addr:        []string{s.Addr()},
		Auth:        clickhouse.Auth{Username: AdminUser},
		DialTimeout: 2 * time.Second,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	}
}

// Conn opens a native-protocol connection as the admin user with database as
// the default database ("" = default). It is closed at tb.Cleanup.
func (s *Server) Conn(tb testing.TB, database string) driver.Conn {
	tb.Helper()
	opts := s.Options()
	opts.Auth.Database = database
	return s.open(tb, opts)
}

// ReadOnlyConn opens a connection as ReadOnlyUser.
func (s *Server) ReadOnlyConn(tb testing.TB, database string) driver.Conn {
	tb.Helper()
	opts := s.Options()
	opts.Auth = clickhouse.Auth{Username: ReadOnlyUser, Password: ReadOnlyPassword, Database: database}
	return s.open(tb, opts)
}

func (s *Server) open(tb testing.TB, opts *clickhouse.Options) driver.Conn {
	tb.Helper()
	conn, err := clickhouse.Open(opts)
	if err != nil {
		tb.Fatalf("chtest: open connection to %s: %v", s.Addr(), err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Exec runs one statement as the admin user and fails the test on error.
func (s *Server) Exec(tb testing.TB, query string, args ...any) {
	tb.Helper()
	conn, err := clickhouse.Open(s.Options())
	if err != nil {
		tb.Fatalf("chtest: open: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, query, args...); err != nil {
		tb.Fatalf("chtest: exec %q: %v", query, err)
	}
}

// NewDatabase creates a fresh, uniquely named database and drops it at
// tb.Cleanup (if the server is running then). It returns the name.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := "t_" + sanitize(tb.Name(), 40) + "_" + randHex(4)
	s.Exec(tb, "CREATE DATABASE "+name)
	tb.Cleanup(func() {
		if !s.Running() {
			return
		}
		conn, err := clickhouse.Open(s.Options())
		if err != nil {
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
	})
	return name
}

// New starts a dedicated server in a directory under tb.TempDir(). It is
// stopped at tb.Cleanup. The test fails if clickhouse-server is not installed.
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := newServer(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	// Registered after TempDir, so it runs before the directory is removed.
	tb.Cleanup(func() {
		if err := s.stop(syscall.SIGTERM); err != nil {
			tb.Errorf("chtest: stopping server: %v", err)
		}
	})
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// Launch starts the server (NewNode's, or a stopped one) and waits until it
// answers; Start is Launch for tests.
func (s *Server) Launch() error { return s.start() }

// Shutdown stops the server gracefully and waits for it; Stop is Shutdown
// for tests.
func (s *Server) Shutdown() error { return s.stop(syscall.SIGTERM) }

// Start starts a stopped server again with the same directory and ports.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
}

// Stop shuts the server down gracefully (SIGTERM; SIGKILL after 30 s) and
// waits for the process to exit. Stopping a stopped server is a no-op.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.stop(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
}

// Kill kills the server (SIGKILL), simulating a crash, and waits for it.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	if err := s.stop(syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Shared server

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// sharedPrefix names the directories of shared servers under os.TempDir().
const sharedPrefix = "chtest-shared-"

// Shared returns the test binary's shared server, starting it on first use.
// Tests must not stop it; use New for that. Use NewDatabase for isolation.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() {
		reapStaleShared()
		dir, err := os.MkdirTemp("", sharedPrefix)
		if err != nil {
			shared.err = err
			return
		}
		s, err := newServer(dir)
		if err != nil {
			_ = os.RemoveAll(dir)
			shared.err = err
			return
		}
		if err := s.start(); err != nil {
			_ = os.RemoveAll(dir)
			shared.err = err
			return
		}
		writeOwner(dir, s.PID())
		startJanitor(dir)
		shared.srv = s
	})
	if shared.err != nil {
		tb.Fatalf("chtest: shared server: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests and then stops the shared server (if one was started)
// and removes its directory. Use it as:
//
//	func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	StopShared()
	return code
}

// StopShared stops the shared server, if one was started, and removes its directory.
func StopShared() {
	if s := shared.srv; s != nil {
		_ = s.stop(syscall.SIGTERM)
		_ = os.RemoveAll(s.dir)
	}
}

// writeOwner records which test process (and which server process) owns a
// shared directory, so a later run can clean up after a process that died.
func writeOwner(dir string, serverPID int) {
	_ = os.WriteFile(filepath.Join(dir, "owner"),
		[]byte(fmt.Sprintf("%d %d\n", os.Getpid(), serverPID)), 0o644)
}

// reapStaleShared removes shared-server directories whose owning test process
// is gone, killing the server process recorded there if it still runs it.
func reapStaleShared() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			// No owner file: either being created right now or a failed start.
			// Only remove it when it is clearly old.
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > time.Hour {
				_ = os.RemoveAll(dir)
			}
			continue
		}
		var owner, server int
		if _, err := fmt.Sscan(string(b), &owner, &server); err != nil || owner <= 0 {
			continue
		}
		if alive(owner) {
			continue
		}
		if server > 0 && alive(server) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", server))
			if bytes.Contains(cmdline, []byte(dir)) {
				_ = syscall.Kill(server, syscall.SIGKILL)
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// startJanitor starts a small shell process that waits for this test process
// to exit and then removes the shared server's directory (the server itself
// dies with the test process through its parent-death signal). It covers
// test binaries whose TestMain does not call Main.
func startJanitor(dir string) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return
	}
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done; sleep 2; rm -rf "$2"`
	cmd := exec.Command(sh, "-c", script, "chtest-janitor", strconv.Itoa(os.Getpid()), dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }()
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ---------------------------------------------------------------------------
// Process management

// binary returns the argv prefix that runs the selected engine.
func binary() ([]string, error) {
	switch e := Engine(); e {
	case EngineServer:
		return serverBinary()
	case EngineChdb:
		return chdbBinary()
	default:
		return nil, fmt.Errorf("chtest: %s=%q: want %q or %q", EnvEngine, e, EngineServer, EngineChdb)
	}
}

// serverBinary returns the clickhouse-server command.
func serverBinary() ([]string, error) {
	if v := strings.TrimSpace(os.Getenv(EnvBinary)); v != "" {
		argv := strings.Fields(v)
		if _, err := exec.LookPath(argv[0]); err != nil {
			return nil, fmt.Errorf("chtest: %s=%q: %w", EnvBinary, v, err)
		}
		return argv, nil
	}
	if _, err := os.Stat(defaultBinary); err == nil {
		return []string{defaultBinary}, nil
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return []string{p}, nil
	}
	return nil, fmt.Errorf("chtest: clickhouse-server not found (looked for %s and in PATH): "+
		"`make deps` installs it (make test runs it), or `apt-get install -y clickhouse-server` (or set %s to the server binary); "+
		"the ClickHouse integration tests need a real server", defaultBinary, EnvBinary)
}

// chdbBinary returns [python, launcher] for the chdb engine.
func chdbBinary() ([]string, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	launcher := filepath.Join(root, chdbLauncher)
	if _, err := os.Stat(launcher); err != nil {
		return nil, fmt.Errorf("chtest: chdb launcher: %w", err)
	}
	python := strings.TrimSpace(os.Getenv(EnvChdbPython))
	if python == "" {
		python = filepath.Join(root, ".venv", "bin", "python")
	}
	if _, err := exec.LookPath(python); err != nil {
		return nil, fmt.Errorf("chtest: %s=%s needs a Python with chdb (%v): `make deps` creates it "+
			"(make test runs it), or `python3 -m venv .venv && .venv/bin/pip install -r requirements-test.txt`, "+
			"or set %s; the ClickHouse integration tests need a real server", EnvEngine, EngineChdb, err, EnvChdbPython)
	}
	return []string{python, launcher}, nil
}

// RepoRoot is the nearest directory above the working directory with the
// project's go.mod (tests run in their package's directory; the
// cluster harness reads deploy/ there).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/changelens/changelens\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("chtest: repository root (go.mod of github.com/changelens/changelens) not found above the working directory")
		}
		dir = parent
	}
}

func newServer(dir string) (*Server, error) {
	argv, err := binary()
	if err != nil {
		return nil, err
	}
	tcpPort, httpPort, err := freePorts()
	if err != nil {
		return nil, fmt.Errorf("chtest: pick free ports: %w", err)
	}
	if err := writeConfig(dir, tcpPort, httpPort); err != nil {
		return nil, fmt.Errorf("chtest: write config: %w", err)
	}
	return &Server{dir: dir, tcpPort: tcpPort, httpPort: httpPort, argv: argv}, nil
}

// NewNode prepares, without starting it, a clickhouse-server for a
// multi-server setup (testkit/chcluster): always the server binary whatever
// CHTEST_ENGINE says (the embedded engine has no Keeper and cannot join a
// replicated cluster), in dir on the given ports, with the usual config plus
// files (path relative to dir → content): config.d/*.xml and users.d/*.xml,
// which the server merges into its config and users. Start it with Start;
// the caller stops it (Stop or Kill).
func NewNode(dir string, tcpPort, httpPort int, files map[string]string) (*Server, error) {
	argv, err := serverBinary()
	if err != nil {
		return nil, err
	}
	if err := writeConfig(dir, tcpPort, httpPort); err != nil {
		return nil, fmt.Errorf("chtest: write config: %w", err)
	}
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	return &Server{dir: dir, tcpPort: tcpPort, httpPort: httpPort, argv: argv}, nil
}

// FreePort returns a TCP port that is free on 127.0.0.1 now and reserved
// for this test process, chosen at random below the kernel's ephemeral
// range: a server started on it later (a cluster starts its nodes one after
// another, seconds apart) must not find it taken by the outgoing connection
// of another process, which the kernel gives ports of the ephemeral range.
//
// Listening briefly is not enough on its own: a cluster picks twelve ports
// before it starts any node, and make test runs several test binaries at
// once, so the same free port could be handed out twice — once in this
// process, once in another — and the second server to start died with
// "Address already in use". Each port handed out is therefore remembered
// here and held by an flock on a file in a directory shared by every test
// process of the machine; the kernel releases the lock when the process
// exits, however it exits, so nothing goes stale.
func FreePort() (int, error) {
	lo, hi := portRange()
	var b [2]byte
	for range 400 {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		p := lo + int(uint16(b[0])<<8|uint16(b[1]))%(hi-lo)
		if reservePort(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("chtest: no free port in [%d, %d) after 400 tries", lo, hi)
}

var reserved struct {
	sync.Mutex
	ports map[int]*os.File
}

// reservePort claims p for this process if no test process holds it and
// nothing listens on it.
func reservePort(p int) bool {
	reserved.Lock()
	defer reserved.Unlock()
	if _, ok := reserved.ports[p]; ok {
		return false
	}
	dir := filepath.Join(os.TempDir(), "changelens-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return false
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return false
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		_ = f.Close()
		return false
	}
	_ = l.Close()
	if reserved.ports == nil {
		reserved.ports = map[int]*os.File{}
	}
	reserved.ports[p] = f
	return true
}

// portRange is where FreePort draws from: [10000, the first ephemeral port)
// when that leaves room (Linux's default range starts at 32768), else
// above the ephemeral range.
func portRange() (lo, hi int) {
	lo, hi = 20000, 32000
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	first, err1 := strconv.Atoi(f[0])
	last, err2 := strconv.Atoi(f[1])
	switch {
	case err1 != nil || err2 != nil:
	case first > 12000:
		return 10000, first
	case last < 63000:
		return last + 1, 65535
	}
	return lo, hi
}

func freePorts() (int, int, error) {
	a, err := FreePort()
	if err != nil {
		return 0, 0, err
	}
	for {
		b, err := FreePort()
		if err != nil || b != a {
			return a, b, err
		}
	}
}

// The server is started from one OS thread that never exits, so that
// Pdeathsig (delivered when the *thread* that forked the child dies) fires
// only when the whole test process dies.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd: cmd, done: done}
	return <-done
}

func (s *Server) start() error {
	s.mu.Lock()
	if s.runningLocked() {
		s.mu.Unlock()
		return errors.New("chtest: server already running")
	}
	args := append(append([]string{}, s.argv[1:]...), "--config-file="+filepath.Join(s.dir, "config.xml"))
	cmd := exec.Command(s.argv[0], args...)
	cmd.Dir = s.dir
	out, err := os.OpenFile(filepath.Join(s.dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := spawn(cmd); err != nil {
		out.Close()
		s.mu.Unlock()
		return fmt.Errorf("chtest: start %s: %w", s.argv[0], err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	version, err := s.waitReady(exited)
	if err == nil {
		if want := strings.TrimSpace(os.Getenv(EnvExpectVersion)); want != "" && !strings.HasPrefix(version, want) {
			err = fmt.Errorf("chtest: %s engine answered version %s, but %s=%s", Engine(), version, EnvExpectVersion, want)
		}
	}
	if err != nil {
		_ = s.stop(syscall.SIGKILL)
		return err
	}
	s.mu.Lock()
	s.version = version
	s.mu.Unlock()
	return nil
}

func (s *Server) waitReady(exited <-chan struct{}) (string, error) {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return "", fmt.Errorf("chtest: clickhouse-server exited during startup: %s", s.logTail())
		default:
		}
		v, err := s.ping()
		if err == nil {
			return v, nil
		}
		lastErr = err
		time.Sleep(25 * time.Millisecond)
	}
	return "", fmt.Errorf("chtest: clickhouse-server not ready on %s after %s: %v; %s",
		s.Addr(), readyTimeout, lastErr, s.logTail())
}

// ping connects over the native protocol, pings and reads the version.
func (s *Server) ping() (string, error) {
	opts := s.Options()
	opts.DialTimeout = 500 * time.Millisecond
	opts.MaxOpenConns, opts.MaxIdleConns = 1, 1
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		return "", err
	}
	var v string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "", err
	}
	return v, nil
}

func (s *Server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
		return fmt.Errorf("chtest: clickhouse-server did not stop within %s after %v; killed", stopTimeout, sig)
	case <-time.After(10 * time.Second):
		return errors.New("chtest: clickhouse-server did not exit after SIGKILL")
	}
}

// logTail returns the last lines of the server's error log and stdout.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, p := range []string{s.ErrLogPath(), filepath.Join(s.dir, "log", "stdout.log")} {
		data, err := os.ReadFile(p)
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "\n--- %s (tail) ---\n%s", p, data)
	}
	if b.Len() == 0 {
		return "(no server log output)"
	}
	return b.String()
}

func sanitize(s string, max int) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+('a'-'A'))
		default:
			if len(b) > 0 && b[len(b)-1] != '_' {
				b = append(b, '_')
			}
		}
	}
	return strings.Trim(string(b), "_")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
