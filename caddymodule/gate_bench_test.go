package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// hitGate returns a gate on a memory store holding n authenticated
// sessions, and the ids of those sessions.
func hitGate(tb testing.TB, n int) (*Gate, []string) {
	tb.Helper()
	st := state.NewMemory(state.MemoryOptions{CleanupInterval: time.Hour})
	tb.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC().Truncate(time.Second)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "gate-bench-session-" + strconv.Itoa(i) + "-padding-to-forty-three"
		s := state.NewSession(ids[i], nil, now, 8*time.Hour, 30*time.Minute)
		s.UserID = "user" + strconv.Itoa(i)
		s.LoginName = s.UserID
		s.GroupName = "staff"
		s.UserAttributes = map[string]string{"mail": s.UserID + "@example.com"}
		if i%2 == 0 {
			s.SetDisplayName("User " + strconv.Itoa(i)) // the others have none
		}
		if err := s.SetStatus(state.StatusAuthenticated, now, "", 0); err != nil {
			tb.Fatal(err)
		}
		if err := st.Create(context.Background(), s); err != nil {
			tb.Fatal(err)
		}
	}
	g := &Gate{LoginURL: "/auth/login", providers: new(providerCache)}
	g.gate = &handlers.Gate{
		Store: st, Now: state.Now, Logger: zap.NewNop(),
		CookieName: "authsession", LoginURL: g.LoginURL, TouchInterval: time.Minute,
	}
	m := newMetrics()
	for o := range g.decisions {
		g.decisions[o] = m.gate.WithLabelValues(handlers.Outcome(o).String())
	}
	return g, ids
}

// preparedRequests returns k requests as Caddy's server hands them to a
// handler (a fresh caddy.Replacer and the request variables in the
// context), carrying the cookies of ids in turn.
func preparedRequests(k int, ids []string, w http.ResponseWriter) []*http.Request {
	rs := make([]*http.Request, k)
	for i := range rs {
		r := &http.Request{
			Method: http.MethodGet, URL: &url.URL{Path: "/app/page"}, Host: "example.com",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "192.0.2.1:1234",
			Header: http.Header{
				"Accept": {"text/html"},
				"Cookie": {"theme=dark; authsession=" + ids[i%len(ids)]},
			},
		}
		r = r.WithContext(context.Background())
		rs[i] = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
	}
	return rs
}

type nopHandler struct{}

func (nopHandler) ServeHTTP(http.ResponseWriter, *http.Request) error { return nil }

// BenchmarkGateServeHTTP is the Caddy-level hit: caddymodule's
// Gate.ServeHTTP on a request prepared as Caddy's server prepares it (a
// real caddy.Replacer in the context), passing to a handler that does
// nothing. Requests are prepared in batches with the timer stopped, as
// each carries its own Replacer; allocs/op counts what ServeHTTP itself
// allocates.
func BenchmarkGateServeHTTP(b *testing.B) {
	for _, tc := range []struct {
		name     string
		sessions int
		distinct int
	}{{"same", 1000, 1}, {"spread", 1000, 1000}} {
		b.Run(tc.name, func(b *testing.B) {
			g, ids := hitGate(b, tc.sessions)
			ids = ids[:tc.distinct]
			w := httptest.NewRecorder()
			const batch = 4096
			b.ReportAllocs()
			b.StopTimer()
			var rs []*http.Request
			for i := 0; i < b.N; i++ {
				if i%batch == 0 {
					b.StopTimer()
					rs = preparedRequests(batch, ids, w)
					b.StartTimer()
				}
				r := rs[i%batch]
				if err := g.ServeHTTP(w, r, nopHandler{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// The placeholders resolve for the last request.
			repl := rs[(b.N-1)%batch].Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
			if v, _ := repl.GetString("http.auth.user.group"); v != "staff" {
				b.Fatalf("{http.auth.user.group} = %q", v)
			}
		})
	}
}

// TestGateServeHTTPNoAlloc checks that a Caddy-level hit on a session
// seen before allocates nothing.
func TestGateServeHTTPNoAlloc(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations")
	}
	g, ids := hitGate(t, 8)
	rs, allocs := hitAllocs(t, g, ids)
	if allocs != 0 {
		t.Errorf("ServeHTTP on a hit allocates %.2f times per request, want 0", allocs)
	}
	repl := rs[3].Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	for k, want := range map[string]string{
		"http.auth.user.id": "user3", "http.auth.user.login": "user3", "http.auth.user.group": "staff",
		"http.auth.user.mail": "user3@example.com", "http.authsession.status": "authenticated",
		// user3 has no display name: the login stands for it.
		"http.auth.user.name": "user3",
	} {
		if v, ok := repl.GetString(k); !ok || v != want {
			t.Errorf("{%s} = %q, %v; want %q", k, v, ok, want)
		}
	}
	repl = rs[2].Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if v, ok := repl.GetString("http.auth.user.name"); !ok || v != "User 2" {
		t.Errorf("{http.auth.user.name} of user2 = %q, %v; want her display name", v, ok)
	}
}

// TestGateServeHTTPAllocsPerHeader: with upstream headers, a Caddy-level
// hit allocates exactly one object per header set, the value's own
// []string. It cannot be shared between requests (kept with the session's
// snapshot, say): later handlers may edit header values in place, as
// Caddy's own header replacements do, and would change the value another
// request of the session sends upstream.
func TestGateServeHTTPAllocsPerHeader(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations")
	}
	g, ids := hitGate(t, 8)
	g.gate.SetHeaders = []handlers.HeaderField{{Name: "X-Auth-User", Field: "login"}, {Name: "X-Auth-Group", Field: "group"}}
	rs, allocs := hitAllocs(t, g, ids)
	if allocs != 2 {
		t.Errorf("ServeHTTP on a hit with two upstream headers allocates %.2f times per request, want 2", allocs)
	}
	if v := rs[3].Header.Values("X-Auth-User"); len(v) != 1 || v[0] != "user3" {
		t.Errorf("X-Auth-User = %q, want [user3]", v)
	}
	if v := rs[3].Header.Values("X-Auth-Group"); len(v) != 1 || v[0] != "staff" {
		t.Errorf("X-Auth-Group = %q, want [staff]", v)
	}
}

// hitAllocs serves prepared requests carrying the cookies of ids through g
// (each session seen before after the first round) and returns them with
// the allocations per request.
func hitAllocs(t *testing.T, g *Gate, ids []string) ([]*http.Request, float64) {
	t.Helper()
	w := httptest.NewRecorder()
	rs := preparedRequests(512, ids, w)
	i := 0
	allocs := testing.AllocsPerRun(len(rs)-1, func() {
		if err := g.ServeHTTP(w, rs[i], nopHandler{}); err != nil {
			t.Fatal(err)
		}
		i++
	})
	return rs, allocs
}
