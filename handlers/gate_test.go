package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

// gateFixture is a gate on a memory store with an injected clock.
type gateFixture struct {
	t     *testing.T
	clk   *fakeClock
	store *state.Memory
	gate  *Gate
}

func newGate(t *testing.T) *gateFixture {
	t.Helper()
	clk := testkit.NewClock(t0)
	store := state.NewMemory(state.MemoryOptions{Now: clk.Now, CleanupInterval: time.Hour})
	t.Cleanup(func() { _ = store.Close() })
	return &gateFixture{t: t, clk: clk, store: store, gate: &Gate{
		Store:         store,
		Now:           clk.Now,
		Logger:        zap.NewNop(),
		CookieName:    "authsession",
		LoginURL:      "/auth/login",
		TouchInterval: time.Minute,
		SetHeaders: []HeaderField{
			{Name: "X-Auth-User", Field: "login"},
			{Name: "X-Auth-Group", Field: "group"},
			{Name: "X-Auth-Mail", Field: "attr.mail"},
		},
	}}
}

// session stores a session of alice in status st and returns its id.
func (f *gateFixture) session(st state.Status, edit func(*state.Session)) string {
	f.t.Helper()
	id := state.NewID()
	now := f.clk.Now()
	s := state.NewSession(id, nil, now, 8*time.Hour, 30*time.Minute)
	s.UserID, s.LoginName, s.GroupName = "alice", "alice.smith", "staff"
	s.UserAttributes = map[string]string{"mail": "alice@example.com"}
	if st != state.StatusPendingIdentification {
		if err := s.SetStatus(st, now, "", 15*time.Minute); err != nil {
			f.t.Fatal(err)
		}
	}
	if edit != nil {
		edit(s)
	}
	if err := f.store.Create(context.Background(), s); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func apiRequest(method, target, id string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Accept", "application/json")
	if id != "" {
		r.AddCookie(&http.Cookie{Name: "authsession", Value: id})
	}
	return r
}

func browserRequest(method, target, id string) *http.Request {
	r := apiRequest(method, target, id)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	return r
}

// check runs the gate and returns the outcome, the answer and the session.
func (f *gateFixture) check(r *http.Request) (Outcome, *httptest.ResponseRecorder, *state.Session) {
	w := httptest.NewRecorder()
	s, o := f.gate.Check(w, r)
	if (o == Pass) != (s != nil) {
		f.t.Fatalf("outcome %v with session %v", o, s)
	}
	if o == Pass && w.Code != http.StatusOK || w.Body.Len() > 0 && o == Pass {
		f.t.Fatalf("the gate wrote an answer on pass: %d %s", w.Code, w.Body)
	}
	return o, w, s
}

func assertUnauthorized(t *testing.T, o Outcome, w *httptest.ResponseRecorder) {
	t.Helper()
	if o != Unauthorized || w.Code != http.StatusUnauthorized {
		t.Fatalf("outcome %v, status %d; want 401", o, w.Code)
	}
	if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, `realm="authsession"`) {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
	body := decode[map[string]string](t, w)
	if body["error"] != "unauthorized" || body["message"] == "" {
		t.Fatalf("body = %v", body)
	}
}

func TestGatePassSetsUpstreamHeaders(t *testing.T) {
	f := newGate(t)
	id := f.session(state.StatusAuthenticated, nil)
	r := apiRequest("GET", "/app", id)
	r.Header.Set("X-Auth-User", "admin")
	r.Header.Add("X-Auth-User", "root")
	r.Header.Set("x-auth-group", "admins")
	r.Header.Set("X-Auth-Mail", "forged@example.com")
	o, _, s := f.check(r)
	if o != Pass || s.UserID != "alice" {
		t.Fatalf("outcome %v", o)
	}
	for name, want := range map[string]string{
		"X-Auth-User": "alice.smith", "X-Auth-Group": "staff",
		"X-Auth-Mail": "alice@example.com",
	} {
		if got := r.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want [%q]", name, got, want)
		}
	}
}

func TestGatePassStripsForgedHeaderOfEmptyField(t *testing.T) {
	f := newGate(t)
	id := f.session(state.StatusAuthenticated, func(s *state.Session) { s.GroupName = ""; s.UserAttributes = nil })
	r := apiRequest("GET", "/app", id)
	r.Header.Set("X-Auth-Group", "admins")
	r.Header.Set("X-Auth-Mail", "forged@example.com")
	if o, _, _ := f.check(r); o != Pass {
		t.Fatalf("outcome %v", o)
	}
	if v, ok := r.Header["X-Auth-Group"]; ok {
		t.Errorf("forged X-Auth-Group kept: %q", v)
	}
	if v, ok := r.Header["X-Auth-Mail"]; ok {
		t.Errorf("forged X-Auth-Mail kept: %q", v)
	}
}

