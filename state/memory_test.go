package state

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// newTestMemory returns a memory store on clk whose sweeper never runs
// during a test, so every expiry seen is enforced on read.
func newTestMemory(t *testing.T, clk *fakeClock) *Memory {
	t.Helper()
	m := NewMemory(MemoryOptions{Now: clk.Now, CleanupInterval: time.Hour})
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// create stores a new authenticated session of user and returns its id.
func create(t *testing.T, m *Memory, clk *fakeClock, user string, lifetime, idle time.Duration) (string, *Session) {
	t.Helper()
	id := NewID()
	s := NewSession(id, nil, clk.Now(), lifetime, idle)
	s.UserID = user
	if err := s.SetStatus(StatusAuthenticated, clk.Now(), "", 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(context.Background(), s); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return id, s
}

// assertGone checks that no read or write of the store sees key any more.
func assertGone(t *testing.T, m *Memory, key Key, user string) {
	t.Helper()
	ctx := context.Background()
	if s, err := m.Get(ctx, key); !errors.Is(err, ErrNotFound) || s != nil {
		t.Errorf("Get = %v, %v; want ErrNotFound", s, err)
	}
	if _, err := m.Update(ctx, key, func(*Session) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update = %v; want ErrNotFound", err)
	}
	if err := m.Touch(ctx, key, time.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Touch = %v; want ErrNotFound", err)
	}
	ss, _ := m.ByUser(ctx, user)
	for _, s := range ss {
		if s.Key == key {
			t.Errorf("ByUser lists the session")
		}
	}
	_ = m.Scan(ctx, func(s *Session) bool {
		if s.Key == key {
			t.Errorf("Scan visits the session")
		}
		return true
	})
	if _, err := m.Delete(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete = %v; want ErrNotFound", err)
	}
}

func TestMemoryIdleTimeoutOnRead(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	id, _ := create(t, m, clk, "alice", 8*time.Hour, 30*time.Minute)
	key := KeyOf(id)

	clk.Advance(29 * time.Minute)
	if _, err := m.Get(ctx, key); err != nil {
		t.Fatalf("Get before the idle end: %v", err)
	}
	// Touch extends the idle end: 29m + 30m.
	if err := m.Touch(ctx, key, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30*time.Minute - time.Second)
	s, err := m.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get after a touch, before the new idle end: %v", err)
	}
	if want := clk.Now().Add(-30*time.Minute + time.Second); !s.LastAccessTime.Equal(want) {
		t.Errorf("LastAccessTime = %v, want %v", s.LastAccessTime, want)
	}
	clk.Advance(time.Second)
	assertGone(t, m, key, "alice")
}

func TestMemoryAbsoluteLifetimeOnRead(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	id, _ := create(t, m, clk, "alice", 8*time.Hour, 30*time.Minute)
	key := KeyOf(id)
	// Used every 20 minutes, it never idles out, but 8h is the end.
	for elapsed := 20 * time.Minute; elapsed < 8*time.Hour; elapsed += 20 * time.Minute {
		clk.Advance(20 * time.Minute)
		if err := m.Touch(ctx, key, clk.Now()); err != nil {
			t.Fatalf("Touch at +%v: %v", elapsed, err)
		}
	}
	clk.Advance(8*time.Hour - 23*20*time.Minute - time.Nanosecond) // just before +8h
	if _, err := m.Get(ctx, key); err != nil {
		t.Fatalf("Get just before the absolute end: %v", err)
	}
	clk.Advance(time.Nanosecond)
	assertGone(t, m, key, "alice")
}

func TestMemoryTouch(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	id, _ := create(t, m, clk, "alice", 8*time.Hour, 30*time.Minute)
	key := KeyOf(id)
	before, _ := m.Get(ctx, key)

	// A touch in the past of the last access changes nothing.
	if err := m.Touch(ctx, key, clk.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Get(ctx, key); s.Version != before.Version || !s.LastAccessTime.Equal(before.LastAccessTime) {
		t.Fatalf("an older touch changed the session: v%d %v", s.Version, s.LastAccessTime)
	}
	at := clk.Now().Add(time.Minute)
	if err := m.Touch(ctx, key, at); err != nil {
		t.Fatal(err)
	}
	s, _ := m.Get(ctx, key)
	if !s.LastAccessTime.Equal(at) || s.Version != before.Version+1 {
		t.Fatalf("after Touch: %v v%d", s.LastAccessTime, s.Version)
	}
	if !before.LastAccessTime.Equal(clk.Now()) {
		t.Fatalf("Touch changed an earlier snapshot")
	}
	if err := m.Touch(ctx, KeyOf(NewID()), at); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Touch of an unknown key: %v", err)
	}
}

func TestMemoryCreate(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	id, s := create(t, m, clk, "alice", time.Hour, 0)
	if s.Version != 1 {
		t.Errorf("Create set Version %d on the caller's record, want 1", s.Version)
	}
	// The store keeps its own copy.
	s.UserID = "mallory"
	got, err := m.Get(ctx, KeyOf(id))
	if err != nil || got.UserID != "alice" || got.Version != 1 {
		t.Fatalf("Get = %+v, %v", got, err)
	}

	dup := NewSession(id, nil, clk.Now(), time.Hour, 0)
	dup.UserID = "bob"
	if err := m.Create(ctx, dup); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create with the same id: %v, want ErrExists", err)
	}
	if got, _ := m.Get(ctx, KeyOf(id)); got.UserID != "alice" {
		t.Fatalf("a refused Create replaced the session")
	}
	if ss, _ := m.ByUser(ctx, "bob"); len(ss) != 0 {
		t.Fatalf("a refused Create indexed the session under bob")
	}

	// Once the first has expired, the id may be used again.
	clk.Advance(time.Hour)
	dup = NewSession(id, nil, clk.Now(), time.Hour, 0)
	dup.UserID = "bob"
	if err := m.Create(ctx, dup); err != nil {
		t.Fatalf("Create over an expired session: %v", err)
	}
	if ss, _ := m.ByUser(ctx, "alice"); len(ss) != 0 {
		t.Fatalf("ByUser(alice) lists %d sessions after her session expired and the id was reused", len(ss))
	}
	if ss, _ := m.ByUser(ctx, "bob"); len(ss) != 1 || ss[0].Key != KeyOf(id) {
		t.Fatalf("ByUser(bob) = %v", ss)
	}
}

