package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/testkit"
)

// The tests of this file run the store against a real Redis Cluster (three
// masters made with redis-cli --cluster create) and a real Sentinel setup
// (one master, one sentinel), all on loopback, started and stopped here.

// redisTool returns the path of a Redis binary, or skips loudly.
func redisTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIPPED: %s is not installed (apt-get install -y redis-server); the Redis topology tests need it", name)
	}
	return p
}

// startRedisProc runs redis-server with args on port and waits for PING.
func startRedisProc(t *testing.T, bin string, port int, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	probe := &redisServer{t: t, port: port}
	if _, ok := waitFor(10*time.Second, probe.ping); !ok {
		t.Fatalf("redis on port %d did not answer:\n%s", port, out.String())
	}
	return cmd
}

// cli runs redis-cli and returns its output.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(redisTool(t, "redis-cli"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// startRedisCluster starts three cluster-enabled masters, joins them into
// one cluster covering every slot and returns their addresses.
func startRedisCluster(t *testing.T) []string {
	t.Helper()
	bin := redisTool(t, "redis-server")
	redisTool(t, "redis-cli")
	dir := t.TempDir()
	var addrs []string
	for i := range 3 {
		port := testkit.FreePort()
		nodeDir := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			t.Fatal(err)
		}
		startRedisProc(t, bin, port, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
			"--dir", nodeDir, "--save", "", "--appendonly", "no")
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	cli(t, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	host, port, _ := strings.Cut(addrs[0], ":")
	if _, ok := waitFor(15*time.Second, func() bool {
		out, err := exec.Command(redisTool(t, "redis-cli"), "-h", host, "-p", port, "cluster", "info").Output()
		return err == nil && strings.Contains(string(out), "cluster_state:ok")
	}); !ok {
		t.Fatal("the cluster never reached cluster_state:ok")
	}
	return addrs
}

// sentinelSetup is a master, optionally a replica, and one sentinel
// monitoring them as "mymaster".
type sentinelSetup struct {
	sentinel string // address
	master   *exec.Cmd
	replica  int // port, 0 without a replica
}

// startRedisSentinel starts the setup and waits until the sentinel knows
// the master (and the replica, if any).
func startRedisSentinel(t *testing.T, withReplica bool) *sentinelSetup {
	t.Helper()
	bin := redisTool(t, "redis-server")
	dir := t.TempDir()
	master := testkit.FreePort()
	su := &sentinelSetup{}
	// Each server works in a directory of its own: a replica's full sync
	// writes an RDB file there, which a server started in the same
	// directory would load.
	dirOf := func(name string) string {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		return d
	}
	su.master = startRedisProc(t, bin, master, "--port", strconv.Itoa(master), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dirOf("master"))
	if withReplica {
		su.replica = testkit.FreePort()
		startRedisProc(t, bin, su.replica, "--port", strconv.Itoa(su.replica), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dirOf("replica"), "--replicaof", "127.0.0.1", strconv.Itoa(master))
	}
	sentinel := testkit.FreePort()
	conf := filepath.Join(dir, "sentinel.conf")
	err := os.WriteFile(conf, fmt.Appendf(nil, "port %d\nbind 127.0.0.1\ndir %s\n"+
		"sentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 1000\n"+
		"sentinel failover-timeout mymaster 5000\n", sentinel, dir, master), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	startRedisProc(t, bin, sentinel, conf, "--sentinel")
	su.sentinel = fmt.Sprintf("127.0.0.1:%d", sentinel)
	if _, ok := waitFor(10*time.Second, func() bool {
		return strings.Contains(su.ask(t, "get-master-addr-by-name", "mymaster"), strconv.Itoa(master)) &&
			(!withReplica || strings.Contains(su.ask(t, "replicas", "mymaster"), strconv.Itoa(su.replica)))
	}); !ok {
		t.Fatal("the sentinel never reported the master and its replica")
	}
	return su
}

// ask runs a SENTINEL command and returns its output ("" on error).
func (su *sentinelSetup) ask(t *testing.T, args ...string) string {
	_, port, _ := strings.Cut(su.sentinel, ":")
	out, err := exec.Command(redisTool(t, "redis-cli"), append([]string{"-p", port, "sentinel"}, args...)...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// newTopologyRedis returns a store on the given options, closed when the
// test ends, once its invalidation subscription is up.
func newTopologyRedis(t *testing.T, clk *fakeClock, o RedisOptions) *Redis {
	t.Helper()
	o.KeyPrefix, o.Timeout, o.Now = "t:", 2*time.Second, clk.Now
	r, err := NewRedis(o)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if _, ok := waitFor(10*time.Second, r.Up); !ok {
		t.Fatal("store never subscribed to invalidations")
	}
	return r
}

// checkTwoStores runs what several Caddy instances rely on, through two
// stores a and b on one Redis deployment: sessions made on one are read
// on the other, changes and deletions reach the other's near-cache,
// per-user lookups and scans see sessions whatever node holds them, user
// state is shared and conditional updates lose nothing.
func checkTwoStores(t *testing.T, clk *fakeClock, a, b *Redis) {
	t.Helper()
	ctx := context.Background()
	const n = 40 // enough keys to land on every node of a cluster
	var keys []Key
	for i := range n {
		s := testSession(clk, fmt.Sprintf("user-%d", i%4))
		if err := []*Redis{a, b}[i%2].Create(ctx, s); err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
		keys = append(keys, s.Key)
	}
	for i, k := range keys {
		if _, err := []*Redis{b, a}[i%2].Get(ctx, k); err != nil {
			t.Fatalf("session %d created on one store, Get on the other: %v", i, err)
		}
	}
	mine, err := b.ByUser(ctx, "user-1")
	if err != nil || len(mine) != n/4 {
		t.Fatalf("ByUser: %d sessions, %v; want %d", len(mine), err, n/4)
	}
	seen := 0
	if err := a.Scan(ctx, func(*Session) bool { seen++; return true }); err != nil || seen != n {
		t.Fatalf("Scan saw %d sessions, %v; want %d", seen, err, n)
	}

	// A status change on A reaches B's near-cache; a deletion on B reaches A's.
	k := keys[0]
	if _, err := a.Update(ctx, k, func(c *Session) error {
		return c.SetStatus(StatusAuthenticated, clk.Now(), "", 0)
	}); err != nil {
		t.Fatal(err)
	}
	if took, ok := waitFor(2*time.Second, func() bool {
		got, err := b.Get(ctx, k)
		return err == nil && got.Status == StatusAuthenticated
	}); !ok {
		t.Fatal("status change on A not seen on B within 2s")
	} else {
		t.Logf("status change on A seen on B after %v", took)
	}
	if _, err := b.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if took, ok := waitFor(2*time.Second, func() bool {
		_, err := a.Get(ctx, k)
		return errors.Is(err, ErrNotFound)
	}); !ok {
		t.Fatal("deletion on B not seen on A within 2s")
	} else {
		t.Logf("deletion on B seen on A after %v", took)
	}

	// User state and concurrent conditional updates from both stores.
	for i := range 20 {
		if _, err := []*Redis{a, b}[i%2].UpdateUser(ctx, "user-2", func(u *UserState) error {
			u.OTPSends = append(u.OTPSends, clk.Now())
			return nil
		}); err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
	}
	if u, err := a.GetUser(ctx, "user-2"); err != nil || len(u.OTPSends) != 20 {
		t.Fatalf("user state after 20 updates over two stores: %+v, %v", u, err)
	}
	k = keys[1]
	done := make(chan error, 2)
	for _, st := range []*Redis{a, b} {
		go func() {
			for range 25 {
				if _, err := st.Update(ctx, k, func(c *Session) error {
					c.UserAttributes = map[string]string{"n": strconv.Itoa(len(c.Factors))}
					c.Factors = append(c.Factors, "x")
					return nil
				}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("concurrent Update: %v", err)
		}
	}
	b.near.flush()
	if got, err := b.Get(ctx, k); err != nil || len(got.Factors) != 50 {
		t.Fatalf("after 2×25 concurrent updates: %d, %v; want 50 (a lost update)", len(got.Factors), err)
	}
}

func TestRedisCluster(t *testing.T) {
	addrs := startRedisCluster(t)
	clk := newFakeClock()
	// Each store knows a different seed node.
	a := newTopologyRedis(t, clk, RedisOptions{Addrs: addrs[:1], Cluster: true})
	b := newTopologyRedis(t, clk, RedisOptions{Addrs: addrs[2:], Cluster: true})
	checkTwoStores(t, clk, a, b)
}

func TestRedisSentinel(t *testing.T) {
	su := startRedisSentinel(t, false)
	clk := newFakeClock()
	a := newTopologyRedis(t, clk, RedisOptions{Addrs: []string{su.sentinel}, MasterName: "mymaster"})
	b := newTopologyRedis(t, clk, RedisOptions{Addrs: []string{su.sentinel}, MasterName: "mymaster"})
	checkTwoStores(t, clk, a, b)
}

// TestRedisSentinelFailover kills the master: the sentinel promotes the
// replica, the store follows it, the sessions written before (and
// replicated) are still there, and writes work again.
func TestRedisSentinelFailover(t *testing.T) {
	su := startRedisSentinel(t, true)
	clk := newFakeClock()
	r := newTopologyRedis(t, clk, RedisOptions{Addrs: []string{su.sentinel}, MasterName: "mymaster"})
	other := newTopologyRedis(t, clk, RedisOptions{Addrs: []string{su.sentinel}, MasterName: "mymaster"})
	ctx := context.Background()
	before := testSession(clk, "alice")
	if err := r.Create(ctx, before); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Get(ctx, before.Key); err != nil { // now in other's near-cache
		t.Fatal(err)
	}
	// Wait until the replica has it (replication is asynchronous).
	if _, ok := waitFor(5*time.Second, func() bool {
		out, err := exec.Command(redisTool(t, "redis-cli"), "-p", strconv.Itoa(su.replica), "exists", "t:s:"+before.Key.String()).Output()
		return err == nil && strings.TrimSpace(string(out)) == "1"
	}); !ok {
		t.Fatal("the replica never received the session")
	}

	_ = su.master.Process.Kill()
	_ = su.master.Wait()
	start := time.Now()
	if _, ok := waitFor(30*time.Second, func() bool {
		return strings.Contains(su.ask(t, "get-master-addr-by-name", "mymaster"), strconv.Itoa(su.replica))
	}); !ok {
		t.Fatal("the sentinel never promoted the replica")
	}
	var after *Session
	took, ok := waitFor(30*time.Second, func() bool {
		after = testSession(clk, "bob")
		return r.Create(ctx, after) == nil
	})
	if !ok {
		t.Fatal("the store never wrote again after the failover")
	}
	t.Logf("failover: writes work again %v after the master was killed (%v after the promotion)", time.Since(start), took)
	r.near.flush()
	for _, s := range []*Session{before, after} {
		if _, err := r.Get(ctx, s.Key); err != nil {
			t.Fatalf("session of %s after the failover: %v", s.UserID, err)
		}
	}
	// The other store's invalidation subscription followed the new master:
	// a change made through r reaches its near-cache.
	if _, err := r.Update(ctx, before.Key, func(c *Session) error {
		return c.SetStatus(StatusAuthenticated, clk.Now(), "", 0)
	}); err != nil {
		t.Fatal(err)
	}
	if took, ok := waitFor(10*time.Second, func() bool {
		got, err := other.Get(ctx, before.Key)
		return err == nil && got.Status == StatusAuthenticated
	}); !ok {
		t.Fatal("after the failover, a change through one store never reached the other's near-cache")
	} else {
		t.Logf("after the failover, a change reached the other store after %v", took)
	}
}
