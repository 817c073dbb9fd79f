package caddymodule

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

func usersFrom(t *testing.T, body string) *state.Users {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := state.LoadUsers(p, false)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestFactorChangesOfTheUsersFile: enabling, disabling and re-enrolling
// factors, and adding and removing users, give one event per factor.
func TestFactorChangesOfTheUsersFile(t *testing.T) {
	prev := usersFrom(t, `{"users":[
		{"id":"a","login":"ann","factors":["ChallengeEmail","ChallengeOMATOTP"],"totp_secret":"JBSWY3DPEHPK3PXP"},
		{"id":"b","login":"ben","factors":["ChallengeSMS"]},
		{"id":"c","login":"cy","factors":["ChallengeOMATOTP"],"totp_secret":"JBSWY3DPEHPK3PXP"}]}`)
	next := usersFrom(t, `{"users":[
		{"id":"a","login":"ann","factors":["ChallengeOMATOTP"],"totp_secret":"JBSWY3DPEHPK3PXP"},
		{"id":"c","login":"cy","factors":["ChallengeOMATOTP"],"totp_secret":"KRSXG5CTMVRXEZLU"},
		{"id":"d","login":"dee","factors":["ChallengeEmail"]}]}`)
	var got []string
	for _, ev := range factorChanges(prev, next) {
		if ev.Family != "users_file" {
			t.Errorf("family %q", ev.Family)
		}
		got = append(got, ev.Name+" "+ev.UserKey+" "+ev.Factor)
	}
	slices.Sort(got)
	want := []string{
		"factor_enrolled c ChallengeOMATOTP",
		"factor_enrolled d ChallengeEmail",
		"factor_removed a ChallengeEmail",
		"factor_removed b ChallengeSMS",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if sameFile(prev, next) || !sameFile(next, next) || sameFile(nil, next) {
		t.Fatal("sameFile: only a file read from the same path is the same users base")
	}
	if evs := factorChanges(next, next); len(evs) != 0 {
		t.Fatalf("no change gave %v", evs)
	}
}

// TestEmitterWritesTheAuditLine: an event is one line on the
// authsession.audit logger with only the fields set, the session as its
// short prefix; failures are counted by family and factor.
func TestEmitterWritesTheAuditLine(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	m := registerOpsMetrics(nil)
	e := &emitter{audit: zap.New(core).Named(AuditLogger), metrics: m}
	key := state.KeyOf(state.NewID())
	e.Emit(context.Background(), handlers.Event{
		Name: handlers.EventChallengeBlocked, UserKey: "alice", Session: key, Family: "authn", Factor: state.FactorTOTP,
	})
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d lines", len(entries))
	}
	l := entries[0]
	if l.LoggerName != AuditLogger || l.Message != "challenge_blocked" {
		t.Fatalf("line %+v", l)
	}
	fields := l.ContextMap()
	want := map[string]any{"event": "authsession.challenge_blocked", "user": "alice", "session": key.Short(), "family": "authn", "factor": state.FactorTOTP}
	if len(fields) != len(want) {
		t.Fatalf("fields %v, want %v", fields, want)
	}
	for k, v := range want {
		if fields[k] != v {
			t.Fatalf("field %s = %v, want %v", k, fields[k], v)
		}
	}
	data := eventData(handlers.Event{Name: handlers.EventLoginFailed, Login: "x"})
	if len(data) != 1 || data["login"] != "x" {
		t.Fatalf("event data %v: only the fields set", data)
	}
}

func TestLabelsStayBounded(t *testing.T) {
	if label("") != "none" || label(strings.Repeat("x", 49)) != "other" || label("portal") != "portal" {
		t.Fatal("label")
	}
}

// TestHealthAnswers: 200 {"status":"up"} on a memory store, and the
// directive's options.
func TestHealthAnswers(t *testing.T) {
	store := state.NewMemory(state.MemoryOptions{})
	defer store.Close()
	h := &Health{Timeout: caddy.Duration(time.Second), app: &App{store: store, storeName: "memory"}, logger: zap.NewNop()}
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil), nil); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusOK || w.Body.String() != "{\"status\":\"up\",\"store\":\"memory\"}\n" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %q", w.Code, w.Body)
	}
	got, err := parseDirective("authsession health {\ntimeout 250ms\n}")
	if err != nil || got.(*Health).Timeout != caddy.Duration(250*time.Millisecond) {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"authsession health x", "authsession health {\nttl 1s\n}", "authsession health {\ntimeout\n}"} {
		if _, err := parseDirective(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	a, err := parseApp("authsession {\nstats_interval 5s\n}")
	if err != nil || a.StatsInterval != caddy.Duration(5*time.Second) {
		t.Fatalf("stats_interval: %v %v", a.StatsInterval, err)
	}
}

// TestSampleReportsExpiredSessions: a session seen live by one sample and
// gone after its deadline by the next is reported expired once; one this
// instance revoked is not.
func TestSampleReportsExpiredSessions(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	store := state.NewMemory(state.MemoryOptions{Now: clock, CleanupInterval: time.Hour})
	defer store.Close()
	core, logs := observer.New(zap.InfoLevel)
	app := &App{store: store, logger: zap.NewNop(), env: &handlers.Env{Now: clock}}
	o := &opsRuntime{app: app, logger: zap.NewNop(), metrics: registerOpsMetrics(nil), interval: time.Minute, revoked: map[state.Key]struct{}{}}
	o.emitter = &emitter{audit: zap.New(core), metrics: o.metrics}
	mk := func(user string) state.Key {
		s := state.NewSession(state.NewID(), nil, now, time.Minute, 0)
		s.UserID = user
		if err := store.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		return s.Key
	}
	old, revoked := mk("old"), mk("gone")
	lasting := state.NewSession(state.NewID(), nil, now, time.Hour, 0)
	lasting.UserID = "lasting"
	if err := store.Create(context.Background(), lasting); err != nil {
		t.Fatal(err)
	}
	o.sample(context.Background())
	if len(logs.All()) != 0 {
		t.Fatal("a first sample reported something")
	}
	// The memory held outside the Go heap is sampled too.
	var g dto.Metric
	if err := o.metrics.offHeap.Write(&g); err != nil || g.GetGauge().GetValue() <= 0 {
		t.Fatalf("store_offheap_bytes = %v (%v), want the store's mapped chunks", g.GetGauge().GetValue(), err)
	}
	// Only the sessions that may end before the next sample are held.
	if held := o.live.Has(lasting.Key); held || o.live.Len() != 2 {
		t.Fatalf("the sample holds %d sessions (the one ending in an hour: %v), want the 2 ending within two intervals", o.live.Len(), held)
	}
	if _, err := store.Delete(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}
	o.noteRevoked(revoked)
	now = now.Add(2 * time.Minute)
	o.sample(context.Background())
	o.sample(context.Background())
	var got []string
	for _, l := range logs.All() {
		got = append(got, l.Message+" "+l.ContextMap()["session"].(string)+" "+l.ContextMap()["user"].(string))
	}
	if !slices.Equal(got, []string{"session_expired " + old.Short() + " old"}) {
		t.Fatalf("reported %v", got)
	}
}

func TestPrintSessionsTable(t *testing.T) {
	var b bytes.Buffer
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := printSessions(&b, AdminSessions{Sessions: []AdminSession{{
		Hash: "00112233445566778899aabbccddeeff", User: "alice", Status: "authenticated",
		Created: at, LastAccess: at, Expires: at, Factors: []string{"a", "b"},
	}}, Truncated: true}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "HASH") ||
		strings.Join(strings.Fields(lines[1]), " ") != "00112233445566778899aabbccddeeff alice - authenticated 2026-01-02T03:04:05Z 2026-01-02T03:04:05Z 2026-01-02T03:04:05Z - a,b" ||
		!strings.Contains(lines[2], "--limit") {
		t.Fatalf("table:\n%s", b.String())
	}
}

// TestSampleReportsSessionsEndingDuringCensus: a census is spread out, so
// a session of the last sample may reach its deadline while it runs and be
// swept before it is read. The sample judges by the time the census ended:
// that session has expired, and is reported.
func TestSampleReportsSessionsEndingDuringCensus(t *testing.T) {
	t0 := time.Now()
	store := state.NewMemory(state.MemoryOptions{Now: func() time.Time { return t0 }, CleanupInterval: time.Hour})
	defer store.Close()
	// The app's clock: each sample reads it when its census starts and
	// when it ends.
	var reads []time.Time
	clock := func() time.Time {
		now := reads[0]
		reads = reads[1:]
		return now
	}
	core, logs := observer.New(zap.InfoLevel)
	app := &App{store: store, logger: zap.NewNop(), env: &handlers.Env{Now: clock}}
	o := &opsRuntime{app: app, logger: zap.NewNop(), metrics: registerOpsMetrics(nil), interval: time.Minute, revoked: map[state.Key]struct{}{}}
	o.emitter = &emitter{audit: zap.New(core), metrics: o.metrics}
	s := state.NewSession(state.NewID(), nil, t0, time.Minute, 0)
	s.UserID = "ending"
	if err := store.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	reads = []time.Time{t0, t0}
	o.sample(context.Background())
	if !o.live.Has(s.Key) {
		t.Fatal("the first sample does not hold the session ending within two intervals")
	}
	// The next census starts a second before the deadline and ends a
	// second after it; meanwhile the sweeper removed the session.
	if _, err := store.Delete(context.Background(), s.Key); err != nil {
		t.Fatal(err)
	}
	reads = []time.Time{s.Deadline().Add(-time.Second), s.Deadline().Add(time.Second)}
	o.sample(context.Background())
	var got []string
	for _, l := range logs.All() {
		got = append(got, l.Message+" "+l.ContextMap()["user"].(string))
	}
	if !slices.Equal(got, []string{"session_expired ending"}) {
		t.Fatalf("reported %v, want the session's expiry", got)
	}
}
