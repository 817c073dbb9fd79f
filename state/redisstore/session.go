package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authsession/caddy-authsession/state"
)

// maxConflicts bounds the optimistic retries of one Update.
const maxConflicts = 1000

// Get implements state.Store. A live session in the near-cache is returned
// without a round trip while the store is in contact with Redis, and for at
// most MaxStaleness after contact was lost; otherwise Redis is asked, and a
// failure is state.ErrUnavailable, never state.ErrNotFound.
func (r *Store) Get(ctx context.Context, key state.Key) (*state.Session, error) {
	now := r.now()
	if e, ok := r.near.get(key); ok && e.s.Live(now) &&
		r.health.fresh(e.at, now, r.opts.MaxStaleness) {
		return e.s, nil
	}
	// Not cached, stale, or looking expired (it may have been touched on
	// another instance): ask Redis.
	s, err := r.load(ctx, key, true)
	if err != nil {
		return nil, err
	}
	if s == nil || !s.Live(r.now()) {
		return nil, state.ErrNotFound
	}
	return s, nil
}

// load reads a session from Redis; nil means there is none. If fill is set,
// a live result is put in the near-cache.
func (r *Store) load(ctx context.Context, key state.Key, fill bool) (*state.Session, error) {
	tok := r.near.token(key)
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	vals, err := r.client.HMGet(ctx, r.sessionKey(key), "d", "v", "at").Result()
	if err != nil {
		return nil, unavailable("reading session", err)
	}
	s, ok, err := decodeSession(key, vals[0], vals[1], vals[2])
	if err != nil || !ok {
		return nil, err
	}
	if now := r.now(); fill && s.Live(now) {
		r.near.fill(s, tok, now, s.Deadline().Sub(now))
	}
	return s, nil
}

// Create implements state.Store. The user index is written first, so a session
// is never in Redis without being findable by ByUser.
func (r *Store) Create(ctx context.Context, s *state.Session) error {
	c := s.Clone()
	c.Version = 1
	d, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("redis store: encoding session: %w", err)
	}
	now := r.now()
	at, et, idle := sessionArgs(c)
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	if err := r.index(ctx, c, now); err != nil {
		return err
	}
	tok := r.near.invalidate(c.Key)
	res, err := createScript.Run(ctx, r.client, []string{r.sessionKey(c.Key)},
		d, at, et, idle, now.UnixMilli(), randomToken(), r.channel, r.invalidation(c.Key)).Int()
	if err != nil {
		return unavailable("creating session", err)
	}
	if res == 0 {
		return state.ErrExists
	}
	// Index again now that the record exists: a ByUser that read the index
	// in between found no record and may have dropped the entry as stale
	// (ByUser re-checks before it lets go; this closes the other order).
	if err := r.index(ctx, c, now); err != nil {
		return err
	}
	s.Version = 1
	r.near.fill(c, tok, now, c.Deadline().Sub(now))
	return nil
}

// Update implements state.Store with a compare-and-set on the version: fn runs
// on the newest record (first the near-cached one, which costs no read if it is
// current) and is run again after a conflicting write elsewhere.
func (r *Store) Update(ctx context.Context, key state.Key, fn func(*state.Session) error) (*state.Session, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	var old *state.Session
	if e, ok := r.near.get(key); ok && e.s.Live(r.now()) {
		old = e.s
	}
	for range maxConflicts {
		now := r.now()
		if old == nil {
			s, err := r.load(ctx, key, false)
			if err != nil {
				return nil, err
			}
			if s == nil || !s.Live(now) {
				return nil, state.ErrNotFound
			}
			old = s
		}
		c := old.Clone()
		if err := fn(c); err != nil {
			return nil, err
		}
		c.Key = key
		c.Version = old.Version + 1
		if c.UserID != old.UserID {
			if err := r.index(ctx, c, now); err != nil {
				return nil, err
			}
		}
		d, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("redis store: encoding session: %w", err)
		}
		at, et, idle := sessionArgs(c)
		tok := r.near.invalidate(key)
		res, err := updateScript.Run(ctx, r.client, []string{r.sessionKey(key)},
			strconv.FormatUint(old.Version, 10), d, at, et, idle, now.UnixMilli(),
			randomToken(), r.channel, r.invalidation(key)).Int()
		if err != nil {
			return nil, unavailable("updating session", err)
		}
		if res == 1 {
			if c.UserID != old.UserID {
				r.unindex(ctx, old.UserID, key)
			}
			r.near.fill(c, tok, now, c.Deadline().Sub(now))
			return c, nil
		}
		old = nil // conflict or gone: read again
	}
	return nil, fmt.Errorf("redis store: updating session %s: too many conflicting writes", key.Short())
}

// Delete implements state.Store.
func (r *Store) Delete(ctx context.Context, key state.Key) (*state.Session, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	r.near.invalidate(key)
	vals, err := deleteScript.Run(ctx, r.client, []string{r.sessionKey(key)},
		r.channel, r.invalidation(key)).Slice()
	if err != nil {
		return nil, unavailable("deleting session", err)
	}
	if len(vals) < 3 {
		return nil, state.ErrNotFound
	}
	s, ok, err := decodeSession(key, vals[0], vals[1], vals[2])
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, state.ErrNotFound
	}
	r.unindex(ctx, s.UserID, key)
	if !s.Live(r.now()) {
		return nil, state.ErrNotFound
	}
	return s, nil
}

