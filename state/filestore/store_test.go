package filestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

// testClock is an injected clock that tests move by hand.
type testClock = testkit.Clock

func newTestClock() *testClock {
	return testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

func openTestFile(t *testing.T, opts Options) *Store {
	t.Helper()
	f, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// fullSession returns a session with every kind of field set.
func fullSession(t *testing.T, now time.Time, user string) *state.Session {
	t.Helper()
	sealer, err := state.NewSealer(state.NewSealKey())
	if err != nil {
		t.Fatal(err)
	}
	s := state.NewSession(state.NewID(), sealer, now, time.Hour, 30*time.Minute)
	s.UserID = user
	s.LoginName = user + "@example.com"
	s.GroupName = "staff"
	s.ClientIP = "192.0.2.7"
	s.UserAttributes = map[string]string{"mail": user + "@example.com"}
	ras, rct := 0, 2
	s.AuthenticationStatus, s.ClientType = &ras, &rct
	s.ClientApplication = "app"
	s.Fingerprints = []state.Fingerprint{{Cookie: "c1", Fingerprint: "f1", CookieType: "1"}, {Fingerprint: "f2"}}
	s.Challenge = &state.Challenge{
		CorrelationID: "corr-1", Factor: "email",
		NonceHash: []byte{1, 2, 3}, AnswerHash: []byte{4, 5, 6},
		Expiry: now.Add(5 * time.Minute), Attempts: 2,
	}
	return s
}

func sessionsOnDisk(t *testing.T, f *Store) int {
	t.Helper()
	n := 0
	if err := f.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketSessions).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFileRoundTrip(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	f := openTestFile(t, Options{Path: filepath.Join(t.TempDir(), "s.db"), Now: clk.Now})
	s := fullSession(t, clk.Now(), "alice")
	if err := f.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := f.Create(ctx, s); !errors.Is(err, state.ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
	got, err := f.Get(ctx, s.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("Get = %+v, want %+v", got, s)
	}
	upd, err := f.Update(ctx, s.Key, func(c *state.Session) error {
		return c.SetStatus(state.StatusAuthenticated, clk.Now(), "", 0)
	})
	if err != nil || upd.Status != state.StatusAuthenticated || upd.Version != 2 {
		t.Fatalf("Update = %+v, %v", upd, err)
	}
	refused := errors.New("refused")
	if _, err := f.Update(ctx, s.Key, func(*state.Session) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("Update with failing fn: %v", err)
	}
	if got, _ := f.Get(ctx, s.Key); got.Version != 2 {
		t.Fatalf("failed Update changed the record: version %d", got.Version)
	}
	del, err := f.Delete(ctx, s.Key)
	if err != nil || del.Version != 2 {
		t.Fatalf("Delete = %+v, %v", del, err)
	}
	if _, err := f.Get(ctx, s.Key); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if n := sessionsOnDisk(t, f); n != 0 {
		t.Fatalf("%d records on disk after Delete", n)
	}
	if _, err := f.Delete(ctx, s.Key); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := f.GetUser(ctx, "alice"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("GetUser before any update: %v", err)
	}
	u, err := f.UpdateUser(ctx, "alice", func(u *state.UserState) error {
		u.Devices = append(u.Devices, state.Device{ID: "d1", Added: clk.Now(), Until: clk.Now().Add(time.Hour)})
		return nil
	})
	if err != nil || u.Version != 1 || len(u.Devices) != 1 {
		t.Fatalf("UpdateUser = %+v, %v", u, err)
	}
}

func TestFileReopenRestoresEverything(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	path := filepath.Join(t.TempDir(), "s.db")
	f := openTestFile(t, Options{Path: path, Now: clk.Now})
	var want []*state.Session
	for i, user := range []string{"alice", "alice", "bob"} {
		s := fullSession(t, clk.Now().Add(time.Duration(i)*time.Second), user)
		if err := f.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		want = append(want, s)
	}
	upd, err := f.Update(ctx, want[2].Key, func(c *state.Session) error {
		c.Challenge.Attempts = 4
		c.Factors = []string{"password", "otp"}
		return c.SetStatus(state.StatusChallengeBlocked, clk.Now(), "too_many_attempts", 10*time.Minute)
	})
	if err != nil {
		t.Fatal(err)
	}
	want[2] = upd
	clk.Advance(time.Minute)
	if err := f.Touch(ctx, want[0].Key, clk.Now()); err != nil {
		t.Fatal(err)
	}
	want[0], _ = f.Get(ctx, want[0].Key)
	user, err := f.UpdateUser(ctx, "alice", func(u *state.UserState) error {
		u.Devices = []state.Device{{ID: "laptop", Added: clk.Now(), Until: clk.Now().Add(24 * time.Hour)}}
		u.History = []state.Login{{Time: clk.Now(), ClientIP: "192.0.2.1", DeviceID: "laptop"}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	g := openTestFile(t, Options{Path: path, Now: clk.Now})
	for _, w := range want {
		got, err := g.Get(ctx, w.Key)
		if err != nil {
			t.Fatalf("Get %s after reopen: %v", w.Key.Short(), err)
		}
		// Version is not compared for the touched one: an access is
		// written with its time only.
		if w == want[0] {
			got = got.Clone()
			got.Version = w.Version
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("after reopen:\n got %+v\nwant %+v", got, w)
		}
	}
	if st := mustGet(t, g, want[2].Key).EffectiveStatus(clk.Now()); st != state.StatusChallengeBlocked {
		t.Fatalf("status after reopen = %q", st)
	}
	byUser, err := g.ByUser(ctx, "alice")
	if err != nil || len(byUser) != 2 || byUser[0].Key != want[0].Key || byUser[1].Key != want[1].Key {
		t.Fatalf("ByUser(alice) after reopen = %v, %v", byUser, err)
	}
	if bob, _ := g.ByUser(ctx, "bob"); len(bob) != 1 {
		t.Fatalf("ByUser(bob) after reopen = %v", bob)
	}
	gotUser, err := g.GetUser(ctx, "alice")
	if err != nil || !reflect.DeepEqual(gotUser, user) {
		t.Fatalf("GetUser after reopen = %+v, %v; want %+v", gotUser, err, user)
	}
	n := 0
	_ = g.Scan(ctx, func(*state.Session) bool { n++; return true })
	if n != 3 {
		t.Fatalf("Scan after reopen saw %d sessions", n)
	}
}

func mustGet(t *testing.T, st state.Store, key state.Key) *state.Session {
	t.Helper()
	s, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key.Short(), err)
	}
	return s
}

func TestFileExpiry(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	path := filepath.Join(t.TempDir(), "s.db")
	f := openTestFile(t, Options{Path: path, Now: clk.Now})
	short := state.NewSession(state.NewID(), nil, clk.Now(), 6*time.Minute, 0)
	idle := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 5*time.Minute)
	for _, s := range []*state.Session{short, idle} {
		if err := f.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(4 * time.Minute)
	if err := f.Touch(ctx, idle.Key, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Minute) // short has expired; idle lives on its touch
	if _, err := f.Get(ctx, short.Key); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("expired session: Get = %v", err)
	}
	if _, err := f.Update(ctx, short.Key, func(*state.Session) error { return nil }); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("expired session: Update = %v", err)
	}
	mustGet(t, f, idle.Key)
	if err := f.Close(); err != nil { // flushes the touch
		t.Fatal(err)
	}

	g := openTestFile(t, Options{Path: path, Now: clk.Now})
	if _, err := g.Get(ctx, short.Key); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("expired session after reopen: Get = %v", err)
	}
	mustGet(t, g, idle.Key)
	if g.Len() != 1 {
		t.Fatalf("reopen loaded %d sessions, want 1", g.Len())
	}
	clk.Advance(5 * time.Minute)
	if _, err := g.Get(ctx, idle.Key); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("idle session: Get = %v", err)
	}
}

