// Package testkit holds what the tests of several packages share: a clock
// moved by hand, free loopback ports, a poll for conditions that come true
// asynchronously and the tally of a limit's answers. Only tests import it.
package testkit

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Start is the instant every injected clock starts at unless told
// otherwise.
var Start = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// Clock is an injected clock that tests move by hand. It is safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until moved.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// FreePort returns a TCP port on 127.0.0.1 with nothing listening on it
// right now. It panics if the system has none to give.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("testkit: finding a free port: %v", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond until it holds or timeout has passed, and returns how
// long it waited and whether cond held. It polls every millisecond at
// first, then less often (at most every 50ms), so a cond that runs a
// process or a network round trip does not load the machine. Tests wait
// with it on a condition rather than sleep a fixed time; their timeouts
// are generous (see the callers) since a loaded machine can be slow.
func WaitFor(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	pause := time.Millisecond
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// CountChecked returns how many of the statuses of wrong answers sent to a
// limit say the answer was checked (401); every other must be a refusal
// before any check (429).
func CountChecked(t testing.TB, codes []int) int {
	t.Helper()
	checked := 0
	for _, c := range codes {
		switch c {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("status %d, want 401 or 429", c)
		}
	}
	return checked
}
