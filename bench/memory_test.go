package bench_test

import (
	"flag"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/authsession/caddy-authsession/state"
)

var sessionCounts = flag.String("sessions", "", "comma-separated live-session counts for TestMemoryPerSession, e.g. 100000,1000000 (empty: skip)")

// TestMemoryPerSession fills a memory store with n authenticated sessions
// as the OAM API makes them (one per user, sealed id, login, id store) and
// reports the Go heap and the process RSS per session. It reports and does
// not assert: run it with -v -sessions 100000,1000000 (make bench-go).
func TestMemoryPerSession(t *testing.T) {
	if *sessionCounts == "" {
		t.Skip("set -sessions 100000,1000000 to measure memory per live session")
	}
	t.Logf("sizeof(state.Session) = %d bytes", unsafe.Sizeof(state.Session{}))
	for f := range strings.SplitSeq(*sessionCounts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("-sessions: bad count %q", f)
		}
		heap0, rss0 := settle()
		st := fillMemory(n)
		heap1, rss1 := settle()
		if st.Len() != n {
			t.Fatalf("store holds %d sessions, want %d", st.Len(), n)
		}
		t.Logf("%s sessions: Go heap +%.0f MiB = %.0f bytes/session; RSS +%.0f MiB = %.0f bytes/session (RSS after a forced GC and scavenge)",
			sizeName(n), mib(heap1-heap0), float64(heap1-heap0)/float64(n), mib(rss1-rss0), float64(rss1-rss0)/float64(n))
		runtime.KeepAlive(st)
		st.Close()
	}
}

// settle collects garbage, returns freed memory to the OS and reports the
// live heap and the process RSS, in bytes.
func settle() (heap, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), vmRSS()
}

func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
