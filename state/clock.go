package state

import (
	"sync/atomic"
	"time"
)

// Now returns the current time as time.Now does, at the cost of one read
// of the monotonic clock instead of two clock reads (wall and monotonic):
// the wall time is that of the last full reading plus the monotonic time
// elapsed since. A full reading is taken again once clockResync has passed
// on the monotonic clock, so a step of the wall clock (settimeofday, a
// resumed virtual machine) shows within that time; gradual corrections
// (NTP slewing) apply to both clocks alike. The gate reads the time on
// every request; on this project's test machine time.Now costs ~66 ns
// and Now ~40.
func Now() time.Time {
	if b := clockBase.Load(); b != nil {
		if d := time.Since(*b); d >= 0 && d < clockResync {
			return b.Add(d)
		}
	}
	t := time.Now()
	clockBase.Store(&t)
	return t
}

// clockResync bounds how long Now may lag behind a step of the wall clock.
const clockResync = 100 * time.Millisecond

// clockBase is Now's last full reading (wall and monotonic).
var clockBase atomic.Pointer[time.Time]

// Elapsed reports whether now is at or after then + d, as
// !now.Before(then.Add(d)) does, for any d and for times within a few
// hundred billion years of each other (beyond, both wrap). It compares
// seconds and nanoseconds instead of building then + d: Time.Add keeps a
// monotonic reading and checks for overflow, which costs more than the
// gate's other tests together, and the gate makes two of these per
// request (the idle timeout, the touch interval).
func Elapsed(now, then time.Time, d time.Duration) bool {
	sec := now.Unix() - then.Unix()
	nsec := int64(now.Nanosecond()) - int64(then.Nanosecond())
	if nsec < 0 {
		sec, nsec = sec-1, nsec+int64(time.Second)
	}
	dsec, dnsec := int64(d/time.Second), int64(d%time.Second)
	if dnsec < 0 {
		dsec, dnsec = dsec-1, dnsec+int64(time.Second)
	}
	return sec > dsec || sec == dsec && nsec >= dnsec
}