func TestGateRefusalStripsForgedHeaders(t *testing.T) {
	f := newGate(t)
	for _, r := range []*http.Request{apiRequest("GET", "/app", ""), browserRequest("GET", "/app", state.NewID())} {
		r.Header.Set("X-Auth-User", "admin")
		r.Header.Set("X-Auth-Group", "admins")
		if o, _, _ := f.check(r); o == Pass {
			t.Fatal("passed without a session")
		}
		if r.Header.Get("X-Auth-User") != "" || r.Header.Get("X-Auth-Group") != "" {
			t.Errorf("forged headers kept on refusal: %v", r.Header)
		}
	}
}

func TestGateBrowserRedirect(t *testing.T) {
	f := newGate(t)
	tests := []struct {
		method, target, location string
	}{
		{"GET", "/app/page?x=1&y=%2F", "/auth/login?redirect=%2Fapp%2Fpage%3Fx%3D1%26y%3D%252F"},
		{"HEAD", "/", "/auth/login?redirect=%2F"},
		{"GET", "//evil.example/x", "/auth/login"},
		{"GET", "/%5Cevil.example", "/auth/login?redirect=%2F%255Cevil.example"},
	}
	for _, tt := range tests {
		o, w, _ := f.check(browserRequest(tt.method, tt.target, ""))
		if o != Redirected || w.Code != http.StatusFound {
			t.Fatalf("%s %s: outcome %v status %d", tt.method, tt.target, o, w.Code)
		}
		if got := w.Header().Get("Location"); got != tt.location {
			t.Errorf("%s %s: Location = %q, want %q", tt.method, tt.target, got, tt.location)
		}
	}

	// A login URL with its own query keeps it.
	f.gate.LoginURL = "https://login.example.com/signin?app=demo"
	_, w, _ := f.check(browserRequest("GET", "/a", ""))
	if got := w.Header().Get("Location"); got != "https://login.example.com/signin?app=demo&redirect=%2Fa" {
		t.Errorf("Location = %q", got)
	}
}

func TestGateDoesNotRedirectTheLoginPageToItself(t *testing.T) {
	f := newGate(t)
	o, w, _ := f.check(browserRequest("GET", "/auth/login?redirect=%2Fapp", ""))
	if o != Unauthorized || w.Code != http.StatusUnauthorized || w.Header().Get("Location") != "" {
		t.Fatalf("login page behind the gate: outcome %v status %d Location %q", o, w.Code, w.Header().Get("Location"))
	}
	// Another host's page of the same path is still redirected.
	f.gate.LoginURL = "https://login.example.com/auth/login"
	if o, _, _ := f.check(browserRequest("GET", "/auth/login", "")); o != Redirected {
		t.Fatalf("same path on another host: outcome %v", o)
	}
}

func TestGateAPIClientsGet401(t *testing.T) {
	f := newGate(t)
	for _, r := range []*http.Request{
		apiRequest("GET", "/app", ""),
		browserRequest("POST", "/app", ""), // a form post is not redirected
		browserRequest("DELETE", "/app", ""),
		httptest.NewRequest("GET", "/app", nil), // no Accept
	} {
		o, w, _ := f.check(r)
		assertUnauthorized(t, o, w)
	}
	// Without a login URL, browsers get 401 too.
	f.gate.LoginURL = ""
	o, w, _ := f.check(browserRequest("GET", "/app", ""))
	assertUnauthorized(t, o, w)
}

func TestGateRefusesUnusableSessions(t *testing.T) {
	f := newGate(t)
	for _, st := range state.Statuses {
		if st == state.StatusAuthenticated {
			continue
		}
		id := f.session(st, nil)
		o, w, _ := f.check(apiRequest("GET", "/app", id))
		assertUnauthorized(t, o, w)
	}
	for name, id := range map[string]string{
		"unknown":  state.NewID(),
		"too long": strings.Repeat("a", state.MaxIDLength+1),
	} {
		o, w, _ := f.check(apiRequest("GET", "/app", id))
		t.Run(name, func(t *testing.T) { assertUnauthorized(t, o, w) })
	}
}

