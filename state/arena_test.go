package state

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// store copies b into a new block.
func (a *arena) store(b []byte) blockRef {
	r, dst := a.alloc(len(b))
	copy(dst, b)
	return r
}

// TestBlockSize checks the block sizes: room for the bytes and the header,
// a multiple of 16 (so a free block holds its link), and above 128 bytes at
// most an eighth more than needed.
func TestBlockSize(t *testing.T) {
	for n := 0; n <= 200_000; n++ {
		size, need := blockSize(n), n+blockHeader
		if size < need || size%16 != 0 {
			t.Fatalf("blockSize(%d) = %d", n, size)
		}
		if need > 128 && size-need > need/8 {
			t.Fatalf("blockSize(%d) = %d: %d bytes unused", n, size, size-need)
		}
	}
}

// TestArenaModel allocates, fills, frees and reuses blocks of random sizes
// (small and larger than a chunk) and checks after each step that every
// block still holds what was written to it: no two blocks overlap, however
// freed blocks and chunks are reused.
func TestArenaModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var a arena
	live := map[blockRef][]byte{}
	check := func(step int) {
		t.Helper()
		held := 0
		for r, want := range live {
			if got := a.bytes(r); !bytes.Equal(got, want) {
				t.Fatalf("step %d: block %x holds %d bytes %.16x…, want %d bytes %.16x…", step, uint64(r), len(got), got, len(want), want)
			}
			held += blockSize(len(want))
		}
		if a.held != held {
			t.Fatalf("step %d: arena says %d bytes held, blocks hold %d", step, a.held, held)
		}
	}
	for step := range 20_000 {
		switch {
		case len(live) > 0 && rng.IntN(5) < 2:
			for r := range live { // a random one: map order
				a.release(r)
				delete(live, r)
				break
			}
		default:
			n := rng.IntN(600)
			if rng.IntN(200) == 0 {
				n = maxSmallBlock + rng.IntN(3*maxSmallBlock)
			}
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			r := a.store(b)
			if _, dup := live[r]; dup {
				t.Fatalf("step %d: block %x handed out twice", step, uint64(r))
			}
			live[r] = b
		}
		if step%500 == 0 {
			check(step)
		}
	}
	check(-1)
	for r := range live {
		a.release(r)
	}
	if a.held != 0 {
		t.Fatalf("after freeing all: %d bytes held", a.held)
	}
	a.reset()
	if len(a.chunks) != 0 || a.carving != 0 || len(a.free) != 0 {
		t.Fatalf("after reset: %d chunks, carving %d, %d free lists", len(a.chunks), a.carving, len(a.free))
	}
	if r := a.store([]byte("again")); string(a.bytes(r)) != "again" {
		t.Fatal("an arena reset cannot be used again")
	}
	a.reset()
}

// sameSnapSet returns two keys of one shard and one snapshot cache set.
func sameSnapSet() (Key, Key) {
	k1, k2 := KeyOf(NewID()), KeyOf(NewID())
	k2[0], k2[1] = k1[0], k1[1]
	return k1, k2
}

// TestTableReusedBlockIsNotTheCachedSession checks that the snapshot cache
// never hands out the session that a block held before it was freed and
// reused: a block of the arena is reused at once by the next session of
// its size, so the cache must not go by where the encoding lies; a write
// or a removal drops the session's snapshot instead.
func TestTableReusedBlockIsNotTheCachedSession(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	mk := func(k Key, user string) *Session {
		s := NewSession(NewID(), nil, now, time.Hour, 0)
		s.Key, s.UserID = k, user
		return s
	}
	tb := newTable[int64]()
	k1, k2 := sameSnapSet()
	tb.Set(k1, mk(k1, "mallory"), 1, 0)
	if s, ok := tb.Get(k1); !ok || s.UserID != "mallory" {
		t.Fatalf("Get(k1) = %v, %v", s, ok)
	}
	b1 := tb.shard(k1).slots[k1].block
	tb.Delete(k1)
	// Same size, same shard: k2's encoding goes in k1's old block.
	tb.setStored(k2, AppendSession(nil, mk(k2, "alice00")), 1, 0)
	if b2 := tb.shard(k2).slots[k2].block; b2 != b1 {
		t.Fatalf("the freed block was not reused (%x, then %x): the test proves nothing", uint64(b1), uint64(b2))
	}
	if s, ok := tb.Get(k2); !ok || s.UserID != "alice00" || s.Key != k2 {
		t.Fatalf("Get(k2) = %+v, %v: another session's snapshot", s, ok)
	}
	if _, ok := tb.Get(k1); ok {
		t.Fatal("a deleted session is still found")
	}

	// One key rewritten: Set, setStored (no snapshot), Set again in the
	// block freed by the first.
	tb.Set(k1, mk(k1, "v1"), 1, 0)
	tb.Get(k1)
	tb.setStored(k1, AppendSession(nil, mk(k1, "v2")), 1, 0)
	if s, _ := tb.Get(k1); s.UserID != "v2" {
		t.Fatalf("after setStored: Get(k1) is %q, want v2", s.UserID)
	}
	tb.setStored(k1, AppendSession(nil, mk(k1, "v3")), 1, 0)
	if s, _ := tb.Get(k1); s.UserID != "v3" {
		t.Fatalf("after a second setStored: Get(k1) is %q, want v3", s.UserID)
	}
}

