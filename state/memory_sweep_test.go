package state

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestMemorySweepRacingReuse re-creates a session under the id of one that
// has just expired while the sweeper removes expired entries: the new
// session must stay listed by ByUser whichever runs first.
func TestMemorySweepRacingReuse(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	const rounds = 3000
	id := NewID()
	key := KeyOf(id)
	for i := range rounds {
		// Lifetime zero: expired at once, on the injected and the real clock.
		s := NewSession(id, nil, clk.Now(), 0, 0)
		s.UserID = "alice"
		if err := m.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { m.cache.DeleteExpired(unixNanos(clk.Now())) })
		wg.Go(func() {
			s := NewSession(id, nil, clk.Now(), time.Hour, 0)
			s.UserID = "alice"
			if err := m.Create(ctx, s); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		ss, _ := m.ByUser(ctx, "alice")
		if len(ss) != 1 || ss[0].Key != key {
			t.Fatalf("round %d: ByUser lists %d sessions, want the live one", i, len(ss))
		}
		if _, err := m.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
}
