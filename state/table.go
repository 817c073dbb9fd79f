package state

import (
	"context"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// table is the memory store's container: sessions held in a form the
// garbage collector need not walk. Each session is one slot in a map keyed
// by its fixed-size Key: its deadline, a small value of the owner's (the
// memory store keeps the status there), a sequence number and where its
// stored form (appendStoredForm: the binary encoding without the Key) lies in the
// shard's arena, outside the Go heap. Where a *Session graph costs the
// collector ~20 pointers (strings, slices, a map, times with locations), a
// slot costs it nothing: the maps hold no pointer, so the collector skips
// them, and the encodings are not in its heap at all, so they do not double
// in RSS between two collections as heap memory does (see arena).
//
// Get decodes on demand from a copy of the stored form; the last decoded
// snapshots are kept in a small cache of fixed size (snapWays), so the
// sessions in use are decoded once per change and a hit on them allocates
// nothing, while the collector's work stays bounded whatever the number of
// sessions held. A cached snapshot is always its session's current
// version: writers drop it under the shard's lock, and a reader caches
// what it decoded only if the session did not change meanwhile. So Get
// serves a hit from the cache alone, without the lock or the map. A census or a sweep reads the slots, which lie side by
// side in the maps' groups, and an encoding only where it must.
//
// The table is split in shards by the key's first byte, each with its own
// lock, so a sweep (DeleteExpired) holds one shard at a time and readers of
// the others never wait for it. A shard's lock guards its arena too: an
// encoding is read under it, as a writer reuses a freed block at once.
type table[A any] struct {
	shards    [tableShards]tableShard[A]
	onEvicted func(k Key, userID []byte)
}

const (
	tableShards = 256
	// snapWays slots per shard cache decoded snapshots, in sets of
	// snapSetWays: 256 × 64 = 16,384 snapshots at most, in 4,096 sets.
	// With four ways, a thousand sessions in use fit without two of them
	// taking turns in a set (five would have to fall in one), where
	// two-way sets left a few re-decoding on every turn.
	snapWays    = 64
	snapSetWays = 4
)

type tableShard[A any] struct {
	mu    sync.RWMutex
	slots map[Key]slot[A]
	// dl, keys and blocks list the shard's sessions densely, in no
	// particular order: the deadline, key and block of each at the index
	// its slot holds (slot.at). A sweep reads dl, 8 bytes a session side by
	// side, instead of walking the map's 64-byte slots: ~4 000 comparisons
	// a shard at 1M sessions, so a sweep every second costs next to nothing
	// when little expires. It finds what it removes there too, so that a
	// removal costs the map one probe, its delete: a removed session's
	// index is left free (deadline freeDeadline) for the next new session
	// instead of taking the last entry's place, which would cost two more
	// probes (the moved entry's slot, read and written back), each a cache
	// miss in a large table. compact closes the gaps a mass expiry leaves.
	dl     []int64
	keys   []Key
	blocks []blockRef
	free   []uint32 // the free indexes of dl, keys and blocks
	arena  *arena   // in the table's arenas
	seq    uint64   // the last slot written's seq
	snaps  [snapWays]atomic.Pointer[Session]
}

// freeDeadline marks a free index of a shard's dense lists. No sweep
// removes an entry with this deadline, so a session whose deadline is
// clamped to it (beyond the year 2262) is never swept.
const freeDeadline = math.MaxInt64

// due reports whether a sweep at now removes the entry with deadline d.
func due(d, now int64) bool { return d <= now && d != freeDeadline }

// slot is one session: the instant (Unix nanoseconds, on the owner's
// clock) after which the sweeper may drop it, the block of its stored form,
// a number no other slot of the shard had or will have (getSlot tells by
// it whether a writer came between its copy of the stored form and its
// caching of the decoded session: a block is reused, a seq never), and the
// owner's value.
type slot[A any] struct {
	deadline int64
	block    blockRef
	seq      uint64
	at       uint32 // in the shard's dl and keys
	aux      A
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

func newTable[A any]() *table[A] { return newTableCleaned[A](nil) }

// newTableCleaned is newTable; cleaned, when not nil, is closed once the
// table has been collected unflushed and its arenas unmapped.
func newTableCleaned[A any](cleaned chan<- struct{}) *table[A] {
	t := &table[A]{}
	arenas := new([tableShards]arena)
	for i := range t.shards {
		t.shards[i].slots = make(map[Key]slot[A])
		t.shards[i].arena = &arenas[i]
	}
	// The arenas' memory is not the collector's to free: a table dropped
	// without Flush (its store never closed) gives it back when collected.
	runtime.AddCleanup(t, func(a *[tableShards]arena) {
		for i := range a {
			a[i].reset()
		}
		if cleaned != nil {
			close(cleaned)
		}
	}, arenas)
	return t
}

// OnEvicted sets the function called (outside any lock) for each session
// removed by Delete or DeleteExpired, with its UserID, read from the
// encoding in place without decoding the rest.
func (t *table[A]) OnEvicted(fn func(k Key, userID []byte)) { t.onEvicted = fn }

func (t *table[A]) shard(k Key) *tableShard[A] { return &t.shards[k[0]] }

// snapIndex is the first slot of k's cache set.
func snapIndex(k Key) int { return int(k[1]) % snapWays &^ (snapSetWays - 1) }

// enc returns the stored form of sl, in the arena: to be read, never
// written, and only while the shard's lock is held.
func (sh *tableShard[A]) enc(sl slot[A]) []byte { return sh.arena.bytes(sl.block) }

// userIDOf appends the UserID of the session stored in block to buf. The
// lock is held.
func (sh *tableShard[A]) userIDOf(buf []byte, block blockRef) []byte {
	uid, ok := encodedUserID(sh.arena.bytes(block))
	if !ok {
		panic("state: memory table holds a bad encoding") // written by this package only
	}
	return append(buf, uid...)
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

// cached returns the cached snapshot of the session under k, if any: the
// current version of a session the table holds (see table). It takes no
// lock.
func (sh *tableShard[A]) cached(k Key) *Session {
	set := sh.snaps[snapIndex(k):][:snapSetWays]
	for j := range set {
		if c := set[j].Load(); c != nil && c.Key == k {
			return c
		}
	}
	return nil
}

// remember puts c, the snapshot of the current version of the session
// under k, in k's cache set: over a snapshot of the same session (and any
// other of it dropped), else in the first way, the others moving one way
// down and the last leaving, so that the newest are found first. A writer
// calls it under the lock; a reader under the read lock, having checked
// that the session is still at c's version (getSlot), so every snapshot
// in the set is current while it runs. Readers may race with each other
// here: one may undo another's entry or leave a session in two ways,
// never cache an older version (forget drops every way of a session).
func (sh *tableShard[A]) remember(k Key, c *Session) {
	set := sh.snaps[snapIndex(k):][:snapSetWays]
	for j := range set {
		if q := set[j].Load(); q != nil && q.Key == k {
			set[j].Store(c)
			for j++; j < len(set); j++ {
				if q := set[j].Load(); q != nil && q.Key == k {
					set[j].Store(nil)
				}
			}
			return
		}
	}
	for j := len(set) - 1; j > 0; j-- {
		set[j].Store(set[j-1].Load())
	}
	set[0].Store(c)
}

// forget drops the cached snapshots of the session under k, which is
// changing or leaving the table. The lock is held.
func (sh *tableShard[A]) forget(k Key) {
	set := sh.snaps[snapIndex(k):][:snapSetWays]
	for j := range set {
		if c := set[j].Load(); c != nil && c.Key == k {
			set[j].Store(nil)
		}
	}
}

// Get returns the session under k, expired or not: from the snapshot
// cache without a lock, else as getSlot does.
func (t *table[A]) Get(k Key) (*Session, bool) {
	if s := t.shard(k).cached(k); s != nil {
		return s, true
	}
	s, _, ok := t.getSlot(k)
	return s, ok
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

// getSlot returns the session under k with its slot, expired or not: the
// cached snapshot, or one decoded from a copy of the stored form (made
// under the lock; decoded outside it) and cached unless a writer changed
// the session meanwhile.
func (t *table[A]) getSlot(k Key) (*Session, slot[A], bool) {
	sh := t.shard(k)
	sh.mu.RLock()
	sl, ok := sh.slots[k]
	if !ok {
		sh.mu.RUnlock()
		return nil, sl, false
	}
	if s := sh.cached(k); s != nil {
		sh.mu.RUnlock()
		return s, sl, true
	}
	enc := string(sh.enc(sl))
	sh.mu.RUnlock()
	s := mustDecode(k, enc)
	sh.mu.RLock()
	if cur, ok := sh.slots[k]; ok && cur.seq == sl.seq { // else a writer came between
		sh.remember(k, s)
	}
	sh.mu.RUnlock()
	return s, sl, true
}

// put stores the slot sl under k with the stored form of the encoding
// enc (AppendSession), freeing the block of the slot it replaces and
// dropping its cached snapshot. The lock is held.
func (sh *tableShard[A]) put(k Key, enc []byte, sl slot[A]) {
	sh.forget(k)
	sl.block = sh.arena.storeForm(enc)
	sh.seq++
	sl.seq = sh.seq
	old, had := sh.slots[k]
	switch n := len(sh.free); {
	case had:
		sl.at = old.at
	case n > 0:
		sl.at = sh.free[n-1]
		sh.free = sh.free[:n-1]
		sh.keys[sl.at] = k
	default:
		if len(sh.dl) >= math.MaxUint32 {
			panic("state: too many sessions in one table shard")
		}
		sl.at = uint32(len(sh.dl))
		sh.dl = append(sh.dl, 0)
		sh.keys = append(sh.keys, k)
		sh.blocks = append(sh.blocks, 0)
	}
	sh.dl[sl.at], sh.blocks[sl.at] = sl.deadline, sl.block
	sh.slots[k] = sl
	if had {
		sh.arena.release(old.block)
	}
}

// remove deletes the session under k, whose index in the dense lists is
// at and whose block is block: from the map, from the dense lists (its
// index left free) and its block from the arena. The lock is held; the
// caller then gives back what the shard no longer needs (shrink).
func (sh *tableShard[A]) remove(k Key, at uint32, block blockRef) {
	sh.forget(k)
	delete(sh.slots, k)
	sh.dl[at], sh.keys[at], sh.blocks[at] = freeDeadline, Key{}, 0
	sh.free = append(sh.free, at)
	sh.arena.release(block)
}

// shrinkFrom is the length of the dense lists under which shrink leaves
// them (and the map) as they are: rebuilding costs more than it gives.
const shrinkFrom = 256

// shrink gives back what removals left: every chunk of the arena and the
// map once the shard is empty, and the room of the free indexes once seven
// eighths of the lists are (compact). The lock is held.
func (sh *tableShard[A]) shrink() {
	switch {
	case len(sh.slots) == 0:
		if len(sh.dl) > shrinkFrom { // a map never shrinks: drop a large one
			sh.slots = make(map[Key]slot[A])
		}
		sh.dl, sh.keys, sh.blocks, sh.free = nil, nil, nil, nil
		sh.arena.reset()
	case len(sh.dl) > shrinkFrom && len(sh.free) > len(sh.dl)*7/8:
		sh.compact()
	}
}

// compact rebuilds the dense lists without their free indexes, the map (a
// Go map never shrinks) at twice the room the sessions left need, and the
// arena (whose chunks a few live blocks would otherwise keep mapped),
// every slot at its new index and block: what a mass expiry left is given
// back, at the cost of one pass over the map and a copy of what stays once
// seven eighths of the lists are free (so at most one slot moved per seven
// removed: ~1.2 µs a slot moved, on the test machine, a ~0.2 µs share of
// each removal). Not sooner: when sessions expire at an even pace every
// shard gets there at about the same time; at three quarters, removing
// 990 000 of a 1M table took 3.1-3.3 s against 2.7-2.8 s (side by side,
// docs/performance.md), the slowest sweep alike (~150-190 ms, ~23 ms
// without a rebuild). A sweep compacts once,
// after its removals, so that the room fits what stays. The lock is held:
// no encoding is read meanwhile, and no snapshot shares the arena's memory
// (getSlot decodes a copy).
func (sh *tableShard[A]) compact() {
	n := len(sh.slots)
	type kept struct {
		k        Key
		sl       slot[A]
		from, to int // its stored form in forms
	}
	all := make([]kept, 0, n)
	forms := make([]byte, 0, sh.arena.held) // the blocks' sizes bound what they hold
	for k, sl := range sh.slots {
		from := len(forms)
		forms = append(forms, sh.arena.bytes(sl.block)...)
		all = append(all, kept{k, sl, from, len(forms)})
	}
	sh.arena.reset()
	dl, keys, blocks := make([]int64, 0, 2*n), make([]Key, 0, 2*n), make([]blockRef, 0, 2*n)
	slots := make(map[Key]slot[A], 2*n)
	for _, e := range all {
		var dst []byte
		e.sl.block, dst = sh.arena.alloc(e.to - e.from)
		copy(dst, forms[e.from:e.to])
		e.sl.at = uint32(len(dl))
		dl, keys, blocks = append(dl, e.sl.deadline), append(keys, e.k), append(blocks, e.sl.block)
		slots[e.k] = e.sl
	}
	sh.slots, sh.dl, sh.keys, sh.blocks, sh.free = slots, dl, keys, blocks, nil
}

// Set stores s under k until deadline (Unix nanoseconds) with aux. s
// becomes the cached snapshot: the caller must not change it after.
func (t *table[A]) Set(k Key, s *Session, deadline int64, aux A) {
	bp := encBufs.Get().(*[]byte)
	enc := AppendSession((*bp)[:0], s)
	sh := t.shard(k)
	sh.mu.Lock()
	sh.put(k, enc, slot[A]{deadline: deadline, aux: aux})
	sh.remember(k, s)
	sh.mu.Unlock()
	if cap(enc) <= 64<<10 { // keep no buffer a huge session grew
		*bp = enc[:0]
		encBufs.Put(bp)
	}
}

// setStored stores the session whose encoding (AppendSession, Key
// included) is enc under k until deadline with aux, without caching a
// decoded snapshot. enc is copied.
func (t *table[A]) setStored(k Key, enc []byte, deadline int64, aux A) {
	sh := t.shard(k)
	sh.mu.Lock()
	sh.put(k, enc, slot[A]{deadline: deadline, aux: aux})
	sh.mu.Unlock()
}

// encBufs are scratch buffers for Set's encodings.
var encBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Delete removes the session under k, if any.
func (t *table[A]) Delete(k Key) {
	sh := t.shard(k)
	sh.mu.Lock()
	sl, ok := sh.slots[k]
	if !ok {
		sh.mu.Unlock()
		return
	}
	var uid []byte
	if t.onEvicted != nil {
		uid = sh.userIDOf(nil, sl.block)
	}
	sh.remove(k, sl.at, sl.block)
	sh.shrink()
	sh.mu.Unlock()
	if t.onEvicted != nil {
		t.onEvicted(k, uid)
	}
}

// DeleteExpired removes the sessions whose deadline is not after now (Unix
// nanoseconds on the owner's clock), one shard at a time: it reads the
// shard's dense deadlines under the read lock, and takes the write lock
// only for a shard where some have passed. The UserIDs that onEvicted gets
// are copied out of the arena, under the lock, into one buffer reused from
// shard to shard.
func (t *table[A]) DeleteExpired(now int64) { t.deleteExpired(now, 0, tableShards) }

// DeleteExpiredPart is DeleteExpired over the i-th of n equal parts of the
// shards (0 ≤ i < n ≤ tableShards): a sweeper that calls it for each part
// in turn, at even steps, spreads a sweep's work over its period.
func (t *table[A]) DeleteExpiredPart(now int64, i, n int) {
	t.deleteExpired(now, i*tableShards/n, (i+1)*tableShards/n)
}

// deleteExpired is DeleteExpired over the shards from, …, to-1.
func (t *table[A]) deleteExpired(now int64, from, to int) {
	type gone struct {
		k        Key
		from, to int // the UserID in uids
	}
	var out []gone
	var uids []byte
	var y yielder
	for i := from; i < to; i++ {
		sh := &t.shards[i]
		sh.mu.RLock()
		expiring := slices.ContainsFunc(sh.dl, func(d int64) bool { return due(d, now) })
		sh.mu.RUnlock()
		if !expiring {
			y.maybe()
			continue
		}
		out, uids = out[:0], uids[:0]
		sh.mu.Lock()
		for j := range sh.dl {
			if !due(sh.dl[j], now) {
				continue
			}
			k, block := sh.keys[j], sh.blocks[j]
			from := len(uids)
			if t.onEvicted != nil {
				uids = sh.userIDOf(uids, block)
			}
			out = append(out, gone{k, from, len(uids)})
			sh.remove(k, uint32(j), block)
		}
		sh.shrink()
		sh.mu.Unlock()
		if t.onEvicted != nil {
			for _, g := range out {
				t.onEvicted(g.k, uids[g.from:g.to:g.to])
			}
		}
		y.maybe()
	}
}

// yielder lets the goroutines waiting for a CPU run, between the shards of
// a walk over the whole table, once the walk has run for yieldAfter: on a
// server with one core a sweep of a million sessions (~100 ms) would
// otherwise hold it until the scheduler preempts it (10 ms at a time), and
// the gate's p99 would jump at each sweep. Yielding after every shard
// instead costs the other CPUs (a p99 jump of its own, measured with
// BenchmarkGateHitDuringSweep on two).
type yielder struct {
	since time.Time
	calls int
}

// yieldAfter is how long a walk runs before it yields. A step of the
// memory store's sweeper (a sixteenth of the table) that removes ~5 000
// sessions a second at 1M takes ~1.5 ms of one core, so with a yield after
// each millisecond, requests arriving meanwhile waited up to that; a
// quarter of a millisecond bounds the wait to about that plus one shard's
// removals (~0.1 ms), for a Gosched (well under a microsecond) every
// quarter millisecond of walking.
const yieldAfter = 250 * time.Microsecond

// maybeEvery is maybe for loops whose steps are much shorter than a
// reading of the clock: it reads it once in n calls.
func (y *yielder) maybeEvery(n int) {
	if y.calls++; y.calls < n {
		return
	}
	y.calls = 0
	y.maybe()
}

func (y *yielder) maybe() {
	now := time.Now()
	if y.since.IsZero() {
		y.since = now
		return
	}
	if now.Sub(y.since) >= yieldAfter {
		runtime.Gosched()
		y.since = time.Now()
	}
}

// scanSlots calls each with the key and slot of every session held, and
// its shard (sh.enc reads the stored form), expired or not, one shard at a
// time under the shard's read lock, then after (when not nil) outside it,
// until ctx is done. each must be quick and must not write to the table,
// and a stored form is valid only until each returns (copy what must
// outlive it).
//
// Under a context from SpreadOver(ctx, d), shard i is due d·i/tableShards
// after the walk began; once the walk has worked for a millisecond since
// it last slept, it sleeps until the next shard is due, but never longer
// than spreadRest times what it worked. A large table's walk so takes
// about d, a small one's no longer than it would.
func (t *table[A]) scanSlots(ctx context.Context, each func(k Key, sl slot[A], sh *tableShard[A]), after func()) error {
	var y yielder
	spread, _ := ctx.Value(spreadKey{}).(time.Duration)
	began := time.Now()
	woke := began
	for i := range t.shards {
		if spread > 0 {
			if worked := time.Since(woke); worked >= time.Millisecond {
				due := began.Add(spread * time.Duration(i) / tableShards)
				if rest := min(time.Until(due), spreadRest*worked); rest > 0 {
					if err := sleepFor(ctx, rest); err != nil {
						return err
					}
					y = yielder{} // a sleep is a yield
				}
				woke = time.Now()
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		sh := &t.shards[i]
		sh.mu.RLock()
		for k, sl := range sh.slots {
			each(k, sl, sh)
		}
		sh.mu.RUnlock()
		if after != nil {
			after()
		}
		y.maybe()
	}
	return nil
}

// spreadKey is the context key of SpreadOver.
type spreadKey struct{}

// SpreadOver returns a context under which a census of the memory store
// (Memory.Census, also the file store's) spreads its walk over about d
// instead of running it at once (scanSlots says how; a small table's
// census is not slowed). The operations sampler, which takes a census
// every stats_interval, spreads each over half its interval: at a mass
// expiry a census of a million sessions reads the users of hundreds of
// thousands (~1 s of one core here), which all at once would slow every
// request of a one-core server by half for that second. Other stores
// ignore it.
func SpreadOver(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, spreadKey{}, d)
}

// spreadRest bounds a spread walk's sleeps: at most this many times as
// long as it worked since the last, so that it takes at least one part in
// spreadRest+1 of a CPU while it is ahead of time.
const spreadRest = 15

// sleepFor sleeps for d or until ctx is done, and then returns its error.
func sleepFor(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Range calls fn for every session held, expired or not, until fn returns
// false. It holds no lock while fn runs: each shard's sessions are taken
// (the cached snapshot, or a copy of the stored form to decode) under its
// read lock, then decoded and handed to fn outside it.
func (t *table[A]) Range(fn func(*Session) bool) {
	type taken struct {
		k   Key
		s   *Session
		enc string
	}
	var got []taken
	for i := range t.shards {
		sh := &t.shards[i]
		got = got[:0]
		sh.mu.RLock()
		for k, sl := range sh.slots {
			if s := sh.cached(k); s != nil {
				got = append(got, taken{k: k, s: s})
			} else {
				got = append(got, taken{k: k, enc: string(sh.enc(sl))})
			}
		}
		sh.mu.RUnlock()
		for j := range got {
			s := got[j].s
			if s == nil {
				s = mustDecode(got[j].k, got[j].enc)
			}
			got[j] = taken{}
			if !fn(s) {
				return
			}
		}
	}
}

// mappedBytes returns the bytes of the chunks the table's arenas hold.
func (t *table[A]) mappedBytes() int64 {
	var n int64
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		n += int64(sh.arena.mapped)
		sh.mu.RUnlock()
	}
	return n
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
		sh.dl, sh.keys, sh.blocks, sh.free = nil, nil, nil, nil
		sh.arena.reset()
		for j := range sh.snaps {
			sh.snaps[j].Store(nil)
		}
		sh.mu.Unlock()
	}
}