func TestFileSweep(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	f := openTestFile(t, Options{Path: filepath.Join(t.TempDir(), "s.db"), Now: clk.Now})
	short := state.NewSession(state.NewID(), nil, clk.Now(), 6*time.Minute, 0)
	long := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 0)
	idle := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 5*time.Minute)
	for _, s := range []*state.Session{short, long, idle} {
		if err := f.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(4 * time.Minute)
	if err := f.Touch(ctx, idle.Key, clk.Now()); err != nil {
		t.Fatal(err)
	}
	// The idle session's stored deadline has passed, but memory holds a
	// later access: the sweep must keep it.
	clk.Advance(3 * time.Minute)
	n, err := f.sweep()
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d, %v; want 1", n, err)
	}
	if got := sessionsOnDisk(t, f); got != 2 {
		t.Fatalf("%d records on disk after sweep, want 2", got)
	}
	if f.Len() != 2 {
		t.Fatalf("%d sessions in memory after sweep, want 2", f.Len())
	}
	mustGet(t, f, long.Key)
	mustGet(t, f, idle.Key)
	clk.Advance(time.Hour)
	if n, err := f.sweep(); err != nil || n != 2 {
		t.Fatalf("second sweep removed %d, %v; want 2", n, err)
	}
	if f.Len() != 0 || sessionsOnDisk(t, f) != 0 {
		t.Fatalf("after the last sweep: %d in memory, %d on disk", f.Len(), sessionsOnDisk(t, f))
	}
}

