package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/authsession/caddy-authsession/state"
)

// eventLog is an Emitter that keeps what it is given.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) Emit(_ context.Context, ev Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

// take returns the events so far and forgets them.
func (l *eventLog) take() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

func names(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name + "/" + e.Reason
	}
	return out
}

// TestOAMEmitsSessionEvents: an OAM creation emits session_created then
// session_authenticated, once each, naming the user, the family and the
// session's key; a delete emits session_revoked with reason api; the trim
// of max_sessions_per_user emits session_revoked with reason max_sessions.
func TestOAMEmitsSessionEvents(t *testing.T) {
	f := newOAM(t)
	var log eventLog
	f.env.Events = &log
	f.env.Policy.MaxSessionsPerUser = 1

	a := f.create(`{"userId":"alice","clientIP":"192.0.2.7"}`)
	evs := log.take()
	if got := names(evs); !slices.Equal(got, []string{"session_created/", "session_authenticated/"}) {
		t.Fatalf("events of a creation: %v", got)
	}
	for _, ev := range evs {
		if ev.UserKey != "alice" || ev.Family != "oam" || ev.Session != state.KeyOf(a.SessionID) || ev.ClientIP != "192.0.2.7" {
			t.Fatalf("event %+v: want alice, oam, the session's key and its client IP", ev)
		}
	}

	b := f.create(`{"userId":"alice"}`)
	evs = log.take()
	if got := names(evs); !slices.Equal(got, []string{"session_created/", "session_authenticated/", "session_revoked/max_sessions"}) {
		t.Fatalf("events of a creation beyond the maximum: %v", got)
	}
	if evs[2].Session != state.KeyOf(a.SessionID) {
		t.Fatalf("the trim names %s, want the older session", evs[2].Session.Short())
	}

	if w := f.do("DELETE", "/session?sessionId="+url.QueryEscape(b.SessionID), ""); w.Code != http.StatusOK {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	evs = log.take()
	if got := names(evs); !slices.Equal(got, []string{"session_revoked/api"}) || evs[0].Session != state.KeyOf(b.SessionID) {
		t.Fatalf("events of a delete: %v", evs)
	}
	// Deleting it again deletes nothing and emits nothing.
	f.do("DELETE", "/session?sessionId="+url.QueryEscape(b.SessionID), "")
	if evs := log.take(); len(evs) != 0 {
		t.Fatalf("a delete of nothing emitted %v", names(evs))
	}
}

// TestWrongAPICredentialsEmitLoginFailed: wrong Basic credentials emit one
// login_failed naming the API user and the factor api_credentials, never
// the password; a request without credentials is no login and emits
// nothing.
func TestWrongAPICredentialsEmitLoginFailed(t *testing.T) {
	f := newOAM(t)
	var log eventLog
	f.env.Events = &log
	req := httptest.NewRequest("GET", OAMBase+"/session/x", nil)
	req.SetBasicAuth(apiUser, "not-the-password")
	if w := f.serve(req); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong credentials: %d", w.Code)
	}
	evs := log.take()
	if len(evs) != 1 || evs[0].Name != EventLoginFailed || evs[0].Login != apiUser ||
		evs[0].Factor != FactorAPICredentials || evs[0].Family != "oam" || evs[0].Reason != "wrong_credentials" {
		t.Fatalf("events: %+v", evs)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Login+ev.Reason+ev.UserKey, "not-the-password") {
			t.Fatal("an event carries the password")
		}
	}
	// An unknown API user is not named: it may be a secret typed in the
	// wrong field.
	req = httptest.NewRequest("GET", OAMBase+"/session/x", nil)
	req.SetBasicAuth("s3cret-typed-here", "x")
	f.serve(req)
	if evs := log.take(); len(evs) != 1 || evs[0].Login != "" || evs[0].Reason != "unknown_user" {
		t.Fatalf("unknown API user: %+v", evs)
	}
	if w := f.serve(httptest.NewRequest("GET", OAMBase+"/session/x", nil)); w.Code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", w.Code)
	}
	if evs := log.take(); len(evs) != 0 {
		t.Fatalf("a request without credentials emitted %v", names(evs))
	}
}