// TestTableConcurrentReuse has writers replace, delete and recreate the
// sessions of one shard (so blocks are freed and reused all the time) while
// readers get them, range over them, sweep and take a census: every session
// read must be whole and the one stored under its key. Run with -race.
func TestTableConcurrentReuse(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	base := KeyOf(NewID())
	keys := make([]Key, 16)
	for i := range keys {
		keys[i] = base
		keys[i][31] = byte(i)
	}
	owner := func(k Key, v int) string { return string(rune('a'+k[31])) + string(make([]byte, v%40)) }
	tb := newTable[statusCode]()
	tb.OnEvicted(func(k Key, uid []byte) {
		if len(uid) == 0 || uid[0] != 'a'+k[31] {
			t.Errorf("evicted %x with UserID %q", k[31], uid)
		}
	})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		loop(&wg, stop, func(v int) {
			k := keys[(v*7+w)%len(keys)]
			s := NewSession(NewID(), nil, now, time.Hour, 0)
			s.Key, s.UserID = k, owner(k, v)
			switch v % 3 {
			case 0:
				tb.Set(k, s, int64(v%5), 0)
			case 1:
				tb.setStored(k, AppendSession(nil, s), int64(v%5), 0)
			default:
				tb.Delete(k)
			}
		})
	}
	read := func(s *Session) {
		if s.UserID == "" || s.UserID[0] != 'a'+s.Key[31] || s.Key[0] != base[0] {
			t.Errorf("read a session under %x owned by %q", s.Key[31], s.UserID)
		}
	}
	for range 3 {
		loop(&wg, stop, func(int) {
			for _, k := range keys {
				if s, ok := tb.Get(k); ok {
					if s.Key != k {
						t.Errorf("Get(%x) returned the session of %x", k[31], s.Key[31])
					}
					read(s)
				}
			}
			tb.Range(func(s *Session) bool { read(s); return true })
		})
	}
	loop(&wg, stop, func(i int) { tb.DeleteExpired(int64(i % 5)) })
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	tb.checkDense(t)
	tb.Flush()
	if n := tb.ItemCount(); n != 0 {
		t.Fatalf("%d sessions after Flush", n)
	}
}

// TestTableUnreachableUnmaps checks that a table dropped without Flush
// gives its arenas' memory back once the collector finds it unreachable.
func TestTableUnreachableUnmaps(t *testing.T) {
	cleaned := make(chan struct{})
	a := func() *arena { // the table is unreachable once this returns
		tb := newTableCleaned[int64](cleaned)
		s := NewSession(NewID(), nil, time.Now(), time.Hour, 0)
		tb.Set(s.Key, s, 1, 0)
		return tb.shard(s.Key).arena
	}()
	if len(a.chunks) == 0 {
		t.Fatal("no chunk mapped for a session")
	}
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-cleaned:
			if len(a.chunks) != 0 || a.mapped != 0 {
				t.Fatalf("a collected table still maps %d chunks, %d bytes", len(a.chunks), a.mapped)
			}
			return
		case <-deadline:
			t.Fatal("an unreachable table was not cleaned up within 10 s")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestCensusOffHeapBytes checks the memory the census reports outside the
// Go heap: some for sessions held, none once the last is deleted (every
// chunk unmapped) or the store closed.
func TestCensusOffHeapBytes(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := t.Context()
	offHeap := func() int64 {
		t.Helper()
		c, err := m.Census(ctx, clk.Now(), clk.Now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.OffHeapBytes
	}
	if n := offHeap(); n != 0 {
		t.Fatalf("an empty store holds %d bytes off the heap", n)
	}
	var keys []Key
	for i := range 1000 {
		s := NewSession(NewID(), nil, clk.Now(), time.Hour, 0)
		s.UserID = "user" + string(rune('a'+i%26))
		if err := m.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, s.Key)
	}
	held := 0
	for i := range m.cache.shards {
		held += m.cache.shards[i].arena.held
	}
	if n := offHeap(); n < int64(held) || held < 1000*64 {
		t.Fatalf("1000 sessions: %d bytes off the heap, %d in blocks", n, held)
	}
	for _, k := range keys[:500] {
		if _, err := m.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if n := offHeap(); n == 0 {
		t.Fatal("500 sessions left: nothing off the heap")
	}
	for _, k := range keys[500:] {
		if _, err := m.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if n := offHeap(); n != 0 {
		t.Fatalf("every session deleted: %d bytes still mapped", n)
	}
	s := NewSession(NewID(), nil, clk.Now(), time.Hour, 0)
	if err := m.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
	if n := offHeap(); n != 0 {
		t.Fatalf("store closed: %d bytes still mapped", n)
	}
}

// loop runs fn(0), fn(1), … in a goroutine of wg until stop is closed.
func loop(wg *sync.WaitGroup, stop <-chan struct{}, fn func(i int)) {
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			fn(i)
		}
	})
}

