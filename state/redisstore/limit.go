package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// FailureWindow counts failures per key (a client IP, a login) in a sliding
// window kept in Redis, so that every instance sharing the store shares the
// counts and a restart forgets none. Each key is one sorted set of failure
// times that expires with the window; every script touches one key, so it
// runs unchanged on Redis Cluster.
type FailureWindow struct {
	r      *Store
	max    int
	window time.Duration
}

// FailureWindow returns the shared failure counter of the store: a key is
// refused once it has max failures within window.
func (r *Store) FailureWindow(max int, window time.Duration) *FailureWindow {
	return &FailureWindow{r: r, max: max, window: window}
}

func (f *FailureWindow) key(k string) string { return f.r.prefix + "f:" + k }

// failScript: KEYS[1] failures; ARGV now_ms, window_ms, member, keep.
// Forgets failures older than the window, adds this one, keeps at most
// `keep` of the newest and lets the set expire with the window.
var failScript = redis.NewScript(`
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
local keep = tonumber(ARGV[4])
if n > keep then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - keep - 1) end
redis.call('PEXPIRE', KEYS[1], window)
return n`)

// blockedScript: KEYS[1] failures; ARGV now_ms, window_ms, max. Returns
// the time (ms) of the failure that keeps the key refused, or -1.
var blockedScript = redis.NewScript(`
local now, window, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - window), '+inf', 'WITHSCORES')
local n = #live / 2
if n < max then return -1 end
return live[2 * (n - max) + 2]`)

// Fail records a failure of each key at now.
func (f *FailureWindow) Fail(ctx context.Context, now time.Time, keys ...string) error {
	ctx, cancel := f.r.opCtx(ctx)
	defer cancel()
	for _, k := range keys {
		var nonce [8]byte
		_, _ = rand.Read(nonce[:])
		member := strconv.FormatInt(now.UnixNano(), 10) + ":" + hex.EncodeToString(nonce[:])
		err := failScript.Run(ctx, f.r.client, []string{f.key(k)},
			now.UnixMilli(), f.window.Milliseconds(), member, 2*f.max).Err()
		if err != nil {
			return unavailable("recording a failure", err)
		}
	}
	return nil
}

// Blocked reports whether any key has max failures within the window at
// now and, if so, when the last of them may try again.
func (f *FailureWindow) Blocked(ctx context.Context, now time.Time, keys ...string) (time.Time, bool, error) {
	ctx, cancel := f.r.opCtx(ctx)
	defer cancel()
	var until time.Time
	for _, k := range keys {
		v, err := blockedScript.Run(ctx, f.r.client, []string{f.key(k)},
			now.UnixMilli(), f.window.Milliseconds(), f.max).Result()
		if err != nil {
			return time.Time{}, false, unavailable("reading failures", err)
		}
		var ms int64
		switch v := v.(type) {
		case int64:
			ms = v
		case string:
			ms, _ = strconv.ParseInt(v, 10, 64)
		}
		if ms < 0 {
			continue
		}
		if u := time.UnixMilli(ms).Add(f.window); u.After(until) {
			until = u
		}
	}
	return until, !until.IsZero(), nil
}

// Reset forgets the failures of key.
func (f *FailureWindow) Reset(ctx context.Context, key string) error {
	ctx, cancel := f.r.opCtx(ctx)
	defer cancel()
	if err := f.r.client.Del(ctx, f.key(key)).Err(); err != nil {
		return unavailable("forgetting failures", err)
	}
	return nil
}

// reserveScript: KEYS[1] failures; ARGV now_ms, window_ms, max, member.
// Forgets failures older than the window, then, in the same step, either
// refuses (returning the time, in ms, of the failure that keeps the key
// refused) or counts this attempt and returns -1. Parallel attempts on any
// instance therefore never count past max.
var reserveScript = redis.NewScript(`
local now, window, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= max then
  local e = redis.call('ZRANGE', KEYS[1], n - max, n - max, 'WITHSCORES')
  return e[2]
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return -1`)

// NewMember returns a unique name for an attempt counted at now.
func NewMember(now time.Time) string {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	return strconv.FormatInt(now.UnixNano(), 10) + ":" + hex.EncodeToString(nonce[:])
}

// Reserve counts an attempt named member on each key at now, unless a key
// has max failures within the window; the check and the count of each key
// are one script. When a key refuses, the attempt is taken back from the
// keys already counted, and Reserve reports when the key may try again.
// Each script touches one key, so this runs unchanged on Redis Cluster.
func (f *FailureWindow) Reserve(ctx context.Context, now time.Time, member string, keys ...string) (time.Time, bool, error) {
	ctx, cancel := f.r.opCtx(ctx)
	defer cancel()
	for i, k := range keys {
		v, err := reserveScript.Run(ctx, f.r.client, []string{f.key(k)},
			now.UnixMilli(), f.window.Milliseconds(), f.max, member).Result()
		if err != nil {
			_ = f.release(ctx, member, keys[:i]...)
			return time.Time{}, false, unavailable("reserving an attempt", err)
		}
		ms := scriptInt(v)
		if ms < 0 {
			continue
		}
		if err := f.release(ctx, member, keys[:i]...); err != nil {
			return time.Time{}, false, err
		}
		return time.UnixMilli(ms).Add(f.window), true, nil
	}
	return time.Time{}, false, nil
}

// Release takes back the attempt member counted on keys by Reserve.
func (f *FailureWindow) Release(ctx context.Context, member string, keys ...string) error {
	ctx, cancel := f.r.opCtx(ctx)
	defer cancel()
	return f.release(ctx, member, keys...)
}

func (f *FailureWindow) release(ctx context.Context, member string, keys ...string) error {
	for _, k := range keys {
		if err := f.r.client.ZRem(ctx, f.key(k), member).Err(); err != nil {
			return unavailable("releasing an attempt", err)
		}
	}
	return nil
}

// scriptInt reads an integer a script returned as a number or a string.
func scriptInt(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}
