package handlers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/authsession/caddy-authsession/internal/contract"
	"github.com/authsession/caddy-authsession/internal/testkit"
	"github.com/authsession/caddy-authsession/state"
)

const (
	apiUser = "admin"
	apiPass = "admin-password"
)

// t0 is when every test starts on its injected clock.
var t0 = testkit.Start

// testAuth is the BasicAuth of every test: bcrypt cost 4 keeps it fast,
// and its failure limit is out of reach (the tests share it; the limit has
// tests of its own).
var testAuth = sync.OnceValue(func() *BasicAuth {
	hash, err := bcrypt.GenerateFromPassword([]byte(apiPass), 4)
	if err != nil {
		panic(err)
	}
	b := NewBasicAuth(map[string][]byte{apiUser: hash})
	b.Limiter = &MemoryLimiter{Max: 1 << 30, Window: time.Minute}
	return b
})

// fakeClock is an injected clock that tests move by hand.
type fakeClock = testkit.Clock

// oamFixture is an OAM family on a memory store with an injected clock.
type oamFixture struct {
	t      *testing.T
	clk    *fakeClock
	store  *state.Memory
	env    *Env
	mux    http.Handler   // the family, checked against docs/openapi/oam.yaml
	routes *http.ServeMux // the mux behind it, for a test that adds a family
	logs   *observer.ObservedLogs
}

func newOAM(t *testing.T) *oamFixture {
	t.Helper()
	clk := testkit.NewClock(t0)
	store := state.NewMemory(state.MemoryOptions{Now: clk.Now, CleanupInterval: time.Hour})
	t.Cleanup(func() { _ = store.Close() })
	sealer, err := state.NewSealer(state.NewSealKey())
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	env := &Env{
		Store:  store,
		Now:    clk.Now,
		Sealer: sealer,
		Logger: zap.New(core),
		Policy: Policy{
			Lifetime:     8 * time.Hour,
			IdleTimeout:  30 * time.Minute,
			IDStoreName:  "UserIdentityStore1",
			BlockFor:     15 * time.Minute,
			StoreTimeout: 5 * time.Second,
		},
	}
	mux := http.NewServeMux()
	(&OAM{Env: env, Auth: testAuth()}).Register(mux)
	f := &oamFixture{t: t, clk: clk, store: store, env: env, mux: contract.New(t).Handler(mux), routes: mux, logs: logs}
	return f
}

// do sends an authenticated request to the family.
func (f *oamFixture) do(method, path, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, OAMBase+path, r)
	req.SetBasicAuth(apiUser, apiPass)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return f.serve(req)
}

func (f *oamFixture) serve(req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, req)
	return w
}

// create makes a session through the API and returns its answer.
func (f *oamFixture) create(body string) sessionJSON {
	f.t.Helper()
	w := f.do("POST", "/session", body)
	if w.Code != http.StatusOK {
		f.t.Fatalf("create %s: %d %s", body, w.Code, w.Body)
	}
	return decode[sessionJSON](f.t, w)
}

// snapshot returns the version of every live session, to check that a
// refused request changed nothing.
func (f *oamFixture) snapshot() map[state.Key]uint64 {
	m := map[state.Key]uint64{}
	_ = f.store.Scan(context.Background(), func(s *state.Session) bool {
		m[s.Key] = s.Version
		return true
	})
	return m
}

func (f *oamFixture) assertUnchanged(before map[state.Key]uint64) {
	f.t.Helper()
	after := f.snapshot()
	if len(after) != len(before) {
		f.t.Fatalf("store holds %d sessions, had %d", len(after), len(before))
	}
	for k, v := range before {
		if after[k] != v {
			f.t.Fatalf("session %s changed: version %d → %d", k.Short(), v, after[k])
		}
	}
}

// sessionJSON is SessionData as a client reads it, with isImpersonating a
// real boolean.
type sessionJSON struct {
	UserID          string                       `json:"userId"`
	SessionID       string                       `json:"sessionId"`
	SessionIndex    string                       `json:"sessionIndex"`
	ClientIP        string                       `json:"clientIp"`
	CreateTime      string                       `json:"createTime"`
	UpdateTime      string                       `json:"updateTime"`
	LastAccessTime  string                       `json:"lastAccessTime"`
	ExpiryTime      string                       `json:"expiryTime"`
	IDStoreName     string                       `json:"idStoreName"`
	IsImpersonating *bool                        `json:"isImpersonating"`
	UserAttributes  map[string]map[string]string `json:"userAttributes"`
}

type errorJSON struct {
	Code    *int    `json:"code"`
	Message *string `json:"message"`
	Fields  string  `json:"fields"`
}

type searchJSON struct {
	TotalRecords *int `json:"totalRecords"`
	Sessions     struct {
		SessionData []sessionJSON `json:"sessionData"`
	} `json:"sessions"`
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T: %v", v, err)
	}
	return v
}

// assertError checks an OAM error answer: status, the Error body with the
// same code, a message, and the offending field.
func assertError(t *testing.T, w *httptest.ResponseRecorder, status int, field string) errorJSON {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	body := w.Body.String()
	e := decode[errorJSON](t, w)
	if e.Code == nil || *e.Code != status {
		t.Fatalf("error body code = %v, want %d: %s", e.Code, status, body)
	}
	if e.Message == nil || *e.Message == "" {
		t.Fatalf("error body has no message: %s", body)
	}
	if e.Fields != field {
		t.Fatalf("error body fields = %q, want %q (message %q)", e.Fields, field, *e.Message)
	}
	return e
}

// faultyStore is a memory store whose calls fail as a test says.
type faultyStore struct {
	*state.Memory
	err       error // returned by every call when set
	block     bool  // calls wait for their context to end
	lostWrite bool  // Create succeeds but stores nothing
}

// Peek hides the embedded Memory's, whose signature makes it a
// state.Peeker: a store that fails is read through Get.
func (s *faultyStore) Peek() {}

func (s *faultyStore) fail(ctx context.Context) error {
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.err
}

func (s *faultyStore) Get(ctx context.Context, k state.Key) (*state.Session, error) {
	if err := s.fail(ctx); err != nil {
		return nil, err
	}
	return s.Memory.Get(ctx, k)
}

func (s *faultyStore) Create(ctx context.Context, x *state.Session) error {
	if err := s.fail(ctx); err != nil {
		return err
	}
	if s.lostWrite {
		return nil
	}
	return s.Memory.Create(ctx, x)
}

func (s *faultyStore) Delete(ctx context.Context, k state.Key) (*state.Session, error) {
	if err := s.fail(ctx); err != nil {
		return nil, err
	}
	return s.Memory.Delete(ctx, k)
}

func (s *faultyStore) ByUser(ctx context.Context, u string) ([]*state.Session, error) {
	if err := s.fail(ctx); err != nil {
		return nil, err
	}
	return s.Memory.ByUser(ctx, u)
}

func (s *faultyStore) Scan(ctx context.Context, fn func(*state.Session) bool) error {
	if err := s.fail(ctx); err != nil {
		return err
	}
	return s.Memory.Scan(ctx, fn)
}

func (s *faultyStore) Touch(ctx context.Context, k state.Key, at time.Time) error {
	if err := s.fail(ctx); err != nil {
		return err
	}
	return s.Memory.Touch(ctx, k, at)
}
