package state

import "time"

// The methods of this file serve a store that keeps its sessions in a
// Memory in front of durable storage (state/filestore): such a store
// decides itself whether a write may happen, commits it durably, and only
// then installs the result here. They bypass the checks of the Store
// methods (liveness, ErrExists, versions), so callers that use Memory as a
// Store have no use for them.

// Install puts c into memory after the caller has committed it elsewhere.
// old is the record the caller read and changed (nil for a creation). If a
// Touch changed the record in memory since, c keeps that later access time
// (and a version above the touched record's), and Install returns the time
// with touched=true, so that the caller can write it in turn.
func (m *Memory) Install(c, old *Session) (at time.Time, touched bool) {
	l := &m.locks[c.Key[0]]
	l.Lock()
	defer l.Unlock()
	cur, _ := m.cache.Get(c.Key)
	// A version other than old's: the record changed in memory since the
	// caller read it (snapshots are decoded anew, so pointers may differ
	// for the same record).
	if old != nil && cur != nil && cur.Version != old.Version && cur.LastAccessTime.After(c.LastAccessTime) {
		c.LastAccessTime = cur.LastAccessTime
		if cur.Version >= c.Version {
			c.Version = cur.Version + 1
		}
		at, touched = cur.LastAccessTime, true
	}
	if cur != nil && cur.UserID != c.UserID {
		m.unindex(cur.UserID, c.Key)
	}
	m.index(c.UserID, c.Key)
	m.put(c.Key, c)
	return at, touched
}

// Restore puts s, read back from durable storage, into memory unless memory
// holds a record under its key already or skip (if not nil) reports the key.
// skip runs under the key's lock, the lock Install and Remove take, so a
// writer that marks a key before changing it is never overtaken by an older
// copy.
func (m *Memory) Restore(s *Session, skip func(Key) bool) { m.RestoreEncoded(s, nil, skip) }

// RestoreEncoded is Restore for a session s read back from its encoding
// enc (AppendSession): memory keeps a copy of enc instead of encoding s
// again, and caches no decoded snapshot of it, as a start-up load of many
// sessions would only evict the snapshots in use. enc must be the
// encoding s was decoded from, or nil (s is then encoded, as Restore does).
func (m *Memory) RestoreEncoded(s *Session, enc []byte, skip func(Key) bool) {
	l := &m.locks[s.Key[0]]
	l.Lock()
	defer l.Unlock()
	if m.cache.has(s.Key) || (skip != nil && skip(s.Key)) {
		return
	}
	if enc == nil {
		m.put(s.Key, s)
	} else {
		m.cache.setStored(s.Key, enc, unixNanos(s.Deadline()), codeOf(s.Status))
	}
	m.index(s.UserID, s.Key)
}

// Remove drops the record under key, live or not, after the caller has
// deleted it elsewhere.
func (m *Memory) Remove(key Key) {
	l := &m.locks[key[0]]
	l.Lock()
	m.cache.Delete(key) // evicted() drops the index entry
	l.Unlock()
}

// HoldsLive reports whether memory holds a session under key that is live
// at now.
func (m *Memory) HoldsLive(key Key, now time.Time) bool {
	s, ok := m.cache.Get(key)
	return ok && s.Live(now)
}

// DropIfDead removes the record under key unless it is live at now.
func (m *Memory) DropIfDead(key Key, now time.Time) {
	l := &m.locks[key[0]]
	l.Lock()
	defer l.Unlock()
	if s, ok := m.cache.Get(key); ok && !s.Live(now) {
		m.cache.Delete(key)
	}
}

// PutUser stores u as the state of u.UserID, as it is (Version included),
// after the caller has committed it elsewhere.
func (m *Memory) PutUser(u *UserState) {
	m.umu.Lock()
	m.users[u.UserID] = userEntry{u: u, written: m.now()}
	m.umu.Unlock()
}
