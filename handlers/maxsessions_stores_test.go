package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/authsession/caddy-authsession/internal/redistest"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/filestore"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

// instances is the OAM family served by one handler per store (each store
// a separate instance: with Redis, two clients of one server), all on
// one clock that a test can move forward by whole seconds.
type instances struct {
	t      *testing.T
	stores []state.Store
	muxes  []*http.ServeMux
	offset atomic.Int64 // added to time.Now, in seconds
}

func newInstances(t *testing.T, policy Policy, stores ...state.Store) *instances {
	t.Helper()
	sealer, err := state.NewSealer(state.NewSealKey())
	if err != nil {
		t.Fatal(err)
	}
	in := &instances{t: t, stores: stores}
	now := func() time.Time { return time.Now().Add(time.Duration(in.offset.Load()) * time.Second) }
	policy.Lifetime, policy.IdleTimeout, policy.StoreTimeout = 8*time.Hour, 30*time.Minute, 10*time.Second
	for _, st := range stores {
		env := &Env{Store: st, Now: now, Sealer: sealer, Logger: zaptest.NewLogger(t), Policy: policy}
		mux := http.NewServeMux()
		(&OAM{Env: env, Auth: testAuth()}).Register(mux)
		in.muxes = append(in.muxes, mux)
	}
	return in
}

// do sends an OAM request to instance i (modulo their number).
func (in *instances) do(i int, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, OAMBase+path, strings.NewReader(body))
	req.SetBasicAuth(apiUser, apiPass)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	in.muxes[i%len(in.muxes)].ServeHTTP(w, req)
	return w
}

// live returns the user's live sessions, as every instance sees them.
func (in *instances) live(user string) []*state.Session {
	in.t.Helper()
	var first []*state.Session
	for i, st := range in.stores {
		ss, err := st.ByUser(context.Background(), user)
		if err != nil {
			in.t.Fatal(err)
		}
		if i == 0 {
			first = ss
		} else if len(ss) != len(first) {
			in.t.Fatalf("instance %d sees %d sessions of %s, instance 0 sees %d", i, len(ss), user, len(first))
		}
	}
	scanned := 0
	_ = in.stores[0].Scan(context.Background(), func(s *state.Session) bool {
		if s.UserID == user {
			scanned++
		}
		return true
	})
	if scanned != len(first) {
		in.t.Fatalf("%d live sessions of %s, ByUser finds %d", scanned, user, len(first))
	}
	return first
}

// checkMaxSessions: parallel creations for one user spread over every
// instance never leave more than the maximum live once all have answered;
// one after the other (a second apart), the newest stay.
func checkMaxSessions(t *testing.T, in *instances, limit int) {
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			if w := in.do(i, "POST", "/session", `{"userId":"alice"}`); w.Code != http.StatusOK {
				t.Errorf("create %d: %d %s", i, w.Code, w.Body)
			}
		})
	}
	wg.Wait()
	if n := len(in.live("alice")); n > limit || n == 0 {
		t.Fatalf("%d sessions live after parallel creations, max %d", n, limit)
	}
	var newest []state.Key
	for i := range limit + 2 {
		in.offset.Add(1)
		w := in.do(i, "POST", "/session", `{"userId":"alice"}`)
		var s sessionJSON
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &s) != nil {
			t.Fatalf("sequential create %d: %d %s", i, w.Code, w.Body)
		}
		newest = append(newest, state.KeyOf(s.SessionID))
	}
	newest = newest[len(newest)-limit:]
	live := in.live("alice")
	if len(live) != limit {
		t.Fatalf("after sequential creations %d live, want %d", len(live), limit)
	}
	for i, s := range live {
		if s.Key != newest[i] {
			t.Fatalf("after sequential creations live[%d] is %s, want the newest %s", i, s.Key.Short(), newest[i].Short())
		}
	}
	in.do(0, "POST", "/session", `{"userId":"bob"}`)
	if n := len(in.live("bob")); n != 1 {
		t.Fatalf("bob has %d sessions", n)
	}
}

func newRedisInstances(t *testing.T, n int) []state.Store {
	t.Helper()
	srv := redistest.Start(t)
	var stores []state.Store
	for range n {
		st, err := redisstore.New(redisstore.Options{Addrs: []string{srv.Addr()}, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		stores = append(stores, st)
	}
	return stores
}

// TestMaxSessionsPerUserFileStore: max_sessions_per_user on the file store.
func TestMaxSessionsPerUserFileStore(t *testing.T) {
	st, err := filestore.Open(filestore.Options{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	checkMaxSessions(t, newInstances(t, Policy{MaxSessionsPerUser: 3}, st), 3)
}

// TestMaxSessionsPerUserRedisTwoInstances: max_sessions_per_user holds
// across two instances sharing one Redis, with creations racing on both.
func TestMaxSessionsPerUserRedisTwoInstances(t *testing.T) {
	checkMaxSessions(t, newInstances(t, Policy{MaxSessionsPerUser: 2}, newRedisInstances(t, 2)...), 2)
}

// TestMaxSearchResultsRedis: on Redis, search and delete-by-user list at
// most max_search_results sessions; totalRecords counts them all.
func TestMaxSearchResultsRedis(t *testing.T) {
	in := newInstances(t, Policy{MaxSearchResults: 3}, newRedisInstances(t, 2)...)
	for i := range 5 {
		if w := in.do(i, "POST", "/session", `{"userId":"alice"}`); w.Code != http.StatusOK {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
	}
	for i := range 2 {
		var res oamSearchResult
		if err := json.Unmarshal(in.do(i, "POST", "/sessions?userId=alice", "").Body.Bytes(), &res); err != nil ||
			res.TotalRecords != 5 || len(res.Sessions.SessionData) != 3 {
			t.Fatalf("search on instance %d: %+v %v", i, res, err)
		}
	}
	var deleted []oamSessionData
	if err := json.Unmarshal(in.do(1, "DELETE", "/session?userId=alice", "").Body.Bytes(), &deleted); err != nil || len(deleted) != 3 {
		t.Fatalf("delete: %d %v", len(deleted), err)
	}
}
