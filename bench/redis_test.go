package bench_test

import (
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

// openRedis opens the Redis store of the side-by-side store benchmarks
// (BenchmarkCreate, BenchmarkGateHit) against a throwaway redis-server on a
// free loopback port; without redis-server installed its sub-benchmarks
// skip.
func openRedis(b *testing.B) state.Store {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		b.Skip("SKIPPED: redis-server is not installed (apt-get install -y redis-server)")
	}
	port := testkit.FreePort()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", b.TempDir())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r, err := state.NewRedis(state.RedisOptions{Addrs: []string{"127.0.0.1:" + strconv.Itoa(port)}, Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !r.Up(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("redis store never connected")
		}
	}
	return r
}
