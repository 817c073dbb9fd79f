package redisstore

import (
	"context"
	"errors"
	"testing"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
)

// TestPingFollowsTheServer: Ping answers nil while Redis runs, an
// ErrUnavailable error within the timeout once it is stopped, and nil
// again after it restarts.
func TestPingFollowsTheServer(t *testing.T) {
	srv := redistest.Start(t)
	var log healthLog
	st := newTestRedis(t, srv, newFakeClock(), outageOptions(&log))
	ctx := context.Background()
	if err := state.Ping(ctx, st); err != nil {
		t.Fatalf("ping with redis up: %v", err)
	}
	srv.Stop()
	if err := st.Ping(ctx); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("ping with redis stopped: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
}

// TestPingOfStoresWithoutBackend: a store that is no Pinger is always
// reachable.
func TestPingOfStoresWithoutBackend(t *testing.T) {
	if err := state.Ping(context.Background(), state.NewMemory(state.MemoryOptions{})); err != nil {
		t.Fatal(err)
	}
}
