package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// BenchmarkGatePass measures the gate's hit path: a cookie, a live
// authenticated session, two upstream headers, no touch due.
func BenchmarkGatePass(b *testing.B) {
	now := time.Now()
	store := state.NewMemory(state.MemoryOptions{})
	defer store.Close()
	id := state.NewID()
	s := state.NewSession(id, nil, now, 8*time.Hour, 30*time.Minute)
	s.UserID, s.GroupName = "alice", "staff"
	if err := s.SetStatus(state.StatusAuthenticated, now, "", 0); err != nil {
		b.Fatal(err)
	}
	if err := store.Create(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	g := &Gate{Store: store, Now: time.Now, Logger: zap.NewNop(), CookieName: "authsession",
		LoginURL: "/auth/login", TouchInterval: time.Hour,
		SetHeaders: []HeaderField{{Name: "X-Auth-User", Field: "login"}, {Name: "X-Auth-Group", Field: "group"}}}
	r := httptest.NewRequest("GET", "/app", nil)
	r.AddCookie(&http.Cookie{Name: "authsession", Value: id})
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if _, o := g.Check(w, r); o != Pass {
			b.Fatal(o)
		}
	}
}

// BenchmarkOAMCreate measures POST /session with cached Basic credentials.
func BenchmarkOAMCreate(b *testing.B) {
	store := state.NewMemory(state.MemoryOptions{})
	defer store.Close()
	sealer, _ := state.NewSealer(state.NewSealKey())
	env := &Env{Store: store, Now: time.Now, Sealer: sealer, Logger: zap.NewNop(),
		Policy: Policy{Lifetime: 8 * time.Hour, IdleTimeout: 30 * time.Minute, IDStoreName: "UserIdentityStore1"}}
	mux := http.NewServeMux()
	(&OAM{Env: env, Auth: testAuth()}).Register(mux)
	const body = `{"userId":"alice","clientIp":"203.0.113.5","userAttributes":{"mail":{"attrName":"mail","attrValue":"alice@example.com"}}}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", OAMBase+"/session", strings.NewReader(body))
		r.SetBasicAuth(apiUser, apiPass)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
