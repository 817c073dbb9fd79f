package state

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// liveHeap is the heap in use once the garbage is collected.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// shrunk fails unless left is at most full/div, and logs both.
func shrunk(t *testing.T, what string, full, left, div uint64) {
	t.Helper()
	t.Logf("%s: %d bytes, %d full", what, left, full)
	if left > full/div {
		t.Errorf("%s: %d bytes, %d full (want at most %d)", what, left, full, full/div)
	}
}

// shrinkKey is the key of the i-th session of these tests: a SHA-256, so
// that those that stay (every hundredth) fall in every shard as the others.
func shrinkKey(i int) Key { return KeyOf(strconv.Itoa(i)) }

// shrinkSessions is enough sessions for every shard of a table (or of the
// user index) to pass the shrinkFrom entries under which neither is rebuilt.
const shrinkSessions = 400_000

// TestTableGivesBackAfterMassExpiry: a Go map never shrinks, so a table
// whose sessions mostly expired (a night after a busy day) kept maps sized
// for all of them: ~80 bytes a session that had gone, ~32 MB here; and a
// few live blocks kept each arena chunk mapped. A shard's map and arena
// are now rebuilt with its dense lists once seven eighths of them are
// free.
func TestTableGivesBackAfterMassExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a table with 400 000 sessions")
	}
	base := liveHeap()
	tb := newTable[statusCode]()
	now := time.Now()
	s := NewSession(NewID(), nil, now, time.Hour, 0)
	s.UserID = "user"
	enc := AppendSession(nil, s)
	for i := range shrinkSessions {
		k := shrinkKey(i)
		copy(enc[1:], k[:])
		deadline := int64(1) // all but one in a hundred expire
		if i%100 == 0 {
			deadline = 2
		}
		tb.setStored(k, enc, deadline, 0)
	}
	full, fullMapped := liveHeap()-base, tb.mappedBytes()
	tb.DeleteExpired(1)
	if n := tb.ItemCount(); n != shrinkSessions/100 {
		t.Fatalf("%d sessions left, want %d", n, shrinkSessions/100)
	}
	tb.checkDense(t)
	for i := 0; i < shrinkSessions; i += 100 { // moved to new blocks, intact
		k := shrinkKey(i)
		if got, ok := tb.Get(k); !ok || got.Key != k || got.UserID != "user" {
			t.Fatalf("session %d after the expiry: %v, found %v", i, got, ok)
		}
	}
	// The sessions' encodings live in mapped chunks outside the heap: the
	// few that stay, in every shard, must not keep every chunk mapped.
	shrunk(t, "chunks mapped after 99% expired", uint64(fullMapped), uint64(tb.mappedBytes()), 10)
	// What is left holds a hundredth of the sessions: allow it a fifth of
	// the full table's heap (the small maps, the arenas' bookkeeping),
	// where the maps kept for all the sessions made it over a third.
	shrunk(t, "heap of the table after 99% expired", full, liveHeap()-base, 5)
	runtime.KeepAlive(tb)
}

// TestUserIndexGivesBackAfterMassExpiry is the same for the memory store's
// per-user index, whose first-session maps are copied into smaller ones
// once they hold under an eighth of their peak.
func TestUserIndexGivesBackAfterMassExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes 400 000 users")
	}
	base := liveHeap()
	x := new(userIndex)
	hash := func(i int) userHash { return hashUser(strconv.Itoa(i)) }
	for i := range shrinkSessions {
		x.add(hash(i), Key{byte(i)})
	}
	full := liveHeap() - base
	for i := range shrinkSessions {
		if i%100 != 0 {
			x.remove(hash(i), Key{byte(i)})
		}
	}
	if users, _ := x.counts(); users != shrinkSessions/100 {
		t.Fatalf("%d users left, want %d", users, shrinkSessions/100)
	}
	for i := 0; i < shrinkSessions; i += 100 {
		if keys, ok := x.keys(hash(i)); !ok || len(keys) != 1 || keys[0] != (Key{byte(i)}) {
			t.Fatalf("user %d: keys %v, %v", i, keys, ok)
		}
	}
	shrunk(t, "heap of the user index after 99% removed", full, liveHeap()-base, 5)
	runtime.KeepAlive(x)
}

// TestTableDropsAnEmptiedShardsMap: a shard whose sessions all expired
// gives back its map (a Go map never shrinks) and every chunk, not only
// its dense lists.
func TestTableDropsAnEmptiedShardsMap(t *testing.T) {
	base := liveHeap()
	tb := newTable[statusCode]()
	s := NewSession(NewID(), nil, time.Now(), time.Hour, 0)
	s.UserID = "user"
	enc := AppendSession(nil, s)
	const n = 20_000 // all in shard 0
	for i := range n {
		k := shrinkKey(i)
		k[0] = 0
		copy(enc[1:], k[:])
		tb.setStored(k, enc, 1, 0)
	}
	full := liveHeap() - base
	tb.DeleteExpired(1)
	if n := tb.ItemCount(); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	tb.checkDense(t)
	if m := tb.mappedBytes(); m != 0 {
		t.Errorf("%d bytes of chunks still mapped", m)
	}
	shrunk(t, "heap of the table emptied", full, liveHeap()-base, 4)
	runtime.KeepAlive(tb)
}
