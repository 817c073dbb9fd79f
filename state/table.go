package state

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// table is the memory store's container: sessions held in a form the
// garbage collector need not walk. Each session is one slot in a map keyed
// by its fixed-size Key: its deadline, a small value of the owner's (the
// memory store keeps the status there) and the session's stored form
// (storedForm: the binary encoding without the Key), a single pointer-free
// string. Where a *Session graph costs the collector ~20 pointers
// (strings, slices, a map, times with locations), a slot costs one pointer
// to a block it does not scan.
//
// Get decodes on demand; the last decoded snapshots are kept in a small
// cache of fixed size (snapSets), so the sessions in use are decoded once
// per change and a hit on them allocates nothing, while the collector's
// work stays bounded whatever the number of sessions held. A census or a
// sweep reads the slots only, which lie side by side in the maps' groups,
// not the encodings, which lie all over the heap.
//
// The table is split in shards by the key's first byte, each with its own
// lock, so a sweep (DeleteExpired) holds one shard at a time and readers of
// the others never wait for it.
type table[A any] struct {
	shards    [tableShards]tableShard[A]
	onEvicted func(k Key, userID []byte)
}

const (
	tableShards = 256
	// snapWays slots per shard cache decoded snapshots (two-way sets):
	// 256 × 64 = 16,384 snapshots at most.
	snapWays = 64
)

type tableShard[A any] struct {
	mu    sync.RWMutex
	slots map[Key]slot[A]
	snaps [snapWays]atomic.Pointer[snap]
}

// slot is one session: the instant (Unix nanoseconds, on the owner's
// clock) after which the sweeper may drop it, the owner's value, and the
// session's stored form.
type slot[A any] struct {
	deadline int64
	enc      string
	aux      A
}

// bytes returns the stored form as a byte slice that shares its memory: to
// be read, never written.
func (sl *slot[A]) bytes() []byte { return unsafe.Slice(unsafe.StringData(sl.enc), len(sl.enc)) }

// snap is a decoded snapshot of the slot whose stored form starts at enc.
type snap struct {
	enc *byte
	s   *Session
}

// unixNanos is t in Unix nanoseconds, clamped to what an int64 holds.
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanosTime):
		return math.MinInt64
	case t.After(maxNanosTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minNanosTime = time.Unix(0, math.MinInt64)
	maxNanosTime = time.Unix(0, math.MaxInt64)
)

func newTable[A any]() *table[A] {
	t := &table[A]{}
	for i := range t.shards {
		t.shards[i].slots = make(map[Key]slot[A])
	}
	return t
}

// OnEvicted sets the function called (outside any lock) for each session
// removed by Delete or DeleteExpired, with its UserID read from the
// encoding in place: dropping a session decodes nothing and allocates
// nothing, so a sweep of many expired sessions makes no garbage.
func (t *table[A]) OnEvicted(fn func(k Key, userID []byte)) { t.onEvicted = fn }

// evict calls onEvicted for the slot sl dropped from under k.
func (t *table[A]) evict(k Key, sl slot[A]) {
	if t.onEvicted == nil {
		return
	}
	uid, ok := encodedUserID(sl.bytes())
	if !ok {
		panic("state: memory table holds a bad encoding") // written by this package only
	}
	t.onEvicted(k, uid)
}

func (t *table[A]) shard(k Key) *tableShard[A] { return &t.shards[k[0]] }

func snapIndex(k Key) int { return int(k[1]) % snapWays &^ 1 }

// cached returns the decoded snapshot of sl, decoding it if the cache does
// not hold it.
func (sh *tableShard[A]) cached(k Key, sl slot[A]) *Session {
	if s := sh.snapOf(k, sl); s != nil {
		return s
	}
	s := mustDecode(k, sl.enc)
	sh.remember(k, &snap{enc: unsafe.StringData(sl.enc), s: s})
	return s
}

// decoded is cached without remembering a new decoding, so that a walk
// over every session (Range) does not evict the snapshots in use.
func (sh *tableShard[A]) decoded(k Key, sl slot[A]) *Session {
	if s := sh.snapOf(k, sl); s != nil {
		return s
	}
	return mustDecode(k, sl.enc)
}

// snapOf returns the cached snapshot of sl, or nil.
func (sh *tableShard[A]) snapOf(k Key, sl slot[A]) *Session {
	i := snapIndex(k)
	p := unsafe.StringData(sl.enc)
	if c := sh.snaps[i].Load(); c != nil && c.enc == p {
		return c.s
	}
	if c := sh.snaps[i+1].Load(); c != nil && c.enc == p {
		return c.s
	}
	return nil
}

// mustDecode decodes the stored form enc of the session under k. The
// decoded strings share enc's memory.
func mustDecode(k Key, enc string) *Session {
	s, err := decodeStoredString(k, enc)
	if err != nil {
		panic("state: memory table holds a bad encoding: " + err.Error()) // written by this package only
	}
	return s
}

// remember puts c in the cache set of k: over an older snapshot of the same
// session, else in the second way, the previous second moving to the first.
func (sh *tableShard[A]) remember(k Key, c *snap) {
	i := snapIndex(k)
	a, b := &sh.snaps[i], &sh.snaps[i+1]
	if q := a.Load(); q == nil || q.s.Key == k {
		a.Store(c)
		return
	}
	if q := b.Load(); q != nil && q.s.Key != k {
		a.Store(q)
	}
	b.Store(c)
}

// Get returns the session under k, expired or not.
func (t *table[A]) Get(k Key) (*Session, bool) {
	sh := t.shard(k)
	sh.mu.RLock()
	sl, ok := sh.slots[k]
	sh.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return sh.cached(k, sl), true
}

