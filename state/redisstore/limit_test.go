package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/redistest"
)

func TestRedisFailureWindowShared(t *testing.T) {
	srv := redistest.Start(t)
	clk := newFakeClock()
	a := newTestRedis(t, srv, clk, nil).FailureWindow(3, 5*time.Minute)
	b := newTestRedis(t, srv, clk, nil).FailureWindow(3, 5*time.Minute)
	ctx := context.Background()
	t0 := clk.Now()
	blocked := func(f *FailureWindow, at time.Time, keys ...string) (time.Time, bool) {
		t.Helper()
		until, ok, err := f.Blocked(ctx, at, keys...)
		if err != nil {
			t.Fatal(err)
		}
		return until, ok
	}
	// Three failures, split over two instances, at t0, t0+1m and t0+2m.
	for i, f := range []*FailureWindow{a, b, a} {
		if _, ok := blocked(b, t0.Add(time.Duration(i)*time.Minute), "ip:192.0.2.1"); ok {
			t.Fatalf("blocked after %d failures", i)
		}
		if err := f.Fail(ctx, t0.Add(time.Duration(i)*time.Minute), "ip:192.0.2.1", "user:alice"); err != nil {
			t.Fatal(err)
		}
	}
	at := t0.Add(2 * time.Minute)
	until, ok := blocked(b, at, "ip:192.0.2.1")
	if !ok || !until.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("after 3 failures: blocked %v until %v, want until %v", ok, until, t0.Add(5*time.Minute))
	}
	if _, ok := blocked(a, at, "ip:198.51.100.7"); ok {
		t.Fatal("another key is blocked")
	}
	// The oldest failure leaves the window at t0+5m: free again.
	if _, ok := blocked(a, t0.Add(5*time.Minute), "ip:192.0.2.1"); ok {
		t.Fatal("still blocked once the oldest failure left the window")
	}
	// Reset on one instance frees the key on the other.
	if _, ok := blocked(a, at, "user:alice"); !ok {
		t.Fatal("user key not blocked")
	}
	if err := b.Reset(ctx, "user:alice"); err != nil {
		t.Fatal(err)
	}
	if _, ok := blocked(a, at, "user:alice"); ok {
		t.Fatal("blocked after Reset")
	}
	// Many failures keep a bounded set that expires in Redis.
	for i := range 50 {
		if err := a.Fail(ctx, at.Add(time.Duration(i)*time.Millisecond), "ip:203.0.113.9"); err != nil {
			t.Fatal(err)
		}
	}
	n, err := a.r.client.ZCard(ctx, a.key("ip:203.0.113.9")).Result()
	ttl, _ := a.r.client.PTTL(ctx, a.key("ip:203.0.113.9")).Result()
	if err != nil || n != 6 || ttl <= 0 || ttl > 5*time.Minute {
		t.Fatalf("set of 50 failures: %d entries (want 6), ttl %v, %v", n, ttl, err)
	}
	srv.Stop()
	if _, _, err := a.Blocked(ctx, at, "ip:192.0.2.1"); err == nil {
		t.Fatal("no error with Redis stopped")
	}
}
