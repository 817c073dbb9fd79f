package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// adminFixture is an app on a memory store, served by the admin routes.
type adminFixture struct {
	t      *testing.T
	app    *App
	events []handlers.Event
	made   int // sessions made so far: each is a minute younger
}

type recordEmitter struct{ f *adminFixture }

func (r recordEmitter) Emit(_ context.Context, ev handlers.Event) {
	r.f.events = append(r.f.events, ev)
}

func newAdminFixture(t *testing.T) *adminFixture {
	store := state.NewMemory(state.MemoryOptions{})
	t.Cleanup(func() { _ = store.Close() })
	f := &adminFixture{t: t}
	f.app = &App{store: store, storeName: "memory", logger: zap.NewNop()}
	f.app.env = &handlers.Env{
		Store: store, Now: time.Now, Logger: zap.NewNop(), Events: recordEmitter{f},
		Policy: handlers.Policy{Lifetime: time.Hour},
	}
	return f
}

// session stores an authenticated session of user and returns its key.
func (f *adminFixture) session(user string) state.Key {
	f.t.Helper()
	f.made++
	s := f.app.env.NewSession(state.NewID(), time.Now().Add(time.Duration(f.made-10)*time.Minute))
	s.UserID, s.LoginName, s.ClientIP = user, user, "192.0.2.1"
	if err := s.SetStatus(state.StatusAuthenticated, time.Now(), "", 0); err != nil {
		f.t.Fatal(err)
	}
	if err := f.app.store.Create(context.Background(), s); err != nil {
		f.t.Fatal(err)
	}
	return s.Key
}

// do serves one admin request and returns the status and body, as Caddy's
// admin endpoint would answer (an APIError's status and message).
func (f *adminFixture) do(method, path string) (int, string) {
	f.t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, nil)
	err := (&adminHandler{app: f.app, logger: zap.NewNop()}).serve(w, r)
	if err != nil {
		var ae caddy.APIError
		if !errors.As(err, &ae) {
			f.t.Fatalf("%s %s: a plain error %v", method, path, err)
		}
		return ae.HTTPStatus, ae.Err.Error()
	}
	return w.Code, w.Body.String()
}

func TestAdminListsWithoutIDs(t *testing.T) {
	f := newAdminFixture(t)
	a1, a2 := f.session("alice"), f.session("alice")
	f.session("bob")
	code, body := f.do("GET", "/authsession/sessions?user=Alice")
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	var out AdminSessions
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Sessions) != 2 || out.Truncated {
		t.Fatalf("alice's sessions: %s", body)
	}
	for _, s := range out.Sessions {
		if len(s.Hash) != AdminHashChars || (s.Hash != a1.String()[:AdminHashChars] && s.Hash != a2.String()[:AdminHashChars]) {
			t.Fatalf("hash %q is not a prefix of alice's keys", s.Hash)
		}
		if s.Status != "authenticated" || s.ClientIP != "192.0.2.1" || s.Expires.IsZero() {
			t.Fatalf("listed %+v", s)
		}
	}
	code, body = f.do("GET", "/authsession/sessions?limit=2")
	if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil || len(out.Sessions) != 2 || !out.Truncated ||
		out.Sessions[0].Hash != a1.String()[:AdminHashChars] || out.Sessions[1].Hash != a2.String()[:AdminHashChars] {
		t.Fatalf("limit 2 of 3: %d %s, want the two oldest", code, body)
	}
	code, body = f.do("GET", "/authsession/sessions?user=alice&limit=1")
	if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil || len(out.Sessions) != 1 || !out.Truncated ||
		out.Sessions[0].Hash != a1.String()[:AdminHashChars] {
		t.Fatalf("alice, limit 1: %d %s", code, body)
	}
	code, body = f.do("GET", "/authsession/sessions?status=pending+verification")
	if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil || len(out.Sessions) != 0 {
		t.Fatalf("by status: %d %s", code, body)
	}
}

