package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// TestNearCacheSweeps checks that the near-cache's sweeper, which walks the
// table in steps, removes every expired entry within a little more than
// its TTL, and keeps what is still live.
func TestNearCacheSweeps(t *testing.T) {
	for _, ttl := range []time.Duration{160 * time.Millisecond, 8 * time.Millisecond} {
		n := newNearCache(ttl)
		now := time.Now()
		for i := range 100 {
			s := state.NewSession(state.NewID(), nil, now, time.Hour, 0)
			life := time.Millisecond
			if i == 0 {
				life = time.Hour
			}
			n.c.Set(s.Key, s, now, life)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); n.sweep(ctx) }()
		deadline := time.Now().Add(2*ttl + 2*time.Second)
		for n.c.Len() > 1 && time.Now().Before(deadline) {
			time.Sleep(ttl / 8)
		}
		cancel()
		<-done
		if got := n.c.Len(); got != 1 {
			t.Errorf("ttl %v: %d entries after the sweeps, want the 1 live", ttl, got)
		}
	}
}
