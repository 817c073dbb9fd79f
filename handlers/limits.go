package handlers

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// AttemptLimiter counts attempts per key (a username, a client address)
// in a sliding window. Reserve counts an attempt on every key in one step
// with the check, unless one of them has reached the limit (then it counts
// nothing and reports when the last of them may try again); release takes
// the attempt back (it succeeded).
//
// Blocked reports whether one of keys is refused at now as far as this
// process knows, without a round trip to a shared store and without
// counting: for a request that needs no check (a pair or token verified
// before) but must not pass while its address is refused.
type AttemptLimiter interface {
	Reserve(ctx context.Context, now time.Time, keys ...string) (release func(), until time.Time, blocked bool)
	Blocked(now time.Time, keys ...string) (until time.Time, blocked bool)
}

// AddressKey is what a limiter counts a client address under: an IPv4
// address as it is (an IPv4-mapped IPv6 one unmapped), an IPv6 address by
// its /64, the block a single subscriber or host is usually given (so that
// a client cannot step past a per-address limit by taking each attempt
// from another of its 2^64 addresses). Anything else is its own key.
func AddressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// MemoryLimiter is an AttemptLimiter in this process's memory.
type MemoryLimiter struct {
	Max    int
	Window time.Duration
	// MaxKeys bounds the keys kept (default maxLimiterKeys); see Reserve.
	MaxKeys int

	mu   sync.Mutex
	hits map[string][]time.Time
	// swept is when a full table was last swept: at most once a second.
	swept time.Time
}

// maxLimiterKeys is the default bound of the keys a MemoryLimiter keeps;
// beyond it, keys with nothing in the window are swept, and if there is
// still no room, an attempt on a key not tracked yet is refused.
const maxLimiterKeys = 100000

// Reserve implements AttemptLimiter.
func (l *MemoryLimiter) Reserve(_ context.Context, now time.Time, keys ...string) (func(), time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hits == nil {
		l.hits = map[string][]time.Time{}
	}
	until, untracked := l.atLimit(now, keys)
	// No room for the keys not tracked yet: the attempt is refused for the
	// window rather than let through uncounted, so that a flood of fresh
	// keys (usernames, addresses) cannot switch the limit off.
	if untracked > 0 && l.full(now, untracked) {
		if u := now.Add(l.Window); u.After(until) {
			until = u
		}
	}
	if !until.IsZero() {
		return func() {}, until, true
	}
	for _, k := range keys {
		l.hits[k] = append(l.hits[k], now)
	}
	return func() { l.release(keys, now) }, time.Time{}, false
}

// Blocked implements AttemptLimiter.
func (l *MemoryLimiter) Blocked(now time.Time, keys ...string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, _ := l.atLimit(now, keys)
	return until, !until.IsZero()
}

// atLimit returns when the last of keys that have reached the limit at now
// may try again (zero: none has), and how many of keys have nothing in the
// window. l.mu must be held.
func (l *MemoryLimiter) atLimit(now time.Time, keys []string) (until time.Time, untracked int) {
	for _, k := range keys {
		ts := l.recent(k, now)
		if ts == nil {
			untracked++
		}
		if len(ts) >= l.Max {
			if u := ts[len(ts)-l.Max].Add(l.Window); u.After(until) {
				until = u
			}
		}
	}
	return until, untracked
}

// full reports whether the table has no room for n more keys, sweeping the
// keys with nothing in the window first (at most once a second). l.mu must
// be held.
func (l *MemoryLimiter) full(now time.Time, n int) bool {
	maxKeys := l.MaxKeys
	if maxKeys <= 0 {
		maxKeys = maxLimiterKeys
	}
	if len(l.hits)+n <= maxKeys {
		return false
	}
	if now.Sub(l.swept) >= time.Second || now.Before(l.swept) {
		l.swept = now
		for k := range l.hits {
			l.recent(k, now)
		}
	}
	return len(l.hits)+n > maxKeys
}

func (l *MemoryLimiter) release(keys []string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		ts := l.hits[k]
		for i, t := range slices.Backward(ts) {
			if t.Equal(at) {
				ts = append(ts[:i:i], ts[i+1:]...)
				break
			}
		}
		if len(ts) == 0 {
			delete(l.hits, k)
		} else {
			l.hits[k] = ts
		}
	}
}

// recent returns the hits of k inside the window, dropping older ones.
// l.mu must be held.
func (l *MemoryLimiter) recent(k string, now time.Time) []time.Time {
	ts := l.hits[k]
	cut := now.Add(-l.Window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	if i == len(ts) {
		delete(l.hits, k)
		return nil
	}
	if i > 0 {
		ts = append(ts[:0:0], ts[i:]...)
		l.hits[k] = ts
	}
	return ts
}

// bcryptSlots bounds the bcrypt comparisons running at once: half the
// processors, at least one, so that password checks (each a few
// milliseconds of CPU) never take every core from the gate.
var bcryptSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

// bcryptHook, when set (by tests), is called with the hash of every bcrypt
// comparison, inside its slot.
var bcryptHook func(hash []byte)

// bcryptCompare is bcrypt.CompareHashAndPassword on the bounded pool. A
// request given up while waiting for a slot fails.
func bcryptCompare(ctx context.Context, hash []byte, pass string) error {
	select {
	case bcryptSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-bcryptSlots }()
	if h := bcryptHook; h != nil {
		h(hash)
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(pass))
}
