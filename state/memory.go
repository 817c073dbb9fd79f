package state

import (
	"context"
	"sort"
	"sync"
	"time"
)

// MemoryOptions configures a Memory store.
type MemoryOptions struct {
	// Now is the clock used for liveness checks. Default: time.Now.
	Now Clock
	// CleanupInterval is how often expired sessions are swept from memory.
	// Reads never return an expired session, whatever the interval.
	// Default: 1m.
	CleanupInterval time.Duration
}

// Memory is the default store: sessions in a table the garbage collector
// need not walk (see table), a per-user index, and per-user state in a map.
// Nothing survives the process.
type Memory struct {
	now   Clock
	cache *table[statusCode]

	// locks serialise writers of one key (striped by the key's first byte),
	// so Update is atomic without a global write lock.
	locks [256]sync.Mutex

	// byUser is the per-user index (userindex.go).
	byUser userIndex

	umu   sync.Mutex
	users map[string]userEntry

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// NewMemory returns an empty memory store and starts its sweeper; Close
// stops it.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CleanupInterval <= 0 {
		opts.CleanupInterval = time.Minute
	}
	m := &Memory{
		now: opts.Now,
		// The store runs its own sweeper, stopped by Close.
		cache: newTable[statusCode](),
		users: make(map[string]userEntry),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	m.cache.OnEvicted(m.evicted)
	go m.sweep(opts.CleanupInterval)
	return m
}

// sweep removes expired sessions until Close, in steps (SweepInSteps),
// and the user index's leftovers once per interval.
func (m *Memory) sweep(every time.Duration) {
	defer close(m.done)
	SweepInSteps(every, m.stop, func(part, parts int) {
		m.cache.DeleteExpiredPart(unixNanos(m.now()), part, parts)
		if part == parts-1 {
			m.sweepUsers()
		}
	})
}

// SweepInSteps calls step(part, parts) for part 0, 1, …, parts-1, again
// and again, at even steps that go round once every interval, until done
// is closed: a sweeper that removes a part of a table at each step
// (DeleteExpiredPart) spreads a sweep's work over its interval. Swept all
// at once, a million sessions of which thousands expire a second cost one
// burst of CPU each interval, during which the requests a one-core server
// is handling take twice as long (the gate's p99 rose by a quarter to a
// half in `make bench` (d)); cut in steps, the same work slows them by a
// few percent, all the time. parts is sweepSteps, or 1 for an interval
// under that many milliseconds.
func SweepInSteps(every time.Duration, done <-chan struct{}, step func(part, parts int)) {
	parts := sweepSteps
	if every < sweepSteps*time.Millisecond {
		parts = 1
	}
	t := time.NewTicker(every / time.Duration(parts))
	defer t.Stop()
	for part := 0; ; part = (part + 1) % parts {
		select {
		case <-t.C:
			step(part, parts)
		case <-done:
			return
		}
	}
}

// sweepSteps is how many steps SweepInSteps cuts an interval into.
const sweepSteps = 16

// put stores s under k in the table, with its deadline and status beside
// its encoding (the sweeper and a census read those only). s becomes the
// cached snapshot: the caller must not change it after.
func (m *Memory) put(k Key, s *Session) {
	m.cache.Set(k, s, unixNanos(s.Deadline()), codeOf(s.Status))
}

func (m *Memory) lookup(key Key) (*Session, bool) {
	s, ok := m.cache.Get(key)
	if !ok {
		return nil, false
	}
	if !s.Live(m.now()) {
		return nil, false
	}
	return s, true
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key Key) (*Session, error) {
	if s, ok := m.lookup(key); ok {
		return s, nil
	}
	return nil, ErrNotFound
}

// Peek implements Peeker: the session under key, live or not.
func (m *Memory) Peek(key Key) (*Session, bool) { return m.cache.Get(key) }

// Create implements Store.
func (m *Memory) Create(_ context.Context, s *Session) error {
	l := &m.locks[s.Key[0]]
	l.Lock()
	defer l.Unlock()
	if _, ok := m.lookup(s.Key); ok {
		return ErrExists
	}
	c := s.Clone()
	c.Version = 1
	// Set before index: see evicted.
	m.put(c.Key, c)
	m.index(c.UserID, c.Key)
	s.Version = 1
	return nil
}

