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
		wg.Add(1)
		go func() { defer wg.Done(); c.Advance(time.Second); _ = c.Now() }()
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
