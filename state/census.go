package state

import (
	"context"
	"time"
)

// Census is a count of a store's live sessions by effective status.
type Census struct {
	ByStatus map[Status]int
	Total    int
}

// Censuser is implemented by stores that can count their sessions without
// decoding each one (the memory store reads the few fields it needs in
// place from the binary encodings it holds). TakeCensus falls back on Scan
// for the others.
type Censuser interface {
	// Census counts the sessions live at now by EffectiveStatus(now), and
	// calls ending (when not nil) with each live session whose Deadline is
	// not after horizon, decoded: only those are decoded.
	Census(ctx context.Context, now, horizon time.Time, ending func(*Session)) (Census, error)
}

// TakeCensus counts st's live sessions at now by effective status and calls
// ending with each live session whose deadline is not after horizon; see
// Censuser.
func TakeCensus(ctx context.Context, st Store, now, horizon time.Time, ending func(*Session)) (Census, error) {
	if c, ok := st.(Censuser); ok {
		return c.Census(ctx, now, horizon, ending)
	}
	c := Census{ByStatus: map[Status]int{}}
	err := st.Scan(ctx, func(s *Session) bool {
		c.ByStatus[s.EffectiveStatus(now)]++
		c.Total++
		if ending != nil && !s.Deadline().After(horizon) {
			ending(s)
		}
		return true
	})
	return c, err
}

// censusFields are the fields of an encoded session that a census reads.
type censusFields struct {
	lastAccess, expiry, blockedUntil time.Time
	idle                             time.Duration
	status                           Status
}

// live and effective mirror Session.Live and Session.EffectiveStatus.
func (f *censusFields) live(now time.Time) bool {
	s := Session{LastAccessTime: f.lastAccess, ExpiryTime: f.expiry, IdleTimeout: f.idle}
	return s.Live(now)
}

func (f *censusFields) deadline() time.Time {
	s := Session{LastAccessTime: f.lastAccess, ExpiryTime: f.expiry, IdleTimeout: f.idle}
	return s.Deadline()
}

func (f *censusFields) effective(now time.Time) Status {
	s := Session{Status: f.status, BlockedUntil: f.blockedUntil}
	return s.EffectiveStatus(now)
}

// readCensusFields reads the fields a census needs from a session's stored
// form (storedForm), in place: nothing is allocated for a session in a
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
	d.time() // CreateTime
	d.time() // UpdateTime
	f.lastAccess = d.time()
	f.expiry = d.time()
	f.idle = time.Duration(d.varint())
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

func (d *decoder) skipBytes() {
	if n := d.uvarint(); n > 0 && d.err == nil {
		d.span(n - 1)
	}
}

// Census implements Censuser: each session's status and times are read in
// place from its encoding; only those ending by horizon are decoded.
func (m *Memory) Census(ctx context.Context, now, horizon time.Time, ending func(*Session)) (Census, error) {
	c := Census{ByStatus: map[Status]int{}}
	type nearEnd struct {
		k   Key
		enc []byte
	}
	var near []nearEnd
	err := m.cache.scanEncoded(ctx, func(k Key, enc []byte) {
		f, ok := readCensusFields(enc)
		if !ok {
			panic("state: memory table holds a bad encoding") // written by this package only
		}
		if !f.live(now) {
			return
		}
		c.ByStatus[f.effective(now)]++
		c.Total++
		if ending != nil && !f.deadline().After(horizon) {
			near = append(near, nearEnd{k, enc})
		}
	}, func() {
		for _, n := range near {
			ending(mustDecode(n.k, n.enc))
		}
		clear(near)
		near = near[:0]
	})
	return c, err
}

// Interface guard.
var _ Censuser = (*Memory)(nil)
