package bench_test

import (
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

// openRedis opens the Redis store of the side-by-side store benchmarks
// (BenchmarkCreate, BenchmarkGateHit) against a throwaway redis-server on a
// free loopback port; without redis-server installed its sub-benchmarks
// skip.
func openRedis(b *testing.B) state.Store {
	srv := redistest.Start(b)
	r, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	if _, ok := testkit.WaitFor(30*time.Second, r.Up); !ok {
		b.Fatal("redis store never connected")
	}
	return r
}
