package state

import (
	"bufio"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/testkit"
)

// redisServer is a throwaway redis-server on a free loopback port, without
// persistence, stopped when the test ends.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

// startRedis starts a redis-server for t, or skips t (loudly) when the
// binary is not installed.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("SKIPPED: redis-server is not installed (apt-get install -y redis-server); Redis store tests need it")
	}
	port := testkit.FreePort()
	s := &redisServer{t: t, bin: bin, port: port}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server (again) on its port and waits until it answers.
func (s *redisServer) start() {
	s.t.Helper()
	if s.dir == "" {
		s.dir = s.t.TempDir() // never the package directory: no stray dump.rdb is loaded or left
	}
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s.ping() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on %s did not answer PING", s.addr())
}

// stop kills the server and waits for it to exit.
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // in case it was frozen
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// freeze and thaw suspend and resume the server: connections stay open but
// nothing answers, as with a hung server or a network partition.
func (s *redisServer) freeze() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *redisServer) thaw()   { _ = s.cmd.Process.Signal(syscall.SIGCONT) }

func (s *redisServer) ping() bool {
	c, err := net.DialTimeout("tcp", s.addr(), 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// waitFor polls cond until it holds or the timeout passes, and returns how
// long it took and whether it held.
func waitFor(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(time.Millisecond)
	}
}
