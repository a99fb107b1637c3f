package chtest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSharedServer(t *testing.T) {
	s := Shared(t)
	if s2 := Shared(t); s2 != s {
		t.Fatal("Shared returned a different server on the second call")
	}
	if !strings.HasPrefix(s.Version(), "1") && !strings.HasPrefix(s.Version(), "2") {
		t.Fatalf("unexpected version %q", s.Version())
	}
	db := s.NewDatabase(t)
	conn := s.Conn(t, db)
	if err := conn.Exec(ctx(t), "CREATE TABLE t (a UInt32, b String) ENGINE = MergeTree ORDER BY a"); err != nil {
		t.Fatal(err)
	}
	// The explicit column list: 18.16 needs it for batch inserts.
	batch, err := conn.PrepareBatch(ctx(t), "INSERT INTO t (a, b)")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := batch.Append(uint32(i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := conn.QueryRow(ctx(t), "SELECT count() FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("count = %d, want 3", n)
	}

	// Databases are distinct per test.
	if db2 := s.NewDatabase(t); db2 == db {
		t.Fatalf("NewDatabase returned %q twice", db)
	}
}

func TestUsers(t *testing.T) {
	s := Shared(t)
	db := s.NewDatabase(t)
	s.Exec(t, "CREATE TABLE "+db+".t (a UInt8) ENGINE = MergeTree ORDER BY a")

	ro := s.ReadOnlyConn(t, db)
	var n uint64
	if err := ro.QueryRow(ctx(t), "SELECT count() FROM t").Scan(&n); err != nil {
		t.Fatalf("read-only user cannot read: %v", err)
	}
	// readonly=2 allows per-query settings.
	if err := ro.QueryRow(clickhouse.Context(ctx(t), clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": 5})),
		"SELECT count() FROM t").Scan(&n); err != nil {
		t.Fatalf("read-only user cannot set max_execution_time: %v", err)
	}
	if err := ro.Exec(ctx(t), "INSERT INTO t (a) SELECT 1"); err == nil {
		t.Fatal("read-only user could INSERT")
	}
	if err := ro.Exec(ctx(t), "DROP TABLE t"); err == nil {
		t.Fatal("read-only user could DROP")
	}

	// The DSN form works for the read-only user.
	dsnOpts, err := clickhouse.ParseDSN(s.DSN(ReadOnlyUser, ReadOnlyPassword, db))
	if err != nil {
		t.Fatal(err)
	}
	viaDSN, err := clickhouse.Open(dsnOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer viaDSN.Close()
	if err := viaDSN.QueryRow(ctx(t), "SELECT count() FROM t").Scan(&n); err != nil {
		t.Fatalf("DSN %s: %v", s.DSN(ReadOnlyUser, "***", db), err)
	}

	opts := s.Options()
	opts.Auth = clickhouse.Auth{Username: WriterUser, Password: WriterPassword, Database: db}
	w, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Exec(ctx(t), "INSERT INTO t (a) SELECT 1"); err != nil {
		t.Fatalf("writer cannot insert: %v", err)
	}
	opts.Auth.Password = "wrong"
	bad, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(ctx(t)); err == nil {
		t.Fatal("wrong password accepted")
	}
}

func TestStopStartKeepsDataAndPort(t *testing.T) {
	s := New(t)
	addr := s.Addr()
	s.Exec(t, "CREATE DATABASE d")
	s.Exec(t, "CREATE TABLE d.t (a UInt8) ENGINE = MergeTree ORDER BY a")
	s.Exec(t, "INSERT INTO d.t (a) SELECT 7")
	conn := s.Conn(t, "d")

	start := time.Now()
	s.Stop(t)
	t.Logf("graceful stop took %s", time.Since(start))
	if s.Running() {
		t.Fatal("Running() after Stop")
	}
	if err := conn.Ping(ctx(t)); err == nil {
		t.Fatal("ping succeeded while the server is stopped")
	}

	start = time.Now()
	s.Start(t)
	t.Logf("restart took %s", time.Since(start))
	if s.Addr() != addr {
		t.Fatalf("address changed: %s -> %s", addr, s.Addr())
	}
	// The pool reconnects to the same address.
	var a uint8
	if err := conn.QueryRow(ctx(t), "SELECT a FROM d.t").Scan(&a); err != nil {
		t.Fatal(err)
	}
	if a != 7 {
		t.Fatalf("a = %d, want 7", a)
	}

	pid := s.PID()
	s.Kill(t)
	if alive(pid) {
		t.Fatalf("server pid %d alive after Kill", pid)
	}
	s.Start(t)
	if err := conn.QueryRow(ctx(t), "SELECT a FROM d.t").Scan(&a); err != nil || a != 7 {
		t.Fatalf("after crash restart: a=%d err=%v", a, err)
	}
}

// fatalTB records Fatal calls instead of ending the test.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
	dir string
}

func (f *fatalTB) Helper()         {}
func (f *fatalTB) TempDir() string { return f.dir }
func (f *fatalTB) Cleanup(func())  {}
func (f *fatalTB) Fatal(args ...any) {
	f.mu.Lock()
	for _, a := range args {
		if e, ok := a.(error); ok {
			f.msg += e.Error()
		}
	}
	f.mu.Unlock()
	runtime.Goexit()
}

// newFailure runs New with a TB that records its Fatal message and returns
// the message ("" when New did not fail).
func newFailure(t *testing.T) string {
	f := &fatalTB{TB: t, dir: t.TempDir()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		New(f)
	}()
	<-done
	return f.msg
}

func TestMissingBinaryFails(t *testing.T) {
	old := defaultBinary
	defaultBinary = "/nonexistent/clickhouse-server"
	t.Cleanup(func() { defaultBinary = old })
	t.Setenv("PATH", t.TempDir())
	t.Setenv(EnvBinary, "")
	t.Setenv(EnvEngine, EngineServer)

	if msg := newFailure(t); !strings.Contains(msg, "apt-get install -y clickhouse-server") {
		t.Fatalf("New did not fail with an install hint; message: %q", msg)
	}
}

func TestMissingChdbFails(t *testing.T) {
	t.Setenv(EnvEngine, EngineChdb)
	t.Setenv(EnvChdbPython, "/nonexistent/python")

	if msg := newFailure(t); !strings.Contains(msg, "pip install -r requirements-test.txt") {
		t.Fatalf("New did not fail with an install hint; message: %q", msg)
	}
}

func TestUnknownEngineFails(t *testing.T) {
	t.Setenv(EnvEngine, "clickhouse-cloud")
	if msg := newFailure(t); !strings.Contains(msg, EnvEngine) {
		t.Fatalf("New did not name %s; message: %q", EnvEngine, msg)
	}
}

// TestEngineVersion pins each leg of `make test` to the engine it claims to
// test: CHTEST_EXPECT_VERSION is set by the Makefile for both legs.
func TestEngineVersion(t *testing.T) {
	v := Shared(t).Version()
	if want := os.Getenv(EnvExpectVersion); !strings.HasPrefix(v, want) {
		t.Fatalf("engine %s: version %s, want prefix %s", Engine(), v, os.Getenv(EnvExpectVersion))
	}
	major, _, _ := strings.Cut(v, ".")
	switch Engine() {
	case EngineServer:
		if major != "18" {
			t.Errorf("clickhouse-server leg runs %s, want 18.16", v)
		}
	case EngineChdb:
		if n, err := strconv.Atoi(major); err != nil || n < 26 {
			t.Errorf("chdb leg runs %s, want 26.x or later", v)
		}
	}
}

// A port is handed out once per machine: never twice in one process (a
// cluster picks all its ports before starting any node), and never while
// another test process holds its lock — both ended in "Address already in
// use" under make test.
func TestFreePortNeverTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 300 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	lo, hi := portRange()
	dir := filepath.Join(os.TempDir(), "changelens-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	// Another process's reservation: the same lock taken through a second
	// open file description conflicts exactly as another process's would.
	other := -1
	var f *os.File
	for p := lo; p < hi && other < 0; p++ {
		if seen[p] {
			continue
		}
		g, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		if syscall.Flock(int(g.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			_ = g.Close() // held by a test process running now
			continue
		}
		other, f = p, g
	}
	if f == nil {
		t.Fatalf("every port in [%d, %d) is locked", lo, hi)
	}
	defer f.Close()
	if reservePort(other) {
		t.Fatalf("port %d reserved although another holder has its lock", other)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if !reservePort(other) {
		t.Fatalf("port %d not reserved once its lock was released", other)
	}
}
