package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authsession/caddy-authsession/state"
)

// nearCache is the local copy of recently used sessions. Entries are filled
// only with a token taken before the Redis read or write that produced them:
// an invalidation (local write, remote write announced on the channel, or a
// flush) that happened in between makes the token stale and the fill is
// dropped, so a slow read cannot re-insert a record that was just replaced.
// The sessions are held as the memory store holds them (state.SessionTable:
// binary encodings the garbage collector need not walk).
type nearCache struct {
	ttl   time.Duration
	c     *state.SessionTable
	mu    [64]sync.Mutex
	seq   [64]uint64 // guarded by mu[i]
	epoch atomic.Uint64
}

// nearEntry is a cached session and when it was read from or written to
// Redis.
type nearEntry struct {
	s  *state.Session
	at time.Time
}

// fillToken identifies the cache state a fill was based on.
type fillToken struct{ seq, epoch uint64 }

func newNearCache(ttl time.Duration) *nearCache {
	return &nearCache{ttl: ttl, c: state.NewSessionTable()}
}

// sweep removes expired entries until ctx ends: the whole table once per
// ttl, in steps (state.SweepInSteps).
func (n *nearCache) sweep(ctx context.Context) {
	state.SweepInSteps(n.ttl, ctx.Done(), n.c.DeleteExpiredPart)
}

func stripe(k state.Key) int { return int(k[0] & 63) }

func (n *nearCache) get(k state.Key) (nearEntry, bool) {
	s, at, _, ok := n.c.Get(k)
	if !ok {
		return nearEntry{}, false
	}
	return nearEntry{s: s, at: at}, true
}

// token returns the fill token for k as of now.
func (n *nearCache) token(k state.Key) fillToken {
	i := stripe(k)
	n.mu[i].Lock()
	defer n.mu[i].Unlock()
	return fillToken{seq: n.seq[i], epoch: n.epoch.Load()}
}

// invalidate drops k and makes outstanding fill tokens of its stripe stale;
// it returns a fresh token for a write that follows.
func (n *nearCache) invalidate(k state.Key) fillToken {
	i := stripe(k)
	n.mu[i].Lock()
	defer n.mu[i].Unlock()
	n.seq[i]++
	n.c.Delete(k)
	return fillToken{seq: n.seq[i], epoch: n.epoch.Load()}
}

// fill caches s, read or written at 'at', for at most life (and the cache
// TTL), unless tok is stale.
func (n *nearCache) fill(s *state.Session, tok fillToken, at time.Time, life time.Duration) {
	if life <= 0 {
		return
	}
	life = min(life, n.ttl)
	i := stripe(s.Key)
	n.mu[i].Lock()
	defer n.mu[i].Unlock()
	if n.seq[i] != tok.seq || n.epoch.Load() != tok.epoch {
		return
	}
	n.c.Set(s.Key, s, at, life)
}

// touch moves the cached LastAccessTime of k forward, keeping the entry's
// expiry.
func (n *nearCache) touch(k state.Key, at time.Time) {
	i := stripe(k)
	n.mu[i].Lock()
	defer n.mu[i].Unlock()
	s, filled, exp, ok := n.c.Get(k)
	if !ok {
		return
	}
	if !at.After(s.LastAccessTime) {
		return
	}
	c := s.Clone()
	c.LastAccessTime = at
	life := time.Until(exp)
	if life <= 0 {
		return
	}
	n.c.Set(k, c, filled, life)
}

// flush drops everything and makes every outstanding token stale.
func (n *nearCache) flush() {
	for i := range n.mu {
		n.mu[i].Lock()
	}
	n.epoch.Add(1)
	n.c.Flush()
	for i := range n.mu {
		n.mu[i].Unlock()
	}
}

// health tracks contact with Redis, as seen by the invalidation
// subscription, and reports changes once each. Reads on the Get path are
// lock-free.
type health struct {
	now state.Clock
	cb  func(bool, error)

	up     atomic.Bool
	lastUp atomic.Int64 // Unix ns of the last moment the subscription was known good

	mu    sync.Mutex // serialises changes and their reports
	known bool
}

func (h *health) init(now state.Clock, cb func(bool, error)) {
	h.now, h.cb = now, cb
}

func (h *health) isUp() bool { return h.up.Load() }

// contact records that the subscription delivered something.
func (h *health) contact() {
	if h.up.Load() {
		h.lastUp.Store(h.now().UnixNano())
	}
}

func (h *health) set(up bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	changed := !h.known || h.up.Load() != up
	h.known = true
	if up {
		h.lastUp.Store(h.now().UnixNano())
	}
	h.up.Store(up)
	if changed && h.cb != nil {
		h.cb(up, err)
	}
}

// fresh reports whether an entry read from Redis at 'at' may still be
// served at now: always while subscribed, else for maxStale after the later
// of 'at' and the last moment the subscription was good.
func (h *health) fresh(at, now time.Time, maxStale time.Duration) bool {
	if h.up.Load() {
		return true
	}
	confirmed := at
	if lu := time.Unix(0, h.lastUp.Load()); lu.After(at) {
		confirmed = lu
	}
	return now.Sub(confirmed) < maxStale
}

// subscribeLoop keeps the invalidation subscription alive, reconnecting
// with backoff, and drives the health state.
func (r *Store) subscribeLoop(ctx context.Context) {
	defer r.wg.Done()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		ps := r.client.Subscribe(ctx, r.channel)
		stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
		subscribed, err := r.receive(ctx, ps)
		stop()
		_ = ps.Close()
		if ctx.Err() != nil {
			return
		}
		r.health.set(false, err)
		if subscribed {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.opts.PingInterval)
	}
}

// receive handles messages until the subscription fails or falls silent for
// three ping intervals. subscribed reports whether it was established.
func (r *Store) receive(ctx context.Context, ps *redis.PubSub) (subscribed bool, err error) {
	silent := 0
	for {
		msg, err := ps.ReceiveTimeout(ctx, r.opts.PingInterval)
		if err != nil {
			var ne net.Error
			if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
				silent++
				if silent >= 3 {
					return subscribed, errors.New("invalidation subscription fell silent")
				}
				if err := ps.Ping(ctx); err != nil {
					return subscribed, err
				}
				continue
			}
			return subscribed, err
		}
		silent = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// Invalidations may have been missed while we were
				// not subscribed.
				r.near.flush()
				subscribed = true
				r.health.set(true, nil)
			}
		case *redis.Message:
			r.invalidated(m.Payload)
		}
		r.health.contact()
	}
}

// invalidation returns the message announcing a change to k.
func (r *Store) invalidation(k state.Key) string { return r.self + " " + k.String() }

// invalidated handles a message from the channel: another instance changed
// the session, so drop our copy.
func (r *Store) invalidated(payload string) {
	n := len(r.self)
	if len(payload) != n+1+2*len(state.Key{}) || payload[:n] == r.self {
		return
	}
	var k state.Key
	if _, err := hex.Decode(k[:], []byte(payload[n+1:])); err != nil {
		return
	}
	r.near.invalidate(k)
}
