package redisstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
)

// TestRedisInvalidationBound measures how long a deletion on one instance
// takes to reach another instance's near-cache, over many rounds, and checks
// the documented bound of one second. The figures are logged (go test -v).
func TestRedisInvalidationBound(t *testing.T) {
	srv := redistest.Start(t)
	clk := newFakeClock()
	a := newTestRedis(t, srv, clk, nil)
	b := newTestRedis(t, srv, clk, nil)
	ctx := context.Background()
	const rounds = 200
	lat := make([]time.Duration, 0, rounds)
	for range rounds {
		s := testSession(clk, "u")
		if err := a.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		// B's first read may race the announcement of the creation, in
		// which case it is not cached; read until it is.
		if _, ok := waitFor(settle, func() bool {
			_, err := b.Get(ctx, s.Key)
			_, cached := b.near.get(s.Key)
			return err == nil && cached
		}); !ok {
			t.Fatal("B did not cache the session it read")
		}
		start := time.Now()
		if _, err := a.Delete(ctx, s.Key); err != nil {
			t.Fatal(err)
		}
		for {
			if _, ok := b.near.get(s.Key); !ok {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("deletion on A still cached on B after %v", time.Since(start))
			}
			time.Sleep(50 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
		if _, err := b.Get(ctx, s.Key); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("Get on B after invalidation: %v", err)
		}
	}
	slices.Sort(lat)
	t.Logf("delete on A -> dropped from B's near-cache, %d rounds: p50 %v, p99 %v, max %v",
		rounds, lat[rounds/2], lat[rounds*99/100], lat[rounds-1])
}

func BenchmarkRedisGetNearCache(b *testing.B) {
	srv := redistest.Start(b)
	r, s := benchStore(b, srv)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Get(ctx, s.Key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRedisGetFromRedis(b *testing.B) {
	srv := redistest.Start(b)
	r, s := benchStore(b, srv)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if s, _ := r.load(ctx, s.Key, false); s == nil {
			b.Fatal("session not found")
		}
	}
}

func BenchmarkRedisCreate(b *testing.B) {
	srv := redistest.Start(b)
	r, _ := benchStore(b, srv)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		s := state.NewSession(state.NewID(), nil, time.Now(), time.Hour, 0)
		s.UserID = "bench"
		if err := r.Create(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisUpdate(b *testing.B) {
	srv := redistest.Start(b)
	r, s := benchStore(b, srv)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := r.Update(ctx, s.Key, func(c *state.Session) error { c.StatusReason = "x"; return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStore(b *testing.B, srv *redistest.Server) (*Store, *state.Session) {
	r, err := New(Options{Addrs: []string{srv.Addr()}, KeyPrefix: "b:"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	if _, ok := waitFor(settle, r.Up); !ok {
		b.Fatal("store never subscribed")
	}
	s := state.NewSession(state.NewID(), nil, time.Now(), time.Hour, 0)
	if err := r.Create(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	return r, s
}
