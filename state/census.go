package state

import (
	"context"
	"time"
)

// Census is a count of a store's live sessions by effective status.
type Census struct {
	ByStatus map[Status]int
	Total    int
	// OffHeapBytes is the memory the store holds its sessions in outside
	// the Go heap (the memory store's arenas: see table), which the Go
	// runtime's statistics and GOMEMLIMIT do not count. 0 for the others.
	OffHeapBytes int64
}

// Ending is a live session that a census found ending by its horizon:
// what the operations sampler keeps of it to report its expiry.
type Ending struct {
	Key       Key
	UserID    string
	LoginName string
	Deadline  time.Time // Session.Deadline
}

// Censuser is implemented by stores that can count their sessions without
// decoding each one (the memory store reads the few fields it needs in
// place from the binary encodings it holds). TakeCensus falls back on Scan
// for the others.
type Censuser interface {
	// Census counts the sessions live at now by EffectiveStatus(now), and
	// calls ending (when not nil) with each live session whose Deadline is
	// not after horizon.
	Census(ctx context.Context, now, horizon time.Time, ending func(Ending)) (Census, error)
}

// TakeCensus counts st's live sessions at now by effective status and calls
// ending with each live session whose deadline is not after horizon; see
// Censuser.
func TakeCensus(ctx context.Context, st Store, now, horizon time.Time, ending func(Ending)) (Census, error) {
	if c, ok := st.(Censuser); ok {
		return c.Census(ctx, now, horizon, ending)
	}
	c := Census{ByStatus: map[Status]int{}}
	err := st.Scan(ctx, func(s *Session) bool {
		c.ByStatus[s.EffectiveStatus(now)]++
		c.Total++
		if ending != nil && !s.Deadline().After(horizon) {
			ending(Ending{Key: s.Key, UserID: s.UserID, LoginName: s.LoginName, Deadline: s.Deadline()})
		}
		return true
	})
	return c, err
}

// censusFields are the fields of an encoded session that a census reads
// when the table's slot does not tell (a block that may have run out).
type censusFields struct {
	blockedUntil time.Time
	status       Status
}

// effective mirrors Session.EffectiveStatus.
func (f *censusFields) effective(now time.Time) Status {
	s := Session{Status: f.status, BlockedUntil: f.blockedUntil}
	return s.EffectiveStatus(now)
}

// readCensusFields reads the fields a census needs from a session's stored
// form (appendStoredForm), in place: nothing is allocated for a session in a
// known status with times in UTC or Local (all that this package writes).
func readCensusFields(b []byte) (censusFields, bool) {
	var f censusFields
	if len(b) < storedFieldsAt || b[0] != sessionCodecVersion {
		return f, false
	}
	d := decoder{b: b, off: storedFieldsAt}
	d.skipBytes() // SealedID
	for range 6 { // Index, UserID, LoginName, GroupName, IDStoreName, ClientIP
		d.skipString()
	}
	d.byte() // flags
	if n := d.uvarint(); n > 0 {
		for range n - 1 {
			if d.err != nil {
				break
			}
			d.skipString()
			d.skipString()
		}
	}
	for range 4 { // CreateTime, UpdateTime, LastAccessTime, ExpiryTime
		d.time()
	}
	d.varint() // IdleTimeout
	if i, j, ok := d.span(d.uvarint()); ok {
		f.status = knownStatus(b[i:j])
	}
	f.blockedUntil = d.time()
	return f, d.err == nil
}

// knownStatus returns the Status spelled by b without allocating for the
// known ones.
func knownStatus(b []byte) Status {
	for _, st := range Statuses {
		if string(b) == string(st) {
			return st
		}
	}
	return Status(b)
}

func (d *decoder) skipString() { d.span(d.uvarint()) }

// appendEnding appends the UserID and LoginName of a session's stored form
// to dst, read in place, and returns dst and their lengths.
func appendEnding(dst, b []byte) (out []byte, userLen, loginLen int, ok bool) {
	d, i, j, ok := readToUserID(b)
	if !ok {
		return dst, 0, 0, false
	}
	k, l, ok := d.span(d.uvarint())
	if !ok || d.err != nil {
		return dst, 0, 0, false
	}
	dst = append(dst, b[i:j]...)
	return append(dst, b[k:l]...), j - i, l - k, true
}

func (d *decoder) skipBytes() {
	if n := d.uvarint(); n > 0 && d.err == nil {
		d.span(n - 1)
	}
}

// statusCode is a session's status as the memory table keeps it beside the
// encoding: its index in Statuses, or unknownStatus.
type statusCode uint8

const unknownStatus statusCode = 255

func codeOf(st Status) statusCode {
	for i, s := range Statuses {
		if s == st {
			return statusCode(i)
		}
	}
	return unknownStatus
}

// Census implements Censuser from the table's slots: each session's
// deadline and status lie there, side by side in memory, so a census of a
// million sessions reads no encoding but those of sessions blocked (whose
// block may have run out) and, for those ending by horizon, their UserID
// and LoginName: nothing is decoded.
func (m *Memory) Census(ctx context.Context, now, horizon time.Time, ending func(Ending)) (Census, error) {
	nowN, horizonN := unixNanos(now), unixNanos(horizon)
	blocked := codeOf(StatusChallengeBlocked)
	var counts [256]int
	others := map[Status]int{}
	// The users and logins of a shard's ending sessions are copied side
	// by side into names under its lock, and made one string after it:
	// an allocation a shard rather than two a session, which at a mass
	// expiry (hundreds of thousands ending by the horizon) made the
	// census most of the garbage the process had to collect.
	type nearRef struct {
		key         Key
		deadline    int64
		user, login int
	}
	var near []nearRef
	var names []byte
	err := m.cache.scanSlots(ctx, func(k Key, sl slot[statusCode], sh *tableShard[statusCode]) {
		if sl.deadline <= nowN {
			return
		}
		if code := sl.aux; code != blocked && code != unknownStatus {
			counts[code]++
		} else {
			f, ok := readCensusFields(sh.enc(sl))
			if !ok {
				panic("state: memory table holds a bad encoding") // written by this package only
			}
			others[f.effective(now)]++
		}
		if ending != nil && sl.deadline <= horizonN {
			var user, login int
			var ok bool
			names, user, login, ok = appendEnding(names, sh.enc(sl))
			if !ok {
				panic("state: memory table holds a bad encoding") // written by this package only
			}
			near = append(near, nearRef{key: k, deadline: sl.deadline, user: user, login: login})
		}
	}, func() {
		if len(near) == 0 {
			return
		}
		all, at := string(names), 0
		for _, e := range near {
			user, login := all[at:at+e.user], all[at+e.user:at+e.user+e.login]
			at += e.user + e.login
			ending(Ending{Key: e.key, UserID: user, LoginName: login, Deadline: time.Unix(0, e.deadline).In(now.Location())})
		}
		near, names = near[:0], names[:0]
	})
	c := Census{ByStatus: others, OffHeapBytes: m.cache.mappedBytes()}
	for i, st := range Statuses {
		if counts[i] > 0 {
			c.ByStatus[st] += counts[i]
		}
	}
	for _, n := range c.ByStatus {
		c.Total += n
	}
	return c, err
}

// Interface guard.
var _ Censuser = (*Memory)(nil)