// checkDense fails unless every shard's dense lists match its map: one
// entry per slot, at the index the slot holds, with its deadline and
// block, and every other index free and listed as such once.
func (t *table[A]) checkDense(tb testing.TB) {
	tb.Helper()
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		if len(sh.keys) != len(sh.dl) || len(sh.blocks) != len(sh.dl) || len(sh.slots)+len(sh.free) != len(sh.dl) {
			tb.Fatalf("shard %d: %d slots, %d free, %d deadlines, %d keys, %d blocks", i, len(sh.slots), len(sh.free), len(sh.dl), len(sh.keys), len(sh.blocks))
		}
		free := make(map[uint32]bool, len(sh.free))
		for _, j := range sh.free {
			if free[j] || sh.dl[j] != freeDeadline {
				tb.Fatalf("shard %d: free index %d listed twice or holding deadline %d", i, j, sh.dl[j])
			}
			free[j] = true
		}
		for j, k := range sh.keys {
			if free[uint32(j)] {
				continue
			}
			if sl, ok := sh.slots[k]; !ok || sl.at != uint32(j) || sl.deadline != sh.dl[j] || sl.block != sh.blocks[j] {
				tb.Fatalf("shard %d entry %d: slot %+v (found %v), deadline listed %d, block %d", i, j, sl, ok, sh.dl[j], sh.blocks[j])
			}
		}
		sh.mu.RUnlock()
	}
}

// TestTableSweepModel sets, rewrites and deletes sessions with random
// deadlines in a few shards (over a thousand in one, so that its lists
// shrink after a mass expiry) and sweeps at a rising instant, against a
// model: a sweep removes exactly the sessions whose deadline has passed,
// reports each once, and the dense lists the sweep reads stay in step with
// the map.
func TestTableSweepModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tb := newTable[int64]()
	model := map[Key]int64{}
	var evicted []Key
	tb.OnEvicted(func(k Key, uid []byte) {
		if string(uid) != "u"+string(k[2:4]) {
			t.Errorf("evicted %x with UserID %q", k[:4], uid)
		}
		evicted = append(evicted, k)
	})
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	key := func() Key {
		var k Key
		k[0] = byte(rng.IntN(3)) // three shards
		k[2], k[3] = byte(rng.IntN(64)), byte(rng.IntN(64))
		return k
	}
	for i := range 3000 { // one shard past 1 024, all ending at 50
		var k Key
		k[2], k[3] = byte(i>>6), byte(i&63)
		s := NewSession(NewID(), nil, now, time.Hour, 0)
		s.Key, s.UserID = k, "u"+string(k[2:4])
		tb.Set(k, s, 50, 0)
		model[k] = 50
	}
	clock := int64(0)
	for step := range 30_000 {
		k := key()
		s := NewSession(NewID(), nil, now, time.Hour, 0)
		s.Key, s.UserID = k, "u"+string(k[2:4])
		deadline := clock + int64(rng.IntN(100))
		if rng.IntN(10) < 3 { // long-lived: shards grow past 1 024
			deadline += 5000 + int64(rng.IntN(5000))
		}
		switch r := rng.IntN(10); {
		case r < 5:
			tb.Set(k, s, deadline, 0)
			model[k] = deadline
		case r < 7:
			tb.setStored(k, AppendSession(nil, s), deadline, 0)
			model[k] = deadline
		case r < 8:
			tb.Delete(k)
			if _, ok := model[k]; ok {
				evicted = evicted[:len(evicted)-1] // reported by Delete, not the sweep
			}
			delete(model, k)
		default:
			clock += int64(rng.IntN(20))
			if step%5000 == 0 {
				clock += 20_000 // everything expires
			}
			evicted = evicted[:0]
			tb.DeleteExpired(clock)
			var want []Key
			for k, d := range model {
				if d <= clock {
					want = append(want, k)
					delete(model, k)
				}
			}
			byKey := func(a, b Key) int { return slices.Compare(a[:], b[:]) }
			slices.SortFunc(want, byKey)
			slices.SortFunc(evicted, byKey)
			if !slices.Equal(evicted, want) {
				t.Fatalf("step %d: the sweep at %d removed %d sessions, the model %d", step, clock, len(evicted), len(want))
			}
		}
		if step%1000 == 0 {
			tb.checkDense(t)
		}
	}
	tb.checkDense(t)
	if tb.ItemCount() != len(model) {
		t.Fatalf("table holds %d, model %d", tb.ItemCount(), len(model))
	}
	for k, d := range model {
		if _, sl, ok := tb.getSlot(k); !ok || sl.deadline != d {
			t.Fatalf("session %x: deadline %d (found %v), model %d", k[:4], sl.deadline, ok, d)
		}
	}
}