// TestUpdateSessionEmitsStatusChanges: UpdateSession emits
// session_authenticated when a session becomes authenticated and
// challenge_blocked when it becomes blocked, and nothing for a write that
// keeps the status or that fails.
func TestUpdateSessionEmitsStatusChanges(t *testing.T) {
	f := newOAM(t)
	var log eventLog
	f.env.Events = &log
	ctx := context.Background()
	now := f.env.Time()
	s := f.env.NewSession(state.NewID(), now)
	s.UserID, s.ClientIP = "bob", "198.51.100.1"
	if err := s.SetStatus(state.StatusPendingVerification, now, "", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.env.CreateSessionIn(ctx, "authn", s); err != nil {
		t.Fatal(err)
	}
	log.take()
	touch := func(s *state.Session) error { s.UpdateTime = now; return nil }
	if _, err := f.env.UpdateSession(ctx, "authn", "", s.Key, touch); err != nil {
		t.Fatal(err)
	}
	if evs := log.take(); len(evs) != 0 {
		t.Fatalf("a write keeping the status emitted %v", names(evs))
	}
	block := func(s *state.Session) error {
		s.Challenge = &state.Challenge{Factor: state.FactorTOTP}
		BlockSession(s, now, now.Add(f.env.Policy.BlockFor))
		return nil
	}
	if _, err := f.env.UpdateSession(ctx, "authn", "203.0.113.9", s.Key, block); err != nil {
		t.Fatal(err)
	}
	evs := log.take()
	if len(evs) != 1 || evs[0].Name != EventChallengeBlocked || evs[0].Factor != state.FactorTOTP ||
		evs[0].ClientIP != "203.0.113.9" || evs[0].UserKey != "bob" || evs[0].Reason != state.ReasonTooManyAttempts {
		t.Fatalf("events of a block: %+v", evs)
	}
	if _, err := f.env.UpdateSession(ctx, "authn", "", state.KeyOf(state.NewID()), touch); err == nil {
		t.Fatal("update of no session succeeded")
	}
	if evs := log.take(); len(evs) != 0 {
		t.Fatalf("a failed update emitted %v", names(evs))
	}
	// Without an emitter nothing is built.
	f.env.Events = nil
	if _, err := f.env.DeleteSession(ctx, "admin", RevokedAdmin, "", s.Key); err != nil {
		t.Fatal(err)
	}
}

// TestRiskAnalyzerEmitsItsEvents: a create emits session_created; the
// update that reports success emits session_authenticated and, with
// registerDevice, device_trusted; a repeat keeps the status and only
// trusts the device again.
func TestRiskAnalyzerEmitsItsEvents(t *testing.T) {
	f := newRA(t)
	var log eventLog
	f.ra.Env.Events = &log
	id := state.NewID()
	f.create(t, id)
	if got := names(log.take()); !slices.Equal(got, []string{"session_created/"}) {
		t.Fatalf("create: %v", got)
	}
	body := `{"requestId":"` + id + `","authenticationStatus":0,"clientType":1,"registerDevice":true,"externalDeviceId":"dev-a"}`
	for i, want := range [][]string{
		{"session_authenticated/", "device_trusted/"},
		{"device_trusted/"},
	} {
		if rec := f.do(t, "PUT", RiskBase+"/updatesessionsecurely", "application/json", "", body); rec.Code != 200 {
			t.Fatalf("%d: %s", rec.Code, rec.Body)
		}
		evs := log.take()
		if got := names(evs); !slices.Equal(got, want) {
			t.Fatalf("update %d: %v, want %v", i, got, want)
		}
		for _, ev := range evs {
			if ev.UserKey != "u-alice" || ev.Family != "risk-analyzer" || ev.Session != state.KeyOf(id) || ev.ClientIP != "198.51.100.7" {
				t.Fatalf("event %+v", ev)
			}
		}
	}
}
