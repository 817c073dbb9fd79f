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