func TestAdminRefusesBadCalls(t *testing.T) {
	f := newAdminFixture(t)
	k := f.session("alice")
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/authsession/sessions?limit=0", 400},
		{"GET", "/authsession/sessions?limit=x", 400},
		{"GET", "/authsession/sessions?status=happy", 400},
		{"GET", "/authsession/sessions?usr=alice", 400},
		{"GET", "/authsession/sessions?user=", 400},
		{"GET", "/authsession/sessions?user=%0a", 400},
		{"POST", "/authsession/sessions", 405},
		{"GET", "/authsession/sessions/" + k.String(), 405},
		{"DELETE", "/authsession/sessions/" + k.String()[:15], 400},
		{"DELETE", "/authsession/sessions/" + strings.Repeat("z", 16), 400},
		{"DELETE", "/authsession/sessions/" + k.String() + "0", 400},
		{"DELETE", "/authsession/users/%0a/sessions", 400},
		{"GET", "/authsession/users/alice/counters", 405},
		{"GET", "/authsession/nothing", 404},
		{"PUT", "/authsession/stats", 405},
	} {
		if code, body := f.do(c.method, c.path); code != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.status)
		}
	}
	if _, err := f.app.store.Get(context.Background(), k); err != nil {
		t.Fatalf("a refused call changed the store: %v", err)
	}
	if len(f.events) != 0 {
		t.Fatalf("refused calls emitted %v", f.events)
	}
}

func TestAdminRevokesByUniquePrefix(t *testing.T) {
	f := newAdminFixture(t)
	// Two sessions whose keys share a 16-digit prefix cannot be made on
	// purpose; a second record under a key with the same prefix can.
	k := f.session("alice")
	twin := k
	twin[31] ^= 1
	s, _ := f.app.store.Get(context.Background(), k)
	c := s.Clone()
	c.Key, c.Version = twin, 0
	if err := f.app.store.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if code, body := f.do("DELETE", "/authsession/sessions/"+strings.ToUpper(k.String()[:16])); code != http.StatusConflict {
		t.Fatalf("ambiguous prefix: %d %s", code, body)
	}
	code, body := f.do("DELETE", "/authsession/sessions/"+k.String())
	if code != http.StatusOK || !strings.Contains(body, k.String()[:AdminHashChars]) {
		t.Fatalf("full key: %d %s", code, body)
	}
	if _, err := f.app.store.Get(context.Background(), k); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("revoked session still there: %v", err)
	}
	if _, err := f.app.store.Get(context.Background(), twin); err != nil {
		t.Fatalf("the twin went too: %v", err)
	}
	if len(f.events) != 1 || f.events[0].Name != handlers.EventSessionRevoked || f.events[0].Reason != handlers.RevokedAdmin ||
		f.events[0].Session != k || f.events[0].UserKey != "alice" || f.events[0].Family != "admin" {
		t.Fatalf("events: %+v", f.events)
	}
	if code, _ := f.do("DELETE", "/authsession/sessions/"+k.String()); code != http.StatusNotFound {
		t.Fatalf("revoked again: %d", code)
	}
	f.events = nil
	f.session("alice")
	code, body = f.do("DELETE", "/authsession/users/alice/sessions")
	var out AdminRevoked
	if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil || len(out.Revoked) != 2 || len(f.events) != 2 {
		t.Fatalf("revoke by user: %d %s, %d events", code, body, len(f.events))
	}
	code, body = f.do("DELETE", "/authsession/users/alice/sessions")
	if code != http.StatusOK || body != "{\"revoked\":[]}\n" {
		t.Fatalf("revoke of a user without sessions: %d %q", code, body)
	}
}