func TestFileTouchIsBatched(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	f := openTestFile(t, Options{Path: filepath.Join(t.TempDir(), "s.db"), Now: clk.Now})
	s := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 10*time.Minute)
	if err := f.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	at := clk.Now()
	if err := f.Touch(ctx, s.Key, at); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, f, s.Key).LastAccessTime; !got.Equal(at) {
		t.Fatalf("memory LastAccessTime = %v, want %v", got, at)
	}
	if got := diskSession(t, f, s.Key).LastAccessTime; !got.Equal(s.LastAccessTime) {
		t.Fatalf("touch reached the disk before a flush: %v", got)
	}
	if err := f.flushTouches(); err != nil {
		t.Fatal(err)
	}
	if got := diskSession(t, f, s.Key).LastAccessTime; !got.Equal(at) {
		t.Fatalf("disk LastAccessTime after flush = %v, want %v", got, at)
	}
	if err := f.Touch(ctx, state.NewSession(state.NewID(), nil, at, time.Hour, 0).Key, at); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Touch of an unknown session: %v", err)
	}
}

// A Touch that lands while an Update is being written is kept in memory and
// written by the next flush.
func TestFileUpdateKeepsConcurrentTouch(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	f := openTestFile(t, Options{Path: filepath.Join(t.TempDir(), "s.db"), Now: clk.Now})
	s := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 10*time.Minute)
	if err := f.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	at := clk.Now()
	got, err := f.Update(ctx, s.Key, func(c *state.Session) error {
		if err := f.Touch(ctx, s.Key, at); err != nil {
			return err
		}
		c.LoginName = "bob"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastAccessTime.Equal(at) || got.LoginName != "bob" {
		t.Fatalf("Update result: access %v, login %q", got.LastAccessTime, got.LoginName)
	}
	if err := f.flushTouches(); err != nil {
		t.Fatal(err)
	}
	d := diskSession(t, f, s.Key)
	if !d.LastAccessTime.Equal(at) || d.LoginName != "bob" {
		t.Fatalf("disk after flush: access %v, login %q", d.LastAccessTime, d.LoginName)
	}
}

func diskSession(t *testing.T, f *Store, key state.Key) *state.Session {
	t.Helper()
	s := new(state.Session)
	if err := f.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSessions).Get(key[:])
		if v == nil {
			return fmt.Errorf("no record %s on disk", key.Short())
		}
		return f.codec.decode(bucketSessions, key[:], v, s)
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	path := filepath.Join(t.TempDir(), "s.db")
	f := openTestFile(t, Options{Path: path, Now: clk.Now})
	const writers, each = 8, 40
	keys := make([][]state.Key, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				s := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 0)
				s.UserID = fmt.Sprintf("user%d", w)
				if err := f.Create(ctx, s); err != nil {
					errs <- err
					return
				}
				keys[w] = append(keys[w], s.Key)
				// Every writer also updates the first session of writer 0's
				// user state and its own sessions.
				if _, err := f.Update(ctx, s.Key, func(c *state.Session) error {
					return c.SetStatus(state.StatusAuthenticated, clk.Now(), "", 0)
				}); err != nil {
					errs <- err
					return
				}
				if _, err := f.UpdateUser(ctx, "shared", func(u *state.UserState) error {
					u.History = append(u.History, state.Login{Time: clk.Now(), DeviceID: fmt.Sprintf("%d-%d", w, i)})
					return nil
				}); err != nil {
					errs <- err
					return
				}
				_ = f.Touch(ctx, s.Key, clk.Now())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g := openTestFile(t, Options{Path: path, Now: clk.Now})
	for w := range writers {
		for _, k := range keys[w] {
			if s := mustGet(t, g, k); s.Status != state.StatusAuthenticated {
				t.Fatalf("session %s: status %q after reopen", k.Short(), s.Status)
			}
		}
		if ss, _ := g.ByUser(ctx, fmt.Sprintf("user%d", w)); len(ss) != each {
			t.Fatalf("ByUser(user%d) = %d sessions, want %d", w, len(ss), each)
		}
	}
	u, err := g.GetUser(ctx, "shared")
	if err != nil || len(u.History) != writers*each || u.Version != writers*each {
		t.Fatalf("shared user after reopen: %d logins, version %d, %v", len(u.History), u.Version, err)
	}
}

