// Package testkit holds what the tests of several packages share: a clock
// moved by hand and free loopback ports. Only tests import it.
package testkit

import (
	"fmt"
	"net"
	"sync"
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
