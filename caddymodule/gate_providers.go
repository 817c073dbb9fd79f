package caddymodule

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/state"
)

// providerSlots is the size of a gate's provider cache: two-way sets of
// this many slots in all (16,384 pointers, 128 KiB per gate).
const providerSlots = 1 << 14

// provider is the placeholder provider of one session snapshot. It is
// immutable once made, so requests of the same session share it, and a
// replacer that still holds it after the slot was reused keeps resolving
// its own snapshot.
type provider struct {
	s  *state.Session
	fn caddy.ReplacerFunc
}

// providerCache keeps the placeholder providers of recently passed
// session snapshots, so that a hit hands the request's replacer a
// provider made before instead of allocating a closure per request.
// Stores return the same *Session for a session until it changes (a
// write, or a touch once per touch_interval), so a session's requests
// find their provider here; a miss (first request of a snapshot, or a
// slot taken by another session meanwhile) makes one, a 48-byte
// allocation. The slots are indexed by the session key, a SHA-256, and
// are read and written atomically without a lock.
type providerCache struct {
	slots [providerSlots]atomic.Pointer[provider]
}

// get returns the provider of snapshot s.
func (c *providerCache) get(s *state.Session) caddy.ReplacerFunc {
	i := binary.LittleEndian.Uint32(s.Key[:4]) & (providerSlots - 1) &^ 1
	a, b := &c.slots[i], &c.slots[i|1]
	if p := a.Load(); p != nil && p.s == s {
		return p.fn
	}
	if p := b.Load(); p != nil && p.s == s {
		return p.fn
	}
	p := &provider{s: s}
	p.fn = func(key string) (any, bool) { return placeholder(p.s, key) }
	// Replace the slot that holds an older snapshot of the same session,
	// else the second of the set (the first keeps the older resident).
	if q := a.Load(); q == nil || q.s.Key == s.Key {
		a.Store(p)
	} else {
		if q := b.Load(); q != nil && q.s.Key != s.Key {
			a.Store(q) // the displaced second moves up; the oldest leaves
		}
		b.Store(p)
	}
	return p.fn
}
