package state

import (
	"testing"
	"time"
)

// BenchmarkTableSweep is one sweep of a table holding 1M sessions of which
// none has expired: what a store with cleanup_interval 1s pays every
// second before anything is removed.
func BenchmarkTableSweep(b *testing.B) {
	tb := newTable[statusCode]()
	now := time.Now()
	s := NewSession(NewID(), nil, now, time.Hour, 0)
	s.UserID = "user"
	enc := AppendSession(nil, s)
	for i := range 1_000_000 {
		k := KeyOf(NewID())
		copy(enc[1:], k[:])
		tb.setStored(k, enc, now.Add(time.Hour).UnixNano()+int64(i), 0)
	}
	b.ResetTimer()
	for b.Loop() {
		tb.DeleteExpired(now.UnixNano())
	}
	if n := tb.ItemCount(); n != 1_000_000 {
		b.Fatalf("%d sessions left", n)
	}
}