func TestFileFullDiskLosesNothingAcknowledged(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	path := filepath.Join(t.TempDir(), "s.db")
	f, err := Open(Options{Path: path, Now: clk.Now, MaxSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 2000)
	var acked []state.Key
	var full error
	for range 1000 {
		s := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 0)
		s.UserAttributes = map[string]string{"blob": big}
		if err := f.Create(ctx, s); err != nil {
			full = err
			if _, gerr := f.Get(ctx, s.Key); !errors.Is(gerr, state.ErrNotFound) {
				t.Fatalf("failed Create is visible: %v", gerr)
			}
			break
		}
		acked = append(acked, s.Key)
	}
	t.Logf("full: %v", full)
	if full == nil {
		t.Fatal("the capped file never filled up")
	}
	if !errors.Is(full, state.ErrUnavailable) || !strings.Contains(full.Error(), path) {
		t.Fatalf("full disk error = %v; want ErrUnavailable naming %s", full, path)
	}
	// An update that needs more room fails and leaves memory as it was.
	before := mustGet(t, f, acked[0])
	_, err = f.Update(ctx, acked[0], func(c *state.Session) error {
		c.UserAttributes["more"] = strings.Repeat("y", 200<<10)
		return nil
	})
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Update on a full disk: %v", err)
	}
	if after := mustGet(t, f, acked[0]); after != before {
		t.Fatalf("failed Update changed memory: version %d → %d", before.Version, after.Version)
	}
	// A delete may need pages too (bbolt copies on write): it succeeds or
	// fails cleanly.
	last := acked[len(acked)-1]
	if _, err := f.Delete(ctx, last); err == nil {
		acked = acked[:len(acked)-1]
	} else {
		if !errors.Is(err, state.ErrUnavailable) {
			t.Fatalf("Delete on a full disk: %v", err)
		}
		mustGet(t, f, last)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g := openTestFile(t, Options{Path: path, Now: clk.Now})
	for _, k := range acked {
		if s := mustGet(t, g, k); s.Version != 1 {
			t.Fatalf("session %s: version %d after reopen", k.Short(), s.Version)
		}
	}
	if g.Len() != len(acked) {
		t.Fatalf("reopen holds %d sessions, %d were acknowledged", g.Len(), len(acked))
	}
}

func TestFileEncryption(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	path := filepath.Join(t.TempDir(), "s.db")
	key := state.NewSealKey()
	f, err := Open(Options{Path: path, Now: clk.Now, EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	s := fullSession(t, clk.Now(), "carol-secret-user")
	if err := f.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := f.UpdateUser(ctx, "carol-secret-user", func(u *state.UserState) error {
		u.Devices = []state.Device{{ID: "phone-secret-device"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"carol-secret-user", "phone-secret-device", "192.0.2.7"} {
		if strings.Contains(string(raw), secret) {
			t.Fatalf("encrypted file holds %q in the clear", secret)
		}
	}

	g, err := Open(Options{Path: path, Now: clk.Now, EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, g, s.Key); !reflect.DeepEqual(got, s) {
		t.Fatalf("after reopen with the key: %+v", got)
	}
	if u, err := g.GetUser(ctx, "carol-secret-user"); err != nil || u.Devices[0].ID != "phone-secret-device" {
		t.Fatalf("user after reopen: %+v, %v", u, err)
	}
	_ = g.Close()

	for name, opts := range map[string]Options{
		"wrong key": {EncryptionKey: state.NewSealKey()},
		"no key":    {},
		"short key": {EncryptionKey: key[:16]},
	} {
		opts.Path, opts.Now = path, clk.Now
		_, err := Open(opts)
		if err == nil {
			t.Fatalf("%s: Open succeeded", name)
		}
		t.Logf("%s: %v", name, err)
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "key") {
			t.Fatalf("%s: error %q does not name the file and the key", name, err)
		}
	}
}

func TestFileCorrupt(t *testing.T) {
	clk := newTestClock()
	dir := t.TempDir()

	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 2000)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Path: garbage, Now: clk.Now})
	t.Logf("garbage: %v", err)
	if err == nil || !strings.Contains(err.Error(), garbage) {
		t.Fatalf("garbage file: error %v does not name %s", err, garbage)
	}

	for name, mangle := range map[string]func([]byte) []byte{
		"bad json":       func(v []byte) []byte { return append(v[:headerLen:headerLen], '{') },
		"future version": func(v []byte) []byte { w := append([]byte(nil), v...); w[0] = 9; return w },
		"truncated":      func(v []byte) []byte { return v[:4] },
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".db")
		f, err := Open(Options{Path: path, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		s := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 0)
		if err := f.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if err := f.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketSessions)
			return b.Put(s.Key[:], mangle(append([]byte(nil), b.Get(s.Key[:])...)))
		}); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		_, err = Open(Options{Path: path, Now: clk.Now})
		t.Logf("%s: %v", name, err)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: error %v does not name %s", name, err, path)
		}
	}
}

func TestFileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	openTestFile(t, Options{Path: path})
	_, err := Open(Options{Path: path, LockTimeout: 50 * time.Millisecond})
	t.Logf("locked: %v", err)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second open: %v", err)
	}
}

func TestFileClosed(t *testing.T) {
	f, err := Open(Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	err = f.Create(context.Background(), state.NewSession(state.NewID(), nil, time.Now(), time.Hour, 0))
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Create after Close: %v", err)
	}
}

// TestFileBackgroundLoad holds a background load and checks that the store
// serves meanwhile (reading sessions not yet loaded from the file), that
// writes made during the load win over the loader's older copies, and that
// ByUser waits for the load.
func TestFileBackgroundLoad(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	path := filepath.Join(t.TempDir(), "s.db")
	f := openTestFile(t, Options{Path: path, Now: clk.Now})
	var ss []*state.Session
	for i := range 40 {
		s := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 0)
		s.UserID = fmt.Sprintf("u%d", i%4)
		if err := f.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	g := openTestFile(t, Options{
		Path: path, Now: clk.Now, BackgroundLoadAbove: 10,
		beforeLoad: func() { <-release },
	})
	if !g.loading.Load() || g.Len() != 0 {
		t.Fatalf("expected a held background load: loading %v, %d in memory", g.loading.Load(), g.Len())
	}
	if got := mustGet(t, g, ss[0].Key); got.UserID != "u0" {
		t.Fatalf("read during load: %+v", got)
	}
	if _, err := g.Delete(ctx, ss[1].Key); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Get(ctx, ss[1].Key); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("deleted during load: Get = %v", err)
	}
	if _, err := g.Update(ctx, ss[2].Key, func(c *state.Session) error {
		return c.SetStatus(state.StatusAuthenticated, clk.Now(), "", 0)
	}); err != nil {
		t.Fatal(err)
	}
	if err := g.Create(ctx, ss[3].Clone()); !errors.Is(err, state.ErrExists) {
		t.Fatalf("Create over a stored, unloaded session: %v", err)
	}
	clk.Advance(time.Minute)
	if err := g.Touch(ctx, ss[4].Key, clk.Now()); err != nil {
		t.Fatalf("Touch during load: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.ByUser(cancelled, "u0"); err == nil {
		t.Fatal("ByUser answered before the load finished")
	}

	close(release)
	<-g.loaded
	if g.Len() != 39 {
		t.Fatalf("after the load: %d sessions in memory, want 39", g.Len())
	}
	if _, err := g.Get(ctx, ss[1].Key); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("the loader brought back a deleted session: %v", err)
	}
	if s := mustGet(t, g, ss[2].Key); s.Status != state.StatusAuthenticated || s.Version != 2 {
		t.Fatalf("the loader overwrote an update: %+v", s)
	}
	if s := mustGet(t, g, ss[4].Key); !s.LastAccessTime.Equal(clk.Now()) {
		t.Fatalf("the loader overwrote a touch: %v", s.LastAccessTime)
	}
	if byUser, err := g.ByUser(ctx, "u1"); err != nil || len(byUser) != 9 {
		t.Fatalf("ByUser(u1) after the load = %d sessions, %v; want 9", len(byUser), err)
	}
}

// A record that does not decode is skipped and reported by a background
// load; the others load.
func TestFileBackgroundLoadSkipsBadRecord(t *testing.T) {
	clk := newTestClock()
	path := filepath.Join(t.TempDir(), "s.db")
	f := openTestFile(t, Options{Path: path, Now: clk.Now})
	var bad state.Key
	for i := range 20 {
		s := state.NewSession(state.NewID(), nil, clk.Now(), time.Hour, 0)
		if err := f.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			bad = s.Key
		}
	}
	if err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		return b.Put(bad[:], append(append([]byte(nil), b.Get(bad[:])[:headerLen]...), '['))
	}); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	var mu sync.Mutex
	var reported []error
	g := openTestFile(t, Options{Path: path, Now: clk.Now, BackgroundLoadAbove: 5, OnError: func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}})
	<-g.loaded
	if g.Len() != 19 {
		t.Fatalf("%d sessions loaded, want 19", g.Len())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), path) {
		t.Fatalf("reported errors: %v", reported)
	}
}
