package state

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestElapsedIsNotBeforeAdd compares Elapsed with the expression it stands
// for, on the boundaries (then + d exactly, a nanosecond either side, a
// borrow across the second) and on random times: with and without
// monotonic readings, in other zones, d negative, zero and positive.
func TestElapsedIsNotBeforeAdd(t *testing.T) {
	want := func(now, then time.Time, d time.Duration) bool { return !now.Before(then.Add(d)) }
	base := time.Date(2026, 12, 2, 3, 4, 5, 999_999_999, time.UTC)
	zone := time.FixedZone("x", -7*3600)
	check := func(now, then time.Time, d time.Duration) {
		t.Helper()
		if got, w := Elapsed(now, then, d), want(now, then, d); got != w {
			t.Fatalf("Elapsed(%v, %v, %v) = %v, want %v", now, then, d, got, w)
		}
	}
	for _, d := range []time.Duration{0, 1, -1, time.Second, -time.Second, time.Second - 1, time.Minute + 1, -time.Minute - 1, 30 * time.Minute, 100 * 365 * 24 * time.Hour} {
		for _, delta := range []time.Duration{-time.Second, -2, -1, 0, 1, 2, time.Second} {
			now := base.Add(d + delta)
			check(now, base, d)
			check(now.In(zone), base, d)
			check(now, base.In(zone), d)
		}
	}
	mono := time.Now() // with a monotonic reading
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		then := base.Add(time.Duration(rng.Int64N(int64(200 * 24 * time.Hour))))
		d := time.Duration(rng.Int64N(int64(48*time.Hour))) - 24*time.Hour
		if rng.IntN(4) == 0 {
			d = time.Duration(rng.Int64N(4*int64(time.Second))) - 2*time.Second
		}
		now := then.Add(d + time.Duration(rng.Int64N(4*int64(time.Second))-2*int64(time.Second)))
		if rng.IntN(8) == 0 {
			now = then.Add(d)
		}
		check(now, then, d)
		m := mono.Add(now.Sub(mono)) // now with a monotonic reading
		check(m, then, d)
		check(now, mono.Add(then.Sub(mono)), d)
	}
	if !Elapsed(base, time.Time{}, time.Hour) || Elapsed(time.Time{}, base, 0) {
		t.Fatal("Elapsed is wrong about the zero time")
	}
}
