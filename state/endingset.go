package state

import (
	"iter"
	"time"
	"unsafe"
)

// EndingSet holds Endings (the sessions a census found ending by its
// horizon) in a form the garbage collector does not walk: a map whose keys
// and values hold no pointers, and one append-only slab for the users and
// logins. The operations sampler keeps one between its samples; at a mass
// expiry it holds hundreds of thousands of sessions, which as a map of
// strings would be millions of pointers to mark at every collection.
// Not safe for concurrent use.
type EndingSet struct {
	refs  map[Key]endingRef
	names []byte
}

type endingRef struct {
	deadline    int64 // UnixNano
	at          int   // of the user in names; the login follows it
	user, login int
}

// NewEndingSet returns an empty set with room for about hint sessions.
func NewEndingSet(hint int) *EndingSet {
	return &EndingSet{refs: make(map[Key]endingRef, hint)}
}

// Add puts a copy of e in the set, in place of one with its key.
func (s *EndingSet) Add(e Ending) {
	at := len(s.names)
	s.names = append(append(s.names, e.UserID...), e.LoginName...)
	s.refs[e.Key] = endingRef{
		deadline: e.Deadline.UnixNano(),
		at:       at,
		user:     len(e.UserID),
		login:    len(e.LoginName),
	}
}

// Has reports whether the set holds a session under k.
func (s *EndingSet) Has(k Key) bool {
	_, ok := s.refs[k]
	return ok
}

// Len returns the number of sessions held.
func (s *EndingSet) Len() int { return len(s.refs) }

// All yields the sessions held, in no order, their deadlines in UTC. The
// strings share the set's slab, which is only ever appended to, so they
// stay valid and unchanged after the set has gone.
func (s *EndingSet) All() iter.Seq[Ending] {
	return func(yield func(Ending) bool) {
		for k, r := range s.refs {
			if !yield(s.ending(k, r)) {
				return
			}
		}
	}
}

// Gone calls fn with each session of s that next does not hold and whose
// deadline is not after end: the sessions of one operations sample that
// the next one found gone and due, in no order. It yields the CPU as the
// table's walks do (every yieldAfter): at a mass expiry s holds hundreds of
// thousands of sessions and fn emits an event for each, and without the
// yields a one-core server's requests would wait for the scheduler's 10 ms
// preemption, again and again, until it is done.
func (s *EndingSet) Gone(next *EndingSet, end time.Time, fn func(Ending)) {
	endN := end.UnixNano()
	var y yielder
	for k, r := range s.refs {
		if r.deadline <= endN && !next.Has(k) {
			fn(s.ending(k, r))
		}
		y.maybeEvery(256)
	}
}

// ending is the Ending held under k as r, its strings in the slab.
func (s *EndingSet) ending(k Key, r endingRef) Ending {
	return Ending{
		Key: k, UserID: slabString(s.names, r.at, r.user), LoginName: slabString(s.names, r.at+r.user, r.login),
		Deadline: time.Unix(0, r.deadline).UTC(),
	}
}

// slabString returns b[at:at+n] as a string without copying it: b is an
// append-only slab, whose written bytes never change.
func slabString(b []byte, at, n int) string {
	if n == 0 {
		return ""
	}
	return unsafe.String(&b[at], n)
}
