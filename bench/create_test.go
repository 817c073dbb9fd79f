package bench_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/authsession/caddy-authsession/bench"
	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// BenchmarkStoreCreate is Memory.Create alone, into a store that grows with
// b.N: the session is built outside the timed loop from a template whose
// key and user change every iteration (the user's string conversion is the
// one allocation that is the benchmark's own).
func BenchmarkStoreCreate(b *testing.B) {
	st := state.NewMemory(state.MemoryOptions{CleanupInterval: time.Hour})
	defer st.Close()
	tmpl := newBenchSession(0, time.Now().UTC().Truncate(time.Second))
	ctx := context.Background()
	b.ReportAllocs()
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		s := *tmpl
		s.Key = state.KeyOf(strconv.Itoa(i))
		s.UserID = strconv.Itoa(i)
		if err := st.Create(ctx, &s); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// BenchmarkNewSession is what the OAM create handler does to make a session
// before storing it: a fresh id, its key, a sealed copy and an index.
func BenchmarkNewSession(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = state.NewSession(state.NewID(), benchSealer, now, 8*time.Hour, 30*time.Minute)
	}
}

// newOAM returns the OAM API on a fresh memory store, with the demo API
// user admin / admin-password (bcrypt cost 10, as in Caddyfile.example).
func newOAM(b *testing.B) (*http.ServeMux, *state.Memory) {
	hash, err := bcrypt.GenerateFromPassword([]byte("admin-password"), 10)
	if err != nil {
		b.Fatal(err)
	}
	st := state.NewMemory(state.MemoryOptions{CleanupInterval: time.Hour})
	env := &handlers.Env{
		Store:  st,
		Now:    time.Now,
		Sealer: benchSealer,
		Logger: zap.NewNop(),
		Policy: handlers.Policy{Lifetime: 8 * time.Hour, IdleTimeout: 30 * time.Minute, IDStoreName: "UserIdentityStore1"},
	}
	mux := http.NewServeMux()
	(&handlers.OAM{Env: env, Auth: handlers.NewBasicAuth(map[string][]byte{"admin": hash})}).Register(mux)
	return mux, st
}

// BenchmarkOAMCreate is the OAM create call (POST .../session) through the
// handler: Basic auth (cached after the first call, as in production),
// JSON decoding, a server-made id, the store, and the JSON answer. The
// request is built in the loop (two of the allocations are its own).
func BenchmarkOAMCreate(b *testing.B) {
	mux, st := newOAM(b)
	defer st.Close()
	body := []byte(`{"userId":"alice","clientIp":"192.0.2.7","userAttributes":{"mail":{"attrName":"mail","attrValue":"alice@example.com"}}}`)
	r := httptest.NewRequest(http.MethodPost, handlers.OAMBase+"/session", nil)
	r.SetBasicAuth("admin", "admin-password")
	r.Header.Set("Content-Type", "application/json")
	var w discardWriter
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		r.Body = io.NopCloser(bytes.NewReader(body))
		w.reset()
		mux.ServeHTTP(&w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	cpu.report(b)
	if st.Len() < b.N {
		b.Fatalf("store holds %d sessions after %d creates", st.Len(), b.N)
	}
}

// BenchmarkCreate measures session creations per second through the OAM
// API (POST /session, Basic auth, JSON in and out), from 32 concurrent
// clients per CPU, with each store. The file store's creations are on disk
// (fsynced) before they are answered.
func BenchmarkCreate(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-password"), bcrypt.MinCost)
	if err != nil {
		b.Fatal(err)
	}
	for _, sc := range stores {
		b.Run(sc.name, func(b *testing.B) {
			st := sc.open(b)
			defer st.Close()
			mux := http.NewServeMux()
			(&handlers.OAM{Env: benchEnv(st), Auth: handlers.NewBasicAuth(map[string][]byte{"bench": hash})}).Register(mux)
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, handlers.OAMBase+"/session",
						strings.NewReader(`{"userId":"bench-user","clientIp":"192.0.2.1"}`))
					req.SetBasicAuth("bench", "bench-password")
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					mux.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("create: %d %s", rec.Code, rec.Body)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}

// BenchmarkOAMGet is the OAM get call (GET .../session/{id}) at 1M live
// sessions.
func BenchmarkOAMGet(b *testing.B) {
	mux, st := newOAM(b)
	defer st.Close()
	now := time.Now().UTC().Truncate(time.Second)
	const n = 1_000_000
	for i := range n {
		if err := st.Create(context.Background(), newBenchSession(i, now)); err != nil {
			b.Fatal(err)
		}
	}
	r := httptest.NewRequest(http.MethodGet, handlers.OAMBase+"/session/"+bench.SessionID(n/2), nil)
	r.SetBasicAuth("admin", "admin-password")
	var w discardWriter
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		w.reset()
		mux.ServeHTTP(&w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	cpu.report(b)
}