// Update implements Store.
func (m *Memory) Update(_ context.Context, key Key, fn func(*Session) error) (*Session, error) {
	l := &m.locks[key[0]]
	l.Lock()
	defer l.Unlock()
	old, ok := m.lookup(key)
	if !ok {
		return nil, ErrNotFound
	}
	c := old.Clone()
	if err := fn(c); err != nil {
		return nil, err
	}
	c.Key = key
	c.Version = old.Version + 1
	m.put(key, c)
	if c.UserID != old.UserID {
		m.unindex(old.UserID, key)
		m.index(c.UserID, key)
	}
	return c, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key Key) (*Session, error) {
	l := &m.locks[key[0]]
	l.Lock()
	defer l.Unlock()
	s, ok := m.lookup(key)
	if !ok {
		return nil, ErrNotFound
	}
	m.cache.Delete(key) // evicted() drops the index entry
	return s, nil
}

// ByUser implements Store.
func (m *Memory) ByUser(_ context.Context, userID string) ([]*Session, error) {
	keys, _ := m.userKeys(userID)
	out := make([]*Session, 0, len(keys))
	for _, k := range keys {
		if s, ok := m.lookup(k); ok && s.UserID == userID {
			out = append(out, s)
		}
	}
	SortSessions(out)
	return out, nil
}

// Scan implements Store.
func (m *Memory) Scan(_ context.Context, fn func(*Session) bool) error {
	now := m.now()
	m.cache.Range(func(s *Session) bool { return !s.Live(now) || fn(s) })
	return nil
}

// Touch implements Store.
func (m *Memory) Touch(_ context.Context, key Key, at time.Time) error {
	l := &m.locks[key[0]]
	l.Lock()
	defer l.Unlock()
	old, ok := m.lookup(key)
	if !ok {
		return ErrNotFound
	}
	if !at.After(old.LastAccessTime) {
		return nil
	}
	c := old.Clone()
	c.LastAccessTime = at
	c.Version = old.Version + 1
	m.put(key, c)
	return nil
}

// GetUser implements Store.
func (m *Memory) GetUser(_ context.Context, userID string) (*UserState, error) {
	m.umu.Lock()
	defer m.umu.Unlock()
	if e, ok := m.users[userID]; ok {
		return e.u, nil
	}
	return nil, ErrNotFound
}

// UpdateUser implements Store.
func (m *Memory) UpdateUser(_ context.Context, userID string, fn func(*UserState) error) (*UserState, error) {
	m.umu.Lock()
	defer m.umu.Unlock()
	var c *UserState
	old, ok := m.users[userID]
	if ok {
		c = old.u.Clone()
	} else {
		c = &UserState{UserID: userID}
	}
	if err := fn(c); err != nil {
		return nil, err
	}
	c.UserID = userID
	c.Version++
	m.users[userID] = userEntry{u: c, written: m.now()}
	return c, nil
}

// Len returns the number of sessions held, live or not yet swept.
func (m *Memory) Len() int { return m.cache.ItemCount() }

// Close implements Store: it stops the sweeper and drops every session.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
		m.cache.Flush()
	})
	return nil
}

// evicted runs when the table drops an item (Delete or the sweeper). The
// sweeper does not hold the key's lock, so it can race a re-creation under
// the same key. Writers store the record before indexing it, and evicted
// unindexes before looking at the cache again, so whatever the interleaving
// a record in the cache ends up indexed. An entry left behind for a record
// deleted meanwhile is harmless: ByUser checks every entry against the cache.
func (m *Memory) evicted(k Key, userID []byte) {
	if len(userID) > 0 {
		m.unindexHash(hashUserBytes(userID), k)
	}
	if c, ok := m.cache.Get(k); ok {
		m.index(c.UserID, c.Key)
	}
}

// SortSessions sorts ss oldest first (by CreateTime, then Index): the order
// in which every Store's ByUser returns a user's sessions.
func SortSessions(ss []*Session) {
	sort.Slice(ss, func(i, j int) bool {
		if !ss[i].CreateTime.Equal(ss[j].CreateTime) {
			return ss[i].CreateTime.Before(ss[j].CreateTime)
		}
		return ss[i].Index < ss[j].Index
	})
}

// Interface guards.
var (
	_ Store  = (*Memory)(nil)
	_ Peeker = (*Memory)(nil)
)
