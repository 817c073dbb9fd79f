package portal

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

// TestPortalFailuresSharedThroughRedis: two instances on one Redis share
// the portal's failure limits, and with Redis gone each still applies its
// own count.
func TestPortalFailuresSharedThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	open := func() FailureCounter {
		st, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return NewFailureCounter(st, 4, 5*time.Minute, zap.NewNop())
	}
	a, b := open(), open()
	if _, shared := a.(*sharedFailures); !shared {
		t.Fatalf("a Redis store gives %T, want the shared counter", a)
	}
	ctx := context.Background()
	now := time.Now()
	// Two failures on each instance: the key is blocked on both.
	for i, c := range []FailureCounter{a, b, a, b} {
		if _, blocked := c.Blocked(ctx, now, "user:alice"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		c.Fail(ctx, now, "user:alice")
	}
	for name, c := range map[string]FailureCounter{"a": a, "b": b} {
		if until, blocked := c.Blocked(ctx, now, "user:alice"); !blocked || until.Sub(now) < 4*time.Minute {
			t.Fatalf("instance %s after 4 failures over two instances: blocked %v until %v", name, blocked, until)
		}
	}
	b.Reset(ctx, "user:alice")
	if _, blocked := a.Blocked(ctx, now, "user:alice"); blocked {
		t.Fatal("a reset on b did not reach a")
	}

	// Without Redis, each instance counts alone.
	srv.Stop()
	for range 4 {
		a.Fail(ctx, now, "ip:192.0.2.7")
	}
	if _, blocked := a.Blocked(ctx, now, "ip:192.0.2.7"); !blocked {
		t.Fatal("with Redis down, the local count was not applied")
	}
	if _, blocked := b.Blocked(ctx, now, "ip:192.0.2.7"); blocked {
		t.Fatal("with Redis down, b saw a's failures")
	}

	// Any other store counts in memory.
	mem := state.NewMemory(state.MemoryOptions{})
	defer mem.Close()
	if c := NewFailureCounter(mem, 0, 0, zap.NewNop()); c == nil {
		t.Fatal("no counter for the memory store")
	} else if _, ok := c.(*FailureLimiter); !ok {
		t.Fatalf("memory store gives %T, want *FailureLimiter", c)
	}
}

// TestPortalFailuresReserveParallelAcrossInstances: 40 attempts reserved at
// once over two instances on one Redis get exactly max_failures
// reservations; a release on the instance that reserved gives the attempt
// back to the other instance too.
func TestPortalFailuresReserveParallelAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	open := func() FailureCounter {
		st := openRedisStore(t, srv.Addr())
		return NewFailureCounter(st, 4, 5*time.Minute, zap.NewNop())
	}
	counters := []FailureCounter{open(), open()}
	ctx := context.Background()
	now := time.Now()
	var mu sync.Mutex
	type grant struct {
		res      Reservation
		instance int
	}
	var granted []grant
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			// Each instance's local count is per address here, so only the
			// shared count can hold the login to 4.
			res, _, blocked := counters[i%2].Reserve(ctx, now, "ip:192.0.2."+strconv.Itoa(i), "user:alice")
			if !blocked {
				mu.Lock()
				granted = append(granted, grant{res, i % 2})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(granted) != 4 {
		t.Fatalf("%d of 40 parallel attempts reserved, want 4", len(granted))
	}
	// A request releases on the instance that served it; each instance
	// also keeps its own local count, so the other one must see the
	// release through the shared count.
	g := granted[0]
	counters[g.instance].Release(ctx, g.res)
	if _, _, blocked := counters[1-g.instance].Reserve(ctx, now, "user:alice"); blocked {
		t.Fatal("a release on one instance did not give the attempt back to the other")
	}
	if _, until, blocked := counters[1].Reserve(ctx, now, "user:alice"); !blocked || until.Sub(now) < 4*time.Minute {
		t.Fatalf("fifth attempt: blocked %v until %v", blocked, until)
	}
}

// TestPasswordlessLimitsSharedThroughRedis: the passwordless starts of one
// address, made at once on two instances sharing a Redis store, pass the
// per-address limit once in all, not once per instance.
func TestPasswordlessLimitsSharedThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	open := func() FailureCounter {
		st := openRedisStore(t, srv.Addr())
		perAddress, all := NewPasswordlessLimits(st, zap.NewNop())
		if all == nil {
			t.Fatal("no budget counter")
		}
		return perAddress
	}
	counters := []FailureCounter{open(), open()}
	ctx := context.Background()
	now := time.Now()
	var passed atomic.Int32
	var wg sync.WaitGroup
	for i := range 2 * DefaultPasswordlessPerIP {
		wg.Go(func() {
			if _, _, blocked := counters[i%2].Reserve(ctx, now, "passwordless-ip:198.51.100.7"); !blocked {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := int(passed.Load()); n != DefaultPasswordlessPerIP {
		t.Fatalf("%d of %d parallel starts on two instances passed, want %d", n, 2*DefaultPasswordlessPerIP, DefaultPasswordlessPerIP)
	}
}

// openRedisStore opens a Redis store on addr, closed with the test: one
// instance of several sharing the server.
func openRedisStore(t *testing.T, addr string) *redisstore.Store {
	t.Helper()
	st, err := redisstore.New(redisstore.Options{Addrs: []string{addr}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
