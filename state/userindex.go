package state

import (
	"crypto/sha256"
	"maps"
	"sync"
)

// userHash names a user in the memory store's per-user index: the first 8
// bytes of the SHA-256 of the user key. A fixed-size array instead of the
// user key string keeps the index's maps free of pointers, so the garbage
// collector does not walk them (a million users cost it nothing). Two
// users whose hashes collide share one entry, which costs nothing but
// work: every reader checks each session's UserID (ByUser), and the user
// states' sweep only keeps a state longer. A collision between two chosen
// user keys takes ~2^32 tries and hurts only their own lookups; one with a
// given user's key takes ~2^64. Eight bytes instead of sixteen save ~12
// bytes per session at a million.
type userHash [8]byte

func hashUser(userID string) userHash {
	sum := sha256.Sum256([]byte(userID))
	return userHash(sum[:8])
}

func hashUserBytes(userID []byte) userHash {
	sum := sha256.Sum256(userID)
	return userHash(sum[:8])
}

// encodedUserID returns the UserID of a session's stored form (appendStoredForm),
// read in place without decoding the rest (the sweeper needs only that to
// unindex what it drops). ok is false for bytes that are not one.
func encodedUserID(b []byte) (userID []byte, ok bool) {
	_, i, j, ok := readToUserID(b)
	if !ok {
		return nil, false
	}
	return b[i:j:j], true
}

// readToUserID reads a stored form in place up to its UserID (SealedID,
// Index, then UserID: AppendSession's order) and returns the UserID's
// bounds in b, with d just after it. ok is false for bytes that are not a
// stored form.
func readToUserID(b []byte) (d decoder, i, j int, ok bool) {
	if len(b) < storedFieldsAt || b[0] != sessionCodecVersion {
		return d, 0, 0, false
	}
	d = decoder{b: b, off: storedFieldsAt}
	d.skipBytes()  // SealedID
	d.skipString() // Index
	i, j, ok = d.span(d.uvarint())
	return d, i, j, ok && d.err == nil
}

// userIndex is the memory store's per-user index: each user's first
// session key in a map without pointers, and the others of users with
// several. It is split in shards by the user hash's first byte, each with
// its own lock, so that writers of different users (a start-up load on
// every CPU, the sweeper) do not queue on one lock, and no map grows to a
// million entries.
type userIndex struct {
	shards [256]userIndexShard
}

type userIndexShard struct {
	mu    sync.Mutex
	first map[userHash]Key
	more  map[userHash]map[Key]struct{}
	// peak is the most users first has held since it was made: a Go map
	// never shrinks, so once it holds under an eighth of that, remove
	// copies it into one of the size it needs (what a mass expiry left).
	peak int
}

func (x *userIndex) shard(h userHash) *userIndexShard { return &x.shards[h[0]] }

// add records that key is one of h's sessions.
func (x *userIndex) add(h userHash, key Key) {
	sh := x.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.first == nil {
		sh.first = make(map[userHash]Key)
	}
	if first, ok := sh.first[h]; !ok {
		sh.first[h] = key
		sh.peak = max(sh.peak, len(sh.first))
	} else if first != key {
		if sh.more == nil {
			sh.more = make(map[userHash]map[Key]struct{})
		}
		more := sh.more[h]
		if more == nil {
			more = make(map[Key]struct{})
			sh.more[h] = more
		}
		more[key] = struct{}{}
	}
}

// remove forgets that key is one of h's sessions.
func (x *userIndex) remove(h userHash, key Key) {
	sh := x.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	first, ok := sh.first[h]
	if !ok {
		return
	}
	more := sh.more[h]
	switch {
	case first != key:
		delete(more, key)
	case len(more) == 0:
		delete(sh.first, h)
	default:
		for k := range more { // promote any other key
			sh.first[h] = k
			delete(more, k)
			break
		}
	}
	if more != nil && len(more) == 0 {
		delete(sh.more, h)
	}
	if n := len(sh.first); sh.peak > shrinkFrom && n < sh.peak/8 {
		first := make(map[userHash]Key, n)
		maps.Copy(first, sh.first)
		sh.first, sh.peak = first, n
	}
}

// keys returns the keys indexed for h, and whether it has any.
func (x *userIndex) keys(h userHash) ([]Key, bool) {
	sh := x.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	first, ok := sh.first[h]
	if !ok {
		return nil, false
	}
	more := sh.more[h]
	keys := make([]Key, 0, 1+len(more))
	keys = append(keys, first)
	for k := range more {
		keys = append(keys, k)
	}
	return keys, true
}

// has reports whether h has a session indexed.
func (x *userIndex) has(h userHash) bool {
	sh := x.shard(h)
	sh.mu.Lock()
	_, ok := sh.first[h]
	sh.mu.Unlock()
	return ok
}

// counts returns the users indexed and those with more than one session.
func (x *userIndex) counts() (users, several int) {
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		users += len(sh.first)
		several += len(sh.more)
		sh.mu.Unlock()
	}
	return users, several
}

// reserve sizes the empty shards for n users in all.
func (x *userIndex) reserve(n int) {
	per := n/len(x.shards) + n/len(x.shards)/8 + 1
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		if len(sh.first) == 0 {
			sh.first, sh.peak = make(map[userHash]Key, per), 0
		}
		sh.mu.Unlock()
	}
}

// index records that key is one of userID's sessions.
func (m *Memory) index(userID string, key Key) {
	if userID == "" {
		return
	}
	m.byUser.add(hashUser(userID), key)
}

// unindex forgets that key is one of userID's sessions.
func (m *Memory) unindex(userID string, key Key) {
	if userID == "" {
		return
	}
	m.byUser.remove(hashUser(userID), key)
}

func (m *Memory) unindexHash(h userHash, key Key) { m.byUser.remove(h, key) }

// userKeys returns the keys indexed for userID, and whether it has any.
func (m *Memory) userKeys(userID string) ([]Key, bool) { return m.byUser.keys(hashUser(userID)) }