func TestGateRefusesExpired(t *testing.T) {
	f := newGate(t)
	idle := f.session(state.StatusAuthenticated, nil)
	f.clk.Advance(30 * time.Minute)
	o, w, _ := f.check(apiRequest("GET", "/app", idle))
	assertUnauthorized(t, o, w)

	abs := f.session(state.StatusAuthenticated, func(s *state.Session) { s.ExpiryTime = f.clk.Now().Add(time.Minute) })
	f.clk.Advance(time.Minute)
	o, w, _ = f.check(apiRequest("GET", "/app", abs))
	assertUnauthorized(t, o, w)
}

func TestGateSessionHeader(t *testing.T) {
	f := newGate(t)
	f.gate.Header, f.gate.Scheme = "Authorization", "Bearer"
	id := f.session(state.StatusAuthenticated, nil)
	for _, v := range []string{"Bearer " + id, "bearer " + id, "BEARER  " + id} {
		r := apiRequest("GET", "/app", "")
		r.Header.Set("Authorization", v)
		if o, _, _ := f.check(r); o != Pass {
			t.Errorf("Authorization %q: outcome %v", strings.Replace(v, id, "<id>", 1), o)
		}
	}
	for _, v := range []string{"Basic " + id, "Bearer", "Bearer ", id, "Bearer" + id} {
		r := apiRequest("GET", "/app", "")
		r.Header.Set("Authorization", v)
		o, w, _ := f.check(r)
		assertUnauthorized(t, o, w)
	}
	// A header with another scheme falls back to the cookie.
	r := apiRequest("GET", "/app", id)
	r.Header.Set("Authorization", "Basic YWRtaW46eA==")
	if o, _, _ := f.check(r); o != Pass {
		t.Errorf("cookie not used when the header has another scheme: %v", o)
	}

	// Without a scheme, the whole header value is the id.
	f.gate.Header, f.gate.Scheme = "X-Session", ""
	r = apiRequest("GET", "/app", "")
	r.Header.Set("X-Session", id)
	if o, _, _ := f.check(r); o != Pass {
		t.Errorf("X-Session: outcome %v", o)
	}
}

func TestGateRequireGroup(t *testing.T) {
	f := newGate(t)
	f.gate.RequireGroups = []string{"admins", "ops"}
	staff := f.session(state.StatusAuthenticated, nil)
	r := apiRequest("GET", "/app", staff)
	r.Header.Set("X-Auth-User", "forged")
	o, w, _ := f.check(r)
	if o != Forbidden || w.Code != http.StatusForbidden {
		t.Fatalf("outcome %v status %d, want 403", o, w.Code)
	}
	if body := decode[map[string]string](t, w); body["error"] != "forbidden" {
		t.Fatalf("body %v", body)
	}
	if r.Header.Get("X-Auth-User") != "" {
		t.Fatal("forged header kept on 403")
	}
	ops := f.session(state.StatusAuthenticated, func(s *state.Session) { s.GroupName = "ops" })
	if o, _, _ := f.check(apiRequest("GET", "/app", ops)); o != Pass {
		t.Fatalf("member of a required group: %v", o)
	}
	// No session at all is still 401, not 403.
	o, w, _ = f.check(apiRequest("GET", "/app", ""))
	assertUnauthorized(t, o, w)
}

func TestGateMaxAuthAge(t *testing.T) {
	f := newGate(t)
	f.gate.MaxAuthAge = 10 * time.Minute
	id := f.session(state.StatusAuthenticated, nil)
	f.clk.Advance(10 * time.Minute)
	if o, _, _ := f.check(apiRequest("GET", "/app", id)); o != Pass {
		t.Fatalf("authenticated 10m ago with max 10m: %v", o)
	}
	f.clk.Advance(time.Second)
	o, w, _ := f.check(apiRequest("GET", "/app", id))
	assertUnauthorized(t, o, w)
	// A browser is sent to sign in again, and told so: without reauth=1
	// the portal sends a signed-in browser straight back (a loop).
	o, w, _ = f.check(browserRequest("GET", "/app?x=1", id))
	if o != StepUp || w.Code != http.StatusFound {
		t.Fatalf("browser with a stale authentication: %v %d", o, w.Code)
	}
	assertLocation(t, w, "/auth/login", url.Values{"redirect": {"/app?x=1"}, "reauth": {"1"}})
	// No session at all is the plain redirect.
	o, w, _ = f.check(browserRequest("GET", "/app", ""))
	if o != Redirected {
		t.Fatalf("browser without a session: %v", o)
	}
	assertLocation(t, w, "/auth/login", url.Values{"redirect": {"/app"}})
}

