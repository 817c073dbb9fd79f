package state

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestMemoryByUserFollowsCreateUpdateDelete checks the per-user index as a
// caller sees it through ByUser, for one session and for several.
func TestMemoryByUserFollowsCreateUpdateDelete(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := NewMemory(MemoryOptions{Now: func() time.Time { return now }, CleanupInterval: time.Hour})
	defer m.Close()
	mk := func(user string, ct time.Time) *Session {
		s := NewSession(NewID(), nil, ct, time.Hour, 0)
		s.UserID = user
		if err := m.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	keysOf := func(user string) []Key {
		ss, err := m.ByUser(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		var ks []Key
		for _, s := range ss {
			ks = append(ks, s.Key)
		}
		return ks
	}
	a1 := mk("alice", now.Add(-3*time.Second))
	if got := keysOf("alice"); !slices.Equal(got, []Key{a1.Key}) {
		t.Fatalf("alice's sessions: %v", got)
	}
	a2 := mk("alice", now.Add(-2*time.Second))
	a3 := mk("alice", now.Add(-1*time.Second))
	b1 := mk("bob", now)
	if got := keysOf("alice"); !slices.Equal(got, []Key{a1.Key, a2.Key, a3.Key}) {
		t.Fatalf("alice's sessions: %v", got)
	}
	// Deleting the first-indexed session keeps the others.
	if _, err := m.Delete(ctx, a1.Key); err != nil {
		t.Fatal(err)
	}
	if got := keysOf("alice"); !slices.Equal(got, []Key{a2.Key, a3.Key}) {
		t.Fatalf("after deleting a1, alice's sessions: %v", got)
	}
	// Moving a session to another user moves it in the index.
	if _, err := m.Update(ctx, a2.Key, func(s *Session) error { s.UserID = "bob"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := keysOf("alice"); !slices.Equal(got, []Key{a3.Key}) {
		t.Fatalf("after moving a2, alice's sessions: %v", got)
	}
	if got := keysOf("bob"); !slices.Equal(got, []Key{a2.Key, b1.Key}) {
		t.Fatalf("after moving a2, bob's sessions: %v", got)
	}
	for _, k := range []Key{a3.Key, a2.Key, b1.Key} {
		if _, err := m.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if got := keysOf("alice"); len(got) != 0 {
		t.Fatalf("alice still has %v", got)
	}
	if got := keysOf("bob"); len(got) != 0 {
		t.Fatalf("bob still has %v", got)
	}
	if left, _ := m.byUser.counts(); left != 0 {
		t.Errorf("index keeps %d users with no session", left)
	}
}
