package redisstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
)

// healthLog records OnHealth calls.
type healthLog struct {
	mu     sync.Mutex
	events []bool
}

func (h *healthLog) record(up bool, _ error) {
	h.mu.Lock()
	h.events = append(h.events, up)
	h.mu.Unlock()
}

func (h *healthLog) get() []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

func outageOptions(log *healthLog) func(*Options) {
	return func(o *Options) {
		o.Timeout = 300 * time.Millisecond
		o.PingInterval = 100 * time.Millisecond
		o.MaxStaleness = 30 * time.Second
		o.OnHealth = log.record
	}
}

func TestRedisStoppedThenRestarted(t *testing.T) {
	srv := redistest.Start(t)
	clk := newFakeClock()
	var log healthLog
	a := newTestRedis(t, srv, clk, outageOptions(&log))
	b := newTestRedis(t, srv, clk, nil)
	ctx := context.Background()

	cached := testSession(clk, "alice")
	if err := a.Create(ctx, cached); err != nil {
		t.Fatal(err)
	}
	other := testSession(clk, "bob") // in Redis, not in A's near-cache
	if err := b.Create(ctx, other); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	if _, ok := waitFor(settle, func() bool { return !a.Up() }); !ok {
		t.Fatal("store did not notice that Redis stopped")
	}
	checkDegraded(t, a, clk, cached, other)

	srv.Restart()
	took, ok := waitFor(settle, a.Up)
	if !ok {
		t.Fatal("store did not recover after Redis restarted")
	}
	t.Logf("resubscribed %v after redis-server answered again", took)
	// The restarted server kept nothing (no persistence): a fresh session
	// works end to end.
	s := testSession(clk, "carol")
	if err := a.Create(ctx, s); err != nil {
		t.Fatalf("Create after recovery: %v", err)
	}
	if _, err := b.Get(ctx, s.Key); err != nil {
		t.Fatalf("Get on B after recovery: %v", err)
	}
	if got := log.get(); !slices.Equal(got, []bool{true, false, true}) {
		t.Errorf("OnHealth calls %v, want [true false true] (once per change)", got)
	}
}

func TestRedisFrozenThenThawed(t *testing.T) {
	srv := redistest.Start(t)
	clk := newFakeClock()
	var log healthLog
	a := newTestRedis(t, srv, clk, outageOptions(&log))
	b := newTestRedis(t, srv, clk, nil)
	ctx := context.Background()

	cached := testSession(clk, "alice")
	if err := a.Create(ctx, cached); err != nil {
		t.Fatal(err)
	}
	other := testSession(clk, "bob")
	if err := b.Create(ctx, other); err != nil {
		t.Fatal(err)
	}

	srv.Freeze()
	took, ok := waitFor(settle, func() bool { return !a.Up() })
	if !ok {
		srv.Thaw()
		t.Fatal("store did not notice that Redis hung")
	}
	t.Logf("hung server noticed after %v", took)
	checkDegraded(t, a, clk, cached, other)
	if err := a.Touch(ctx, cached.Key, clk.Now()); err != nil {
		t.Errorf("Touch while Redis hangs: %v", err)
	}

	srv.Thaw()
	took, ok = waitFor(settle, a.Up)
	if !ok {
		t.Fatal("store did not recover after Redis resumed")
	}
	t.Logf("resubscribed %v after redis-server resumed", took)
	// Nothing was deleted because of the failed reads.
	for _, s := range []*state.Session{cached, other} {
		if _, err := a.Get(ctx, s.Key); err != nil {
			t.Errorf("Get after recovery: %v", err)
		}
	}
	if _, err := a.Update(ctx, cached.Key, func(c *state.Session) error {
		return c.SetStatus(state.StatusAuthenticated, clk.Now(), "", 0)
	}); err != nil {
		t.Errorf("Update after recovery: %v", err)
	}
	if got := log.get(); !slices.Equal(got, []bool{true, false, true}) {
		t.Errorf("OnHealth calls %v, want [true false true] (once per change)", got)
	}
}

// checkDegraded asserts the behaviour while Redis is unreachable: writes and
// uncached reads fail with state.ErrUnavailable (never state.ErrNotFound), the
// near-cached session is served until MaxStaleness has passed. (A failed write
// to a session drops it from the near-cache, since it may have been applied, so
// writes here go to the uncached one.)
func checkDegraded(t *testing.T, a *Store, clk *fakeClock, cached, other *state.Session) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	err := a.Create(ctx, testSession(clk, "dave"))
	t.Logf("Create failed after %v: %v", time.Since(start), err)
	if !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("Create while Redis is away: %v, want ErrUnavailable", err)
	}
	if _, err := a.Update(ctx, other.Key, func(*state.Session) error { return nil }); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("Update while Redis is away: %v, want ErrUnavailable", err)
	}
	if _, err := a.Delete(ctx, other.Key); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("Delete while Redis is away: %v, want ErrUnavailable", err)
	}
	if _, err := a.UpdateUser(ctx, "alice", func(*state.UserState) error { return nil }); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("UpdateUser while Redis is away: %v, want ErrUnavailable", err)
	}
	if _, err := a.Get(ctx, other.Key); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("Get of an uncached session while Redis is away: %v, want ErrUnavailable", err)
	}
	if _, err := a.ByUser(ctx, "alice"); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("ByUser while Redis is away: %v, want ErrUnavailable", err)
	}
	if _, err := a.Get(ctx, cached.Key); err != nil {
		t.Errorf("Get of a near-cached session within MaxStaleness: %v", err)
	}
	clk.Advance(29 * time.Second)
	if _, err := a.Get(ctx, cached.Key); err != nil {
		t.Errorf("Get of a near-cached session 29s into the outage: %v", err)
	}
	clk.Advance(2 * time.Second)
	if _, err := a.Get(ctx, cached.Key); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("Get of a near-cached session past MaxStaleness: %v, want ErrUnavailable", err)
	}
}
