package redisstore

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authsession/caddy-authsession/state"
)

// The Lua scripts below each touch a single key (so they run unchanged on
// Redis Cluster) and publish the invalidation themselves, so a write and its
// announcement are one atomic step. Every write stores a random token in "w":
// when go-redis replays a script whose reply was lost, the script sees its
// own token and reports success instead of a conflict.

// liveLua computes, from the hash fields of a session, whether it is live
// at ARGV now_ms, and its remaining TTL in ms (at least 1).
//
//nolint:dupword // Lua closes nested blocks with "end" twice; dropping one breaks the script
const liveLua = `
local function deadline(at, et, idle)
  local d = tonumber(et)
  local i = tonumber(idle or '0')
  if i > 0 and at then
    local a = tonumber(string.sub(at, 1, 13)) + i
    if a < d then d = a end
  end
  return d
end
local function ttl(d, now)
  local t = d - now
  if t < 1 then t = 1 end
  return t
end
`

// createScript: KEYS[1] session; ARGV d, at, et, idle, now_ms, token,
// channel, message. Returns 1 if written, 0 if a live session exists.
//
//nolint:dupword // Lua closes nested blocks with "end" twice; dropping one breaks the script
var createScript = redis.NewScript(liveLua + `
local f = redis.call('HMGET', KEYS[1], 'at', 'et', 'idle', 'w')
if f[2] then
  if f[4] == ARGV[6] then return 1 end
  if tonumber(ARGV[5]) < deadline(f[1], f[2], f[3]) then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'v', '1', 'at', ARGV[2], 'et', ARGV[3], 'idle', ARGV[4], 'w', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ttl(deadline(ARGV[2], ARGV[3], ARGV[4]), tonumber(ARGV[5])))
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1
`)

// updateScript: KEYS[1] session; ARGV expected version, d, at, et, idle,
// now_ms, token, channel, message. Returns 1 if written, 0 on a version
// conflict or a missing key. A later "at" already stored (a touch) is kept.
var updateScript = redis.NewScript(liveLua + `
local f = redis.call('HMGET', KEYS[1], 'v', 'at', 'w')
if f[3] and f[3] == ARGV[7] then return 1 end
if f[1] ~= ARGV[1] then return 0 end
local at = ARGV[3]
if f[2] and f[2] > at then at = f[2] end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', tostring(tonumber(ARGV[1]) + 1), 'at', at, 'et', ARGV[4], 'idle', ARGV[5], 'w', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ttl(deadline(at, ARGV[4], ARGV[5]), tonumber(ARGV[6])))
redis.call('PUBLISH', ARGV[8], ARGV[9])
return 1
`)

// deleteScript: KEYS[1] session; ARGV channel, message. Returns d, v, at of
// the removed record, or an empty list if there was none.
var deleteScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'd', 'v', 'at')
if not f[1] then return {} end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return f
`)

// touchLua: KEYS[1] session; ARGV at, now_ms. Moves "at" forward and
// extends the TTL; never creates a key. Touches are not announced: other
// instances re-read a cached session that looks idle before refusing it.
// flushTouches sends it with EVAL, many to a pipeline.
const touchLua = liveLua + `
local f = redis.call('HMGET', KEYS[1], 'at', 'et', 'idle')
if not f[2] then return 0 end
if f[1] and f[1] >= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl(deadline(ARGV[1], f[2], f[3]), tonumber(ARGV[2])))
return 1
`

// indexScript: KEYS[1] user index set; ARGV member, ttl_ms. Adds the member
// and makes the set live at least ttl_ms.
var indexScript = redis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
local t = redis.call('PTTL', KEYS[1])
if t >= 0 and t < tonumber(ARGV[2]) or t == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// userScript: KEYS[1] user state; ARGV expected version ("" for none), d,
// token. Returns 1 if written, 0 on a conflict. User state has no TTL.
var userScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'v', 'w')
if f[2] and f[2] == ARGV[3] then return 1 end
if (f[1] or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', tostring(tonumber(ARGV[1] ~= '' and ARGV[1] or '0') + 1), 'w', ARGV[3])
return 1
`)

// stamp is a time as 19 zero-padded decimal digits of Unix nanoseconds, so
// that Lua can compare stamps as strings (its numbers are doubles) and read
// milliseconds from the first 13 digits. Times before 1970 stamp as zero.
func stamp(t time.Time) string {
	n := t.UnixNano()
	if t.Before(time.Unix(0, 0)) {
		n = 0
	}
	return fmt.Sprintf("%019d", n)
}

func unstamp(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n).UTC(), true
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// sessionArgs returns the at, et and idle fields of s.
func sessionArgs(s *state.Session) (at, et, idle string) {
	return stamp(s.LastAccessTime), millis(s.ExpiryTime),
		strconv.FormatInt(s.IdleTimeout.Milliseconds(), 10)
}

// decodeSession rebuilds a session from the hash fields d, v and at (any
// may be nil when absent). ok is false if the record does not exist.
func decodeSession(key state.Key, d, v, at any) (s *state.Session, ok bool, err error) {
	ds, isStr := d.(string)
	if !isStr {
		return nil, false, nil
	}
	s = new(state.Session)
	if err := json.Unmarshal([]byte(ds), s); err != nil {
		return nil, false, fmt.Errorf("redis store: decoding session %s: %w", key.Short(), err)
	}
	if vs, isStr := v.(string); isStr {
		if n, err := strconv.ParseUint(vs, 10, 64); err == nil {
			s.Version = n
		}
	}
	if as, isStr := at.(string); isStr {
		if t, ok := unstamp(as); ok && t.After(s.LastAccessTime) {
			s.LastAccessTime = t
		}
	}
	s.Key = key
	return s, true, nil
}

// randomToken returns 16 hex characters from crypto/rand.
func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
