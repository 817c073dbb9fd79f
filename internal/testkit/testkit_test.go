package testkit

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestClockMovesOnlyWhenAdvanced(t *testing.T) {
	c := NewClock(Start)
	if !c.Now().Equal(Start) {
		t.Fatalf("Now %v, want %v", c.Now(), Start)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { ; c.Advance(time.Second); _ = c.Now() })
	}
	wg.Wait()
	if got := c.Now().Sub(Start); got != 8*time.Second {
		t.Fatalf("advanced by %v, want 8s", got)
	}
}

func TestFreePortCanBeListenedOn(t *testing.T) {
	p := FreePort()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	l.Close()
}

func TestWaitFor(t *testing.T) {
	n := 0
	took, ok := WaitFor(10*time.Second, func() bool { n++; return n == 5 })
	if !ok || n != 5 {
		t.Fatalf("WaitFor = %v, %v after %d calls; want true after 5", took, ok, n)
	}
	took, ok = WaitFor(20*time.Millisecond, func() bool { return false })
	if ok || took < 20*time.Millisecond {
		t.Fatalf("WaitFor of a condition that never holds = %v, %v", took, ok)
	}
}
