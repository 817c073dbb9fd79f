package state

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkMemorySweepExpiring is what the memory store's sweeper pays per
// session it removes: 1M sessions, one per user as the OAM API makes them,
// expiring one after another; each iteration expires the next 10 000 and
// sweeps the whole table once. ns/op ÷ 10 000 is the cost of one removal
// (the table, the user index, the eviction hook) plus its share of
// reading the deadlines.
func BenchmarkMemorySweepExpiring(b *testing.B) {
	const (
		n     = 1_000_000
		batch = 10_000
	)
	clk := newFakeClock()
	m := NewMemory(MemoryOptions{Now: clk.Now, CleanupInterval: time.Hour})
	b.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	start := clk.Now()
	for i := range n {
		// Session i expires i ms after the first (lifetime, no idle limit).
		s := NewSession(NewID(), nil, start, time.Hour+time.Duration(i)*time.Millisecond, 0)
		s.UserID = "user-" + strconv.Itoa(i)
		s.Status = StatusAuthenticated
		if err := m.Create(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	swept := 0
	b.ResetTimer()
	for b.Loop() {
		if swept+batch > n {
			b.Fatal("ran out of sessions: lower -benchtime")
		}
		swept += batch
		now := start.Add(time.Hour + time.Duration(swept)*time.Millisecond - time.Millisecond/2)
		m.cache.DeleteExpired(unixNanos(now))
	}
	b.StopTimer()
	if got := m.cache.ItemCount(); got != n-swept {
		b.Fatalf("%d sessions left, want %d", got, n-swept)
	}
}