// has reports whether the table holds a session under k, expired or not,
// without decoding it.
func (t *table[A]) has(k Key) bool {
	sh := t.shard(k)
	sh.mu.RLock()
	_, ok := sh.slots[k]
	sh.mu.RUnlock()
	return ok
}

// getSlot returns the session under k with its slot, expired or not.
func (t *table[A]) getSlot(k Key) (*Session, slot[A], bool) {
	sh := t.shard(k)
	sh.mu.RLock()
	sl, ok := sh.slots[k]
	sh.mu.RUnlock()
	if !ok {
		return nil, sl, false
	}
	return sh.cached(k, sl), sl, true
}

// Set stores s under k until deadline (Unix nanoseconds) with aux. s
// becomes the cached snapshot: the caller must not change it after.
func (t *table[A]) Set(k Key, s *Session, deadline int64, aux A) {
	sl := slot[A]{deadline: deadline, aux: aux, enc: encodeExact(s)}
	sh := t.shard(k)
	sh.mu.Lock()
	sh.slots[k] = sl
	sh.remember(k, &snap{enc: unsafe.StringData(sl.enc), s: s})
	sh.mu.Unlock()
}

// setStored stores the stored form enc (storedForm) under k until deadline
// with aux, without caching a decoded snapshot.
func (t *table[A]) setStored(k Key, enc string, deadline int64, aux A) {
	sl := slot[A]{deadline: deadline, aux: aux, enc: enc}
	sh := t.shard(k)
	sh.mu.Lock()
	sh.slots[k] = sl
	sh.mu.Unlock()
}

// encBufs are scratch buffers for encodeExact.
var encBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// encodeExact returns the stored form of s (its encoding without the Key)
// in a slice of its own length. Appending to nil would grow the slice by
// doubling and leave it up to twice as large as needed (a typical
// session's 250 bytes in 448), and the table keeps each encoding as long
// as the session lives.
func encodeExact(s *Session) string {
	bp := encBufs.Get().(*[]byte)
	buf := AppendSession((*bp)[:0], s)
	enc := storedForm(buf)
	if cap(buf) <= 64<<10 { // keep no buffer a huge session grew
		*bp = buf[:0]
		encBufs.Put(bp)
	}
	return enc
}

// Delete removes the session under k, if any.
func (t *table[A]) Delete(k Key) {
	sh := t.shard(k)
	sh.mu.Lock()
	sl, ok := sh.slots[k]
	delete(sh.slots, k)
	sh.mu.Unlock()
	if ok {
		t.evict(k, sl)
	}
}

// DeleteExpired removes the sessions whose deadline is not after now (Unix
// nanoseconds on the owner's clock), one shard at a time.
func (t *table[A]) DeleteExpired(now int64) {
	type gone struct {
		k  Key
		sl slot[A]
	}
	var out []gone
	var y yielder
	for i := range t.shards {
		sh := &t.shards[i]
		out = out[:0]
		sh.mu.Lock()
		for k, sl := range sh.slots {
			if sl.deadline <= now {
				delete(sh.slots, k)
				out = append(out, gone{k, sl})
			}
		}
		sh.mu.Unlock()
		for _, g := range out {
			t.evict(g.k, g.sl)
		}
		clear(out) // hold no encodings until the next shard's turn
		y.maybe()
	}
}

// yielder lets the goroutines waiting for a CPU run, between the shards of
// a walk over the whole table, once the walk has run for a millisecond: on
// a server with one core a sweep of a million sessions (~100 ms) would
// otherwise hold it until the scheduler preempts it (10 ms at a time), and
// the gate's p99 would jump at each sweep. Yielding after every shard
// instead costs the other CPUs (a p99 jump of its own, measured with
// BenchmarkGateHitDuringSweep on two).
type yielder struct{ since time.Time }

func (y *yielder) maybe() {
	now := time.Now()
	if y.since.IsZero() {
		y.since = now
		return
	}
	if now.Sub(y.since) >= time.Millisecond {
		runtime.Gosched()
		y.since = time.Now()
	}
}

// scanSlots calls each with the key and slot of every session held,
// expired or not, one shard at a time under the shard's read lock, then
// after (when not nil) outside it, until ctx is done. each must be quick
// and must not write to the table; a slot's stored form never changes, so
// each may keep it.
func (t *table[A]) scanSlots(ctx context.Context, each func(k Key, sl slot[A]), after func()) error {
	var y yielder
	for i := range t.shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		sh := &t.shards[i]
		sh.mu.RLock()
		for k, sl := range sh.slots {
			each(k, sl)
		}
		sh.mu.RUnlock()
		if after != nil {
			after()
		}
		y.maybe()
	}
	return nil
}

// Range calls fn for every session held, expired or not, until fn returns
// false. It holds no lock while fn runs.
func (t *table[A]) Range(fn func(*Session) bool) {
	var ks []Key
	var sls []slot[A]
	for i := range t.shards {
		sh := &t.shards[i]
		ks, sls = ks[:0], sls[:0]
		sh.mu.RLock()
		for k, sl := range sh.slots {
			ks = append(ks, k)
			sls = append(sls, sl)
		}
		sh.mu.RUnlock()
		for j, sl := range sls {
			if !fn(sh.decoded(ks[j], sl)) {
				return
			}
		}
	}
}

// ItemCount returns the number of sessions held.
func (t *table[A]) ItemCount() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		n += len(sh.slots)
		sh.mu.RUnlock()
	}
	return n
}

// Flush drops every session without calling OnEvicted.
func (t *table[A]) Flush() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.slots = make(map[Key]slot[A])
		for j := range sh.snaps {
			sh.snaps[j].Store(nil)
		}
		sh.mu.Unlock()
	}
}
