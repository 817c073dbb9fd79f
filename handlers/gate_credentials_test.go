package handlers

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authsession/caddy-authsession/state"
)

// The upstream never receives the live session id: the session cookie and
// the session header are removed on Pass, other cookies and other
// Authorization schemes stay (issue #14, finding 7).
func TestGateStripsSessionCredentials(t *testing.T) {
	f := newGate(t)
	f.gate.Header, f.gate.Scheme = "Authorization", "Bearer"
	id := f.session(state.StatusAuthenticated, nil)

	r := httptest.NewRequest("GET", "/app", nil)
	r.Header.Add("Cookie", "theme=dark; authsession="+id+"; lang=en")
	r.Header.Add("Cookie", "authsession="+id)
	r.Header.Set("Authorization", "Bearer "+id)
	if _, o := f.gate.Decide(r); o != Pass {
		t.Fatalf("outcome %v", o)
	}
	for name, vs := range r.Header {
		if strings.Contains(strings.Join(vs, " "), id) {
			t.Errorf("upstream header %s carries the session id: %q", name, vs)
		}
	}
	if got := r.Header.Values("Cookie"); len(got) != 1 || got[0] != "theme=dark; lang=en" {
		t.Errorf("Cookie = %q, want the other cookies only", got)
	}

	// The header alone authenticates too, and is removed as well.
	r = httptest.NewRequest("GET", "/app", nil)
	r.Header.Set("Authorization", "bearer "+id)
	if _, o := f.gate.Decide(r); o != Pass || r.Header.Get("Authorization") != "" {
		t.Errorf("outcome %v, Authorization %q", o, r.Header.Get("Authorization"))
	}

	// pass_session_credentials keeps both.
	f.gate.PassCredentials = true
	r = httptest.NewRequest("GET", "/app", nil)
	r.AddCookie(&http.Cookie{Name: "authsession", Value: id})
	r.Header.Set("Authorization", "Bearer "+id)
	if _, o := f.gate.Decide(r); o != Pass {
		t.Fatalf("outcome %v", o)
	}
	if !strings.Contains(r.Header.Get("Cookie"), id) || r.Header.Get("Authorization") != "Bearer "+id {
		t.Errorf("pass_session_credentials: Cookie %q, Authorization %q", r.Header.Get("Cookie"), r.Header.Get("Authorization"))
	}
}

// Client-sent headers that an upstream could read as one of the gate's
// headers are removed whatever their spelling.
func TestGateDropsHeaderNameVariants(t *testing.T) {
	f := newGate(t)
	id := f.session(state.StatusAuthenticated, nil)
	r := apiRequest("GET", "/app", id)
	for _, name := range []string{"X-Auth_User", "x-auth_user", "X_AUTH_USER", "X-AUTH-USER"} {
		r.Header[name] = []string{"mallory", "root"}
	}
	r.Header["X-Auth-Group"] = []string{"admins", "admins"}
	if _, o := f.gate.Decide(r); o != Pass {
		t.Fatalf("outcome %v", o)
	}
	for name, vs := range r.Header {
		for _, v := range vs {
			if v == "mallory" || v == "root" || v == "admins" {
				t.Errorf("client value %q reached the upstream in %s", v, name)
			}
		}
	}
	if got := r.Header.Values("X-Auth-User"); len(got) != 1 || got[0] != "alice.smith" {
		t.Errorf("X-Auth-User = %q", got)
	}
}

// A gate configured with a header name in any letter case sets it under
// the canonical key, where Header.Get and upstreams look for it, and a
// client's copy in any spelling is still removed.
func TestGateSetsHeadersUnderCanonicalNames(t *testing.T) {
	f := newGate(t)
	f.gate.SetHeaders = []HeaderField{{Name: "x-auth-user", Field: "login"}}
	id := f.session(state.StatusAuthenticated, nil)
	r := apiRequest("GET", "/app", id)
	r.Header["x-AUTH_user"] = []string{"mallory"}
	if _, o := f.gate.Decide(r); o != Pass {
		t.Fatalf("outcome %v", o)
	}
	if got := r.Header["X-Auth-User"]; len(got) != 1 || got[0] != "alice.smith" {
		t.Errorf("X-Auth-User = %q (header %v)", got, r.Header)
	}
	for name := range r.Header {
		if sameHeaderName(name, "X-Auth-User") && name != "X-Auth-User" {
			t.Errorf("a copy under %q is left: %v", name, r.Header)
		}
	}
}
