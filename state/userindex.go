package state

import (
	"crypto/sha256"
	"encoding/binary"
)

// userHash names a user in the memory store's per-user index: the first 16
// bytes of the SHA-256 of the user key. A fixed-size array instead of the
// user key string keeps the index's main map free of pointers, so the
// garbage collector does not walk it (a million users cost it nothing);
// 128 bits make a collision out of reach, and ByUser checks each session's
// UserID anyway.
type userHash [16]byte

func hashUser(userID string) userHash {
	sum := sha256.Sum256([]byte(userID))
	return userHash(sum[:16])
}

func hashUserBytes(userID []byte) userHash {
	sum := sha256.Sum256(userID)
	return userHash(sum[:16])
}

// encodedUserID returns the UserID of a session's stored form (storedForm),
// read in place without decoding the rest (the sweeper needs only that to
// unindex what it drops). ok is false for bytes that are not one.
func encodedUserID(b []byte) (userID []byte, ok bool) {
	if len(b) < storedFieldsAt || b[0] != sessionCodecVersion {
		return nil, false
	}
	off := storedFieldsAt
	next := func(plusOne bool) (int, int, bool) {
		n, w := binary.Uvarint(b[off:])
		if w <= 0 {
			return 0, 0, false
		}
		off += w
		if plusOne { // a byte string: length+1, 0 for nil
			if n == 0 {
				return off, off, true
			}
			n--
		}
		if n > uint64(len(b)-off) {
			return 0, 0, false
		}
		i := off
		off += int(n)
		return i, off, true
	}
	// SealedID, Index, then UserID (AppendSession's order).
	if _, _, ok := next(true); !ok {
		return nil, false
	}
	if _, _, ok := next(false); !ok {
		return nil, false
	}
	i, j, ok := next(false)
	if !ok {
		return nil, false
	}
	return b[i:j:j], true
}

// index records that key is one of userID's sessions.
func (m *Memory) index(userID string, key Key) {
	if userID == "" {
		return
	}
	h := hashUser(userID)
	m.imu.Lock()
	if first, ok := m.byUser[h]; !ok {
		m.byUser[h] = key
	} else if first != key {
		more := m.byUserMore[h]
		if more == nil {
			more = make(map[Key]struct{})
			m.byUserMore[h] = more
		}
		more[key] = struct{}{}
	}
	m.imu.Unlock()
}

// unindex forgets that key is one of userID's sessions.
func (m *Memory) unindex(userID string, key Key) {
	if userID == "" {
		return
	}
	m.unindexHash(hashUser(userID), key)
}

func (m *Memory) unindexHash(h userHash, key Key) {
	m.imu.Lock()
	defer m.imu.Unlock()
	first, ok := m.byUser[h]
	if !ok {
		return
	}
	more := m.byUserMore[h]
	switch {
	case first != key:
		delete(more, key)
	case len(more) == 0:
		delete(m.byUser, h)
	default:
		for k := range more { // promote any other key
			m.byUser[h] = k
			delete(more, k)
			break
		}
	}
	if more != nil && len(more) == 0 {
		delete(m.byUserMore, h)
	}
}

// userKeys returns the keys indexed for userID, and whether it has any.
func (m *Memory) userKeys(userID string) ([]Key, bool) {
	h := hashUser(userID)
	m.imu.Lock()
	defer m.imu.Unlock()
	first, ok := m.byUser[h]
	if !ok {
		return nil, false
	}
	more := m.byUserMore[h]
	keys := make([]Key, 0, 1+len(more))
	keys = append(keys, first)
	for k := range more {
		keys = append(keys, k)
	}
	return keys, true
}
