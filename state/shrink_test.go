package state

import (
	"encoding/binary"
	"runtime"
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

// shrinkSessions is enough sessions for every shard of a table (or of the
// user index) to pass the 1 024 entries under which neither is rebuilt.
const shrinkSessions = 400_000

// TestTableGivesBackAfterMassExpiry: a Go map never shrinks, so a table
// whose sessions mostly expired (a night after a busy day) kept maps sized
// for all of them: ~80 bytes a session that had gone, ~32 MB here. A
// shard's map is now rebuilt with its dense lists once three quarters of
// them are free.
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
		var k Key
		binary.LittleEndian.PutUint64(k[:], uint64(i)*0x9e3779b97f4a7c15) // spread over the shards
		binary.LittleEndian.PutUint64(k[8:], uint64(i))
		copy(enc[1:], k[:])
		deadline := int64(1) // all but one in a hundred expire
		if i%100 == 0 {
			deadline = 2
		}
		tb.setStored(k, enc, deadline, 0)
	}
	full := liveHeap() - base
	tb.DeleteExpired(1)
	if n := tb.ItemCount(); n != shrinkSessions/100 {
		t.Fatalf("%d sessions left, want %d", n, shrinkSessions/100)
	}
	tb.checkDense(t)
	left := liveHeap() - base
	// What is left holds a hundredth of the sessions: allow it a fifth of
	// the full table's heap (the small maps, the arenas' bookkeeping),
	// where the maps kept for all the sessions made it over a third.
	t.Logf("heap of the table: %d bytes full, %d after 99%% expired", full, left)
	if left > full/5 {
		t.Errorf("heap of the table: %d bytes full, %d after 99%% expired (want at most %d)", full, left, full/5)
	}
	runtime.KeepAlive(tb)
}

// TestUserIndexGivesBackAfterMassExpiry is the same for the memory store's
// per-user index, whose first-session maps are copied into smaller ones
// once they hold under a quarter of their peak.
func TestUserIndexGivesBackAfterMassExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes 400 000 users")
	}
	base := liveHeap()
	x := new(userIndex)
	hash := func(i int) userHash {
		var h userHash
		binary.LittleEndian.PutUint64(h[:], uint64(i)*0x9e3779b97f4a7c15)
		return h
	}
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
	left := liveHeap() - base
	t.Logf("heap of the user index: %d bytes full, %d after 99%% removed", full, left)
	if left > full/5 {
		t.Errorf("heap of the user index: %d bytes full, %d after 99%% removed (want at most %d)", full, left, full/5)
	}
	runtime.KeepAlive(x)
}
