package bench_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/bench"
	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/filestore"
)

// benchSealer seals ids in every stored session, as the Caddy app does.
var benchSealer = func() *state.Sealer {
	s, err := state.NewSealer(state.NewSealKey())
	if err != nil {
		panic(err)
	}
	return s
}()

// benchEnv is the handlers' environment on st, with the session policy of
// Caddyfile.example.
func benchEnv(st state.Store) *handlers.Env {
	return &handlers.Env{
		Store:  st,
		Now:    time.Now,
		Sealer: benchSealer,
		Logger: zap.NewNop(),
		Policy: handlers.Policy{
			Lifetime: 8 * time.Hour, IdleTimeout: 30 * time.Minute,
			IDStoreName: "UserIdentityStore1", StoreTimeout: 5 * time.Second, BlockFor: 15 * time.Minute,
		},
	}
}

// storeKind opens one kind of store for a benchmark.
type storeKind struct {
	name string
	open func(b *testing.B) state.Store
}

// stores are the kinds of store that the side-by-side benchmarks
// (BenchmarkCreate, BenchmarkGateHit) compare.
var stores = []storeKind{
	{"memory", func(*testing.B) state.Store { return state.NewMemory(state.MemoryOptions{}) }},
	{"file", func(b *testing.B) state.Store {
		f, err := filestore.Open(filestore.Options{Path: filepath.Join(b.TempDir(), "sessions.db")})
		if err != nil {
			b.Fatal(err)
		}
		return f
	}},
	{"redis", openRedis},
}

// newBenchSession returns the i-th benchmark session as the OAM create API
// makes it: sealed id, user, login, id store, authenticated.
func newBenchSession(i int, now time.Time) *state.Session {
	s := state.NewSession(bench.SessionID(i), benchSealer, now, 8*time.Hour, 30*time.Minute)
	s.UserID = bench.UserID(i)
	s.LoginName = s.UserID
	s.IDStoreName = "UserIdentityStore1"
	if err := s.SetStatus(state.StatusAuthenticated, now, "", 0); err != nil {
		panic(err)
	}
	return s
}

// fillMemory returns a memory store holding benchmark sessions 0..n-1.
func fillMemory(n int) *state.Memory {
	st := state.NewMemory(state.MemoryOptions{CleanupInterval: time.Hour})
	now := time.Now().UTC().Truncate(time.Second)
	for i := range n {
		if err := st.Create(context.Background(), newBenchSession(i, now)); err != nil {
			panic(fmt.Sprintf("creating session %d: %v", i, err))
		}
	}
	// The filling's garbage is collected now, not in the middle of the
	// benchmark that asked for the store.
	runtime.GC()
	return st
}

// fillStore creates benchmark sessions 0..n-1 in st from 50 goroutines at
// once (concurrent creations share the file store's commits).
func fillStore(b *testing.B, st state.Store, n int) {
	now := time.Now().UTC().Truncate(time.Second)
	var wg sync.WaitGroup
	for w := range 50 {
		wg.Go(func() {
			for i := w; i < n; i += 50 {
				if err := st.Create(b.Context(), newBenchSession(i, now)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// filled caches one store per size, so that the sub-benchmarks (and their
// repeated runs with growing b.N) do not each rebuild a million sessions.
var (
	filledMu sync.Mutex
	filled   = map[int]*state.Memory{}
)

func filledMemory(n int) *state.Memory {
	filledMu.Lock()
	defer filledMu.Unlock()
	if st, ok := filled[n]; ok {
		return st
	}
	st := fillMemory(n)
	filled[n] = st
	return st
}

// discardWriter is a ResponseWriter that keeps only the status, so that
// answers written in a loop do not accumulate.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}

func (d *discardWriter) Write(b []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	return len(b), nil
}

func (d *discardWriter) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}

func (d *discardWriter) reset() {
	clear(d.h)
	d.code = 0
}

func sizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// cpuClock measures the CPU time this process spends (user + system, all
// threads, so the garbage collector's work counts too). On a machine shared
// with other jobs, CPU time per operation is steadier than wall time, which
// also counts the time the benchmark waited for a core.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{processCPU()} }

// report adds the "cpu-ns/op" metric. Call it after the b.Loop loop.
func (c cpuClock) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
