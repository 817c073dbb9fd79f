package state

import (
	"testing"
	"time"
)

// TestSessionTable checks what the Redis near-cache relies on: a session
// comes back with its instant and expiry until its lifetime passes, then
// not at all, and DeleteExpiredPart (over the whole table), Delete and Flush
// remove what they should.
func TestSessionTable(t *testing.T) {
	st := NewSessionTable()
	now := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	mk := func(user string) *Session {
		s := NewSession(NewID(), nil, now, time.Hour, 0)
		s.UserID = user
		return s
	}
	long, short, other := mk("erin"), mk("frank"), mk("grace")
	before := time.Now()
	st.Set(long.Key, long, now, time.Hour)
	st.Set(short.Key, short, now.Add(time.Second), 20*time.Millisecond)
	st.Set(other.Key, other, now, time.Hour)

	s, at, exp, ok := st.Get(long.Key)
	if !ok || s.UserID != "erin" || !at.Equal(now) || exp.Before(before.Add(time.Hour)) || exp.After(time.Now().Add(time.Hour)) {
		t.Fatalf("Get(long) = %v, %v, %v, %v", s, at, exp, ok)
	}
	if s, at, _, ok := st.Get(short.Key); !ok || s.UserID != "frank" || !at.Equal(now.Add(time.Second)) {
		t.Fatalf("Get(short) before its expiry = %v, %v, %v", s, at, ok)
	}
	time.Sleep(30 * time.Millisecond)
	if _, _, _, ok := st.Get(short.Key); ok {
		t.Fatal("an expired session was returned")
	}
	if n := st.Len(); n != 3 {
		t.Fatalf("Len before DeleteExpired = %d, want 3", n)
	}
	st.DeleteExpiredPart(0, 1)
	if n := st.Len(); n != 2 {
		t.Fatalf("Len after DeleteExpired = %d, want 2", n)
	}
	st.Delete(other.Key)
	if _, _, _, ok := st.Get(other.Key); ok || st.Len() != 1 {
		t.Fatalf("after Delete: found %v, Len %d", ok, st.Len())
	}
	st.Flush()
	if _, _, _, ok := st.Get(long.Key); ok || st.Len() != 0 {
		t.Fatalf("after Flush: found %v, Len %d", ok, st.Len())
	}
}

// TestSessionTableDeleteExpiredPart checks the steps of a near-cache
// sweep: each part removes the expired sessions of its shards only (the
// shard is the key's first byte), and the parts together remove all.
func TestSessionTableDeleteExpiredPart(t *testing.T) {
	st := NewSessionTable()
	now := time.Now()
	var inLast, live int
	for i := range 200 {
		s := NewSession(NewID(), nil, now, time.Hour, 0)
		ttl := time.Millisecond
		if i%5 == 0 {
			ttl, live = time.Hour, live+1
		} else if s.Key[0] >= 192 {
			inLast++
		}
		st.Set(s.Key, s, now, ttl)
	}
	time.Sleep(5 * time.Millisecond)
	for i := range 3 {
		st.DeleteExpiredPart(i, 4)
	}
	if n := st.Len(); n != live+inLast {
		t.Fatalf("after three of four parts: %d sessions, want %d live and %d expired in the last part", n, live, inLast)
	}
	st.DeleteExpiredPart(3, 4)
	if n := st.Len(); n != live {
		t.Fatalf("after every part: %d sessions, want the %d live", n, live)
	}
}
