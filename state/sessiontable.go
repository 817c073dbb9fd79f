package state

import "time"

// SessionTable holds sessions as the memory store does: binary encodings in
// a sharded table that the garbage collector need not walk, the decoded
// snapshots in use in a bounded cache. Each session is kept for a lifetime
// (real clock) with an instant of the caller's beside it. It serves other
// stores' local copies (the Redis store's near-cache), so that holding many
// sessions costs the collector no more there than in the memory store.
//
// Get does not return an expired session; DeleteExpired removes them, one
// shard at a time.
type SessionTable struct{ t *table[int64] }

// NewSessionTable returns an empty table.
func NewSessionTable() *SessionTable { return &SessionTable{t: newTable[int64]()} }

// Get returns the session under k, the instant stored with it and when it
// expires, unless there is none or it has expired. The session is shared:
// the caller must not change it.
func (st *SessionTable) Get(k Key) (s *Session, at, expires time.Time, ok bool) {
	s, sl, ok := st.t.getSlot(k)
	if !ok || sl.deadline <= time.Now().UnixNano() {
		return nil, time.Time{}, time.Time{}, false
	}
	return s, time.Unix(0, sl.aux), time.Unix(0, sl.deadline), true
}

// Set stores s under k with the instant at, for ttl. s becomes the cached
// snapshot: the caller must not change it after.
func (st *SessionTable) Set(k Key, s *Session, at time.Time, ttl time.Duration) {
	st.t.Set(k, s, time.Now().Add(ttl).UnixNano(), at.UnixNano())
}

// Delete removes the session under k, if any.
func (st *SessionTable) Delete(k Key) { st.t.Delete(k) }

// DeleteExpiredPart removes the sessions whose lifetime has passed from
// the i-th of n equal parts of the table (0 ≤ i < n ≤ 256; i = 0, n = 1
// for all of it): a sweeper that calls it for each part in turn, at even
// steps (SweepInSteps), spreads a sweep's work over its period.
func (st *SessionTable) DeleteExpiredPart(i, n int) {
	st.t.DeleteExpiredPart(time.Now().UnixNano(), i, n)
}

// Flush removes every session.
func (st *SessionTable) Flush() { st.t.Flush() }

// Len returns the number of sessions held, expired ones not yet removed
// included.
func (st *SessionTable) Len() int { return st.t.ItemCount() }
