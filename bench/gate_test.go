package bench_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/bench"
	"github.com/authsession/caddy-authsession/handlers"
)

// gateSizes are the live-session counts of the gate benchmarks.
var gateSizes = []int{1000, 1_000_000}

func newGate(n int, upstreamHeader bool) *handlers.Gate {
	g := &handlers.Gate{
		Store:         filledMemory(n),
		Now:           time.Now,
		Logger:        zap.NewNop(),
		CookieName:    "authsession",
		LoginURL:      "/auth/login",
		TouchInterval: time.Minute,
	}
	if upstreamHeader {
		g.SetHeaders = []handlers.HeaderField{{Name: "X-Auth-User", Field: "login"}}
	}
	return g
}

// hitRequests returns k requests carrying cookies of k different sessions
// spread over 0..n-1 (k = 1: always the same session).
func hitRequests(n, k int) []*http.Request {
	rs := make([]*http.Request, k)
	for j := range rs {
		r := httptest.NewRequest(http.MethodGet, "/app/page", nil)
		r.Header.Set("Accept", "text/html")
		r.Header.Set("Cookie", "theme=dark; authsession="+bench.SessionID(j*(n/k)))
		rs[j] = r
	}
	return rs
}

// BenchmarkGateHit is the gate's hit path (Check on a request with a valid
// cookie) at 1k and 1M live sessions: always the same session ("same"), a
// different one each time over 1024 spread across the store ("spread", which
// defeats the CPU caches as real traffic does), with the upstream header of
// the load benchmark set ("header"), and from all CPUs at once
// ("parallel").
func BenchmarkGateHit(b *testing.B) {
	for _, n := range gateSizes {
		name := "sessions=" + sizeName(n)
		b.Run(name+"/same", func(b *testing.B) { benchGate(b, newGate(n, false), hitRequests(n, 1)) })
		b.Run(name+"/spread", func(b *testing.B) { benchGate(b, newGate(n, false), hitRequests(n, 1024)) })
		b.Run(name+"/spread+header", func(b *testing.B) { benchGate(b, newGate(n, true), hitRequests(n, 1024)) })
		b.Run(name+"/spread+parallel", func(b *testing.B) {
			g, rs := newGate(n, false), hitRequests(n, 1024)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var w discardWriter
				for i := 0; pb.Next(); i++ {
					if _, o := g.Check(&w, rs[i%len(rs)]); o != handlers.Pass {
						b.Errorf("outcome %v, want pass", o)
						return
					}
				}
			})
		})
	}
}

func benchGate(b *testing.B, g *handlers.Gate, rs []*http.Request) {
	var w discardWriter
	b.ReportAllocs()
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		if _, o := g.Check(&w, rs[i%len(rs)]); o != handlers.Pass {
			b.Fatalf("outcome %v, want pass", o)
		}
	}
	cpu.report(b)
}

// BenchmarkGateMiss is the refusal of a request without a cookie (401 with
// its JSON body) and of a browser (302 to the login page), at 1M sessions.
func BenchmarkGateMiss(b *testing.B) {
	for _, tc := range []struct {
		name   string
		accept string
		want   handlers.Outcome
	}{
		{"api-401", "application/json", handlers.Unauthorized},
		{"browser-302", "text/html", handlers.Redirected},
	} {
		b.Run(tc.name, func(b *testing.B) {
			g := newGate(1_000_000, false)
			r := httptest.NewRequest(http.MethodGet, "/app/page?x=1", nil)
			r.Header.Set("Accept", tc.accept)
			var w discardWriter
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				w.reset()
				if _, o := g.Check(&w, r); o != tc.want {
					b.Fatalf("outcome %v, want %v", o, tc.want)
				}
			}
			cpu.report(b)
		})
	}
}
