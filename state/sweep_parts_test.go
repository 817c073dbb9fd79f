package state

import (
	"context"
	"testing"
	"time"
)

// sweepSessions is one whole sweep of the table on the store's clock, as
// the sweeper makes in steps over its interval: tests call it instead of
// waiting for the sweeper.
func (m *Memory) sweepSessions() { m.cache.DeleteExpired(unixNanos(m.now())) }

// TestTableDeleteExpiredPart checks that the parts of a stepped sweep
// each remove the expired sessions of their shards only, and together all
// of them.
func TestTableDeleteExpiredPart(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tb := newTable[int64]()
	for i := range 4 * tableShards {
		k := KeyOf(NewID())
		k[0] = byte(i) // four sessions a shard
		s := NewSession(NewID(), nil, now, time.Hour, 0)
		s.Key = k
		deadline := int64(1) // expired
		if i%tableShards%3 == 0 {
			deadline = 1 << 62 // not expired
		}
		tb.Set(k, s, deadline, 0)
	}
	const parts = 16
	for p := range parts {
		tb.DeleteExpiredPart(2, p, parts)
		for sh := range tableShards {
			n := len(tb.shards[sh].slots)
			want := 4
			switch {
			case sh%3 == 0:
			case sh < (p+1)*tableShards/parts:
				want = 0
			}
			if n != want {
				t.Fatalf("after part %d: shard %d holds %d sessions, want %d", p, sh, n, want)
			}
		}
	}
	tb.checkDense(t)
}

// TestMemorySweeperSteps checks that the store's own sweeper, which walks
// the table in steps over its interval, removes an expired session within
// about one interval.
func TestMemorySweeperSteps(t *testing.T) {
	const every = 32 * time.Millisecond // 16 steps of 2 ms
	m := NewMemory(MemoryOptions{CleanupInterval: every})
	t.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	var keys []Key
	for range 64 { // over many shards
		s := NewSession(NewID(), nil, time.Now(), 10*time.Millisecond, 0)
		if err := m.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, s.Key)
	}
	deadline := time.Now().Add(5 * time.Second) // generous for a loaded CI machine
	for m.cache.ItemCount() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d expired sessions still held after 5 s (sweep interval %v)", m.cache.ItemCount(), len(keys), every)
		}
		time.Sleep(every / 4)
	}
}