func TestAdminResetsCounters(t *testing.T) {
	f := newAdminFixture(t)
	ctx := context.Background()
	p := state.OTPPolicy{MaxAttempts: 2, BlockFor: time.Minute}
	for range 2 {
		if _, err := handlers.ReserveAttempt(ctx, f.app.store, p, "carol", time.Now(), state.FactorTOTP); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := handlers.ReserveAttempt(ctx, f.app.store, p, "carol", time.Now(), state.FactorTOTP); err == nil {
		t.Fatal("the factor is not blocked")
	}
	code, body := f.do("DELETE", "/authsession/users/carol/counters")
	if code != http.StatusOK || !strings.Contains(body, `"reset":true`) {
		t.Fatalf("reset: %d %s", code, body)
	}
	if _, err := handlers.ReserveAttempt(ctx, f.app.store, p, "carol", time.Now(), state.FactorTOTP); err != nil {
		t.Fatalf("after the reset: %v", err)
	}
	f.do("DELETE", "/authsession/users/carol/counters")
	if code, body := f.do("DELETE", "/authsession/users/carol/counters"); code != http.StatusOK || !strings.Contains(body, `"reset":false`) {
		t.Fatalf("reset of nothing: %d %s", code, body)
	}
}

func TestAdminStats(t *testing.T) {
	f := newAdminFixture(t)
	f.session("alice")
	f.session("bob")
	code, body := f.do("GET", "/authsession/stats")
	var out AdminStats
	if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil {
		t.Fatalf("%d %s", code, body)
	}
	if !out.Store.Up || out.Store.Module != "memory" || out.Sessions.Total != 2 ||
		out.Sessions.ByStatus["authenticated"] != 2 || len(out.Sessions.ByStatus) != len(state.Statuses) {
		t.Fatalf("stats %s", body)
	}
}

// TestAdminWithoutRunningApp: with no authsession app running, the routes
// answer 404.
func TestAdminWithoutRunningApp(t *testing.T) {
	if runningApp() != nil {
		t.Skip("an app is running in this process")
	}
	w := httptest.NewRecorder()
	err := new(AdminAPI).serve(w, httptest.NewRequest("GET", "/authsession/stats", nil))
	var ae caddy.APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusNotFound {
		t.Fatalf("%v", err)
	}
}

// TestAdminListKeepsTheOldest: whatever order the store scans in, a
// limited listing of the whole store is its oldest sessions, oldest first.
func TestAdminListKeepsTheOldest(t *testing.T) {
	f := newAdminFixture(t)
	var keys []state.Key
	for i := range 40 {
		keys = append(keys, f.session(fmt.Sprint("user", i%5)))
	}
	code, body := f.do("GET", "/authsession/sessions?limit=7")
	var out AdminSessions
	if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil || len(out.Sessions) != 7 || !out.Truncated {
		t.Fatalf("%d %s", code, body)
	}
	for i, s := range out.Sessions {
		if s.Hash != keys[i].String()[:AdminHashChars] {
			t.Fatalf("session %d is %s, want %s", i, s.Hash, keys[i].String()[:AdminHashChars])
		}
	}
}

// TestAdminNamesUsersWithSlash: a user name may hold '/'; the CLI sends it
// escaped (%2F) and the admin routes read it as one segment, so such a
// user's sessions can be revoked and counters reset.
func TestAdminNamesUsersWithSlash(t *testing.T) {
	f := newAdminFixture(t)
	f.session("team/alice")
	f.session("team")
	code, body := f.do("DELETE", "/authsession/users/"+url.PathEscape("team/alice")+"/sessions")
	var out AdminRevoked
	if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil || len(out.Revoked) != 1 {
		t.Fatalf("revoke team/alice: %d %s", code, body)
	}
	if ss, err := f.app.store.ByUser(context.Background(), "team"); err != nil || len(ss) != 1 {
		t.Fatalf("team's sessions after revoking team/alice's: %d, %v", len(ss), err)
	}
	if code, body := f.do("DELETE", "/authsession/users/"+url.PathEscape("team/alice")+"/counters"); code != http.StatusOK {
		t.Fatalf("reset team/alice's counters: %d %s", code, body)
	}
}
