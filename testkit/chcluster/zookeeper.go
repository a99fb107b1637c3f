package chcluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/changelens/changelens/testkit/chtest"
)

// ZooKeeperJar is where Debian's zookeeper package installs the server.
const ZooKeeperJar = "/usr/share/java/zookeeper.jar"

// ZooKeeper is a standalone ZooKeeper server in a directory of its own.
type ZooKeeper struct {
	Port int
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartZooKeeper starts a standalone ZooKeeper with its data in dir on a
// free port and waits until it answers "ruok".
func StartZooKeeper(dir string) (*ZooKeeper, error) {
	if _, err := os.Stat(ZooKeeperJar); err != nil {
		return nil, fmt.Errorf("chcluster: ZooKeeper is not installed (%v): `make deps` installs it (make test runs it), or `apt-get install -y zookeeper`; the cluster tests need it", err)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, fmt.Errorf("chcluster: java not found (%v): ZooKeeper needs a JRE (`make deps`, or `apt-get install -y zookeeper`, pulls one in)", err)
	}
	port, err := chtest.FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	// Short ticks: sessions of stopped servers expire fast, and a restarted
	// ZooKeeper is usable in about a second.
	cfg := fmt.Sprintf("tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"maxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=ruok\n", filepath.Join(dir, "data"), port)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	z := &ZooKeeper{Port: port, dir: dir}
	return z, z.Start()
}

// Addr is "127.0.0.1:port".
func (z *ZooKeeper) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(z.Port)) }

// Start starts a stopped ZooKeeper again (same data, same port).
func (z *ZooKeeper) Start() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.cmd != nil {
		select {
		case <-z.exited:
		default:
			return errors.New("chcluster: ZooKeeper already running")
		}
	}
	out, err := os.OpenFile(filepath.Join(z.dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("java", "-Xmx128m", "-Dzookeeper.log.dir="+z.dir, "-cp", ZooKeeperJar,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(z.dir, "zoo.cfg"))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("chcluster: start ZooKeeper: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
	z.cmd, z.exited = cmd, exited
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(z.dir, "zookeeper.log"))
			return fmt.Errorf("chcluster: ZooKeeper exited during startup: %s", tail(b))
		default:
		}
		if z.ruok() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return errors.New("chcluster: ZooKeeper did not answer ruok within 30 s")
}

// Stop stops ZooKeeper (SIGTERM, SIGKILL after 10 s) and waits for it.
func (z *ZooKeeper) Stop() error {
	z.mu.Lock()
	cmd, exited := z.cmd, z.exited
	z.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = cmd.Process.Kill()
	<-exited
	return nil
}

func (z *ZooKeeper) ruok() bool {
	c, err := net.DialTimeout("tcp", z.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return false
	}
	b := make([]byte, 4)
	n, _ := c.Read(b)
	return string(b[:n]) == "imok"
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