// assertLocation checks a redirect's path and its whole query.
func assertLocation(t *testing.T, w *httptest.ResponseRecorder, path string, q url.Values) {
	t.Helper()
	u, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != path || !reflect.DeepEqual(u.Query(), q) {
		t.Fatalf("Location %q, want %s?%s", w.Header().Get("Location"), path, q.Encode())
	}
}

func TestGateRequireFactor(t *testing.T) {
	f := newGate(t)
	f.gate.RequireFactor = "ChallengeOMATOTP"
	otp := f.session(state.StatusAuthenticated, func(s *state.Session) { s.Factors = []string{"ChallengeEmail"} })
	o, w, _ := f.check(apiRequest("GET", "/app", otp))
	assertUnauthorized(t, o, w)
	totp := f.session(state.StatusAuthenticated, func(s *state.Session) {
		s.Factors = []string{"ChallengeEmail", "ChallengeOMATOTP"}
	})
	if o, _, _ := f.check(apiRequest("GET", "/app", totp)); o != Pass {
		t.Fatalf("session with the factor: %v", o)
	}
	// A browser is asked for a fresh sign-in with the factor it lacks.
	o, w, _ = f.check(browserRequest("GET", "/app", otp))
	if o != StepUp {
		t.Fatalf("browser without the factor: %v", o)
	}
	assertLocation(t, w, "/auth/login", url.Values{"redirect": {"/app"}, "reauth": {"1"}, "need": {"ChallengeOMATOTP"}})
}

func TestGateTouchAtMostOncePerInterval(t *testing.T) {
	f := newGate(t)
	id := f.session(state.StatusAuthenticated, nil)
	key := state.KeyOf(id)
	get := func() *state.Session {
		s, err := f.store.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	v0 := get().Version
	steps := []struct {
		advance time.Duration
		touched bool
	}{
		{0, false},
		{30 * time.Second, false},
		{29 * time.Second, false},
		{time.Second, true}, // 60s after the last access
		{59 * time.Second, false},
		{time.Second, true},
		{20 * time.Minute, true},
	}
	wantVersion, wantAccess := v0, t0
	for i, st := range steps {
		f.clk.Advance(st.advance)
		if o, _, _ := f.check(apiRequest("GET", "/app", id)); o != Pass {
			t.Fatalf("step %d: %v", i, o)
		}
		if st.touched {
			wantVersion++
			wantAccess = f.clk.Now()
		}
		s := get()
		if s.Version != wantVersion || !s.LastAccessTime.Equal(wantAccess) {
			t.Fatalf("step %d: version %d access %v; want %d %v", i, s.Version, s.LastAccessTime, wantVersion, wantAccess)
		}
	}
	// Being used keeps the session alive past the idle timeout.
	f.clk.Advance(29 * time.Minute)
	if o, _, _ := f.check(apiRequest("GET", "/app", id)); o != Pass {
		t.Fatalf("session used within the idle timeout refused: %v", o)
	}
}

func TestGateStoreUnavailable(t *testing.T) {
	f := newGate(t)
	id := f.session(state.StatusAuthenticated, nil)
	f.gate.Store = &faultyStore{Memory: f.store, err: state.ErrUnavailable}
	r := browserRequest("GET", "/app", id)
	r.Header.Set("X-Auth-User", "forged")
	o, w, _ := f.check(r)
	if o != Unavailable || w.Code != http.StatusServiceUnavailable {
		t.Fatalf("outcome %v status %d", o, w.Code)
	}
	if r.Header.Get("X-Auth-User") != "" {
		t.Fatal("forged header kept")
	}
}

func TestOutcomeNames(t *testing.T) {
	for o, want := range map[Outcome]string{
		Pass: "pass", Redirected: "redirect", Unauthorized: "unauthorized",
		Forbidden: "forbidden", Unavailable: "unavailable", StepUp: "step_up",
	} {
		if o.String() != want {
			t.Errorf("%d.String() = %q, want %q", o, o.String(), want)
		}
	}
}

// TestGateWrappedNotFound: a store may wrap ErrNotFound (a backend adds
// context); that is still "no session", not an unavailable store.
func TestGateWrappedNotFound(t *testing.T) {
	f := newGate(t)
	f.gate.Store = &faultyStore{Memory: f.store, err: fmt.Errorf("redis get: %w", state.ErrNotFound)}
	o, w, _ := f.check(apiRequest("GET", "/app", state.NewID()))
	assertUnauthorized(t, o, w)
}
