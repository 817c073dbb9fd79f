package portal

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// A full limiter fails closed: a key it cannot track is refused, so a
// flood of fresh keys cannot switch the limit off (issue #14, finding 9).
func TestFailureLimiterFullFailsClosed(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := &FailureLimiter{Max: 2, Window: time.Minute, MaxKeys: 100}
	for i := range 100 {
		l.Fail(ctx, now, "ip:flood-"+strconv.Itoa(i))
	}
	// The attacker's real target arrives once the table is full.
	for range 5 {
		if _, blocked := l.Blocked(ctx, now, "user:victim"); !blocked {
			l.Fail(ctx, now, "user:victim")
			continue
		}
		break
	}
	until, blocked := l.Blocked(ctx, now, "user:victim")
	if !blocked {
		t.Fatal("a full limiter let an untracked key try without counting")
	}
	if !until.After(now) {
		t.Errorf("until %v is not after now", until)
	}
	// A tracked key is still counted as before: under its limit it passes.
	if _, blocked := l.Blocked(ctx, now, "ip:flood-7"); blocked {
		t.Error("a tracked key under its limit is refused")
	}
	// Once the flood leaves the window, room is made and new keys pass.
	later := now.Add(time.Minute + time.Second)
	if _, blocked := l.Blocked(ctx, later, "user:victim"); blocked {
		t.Error("still refused after the flood left the window")
	}
}

// TestFailureLimiterReserveFullFailsClosed: Reserve, which the sign-in and
// the code checks use, fails closed as Blocked does: with the table full
// of a flood's keys, an attempt on a key it cannot count is refused; it
// used to pass uncounted, every time.
func TestFailureLimiterReserveFullFailsClosed(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := &FailureLimiter{Max: 2, Window: time.Minute, MaxKeys: 100}
	for i := range 100 {
		if _, _, blocked := l.Reserve(ctx, now, "ip:flood-"+strconv.Itoa(i)); blocked {
			t.Fatalf("flood key %d refused before the table was full", i)
		}
	}
	passed := 0
	for range 10 {
		if _, _, blocked := l.Reserve(ctx, now, "ip:flood-3", "user:victim"); !blocked {
			passed++
		}
	}
	if passed != 0 {
		t.Fatalf("%d attempts on an untracked key passed a full limiter", passed)
	}
	if _, until, blocked := l.Reserve(ctx, now, "user:victim"); !blocked || !until.After(now) {
		t.Fatalf("refusal until %v, %v", until, blocked)
	}
	// A tracked key alone is counted as before.
	if _, _, blocked := l.Reserve(ctx, now, "ip:flood-7"); blocked {
		t.Fatal("a tracked key under its limit is refused")
	}
	// Once the flood leaves the window the victim is counted again, up to
	// its limit.
	later := now.Add(time.Minute + time.Second)
	for i := range 3 {
		_, _, blocked := l.Reserve(ctx, later, "user:victim")
		if blocked != (i == 2) {
			t.Fatalf("attempt %d after the flood: blocked %v", i+1, blocked)
		}
	}
}
