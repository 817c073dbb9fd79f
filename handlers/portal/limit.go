package portal

import (
	"context"
	"slices"
	"sync"
	"time"
)

// FailureCounter counts failed sign-in attempts per key (a client IP, a
// login). FailureLimiter counts in memory; a shared store can count for
// every instance (see caddymodule).
type FailureCounter interface {
	// Blocked reports whether any of keys has reached the limit at now
	// and, if so, when the last of them may try again.
	Blocked(ctx context.Context, now time.Time, keys ...string) (time.Time, bool)
	// Fail records a failure of each of keys at now.
	Fail(ctx context.Context, now time.Time, keys ...string)
	// Reserve counts an attempt of each of keys at now before it is
	// checked, unless one of them has already reached the limit: then it
	// counts nothing and reports when the last of them may try again. The
	// check and the count are one step, so N parallel attempts check at
	// most the limit. A failed attempt keeps its reservation (it is the
	// failure); a successful one gives it back with Release.
	Reserve(ctx context.Context, now time.Time, keys ...string) (Reservation, time.Time, bool)
	// Release takes back a reservation (the attempt succeeded, or was not
	// checked at all).
	Release(ctx context.Context, res Reservation)
	// Reset forgets the failures of key.
	Reset(ctx context.Context, key string)
}

// Reservation is an attempt counted by FailureCounter.Reserve.
type Reservation struct {
	// Keys are the keys the attempt was counted on.
	Keys []string
	// At is the time it was counted at.
	At time.Time
	// Member names the attempt in a shared count (see caddymodule).
	Member string
}

// FailureLimiter counts failed sign-in attempts per key (a client IP, a
// login) in a sliding window, in memory. A key that has reached Max
// failures within Window is refused until its oldest counted failure leaves
// the window. It is safe for concurrent use.
type FailureLimiter struct {
	// Max is the number of failures allowed per window. Default: 10.
	Max int
	// Window is the length of the sliding window. Default: 5m.
	Window time.Duration
	// MaxKeys bounds the keys kept; beyond it stale keys are swept and, if
	// still full, the limiter fails closed: a key it does not track yet is
	// reported blocked (429) until room is made. Default: 100000.
	MaxKeys int

	mu   sync.Mutex
	fail map[string][]time.Time
	// swept is when a full table was last swept: at most once a second.
	swept time.Time
}

// Failure limiter defaults.
const (
	DefaultFailureMax    = 10
	DefaultFailureWindow = 5 * time.Minute
)

func (l *FailureLimiter) defaults() (int, time.Duration, int) {
	m, w, k := l.Max, l.Window, l.MaxKeys
	if m <= 0 {
		m = DefaultFailureMax
	}
	if w <= 0 {
		w = DefaultFailureWindow
	}
	if k <= 0 {
		k = 100000
	}
	return m, w, k
}

// recent returns the failures of key still inside the window at now,
// forgetting older ones. l.mu must be held.
func (l *FailureLimiter) recent(key string, now time.Time, window time.Duration) []time.Time {
	ts := l.fail[key]
	cut := now.Add(-window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	if i == len(ts) {
		delete(l.fail, key)
		return nil
	}
	if i > 0 {
		ts = append(ts[:0:0], ts[i:]...)
		l.fail[key] = ts
	}
	return ts
}

// Blocked reports whether any of keys has reached the limit at now and, if
// so, the time at which the last of them may try again.
//
// With the table full (MaxKeys live keys), a key not tracked yet could not
// be counted: it is reported blocked for the window, so a flood of fresh
// keys cannot switch the limit off.
func (l *FailureLimiter) Blocked(_ context.Context, now time.Time, keys ...string) (time.Time, bool) {
	max, window, maxKeys := l.defaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	var until time.Time
	for _, k := range keys {
		if _, tracked := l.fail[k]; !tracked && l.full(now, window, maxKeys) {
			until = now.Add(window)
			continue
		}
		ts := l.recent(k, now, window)
		if len(ts) >= max {
			if u := ts[len(ts)-max].Add(window); u.After(until) {
				until = u
			}
		}
	}
	return until, !until.IsZero()
}

// Fail records a failure for each of keys at now.
func (l *FailureLimiter) Fail(_ context.Context, now time.Time, keys ...string) {
	max, window, maxKeys := l.defaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail == nil {
		l.fail = map[string][]time.Time{}
	}
	for _, k := range keys {
		ts := l.recent(k, now, window)
		if ts == nil && l.full(now, window, maxKeys) {
			continue // Blocked refuses untracked keys meanwhile
		}
		if len(ts) >= 2*max {
			ts = ts[1:] // the count only needs the last max entries
		}
		l.fail[k] = append(ts, now)
	}
}

// Reserve implements FailureCounter: under one lock it checks every key and,
// if none has reached the limit, counts the attempt on each.
func (l *FailureLimiter) Reserve(_ context.Context, now time.Time, keys ...string) (Reservation, time.Time, bool) {
	max, window, maxKeys := l.defaults()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail == nil {
		l.fail = map[string][]time.Time{}
	}
	var until time.Time
	untracked := 0
	for _, k := range keys {
		ts := l.recent(k, now, window)
		if ts == nil {
			untracked++
		}
		if len(ts) >= max {
			if u := ts[len(ts)-max].Add(window); u.After(until) {
				until = u
			}
		}
	}
	// As Blocked: with no room for the keys not tracked yet, the attempt
	// is refused rather than let through uncounted, so a flood of fresh
	// keys cannot switch the limit off.
	if untracked > 0 && l.full(now, window, maxKeys-untracked+1) {
		if u := now.Add(window); u.After(until) {
			until = u
		}
	}
	if !until.IsZero() {
		return Reservation{}, until, true
	}
	for _, k := range keys {
		l.fail[k] = append(l.fail[k], now)
	}
	return Reservation{Keys: keys, At: now}, time.Time{}, false
}

// Release implements FailureCounter: it drops one attempt counted at res.At
// from each key of res.
func (l *FailureLimiter) Release(_ context.Context, res Reservation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range res.Keys {
		ts := l.fail[k]
		for i, t := range slices.Backward(ts) {
			if t.Equal(res.At) {
				ts = append(ts[:i:i], ts[i+1:]...)
				break
			}
		}
		if len(ts) == 0 {
			delete(l.fail, k)
		} else {
			l.fail[k] = ts
		}
	}
}

// Reset forgets the failures of key (after a successful sign-in).
func (l *FailureLimiter) Reset(_ context.Context, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fail, key)
}

// full reports whether the table holds maxKeys live keys, sweeping stale
// ones first (at most once a second). l.mu must be held.
func (l *FailureLimiter) full(now time.Time, window time.Duration, maxKeys int) bool {
	if len(l.fail) < maxKeys {
		return false
	}
	if now.Sub(l.swept) >= time.Second || now.Before(l.swept) {
		l.swept = now
		l.sweep(now, window)
	}
	return len(l.fail) >= maxKeys
}

// sweep forgets every key with no failure inside the window. l.mu must be
// held.
func (l *FailureLimiter) sweep(now time.Time, window time.Duration) {
	for k := range l.fail {
		l.recent(k, now, window)
	}
}

var _ FailureCounter = (*FailureLimiter)(nil)