func TestMemoryUpdate(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	id, _ := create(t, m, clk, "alice", time.Hour, 0)
	key := KeyOf(id)
	before, _ := m.Get(ctx, key)

	boom := errors.New("boom")
	_, err := m.Update(ctx, key, func(s *Session) error {
		s.UserID = "mallory"
		s.GroupName = "admins"
		s.UserAttributes = map[string]string{"x": "y"}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	after, _ := m.Get(ctx, key)
	if !equalSessions(before, after) {
		t.Fatalf("a failed Update changed the record: %+v", after)
	}
	if ss, _ := m.ByUser(ctx, "mallory"); len(ss) != 0 {
		t.Fatalf("a failed Update indexed the session under the new user")
	}

	got, err := m.Update(ctx, key, func(s *Session) error {
		s.GroupName = "staff"
		s.Key = KeyOf("something else")
		s.Version = 99
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.GroupName != "staff" || got.Key != key || got.Version != before.Version+1 {
		t.Fatalf("Update returned %+v", got)
	}
	if stored, _ := m.Get(ctx, key); stored.GroupName != "staff" || stored.Version != got.Version {
		t.Fatalf("Get after Update = %+v", stored)
	}
	if before.GroupName != "" {
		t.Fatalf("Update changed an earlier snapshot")
	}

	// Changing the user moves the session in the index.
	if _, err := m.Update(ctx, key, func(s *Session) error { s.UserID = "bob"; return nil }); err != nil {
		t.Fatal(err)
	}
	if ss, _ := m.ByUser(ctx, "alice"); len(ss) != 0 {
		t.Fatalf("ByUser(alice) still lists the session")
	}
	if ss, _ := m.ByUser(ctx, "bob"); len(ss) != 1 {
		t.Fatalf("ByUser(bob) = %d sessions", len(ss))
	}
}

func TestMemoryUpdateIsAtomic(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	id, _ := create(t, m, clk, "alice", time.Hour, 0)
	key := KeyOf(id)
	if _, err := m.Update(ctx, key, func(s *Session) error {
		s.Challenge = &Challenge{CorrelationID: "c1"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := m.Update(ctx, key, func(s *Session) error {
				s.Challenge.Attempts++
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s, _ := m.Get(ctx, key)
	if s.Challenge.Attempts != n {
		t.Fatalf("Attempts = %d after %d concurrent increments", s.Challenge.Attempts, n)
	}
	if s.Version != n+2 {
		t.Fatalf("Version = %d, want %d", s.Version, n+2)
	}
}

func TestMemoryDelete(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	id, _ := create(t, m, clk, "alice", time.Hour, 0)
	id2, _ := create(t, m, clk, "alice", time.Hour, 0)
	gone, err := m.Delete(ctx, KeyOf(id))
	if err != nil || gone.Key != KeyOf(id) || gone.UserID != "alice" {
		t.Fatalf("Delete = %+v, %v", gone, err)
	}
	assertGone(t, m, KeyOf(id), "alice")
	if ss, _ := m.ByUser(ctx, "alice"); len(ss) != 1 || ss[0].Key != KeyOf(id2) {
		t.Fatalf("ByUser after Delete = %v", ss)
	}
}

func TestMemoryByUserOldestFirst(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	var want []Key
	for range 5 {
		id, _ := create(t, m, clk, "alice", 8*time.Hour, 0)
		want = append(want, KeyOf(id))
		create(t, m, clk, "bob", 8*time.Hour, 0)
		clk.Advance(time.Second)
	}
	ss, err := m.ByUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var got []Key
	for _, s := range ss {
		got = append(got, s.Key)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ByUser order differs from creation order")
	}
	if ss, _ := m.ByUser(ctx, "nobody"); len(ss) != 0 {
		t.Fatalf("ByUser(nobody) = %v", ss)
	}
}

func TestMemoryScan(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	live := map[Key]bool{}
	for i := range 10 {
		id, _ := create(t, m, clk, fmt.Sprint("u", i%3), 8*time.Hour, 0)
		live[KeyOf(id)] = true
	}
	expired, _ := create(t, m, clk, "u0", time.Minute, 0)
	clk.Advance(time.Minute)
	seen := map[Key]bool{}
	if err := m.Scan(ctx, func(s *Session) bool { seen[s.Key] = true; return true }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(live) || seen[KeyOf(expired)] {
		t.Fatalf("Scan saw %d sessions (expired one: %v), want %d", len(seen), seen[KeyOf(expired)], len(live))
	}
	calls := 0
	_ = m.Scan(ctx, func(*Session) bool { calls++; return calls < 3 })
	if calls != 3 {
		t.Fatalf("Scan went on after fn returned false: %d calls", calls)
	}
}

// TestMemoryConcurrentWriters has many goroutines create, update (moving
// sessions between users), touch and delete sessions of a few users while
// others read; afterwards the per-user index must list exactly the live
// sessions of each user.
func TestMemoryConcurrentWriters(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	users := []string{"alice", "bob", "carol", "dave"}
	const workers, ops = 16, 300

	results := make([]map[Key]string, workers)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, u := range users {
					ss, _ := m.ByUser(ctx, u)
					for _, s := range ss {
						if s.UserID != u {
							t.Errorf("ByUser(%s) returned a session of %s", u, s.UserID)
						}
					}
				}
				_ = m.Scan(ctx, func(*Session) bool { return true })
				m.sweepSessions()
			}
		})
	}
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			mine := map[Key]string{}
			var keys []Key
			for range ops {
				switch op := rng.IntN(10); {
				case op < 4 || len(keys) == 0:
					id := NewID()
					u := users[rng.IntN(len(users))]
					s := NewSession(id, nil, clk.Now(), 8*time.Hour, time.Hour)
					s.UserID = u
					if err := m.Create(ctx, s); err != nil {
						t.Error(err)
						return
					}
					mine[s.Key] = u
					keys = append(keys, s.Key)
				case op < 7:
					k := keys[rng.IntN(len(keys))]
					u := users[rng.IntN(len(users))]
					_, err := m.Update(ctx, k, func(s *Session) error { s.UserID = u; return nil })
					if _, ok := mine[k]; ok != (err == nil) {
						t.Errorf("Update of a key live=%v: %v", ok, err)
					}
					if err == nil {
						mine[k] = u
					}
				case op < 8:
					k := keys[rng.IntN(len(keys))]
					_ = m.Touch(ctx, k, clk.Now())
				default:
					k := keys[rng.IntN(len(keys))]
					_, err := m.Delete(ctx, k)
					if _, ok := mine[k]; ok != (err == nil) {
						t.Errorf("Delete of a key live=%v: %v", ok, err)
					}
					delete(mine, k)
				}
			}
			results[w] = mine
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	want := map[string]map[Key]bool{}
	total := 0
	for _, mine := range results {
		for k, u := range mine {
			if want[u] == nil {
				want[u] = map[Key]bool{}
			}
			want[u][k] = true
			total++
		}
	}
	for _, u := range users {
		ss, err := m.ByUser(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		got := map[Key]bool{}
		for _, s := range ss {
			got[s.Key] = true
		}
		if len(got) != len(want[u]) {
			t.Errorf("ByUser(%s) has %d sessions, want %d", u, len(got), len(want[u]))
		}
		for k := range want[u] {
			if !got[k] {
				t.Errorf("ByUser(%s) misses a live session", u)
			}
		}
	}
	if m.Len() != total {
		t.Errorf("store holds %d sessions, want %d", m.Len(), total)
	}
}

func TestMemoryUserState(t *testing.T) {
	clk := newFakeClock()
	m := newTestMemory(t, clk)
	ctx := context.Background()
	if u, err := m.GetUser(ctx, "alice"); !errors.Is(err, ErrNotFound) || u != nil {
		t.Fatalf("GetUser of a new user = %v, %v", u, err)
	}
	u, err := m.UpdateUser(ctx, "alice", func(u *UserState) error {
		u.UserID = "mallory"
		u.Devices = append(u.Devices, Device{ID: "d1"})
		return nil
	})
	if err != nil || u.UserID != "alice" || u.Version != 1 || len(u.Devices) != 1 {
		t.Fatalf("UpdateUser = %+v, %v", u, err)
	}
	got, err := m.GetUser(ctx, "alice")
	if err != nil || got.Version != 1 || got.Devices[0].ID != "d1" {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}

	boom := errors.New("boom")
	if _, err := m.UpdateUser(ctx, "alice", func(u *UserState) error {
		u.Devices[0].ID = "changed"
		u.History = append(u.History, Login{ClientIP: "x"})
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("UpdateUser = %v, want fn's error", err)
	}
	if after, _ := m.GetUser(ctx, "alice"); after.Devices[0].ID != "d1" || len(after.History) != 0 || after.Version != 1 {
		t.Fatalf("a failed UpdateUser changed the state: %+v", after)
	}
	if _, err := m.UpdateUser(ctx, "bob", func(*UserState) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := m.GetUser(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed first UpdateUser created the user: %v", err)
	}

	const n = 100
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := m.UpdateUser(ctx, "alice", func(u *UserState) error {
				u.History = append(u.History, Login{ClientIP: fmt.Sprint(i)})
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if final, _ := m.GetUser(ctx, "alice"); len(final.History) != n || final.Version != n+1 {
		t.Fatalf("after %d concurrent appends: %d entries, version %d", n, len(final.History), final.Version)
	}
}

// TestMemoryCloseStopsSweeper checks that Close stops the store's
// background sweeper, so a reload that replaces the store leaks nothing.
func TestMemoryCloseStopsSweeper(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		m := NewMemory(MemoryOptions{CleanupInterval: time.Millisecond})
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before, %d after creating and closing 20 stores", before, after)
	}
}
