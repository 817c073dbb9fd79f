package state

import (
	"strings"
	"testing"
	"time"
)

// TestNowFollowsTheClock checks that Now stays within a resync period of
// time.Now, never goes back, and keeps a monotonic reading (its Sub with
// time.Now does not jump with the wall clock).
func TestNowFollowsTheClock(t *testing.T) {
	prev := Now()
	deadline := time.Now().Add(3 * clockResync)
	for n := 0; time.Now().Before(deadline); n++ {
		before := time.Now()
		got := Now()
		after := time.Now()
		if got.Before(prev) {
			t.Fatalf("Now went back: %v after %v", got, prev)
		}
		// On the wall clock, got lies between before and after, give or
		// take a step of the wall clock since the last resync (none here).
		if w := got.Round(0); w.Before(before.Round(0).Add(-time.Millisecond)) || w.After(after.Round(0).Add(time.Millisecond)) {
			t.Fatalf("Now = %v, outside [%v, %v]", w, before.Round(0), after.Round(0))
		}
		if !strings.Contains(got.String(), " m=") { // String shows the monotonic reading
			t.Fatal("Now carries no monotonic reading")
		}
		prev = got
		if n%1000 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// TestNowResyncs checks that Now takes a full reading again rather than
// build on a base older than clockResync (as the base is once the wall
// clock was stepped, or the process slept) or on one without a monotonic
// reading.
func TestNowResyncs(t *testing.T) {
	for name, base := range map[string]time.Time{
		"an hour old":          time.Now().Add(-time.Hour),
		"no monotonic reading": time.Now().Round(0).Add(-time.Hour),
	} {
		clockBase.Store(&base)
		if got := Now(); time.Since(got) > time.Second || time.Until(got) > time.Second {
			t.Errorf("base %s: Now = %v", name, got)
		}
	}
}
