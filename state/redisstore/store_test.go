package redisstore

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
)

// newTestRedis returns a store on srv with the given clock, closed when the
// test ends, and waits until its subscription is up.
func newTestRedis(t *testing.T, srv *redistest.Server, clk *fakeClock, mod func(*Options)) *Store {
	t.Helper()
	o := Options{
		Addrs:     []string{srv.Addr()},
		KeyPrefix: "t:",
		Timeout:   2 * time.Second,
		Now:       clk.Now,
	}
	if mod != nil {
		mod(&o)
	}
	r, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if _, ok := waitFor(settle, r.Up); !ok {
		t.Fatal("store never subscribed to invalidations")
	}
	return r
}

func testSession(clk *fakeClock, user string) *state.Session {
	s := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 10*time.Minute)
	s.UserID = user
	return s
}

func TestRedisSessionLifecycle(t *testing.T) {
	srv := redistest.Start(t)
	clk := newFakeClock()
	r := newTestRedis(t, srv, clk, nil)
	ctx := context.Background()

	s := testSession(clk, "alice")
	s.UserAttributes = map[string]string{"mail": "a@example.com"}
	s.Fingerprints = []state.Fingerprint{{Cookie: "c1", Fingerprint: "f1", CookieType: "1"}}
	if err := r.Create(ctx, s); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if s.Version != 1 {
		t.Errorf("Create set Version %d, want 1", s.Version)
	}
	if err := r.Create(ctx, s); !errors.Is(err, state.ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	r.near.flush() // read from Redis, not the near-cache
	got, err := r.Get(ctx, s.Key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.UserID != "alice" || got.UserAttributes["mail"] != "a@example.com" || got.Index != s.Index ||
		len(got.Fingerprints) != 1 || got.Fingerprints[0] != s.Fingerprints[0] ||
		!got.ExpiryTime.Equal(s.ExpiryTime) || got.Version != 1 {
		t.Errorf("Get returned %+v, want the created session", got)
	}

	up, err := r.Update(ctx, s.Key, func(c *state.Session) error {
		return c.SetStatus(state.StatusAuthenticated, clk.Now(), "", 0)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if up.Version != 2 || up.Status != state.StatusAuthenticated {
		t.Errorf("Update returned version %d status %q", up.Version, up.Status)
	}
	r.near.flush()
	if got, _ := r.Get(ctx, s.Key); got == nil || got.Status != state.StatusAuthenticated || got.Version != 2 {
		t.Errorf("after Update, Get = %+v", got)
	}
	boom := errors.New("boom")
	if _, err := r.Update(ctx, s.Key, func(c *state.Session) error { c.UserID = "mallory"; return boom }); !errors.Is(err, boom) {
		t.Errorf("Update with failing fn: %v", err)
	}
	if got, _ := r.Get(ctx, s.Key); got.UserID != "alice" {
		t.Errorf("failed Update changed the session: user %q", got.UserID)
	}

	s2 := testSession(clk, "alice")
	clk.Advance(time.Second)
	s3 := testSession(clk, "alice")
	for _, x := range []*state.Session{s3, s2, testSession(clk, "bob")} {
		if err := r.Create(ctx, x); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	list, err := r.ByUser(ctx, "alice")
	if err != nil {
		t.Fatalf("ByUser: %v", err)
	}
	if len(list) != 3 || list[2].Key != s3.Key {
		t.Errorf("ByUser(alice) = %d sessions, last %v; want 3, newest last", len(list), list)
	}

	var scanned []string
	if err := r.Scan(ctx, func(x *state.Session) bool { scanned = append(scanned, x.UserID); return true }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	sort.Strings(scanned)
	if len(scanned) != 4 || scanned[3] != "bob" {
		t.Errorf("Scan saw %v, want 3 alice and 1 bob", scanned)
	}
	n := 0
	_ = r.Scan(ctx, func(*state.Session) bool { n++; return false })
	if n != 1 {
		t.Errorf("Scan went on after fn returned false: %d calls", n)
	}

	del, err := r.Delete(ctx, s.Key)
	if err != nil || del.Key != s.Key {
		t.Fatalf("Delete: %v, %v", del, err)
	}
	if _, err := r.Get(ctx, s.Key); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, err := r.Delete(ctx, s.Key); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	if _, err := r.Update(ctx, s.Key, func(*state.Session) error { return nil }); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Update after Delete: %v, want ErrNotFound", err)
	}
	if list, _ := r.ByUser(ctx, "alice"); len(list) != 2 {
		t.Errorf("ByUser after Delete: %d sessions, want 2", len(list))
	}
}

func TestRedisExpiryAndTouch(t *testing.T) {
	srv := redistest.Start(t)
	clk := newFakeClock()
	a := newTestRedis(t, srv, clk, nil)
	b := newTestRedis(t, srv, clk, nil)
	ctx := context.Background()

	s := testSession(clk, "u") // 1h lifetime, 10m idle
	if err := a.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, s.Key); err != nil { // B caches it
		t.Fatalf("Get on B: %v", err)
	}
	clk.Advance(8 * time.Minute)
	if err := a.Touch(ctx, s.Key, clk.Now()); err != nil {
		t.Fatal(err)
	}
	a.flushTouches(ctx)
	clk.Advance(4 * time.Minute) // 12m after creation, 4m after the touch
	got, err := b.Get(ctx, s.Key)
	if err != nil {
		t.Fatalf("Get on B after a touch on A: %v (B's cached copy looks idle; Redis has the touch)", err)
	}
	if !got.LastAccessTime.Equal(s.LastAccessTime.Add(8 * time.Minute)) {
		t.Errorf("LastAccessTime = %v, want the touch time", got.LastAccessTime)
	}
	clk.Advance(11 * time.Minute) // idle
	if _, err := a.Get(ctx, s.Key); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Get of an idle session: %v, want ErrNotFound", err)
	}
	// A dead record does not block re-creation under the same key.
	if err := b.Create(ctx, s); err != nil {
		t.Errorf("Create over a dead session: %v", err)
	}
}

func TestRedisUserState(t *testing.T) {
	srv := redistest.Start(t)
	clk := newFakeClock()
	a := newTestRedis(t, srv, clk, nil)
	b := newTestRedis(t, srv, clk, nil)
	ctx := context.Background()
	if _, err := a.GetUser(ctx, "alice"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("GetUser of an unknown user: %v", err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		st := []*Store{a, b}[i%2]
		wg.Go(func() {
			_, err := st.UpdateUser(ctx, "alice", func(u *state.UserState) error {
				u.History = append(u.History, state.Login{Time: clk.Now(), ClientIP: "192.0.2.1"})
				return nil
			})
			if err != nil {
				t.Errorf("UpdateUser: %v", err)
			}
		})
	}
	wg.Wait()
	u, err := b.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.History) != 20 || u.Version != 20 || u.UserID != "alice" {
		t.Errorf("after 20 concurrent UpdateUser: %d entries, version %d", len(u.History), u.Version)
	}
}

func TestRedisTwoInstances(t *testing.T) {
	srv := redistest.Start(t)
	clk := newFakeClock()
	a := newTestRedis(t, srv, clk, nil)
	b := newTestRedis(t, srv, clk, nil)
	ctx := context.Background()

	s := testSession(clk, "alice")
	if err := a.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, s.Key); err != nil {
		t.Fatalf("created on A, Get on B: %v", err)
	}
	if _, err := a.Get(ctx, s.Key); err != nil {
		t.Fatal(err)
	}
	// A status change on A reaches B's near-cache.
	if _, err := a.Update(ctx, s.Key, func(c *state.Session) error {
		return c.SetStatus(state.StatusAuthenticated, clk.Now(), "", 0)
	}); err != nil {
		t.Fatal(err)
	}
	took, ok := waitFor(settle, func() bool {
		got, err := b.Get(ctx, s.Key)
		return err == nil && got.Status == state.StatusAuthenticated
	})
	if !ok {
		t.Fatalf("status change on A not seen on B within %v", settle)
	}
	t.Logf("status change on A seen on B after %v", took)

	// A deletion on B reaches A's near-cache.
	if _, err := b.Delete(ctx, s.Key); err != nil {
		t.Fatal(err)
	}
	took, ok = waitFor(settle, func() bool {
		_, err := a.Get(ctx, s.Key)
		return errors.Is(err, state.ErrNotFound)
	})
	if !ok {
		t.Fatalf("deletion on B not seen on A within %v", settle)
	}
	t.Logf("deletion on B seen on A after %v", took)
}

func TestRedisConcurrentUpdatesLoseNothing(t *testing.T) {
	srv := redistest.Start(t)
	clk := newFakeClock()
	a := newTestRedis(t, srv, clk, nil)
	b := newTestRedis(t, srv, clk, nil)
	ctx := context.Background()
	s := testSession(clk, "alice")
	s.Challenge = &state.Challenge{CorrelationID: "c1", Expiry: clk.Now().Add(time.Minute)}
	if err := a.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		st := []*Store{a, b}[w%2]
		wg.Go(func() {
			for range each {
				if _, err := st.Update(ctx, s.Key, func(c *state.Session) error {
					c.Challenge.Attempts++
					return nil
				}); err != nil {
					t.Errorf("Update: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, st := range []*Store{a, b} {
		var got *state.Session
		if _, ok := waitFor(settle, func() bool {
			g, err := st.Get(ctx, s.Key)
			got = g
			return err == nil && g.Challenge.Attempts == workers*each
		}); !ok {
			t.Fatalf("attempts = %d, version %d; want %d (a lost increment)", got.Challenge.Attempts, got.Version, workers*each)
		}
		if got.Version != 1+workers*each {
			t.Errorf("version = %d, want %d", got.Version, 1+workers*each)
		}
	}
}
