package state

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTableGetNeverGoesBack checks the lock-free hit of Get: once a write
// to a session has returned, no Get returns an older version of it. One writer rewrites a session, mostly with
// setStored (no snapshot: readers decode it and race to cache it), now and
// then with Set or a Delete, and publishes each write once it returned;
// readers compare what Get returns with what was published before they
// called it. Another session of the same cache set churns the set. A
// reader that cached what it decoded after a writer came between would
// serve an old version from then on.
func TestTableGetNeverGoesBack(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	k, other := sameSnapSet()
	mk := func(k Key, v uint64) *Session {
		s := NewSession(NewID(), nil, now, time.Hour, 0)
		s.Key, s.UserID, s.Version = k, "alice", v
		return s
	}
	tb := newTable[int64]()
	tb.Set(other, mk(other, 1), 1, 0)
	tb.Set(k, mk(k, 1), 1, 0)
	// Writes and deletions are numbered 1, 2, …: write v stores version v,
	// and every 97th is a deletion. published is the last that returned.
	var published atomic.Uint64
	published.Store(1)
	const every = 97
	deletedIn := func(from, to uint64) bool { return (from+every-1)/every*every <= to }

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var bad atomic.Value
	for range 3 {
		loop(&wg, stop, func(i int) {
			if i%5 == 0 {
				tb.Get(other)
			}
			before := published.Load()
			s, ok := tb.Get(k)
			after := published.Load() + 1 // the one under way
			switch {
			case ok && s.Version < before:
				bad.Store([3]uint64{before, after, s.Version})
			case !ok && !deletedIn(before, after):
				bad.Store([3]uint64{before, after, 0})
			}
			// A hit takes no lock, so nothing else makes the readers
			// give the writer a CPU before they are preempted.
			runtime.Gosched()
		})
	}
	const writes = 30_000
	for v := uint64(2); v <= writes && bad.Load() == nil; v++ {
		switch {
		case v%every == 0:
			tb.Delete(k)
		case v%13 == 0:
			tb.Set(k, mk(k, v), 1, 0)
		default:
			tb.setStored(k, AppendSession(nil, mk(k, v)), 1, 0)
		}
		published.Store(v)
	}
	close(stop)
	wg.Wait()
	if b := bad.Load(); b != nil {
		r := b.([3]uint64)
		t.Fatalf("Get between writes %d and %d found version %d (0: none)", r[0], r[1], r[2])
	}
}

// TestTableSnapSetHoldsFour checks that four sessions in use that fall in
// one set of the snapshot cache are all served from it, each decoded once,
// however their requests interleave; a fifth in the set takes turns.
func TestTableSnapSetHoldsFour(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	const ways = 4 // snapSetWays, spelled out so that the test holds it to four
	tb := newTable[int64]()
	var keys []Key
	for i := range ways + 1 {
		k := KeyOf(NewID())
		if i > 0 {
			k[0], k[1] = keys[0][0], keys[0][1]
		}
		keys = append(keys, k)
		s := NewSession(NewID(), nil, now, time.Hour, 0)
		s.Key = k
		tb.Set(k, s, 1, 0)
	}
	decodes := func(keys []Key) int {
		first := make([]*Session, len(keys))
		n := 0
		for round := range 3 {
			for i, k := range keys {
				s, ok := tb.Get(k)
				if !ok {
					t.Fatalf("session %d is missing", i)
				}
				if round > 0 && s != first[i] {
					n++
				}
				first[i] = s
			}
		}
		return n
	}
	if n := decodes(keys[:ways]); n != 0 {
		t.Errorf("%d sessions of one set: %d decodes after the first round, want 0", ways, n)
	}
	if n := decodes(keys); n == 0 {
		t.Errorf("%d sessions of one set: every Get served from the cache, which holds %d", ways+1, ways)
	}
}
