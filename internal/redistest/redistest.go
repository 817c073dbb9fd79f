// Package redistest starts throwaway Redis deployments for tests: a
// standalone redis-server (Start), a three-master Redis Cluster
// (StartCluster) and a master watched by one Sentinel, with or without a
// replica (StartSentinel). Every process listens on a free loopback port,
// works in a directory of its own under t.TempDir(), persists nothing, and
// is killed when the test ends.
//
// When redis-server (or redis-cli, which the Cluster and Sentinel setups
// also need) is not installed, the test is skipped with a message that
// says so; every other failure to start fails the test. Only tests import
// it.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/testkit"
)

// startTimeout bounds the wait for a process or a deployment to answer; a
// loaded two-core machine meets it.
const startTimeout = 30 * time.Second

// tool returns the path of a Redis binary, or skips t when it is missing.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIPPED: %s not installed (apt-get install -y redis-server): this test needs a real Redis", name)
	}
	return p
}

// Server is one redis-server process (a standalone server, a cluster node,
// a master, a replica or a sentinel).
type Server struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// Start starts a standalone redis-server for t, without persistence, and
// waits until it answers PING. args are added to its command line.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return start(t, tool(t, "redis-server"), t.TempDir(), args...)
}

// start runs bin on a free port in dir with the default options and args.
func start(t testing.TB, bin, dir string, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin, port: testkit.FreePort(), dir: dir}
	s.args = append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no",
	}, args...)
	s.run()
	t.Cleanup(s.Stop)
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// run starts the process and waits until it answers PING.
func (s *Server) run() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	log, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close() // the child has its own descriptor
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", s.bin, err)
	}
	if _, ok := testkit.WaitFor(startTimeout, s.ping); !ok {
		out, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
		s.t.Fatalf("redis on %s did not answer PING within %v:\n%s", s.Addr(), startTimeout, out)
	}
}

// Stop kills the server and waits for it to exit. It does nothing if the
// server is not running.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // in case it was frozen
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a stopped server again, on the same port and with the
// same options, and waits until it answers. It keeps no data from before
// (nothing is persisted).
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatalf("redistest: Restart of %s, which is running", s.Addr())
	}
	s.run()
}

// Freeze suspends the server (SIGSTOP): connections stay open but nothing
// answers, as with a hung server or a network partition. Thaw resumes it.
func (s *Server) Freeze() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server.
func (s *Server) Thaw() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }

// ping reports whether the server answers PING.
func (s *Server) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
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

// CLI runs redis-cli against the server with args (a command and its
// arguments) and returns its output, trimmed of surrounding space.
func (s *Server) CLI(args ...string) (string, error) {
	s.t.Helper()
	out, err := exec.Command(tool(s.t, "redis-cli"),
		append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port)}, args...)...).Output()
	return strings.TrimSpace(string(out)), err
}

// Cluster is a Redis Cluster of three masters, without replicas, covering
// every slot.
type Cluster struct {
	// Nodes are the masters.
	Nodes []*Server
}

// Addrs returns the host:port of every node.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// StartCluster starts three cluster-enabled masters, joins them with
// redis-cli --cluster create and waits until every node reports
// cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := tool(t, "redis-server")
	cli := tool(t, "redis-cli")
	c := &Cluster{}
	for i := range 3 {
		dir := subdir(t, "node"+strconv.Itoa(i))
		c.Nodes = append(c.Nodes, start(t, bin, dir, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf")))
	}
	args := append(append([]string{"--cluster", "create"}, c.Addrs()...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, n := range c.Nodes {
		if _, ok := testkit.WaitFor(startTimeout, func() bool {
			out, err := n.CLI("cluster", "info")
			return err == nil && strings.Contains(out, "cluster_state:ok")
		}); !ok {
			t.Fatalf("cluster node %s never reached cluster_state:ok", n.Addr())
		}
	}
	return c
}

// Sentinel is a master, optionally a replica of it, and one Sentinel that
// monitors them under MasterName, with a quorum of one and a down-after of
// one second, so that killing the master promotes the replica within
// seconds.
type Sentinel struct {
	// MasterName is the name the Sentinel knows the master by.
	MasterName string
	// Master is the master at the start; Replica its replica, or nil.
	Master, Replica *Server
	// Server is the sentinel process itself.
	Server *Server
}

// Addr returns the Sentinel's host:port, the address clients are given.
func (s *Sentinel) Addr() string { return s.Server.Addr() }

// StartSentinel starts the setup and waits until the replica, if any, has
// finished its first sync and the Sentinel reports the master (and the
// replica).
func StartSentinel(t testing.TB, withReplica bool) *Sentinel {
	t.Helper()
	bin := tool(t, "redis-server")
	tool(t, "redis-cli")
	// Each server works in a directory of its own: a replica's full sync
	// writes an RDB file there, which a server started in the same
	// directory would load.
	su := &Sentinel{MasterName: "mymaster"}
	su.Master = start(t, bin, subdir(t, "master"))
	if withReplica {
		su.Replica = start(t, bin, subdir(t, "replica"), "--replicaof", "127.0.0.1", strconv.Itoa(su.Master.Port()))
	}
	dir := subdir(t, "sentinel")
	conf := filepath.Join(dir, "sentinel.conf")
	err := os.WriteFile(conf, fmt.Appendf(nil, "sentinel monitor %s 127.0.0.1 %d 1\n"+
		"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n",
		su.MasterName, su.Master.Port(), su.MasterName, su.MasterName), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// The config file comes first; the sentinel rewrites it as it learns.
	su.Server = &Server{t: t, bin: bin, port: testkit.FreePort(), dir: dir}
	su.Server.args = []string{
		conf, "--sentinel", "--port", strconv.Itoa(su.Server.port),
		"--bind", "127.0.0.1", "--dir", dir,
	}
	su.Server.run()
	t.Cleanup(su.Server.Stop)
	if su.Replica != nil {
		if _, ok := testkit.WaitFor(startTimeout, func() bool {
			out, err := su.Replica.CLI("info", "replication")
			return err == nil && strings.Contains(out, "master_link_status:up")
		}); !ok {
			t.Fatal("the replica never finished its first sync with the master")
		}
	}
	if _, ok := testkit.WaitFor(startTimeout, func() bool {
		return strings.Contains(su.Ask("get-master-addr-by-name", su.MasterName), strconv.Itoa(su.Master.Port())) &&
			(su.Replica == nil || strings.Contains(su.Ask("replicas", su.MasterName), strconv.Itoa(su.Replica.Port())))
	}); !ok {
		t.Fatal("the sentinel never reported the master and its replica")
	}
	return su
}

// Ask runs a SENTINEL subcommand with args and returns the output, or ""
// if the Sentinel does not answer.
func (s *Sentinel) Ask(args ...string) string {
	out, err := s.Server.CLI(append([]string{"sentinel"}, args...)...)
	if err != nil {
		return ""
	}
	return out
}

// subdir makes a new directory named name under a test's temporary
// directory.
func subdir(t testing.TB, name string) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}
