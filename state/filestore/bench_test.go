package filestore

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authsession/caddy-authsession/state"
)

// The benchmarks compare the memory and file stores on the operations that
// matter: creations (write-through with group commit vs memory), the gate's
// Get (both from memory), and opening a file with many sessions. Run them
// with, e.g.:
//
//	go test -run '^$' -bench 'Create|Get|Open' -benchtime 2s ./state/filestore/
//	go test -run '^$' -bench 'FileOpen' -benchtime 1x ./state/filestore/ -authsession.large
var benchLarge = flag.Bool("authsession.large", false, "also open a file store holding 1M sessions in BenchmarkFileOpen")

// benchWriters is how many goroutines per CPU the creation benchmarks run:
// many concurrent writers, as under a load of logins.
const benchWriters = 32

var benchSealer, _ = state.NewSealer(make([]byte, state.SealKeySize))

var benchUser atomic.Uint64

// benchSession returns a session shaped like a logged-in user's.
func benchSession(now time.Time) *state.Session {
	s := state.NewSession(state.NewID(), benchSealer, now, 8*time.Hour, 30*time.Minute)
	n := benchUser.Add(1)
	s.UserID = fmt.Sprintf("user%07d", n%100000)
	s.LoginName = s.UserID + "@example.com"
	s.GroupName = "staff"
	s.ClientIP = "192.0.2.10"
	s.UserAttributes = map[string]string{"mail": s.LoginName, "dept": "sales"}
	s.Status = state.StatusAuthenticated
	s.AuthTime = now
	s.Factors = []string{"password"}
	return s
}

func benchCreate(b *testing.B, st state.Store, parallelism int) {
	ctx := context.Background()
	now := time.Now()
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := st.Create(ctx, benchSession(now)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

func openBenchFile(b *testing.B) *Store {
	b.Helper()
	f, err := Open(Options{Path: filepath.Join(b.TempDir(), "s.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return f
}

// BenchmarkMemoryCreate measures creations in the memory store, from many
// concurrent writers.
func BenchmarkMemoryCreate(b *testing.B) {
	m := state.NewMemory(state.MemoryOptions{})
	defer m.Close()
	benchCreate(b, m, benchWriters)
}

// BenchmarkFileCreate measures durable creations (fsynced, group committed)
// from many concurrent writers.
func BenchmarkFileCreate(b *testing.B) {
	benchCreate(b, openBenchFile(b), benchWriters)
}

// BenchmarkFileCreateSerial measures durable creations from one writer at a
// time: one commit (and fsync) each.
func BenchmarkFileCreateSerial(b *testing.B) {
	f := openBenchFile(b)
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Create(ctx, benchSession(now)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

func benchGet(b *testing.B, st state.Store) {
	ctx := context.Background()
	now := time.Now()
	keys := make([]state.Key, 10000)
	var wg sync.WaitGroup
	for w := range 100 { // concurrent creations share commits
		wg.Go(func() {
			for i := w; i < len(keys); i += 100 {
				s := benchSession(now)
				if err := st.Create(ctx, s); err != nil {
					b.Error(err)
					return
				}
				keys[i] = s.Key
			}
		})
	}
	wg.Wait()
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			s, err := st.Get(ctx, keys[i%len(keys)])
			if err != nil || !s.Authenticated(now) {
				b.Error("gate lookup failed:", err)
				return
			}
		}
	})
}

// BenchmarkMemoryGet measures the gate's lookup in the memory store.
func BenchmarkMemoryGet(b *testing.B) {
	m := state.NewMemory(state.MemoryOptions{})
	defer m.Close()
	benchGet(b, m)
}

// BenchmarkFileGet measures the gate's lookup in the file store; it reads
// memory only, so it should match BenchmarkMemoryGet.
func BenchmarkFileGet(b *testing.B) {
	benchGet(b, openBenchFile(b))
}

// BenchmarkFileOpen measures opening a file store that holds 100k (and,
// with -authsession.large, 1M) live sessions. ns/op is the time until the
// store serves (Open returned); ms-loaded the time until every session
// is in memory (the background load, when there is one, has finished), and
// MiB-heap the heap the loaded sessions take.
func BenchmarkFileOpen(b *testing.B) {
	sizes := []int{100_000}
	if *benchLarge {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "s.db")
			seedFile(b, path, n)
			var before, after runtime.MemStats
			var loaded time.Duration
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()
				start := time.Now()
				f, err := Open(Options{Path: path})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				<-f.loaded
				loaded += time.Since(start)
				if f.Len() != n {
					b.Fatalf("loaded %d sessions, want %d", f.Len(), n)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				_ = f.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(loaded.Milliseconds())/float64(b.N), "ms-loaded")
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-heap")
		})
	}
}

// seedFile writes n live sessions to a new file store at path, directly
// through bbolt in large transactions (much faster than n Creates).
func seedFile(b *testing.B, path string, n int) {
	b.Helper()
	f, err := Open(Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	const perTx = 50_000
	type kv struct{ k, v []byte }
	for done := 0; done < n; done += perTx {
		batch := make([]kv, 0, perTx)
		for range min(perTx, n-done) {
			s := benchSession(now)
			s.Version = 1
			rec, err := f.codec.encode(bucketSessions, s.Key[:], s.Deadline(), s)
			if err != nil {
				b.Fatal(err)
			}
			batch = append(batch, kv{s.Key[:], rec})
		}
		slices.SortFunc(batch, func(x, y kv) int { return slices.Compare(x.k, y.k) })
		if err := f.db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucketSessions)
			for _, e := range batch {
				if err := bk.Put(e.k, e.v); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}
