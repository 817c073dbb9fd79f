package bench

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/filestore"
)

// stores opens each kind of store for a benchmark.
var stores = []struct {
	name string
	open func(b *testing.B) state.Store
}{
	{"memory", func(*testing.B) state.Store { return state.NewMemory(state.MemoryOptions{}) }},
	{"file", func(b *testing.B) state.Store {
		f, err := filestore.Open(filestore.Options{Path: filepath.Join(b.TempDir(), "sessions.db")})
		if err != nil {
			b.Fatal(err)
		}
		return f
	}},
}

func env(st state.Store) *handlers.Env {
	sealer, _ := state.NewSealer(state.NewSealKey())
	return &handlers.Env{
		Store: st, Now: time.Now, Sealer: sealer, Logger: zap.NewNop(),
		Policy: handlers.Policy{Lifetime: 8 * time.Hour, IdleTimeout: 30 * time.Minute,
			IDStoreName: "UserIdentityStore1", StoreTimeout: 5 * time.Second, BlockFor: 15 * time.Minute},
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
			(&handlers.OAM{Env: env(st), Auth: handlers.NewBasicAuth(map[string][]byte{"bench": hash})}).Register(mux)
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

// BenchmarkGateHit measures the gate's decision for a request carrying the
// cookie of an authenticated session, with each store. Both read memory
// only, so the figures should match.
func BenchmarkGateHit(b *testing.B) {
	for _, sc := range stores {
		b.Run(sc.name, func(b *testing.B) {
			st := sc.open(b)
			defer st.Close()
			e := env(st)
			now := time.Now()
			ids := make([]string, 1000)
			var wg sync.WaitGroup
			for w := range 50 { // concurrent creations share commits
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < len(ids); i += 50 {
						ids[i] = state.NewID()
						s := e.NewSession(ids[i], now)
						s.UserID = "bench-user"
						if err := s.SetStatus(state.StatusAuthenticated, now, "", 0); err != nil {
							b.Error(err)
							return
						}
						if err := st.Create(b.Context(), s); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			g := &handlers.Gate{Store: st, Now: time.Now, Logger: zap.NewNop(), CookieName: "authsession",
				TouchInterval: time.Minute,
				SetHeaders:    []handlers.HeaderField{{Name: "X-Auth-User", Field: "login"}}}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					req := httptest.NewRequest(http.MethodGet, "/app", nil)
					req.AddCookie(&http.Cookie{Name: "authsession", Value: ids[i%len(ids)]})
					if _, out := g.Check(httptest.NewRecorder(), req); out != handlers.Pass {
						b.Errorf("gate: %v", out)
						return
					}
				}
			})
		})
	}
}
