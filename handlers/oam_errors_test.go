package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authsession/caddy-authsession/internal/contract"
	"github.com/authsession/caddy-authsession/state"
)

// everyEndpoint lists one request per OAM endpoint.
var everyEndpoint = []struct{ method, path, body string }{
	{"POST", "/session", `{"userId":"alice"}`},
	{"GET", "/session/" + "q3V1mZ8rT0aX7cYbN2pLk9sDfGh4jWe6uIo5Ry1tQvA", ""},
	{"DELETE", "/session?userId=alice", ""},
	{"POST", "/sessions", ""},
}

func TestOAMUnauthorized(t *testing.T) {
	f := newOAM(t)
	f.create(`{"userId":"alice"}`)
	creds := []struct {
		name string
		set  func(*http.Request)
	}{
		{"none", func(*http.Request) {}},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth(apiUser, "nope") }},
		{"unknown user", func(r *http.Request) { r.SetBasicAuth("root", apiPass) }},
		{"empty password", func(r *http.Request) { r.SetBasicAuth(apiUser, "") }},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+apiPass) }},
		{"garbage", func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") }},
	}
	for _, ep := range everyEndpoint {
		for _, c := range creds {
			t.Run(ep.method+ep.path[:8]+"/"+c.name, func(t *testing.T) {
				before := f.snapshot()
				req := httptest.NewRequest(ep.method, OAMBase+ep.path, strings.NewReader(ep.body))
				c.set(req)
				w := f.serve(req)
				assertError(t, w, http.StatusUnauthorized, "")
				if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="authsession"` {
					t.Fatalf("WWW-Authenticate = %q", got)
				}
				f.assertUnchanged(before)
			})
		}
	}
}

func TestOAMNoCredentialsConfigured(t *testing.T) {
	f := newOAM(t)
	mux := http.NewServeMux()
	(&OAM{Env: f.env, Auth: NewBasicAuth(nil)}).Register(mux)
	f.mux = contract.New(t).Handler(mux)
	assertError(t, f.do("POST", "/session", `{"userId":"alice"}`), http.StatusUnauthorized, "")
	f.assertUnchanged(map[state.Key]uint64{})
}

func TestOAMBodyTooLarge(t *testing.T) {
	f := newOAM(t)
	big := `{"userId":"alice","clientIp":"` + strings.Repeat("x", MaxBody) + `"}`
	for _, p := range []string{"/session", "/sessions"} {
		assertError(t, f.do("POST", p, big), http.StatusRequestEntityTooLarge, "")
		// Without a Content-Length (chunked), the limit still holds.
		req := httptest.NewRequest("POST", OAMBase+p, struct{ *strings.Reader }{strings.NewReader(big)})
		req.ContentLength = -1
		req.SetBasicAuth(apiUser, apiPass)
		req.Header.Set("Content-Type", "application/json")
		assertError(t, f.serve(req), http.StatusRequestEntityTooLarge, "")
	}
	f.assertUnchanged(map[state.Key]uint64{})

	// Exactly 64 KiB is fine.
	pad := MaxBody - len(`{"userId":"alice"}`)
	exact := `{"userId":"alice"}` + strings.Repeat(" ", pad)
	if len(exact) != MaxBody {
		t.Fatal("bad test body")
	}
	if w := f.do("POST", "/session", exact); w.Code != http.StatusOK {
		t.Fatalf("a 64 KiB body: %d %s", w.Code, w.Body)
	}
}

func TestOAMCreateBadInput(t *testing.T) {
	f := newOAM(t)
	f.create(`{"userId":"bob"}`)
	tests := []struct {
		name, body, field, msg string
	}{
		{"empty body", "", "", "empty"},
		{"whitespace body", "  \n", "", "empty"},
		{"malformed", `{"userId":"alice"`, "", "malformed JSON"},
		{"not JSON", `userId=alice`, "", "malformed JSON"},
		{"trailing data", `{"userId":"alice"} {}`, "", "after the JSON value"},
		{"array", `[{"userId":"alice"}]`, "", "object"},
		{"null", `null`, "userId", "required"},
		{"missing userId", `{"clientIp":"10.0.0.1"}`, "userId", "required"},
		{"empty userId", `{"userId":""}`, "userId", "required"},
		{"blank userId", `{"userId":"  "}`, "userId", "required"},
		{"userId number", `{"userId":42}`, "userId", "string"},
		{"userId object", `{"userId":{"id":"alice"}}`, "userId", "string"},
		{"clientIp bool", `{"userId":"alice","clientIp":true}`, "clientIp", "string"},
		{"sessionId number", `{"userId":"alice","sessionId":123}`, "sessionId", "string"},
		{"expiryTime number", `{"userId":"alice","expiryTime":1700000000}`, "expiryTime", "string"},
		{"idStoreName array", `{"userId":"alice","idStoreName":["a"]}`, "idStoreName", "string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.snapshot()
			e := assertError(t, f.do("POST", "/session", tt.body), http.StatusBadRequest, tt.field)
			if !strings.Contains(*e.Message, tt.msg) {
				t.Fatalf("message %q does not contain %q", *e.Message, tt.msg)
			}
			f.assertUnchanged(before)
		})
	}
}

func TestOAMMethodNotAllowed(t *testing.T) {
	f := newOAM(t)
	for _, tt := range []struct{ method, path, allow string }{
		{"PUT", "/session", "POST, DELETE"},
		{"GET", "/session", "POST, DELETE"},
		{"POST", "/session/abc", "GET"},
		{"DELETE", "/session/abc", "GET"},
		{"GET", "/sessions", "POST"},
	} {
		w := f.do(tt.method, tt.path, "")
		assertError(t, w, http.StatusMethodNotAllowed, "")
		if got := w.Header().Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

func TestOAMStoreFailures(t *testing.T) {
	tests := []struct {
		name   string
		store  faultyStore
		status int
		msg    string
	}{
		{"store down", faultyStore{err: state.ErrUnavailable}, http.StatusServiceUnavailable, "unavailable"},
		{"store down, wrapped", faultyStore{err: fmt.Errorf("x: dial 10.0.0.9: %w", state.ErrUnavailable)}, http.StatusServiceUnavailable, "unavailable"},
		{"other store error", faultyStore{err: errors.New("x: disk on fire")}, http.StatusInternalServerError, "internal error"},
		// A lookup that timed out is the documented 408; a write or a
		// listing that timed out finds the store unreachable: 503.
		{"store times out", faultyStore{block: true}, http.StatusServiceUnavailable, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOAM(t)
			st := tt.store
			st.Memory = f.store
			f.env.Store = &st
			f.env.Policy.StoreTimeout = time.Millisecond
			for _, ep := range everyEndpoint {
				status, msg := tt.status, tt.msg
				if tt.store.block && ep.method == "GET" {
					status, msg = http.StatusRequestTimeout, "in time"
				}
				w := f.do(ep.method, ep.path, ep.body)
				e := assertError(t, w, status, "")
				if ra := w.Header().Get("Retry-After"); (status == http.StatusServiceUnavailable) != (ra != "") {
					t.Errorf("%s %s: %d with Retry-After %q", ep.method, ep.path, status, ra)
				}
				if !strings.Contains(*e.Message, msg) {
					t.Errorf("%s %s: message %q", ep.method, ep.path, *e.Message)
				}
				if strings.Contains(*e.Message, "x: ") {
					t.Errorf("message shows the internal error: %q", *e.Message)
				}
			}
			f.assertUnchanged(map[state.Key]uint64{})
		})
	}
}

func TestOAMCreateNotReadableBack(t *testing.T) {
	f := newOAM(t)
	f.env.Store = &faultyStore{Memory: f.store, lostWrite: true}
	assertError(t, f.do("POST", "/session", `{"userId":"alice"}`), http.StatusNotFound, "")
}