// ByUser implements state.Store. Index entries whose session has gone (expired
// or moved to another user) are removed as they are found.
func (r *Store) ByUser(ctx context.Context, userID string) ([]*state.Session, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	members, err := r.client.SMembers(ctx, r.indexKey(userID)).Result()
	if err != nil {
		return nil, unavailable("reading user index", err)
	}
	keys := make([]state.Key, 0, len(members))
	for _, m := range members {
		var k state.Key
		if _, err := hex.Decode(k[:], []byte(m)); err == nil && len(m) == 2*len(k) {
			keys = append(keys, k)
		}
	}
	all, err := r.fetchMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	now := r.now()
	out := make([]*state.Session, 0, len(all))
	var gone []any
	for i, s := range all {
		switch {
		case s == nil || s.UserID != userID:
			gone = append(gone, keys[i].String())
		case s.Live(now):
			out = append(out, s)
		}
	}
	if len(gone) > 0 {
		r.dropStale(ctx, userID, gone)
	}
	state.SortSessions(out)
	return out, nil
}

// dropStale removes index entries whose session was missing (or another
// user's) when ByUser read it. A session being created is indexed before
// its record is written, so an entry read in that moment looks stale: after
// the removal, every entry whose record exists by now for this user is put
// back. Create indexes once more after its write, which covers a write that
// lands after this check.
func (r *Store) dropStale(ctx context.Context, userID string, gone []any) {
	idx := r.indexKey(userID)
	if err := r.client.SRem(ctx, idx, gone...).Err(); err != nil {
		return
	}
	keys := make([]state.Key, 0, len(gone))
	for _, g := range gone {
		var k state.Key
		if _, err := hex.Decode(k[:], []byte(g.(string))); err == nil {
			keys = append(keys, k)
		}
	}
	now := r.now()
	again, err := r.fetchMany(ctx, keys)
	if err != nil {
		return
	}
	for _, s := range again {
		if s != nil && s.UserID == userID && s.Live(now) {
			_ = r.index(ctx, s, now)
		}
	}
}

// fetchMany reads sessions in one pipeline; a nil entry means none.
func (r *Store) fetchMany(ctx context.Context, keys []state.Key) ([]*state.Session, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HMGet(ctx, r.sessionKey(k), "d", "v", "at")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable("reading sessions", err)
	}
	out := make([]*state.Session, len(keys))
	for i, c := range cmds {
		v := c.Val()
		s, ok, err := decodeSession(keys[i], v[0], v[1], v[2])
		if err != nil {
			return nil, err
		}
		if ok {
			out[i] = s
		}
	}
	return out, nil
}

// Scan implements state.Store with SCAN over the session keys (on every master
// in cluster mode). Each batch is bounded by the timeout, not the whole scan.
// SCAN may return a key more than once (when Redis resizes its table during the
// scan), so the keys already visited are remembered: fn sees each session once,
// at the cost of 32 bytes and a map entry per session for the length of the
// scan.
func (r *Store) Scan(ctx context.Context, fn func(*state.Session) bool) error {
	var (
		mu   sync.Mutex
		done bool
		seen = map[state.Key]struct{}{}
	)
	errStop := errors.New("stop")
	visit := func(ss []*state.Session) bool {
		mu.Lock()
		defer mu.Unlock()
		now := r.now()
		for _, s := range ss {
			if done {
				return false
			}
			if s == nil {
				continue
			}
			if _, dup := seen[s.Key]; dup {
				continue
			}
			seen[s.Key] = struct{}{}
			if s.Live(now) && !fn(s) {
				done = true
			}
		}
		return !done
	}
	scanOne := func(ctx context.Context, c redis.Cmdable) error {
		match := escapeGlob(r.prefix+"s:") + "*"
		var cursor uint64
		for {
			octx, cancel := r.opCtx(ctx)
			names, next, err := c.Scan(octx, cursor, match, 256).Result()
			if err != nil {
				cancel()
				return unavailable("scanning sessions", err)
			}
			keys := make([]state.Key, 0, len(names))
			for _, n := range names {
				var k state.Key
				h := strings.TrimPrefix(n, r.prefix+"s:")
				if _, err := hex.Decode(k[:], []byte(h)); err == nil && len(h) == 2*len(k) {
					keys = append(keys, k)
				}
			}
			ss, err := r.fetchMany(octx, keys)
			cancel()
			if err != nil {
				return err
			}
			if !visit(ss) {
				return errStop
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return scanOne(ctx, c)
		})
	} else {
		err = scanOne(ctx, r.client)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// index adds s to its user's index, which lives as long as the user's
// longest session.
func (r *Store) index(ctx context.Context, s *state.Session, now time.Time) error {
	if s.UserID == "" {
		return nil
	}
	ttl := max(s.ExpiryTime.Sub(now).Milliseconds(), 1)
	err := indexScript.Run(ctx, r.client, []string{r.indexKey(s.UserID)}, s.Key.String(), ttl).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return unavailable("indexing session", err)
	}
	return nil
}

// unindex removes key from a user's index; a failure is left to ByUser's
// lazy cleaning.
func (r *Store) unindex(ctx context.Context, userID string, key state.Key) {
	if userID != "" {
		_ = r.client.SRem(ctx, r.indexKey(userID), key.String()).Err()
	}
}

// escapeGlob escapes the pattern characters of SCAN MATCH.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
