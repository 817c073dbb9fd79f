package redisstore

import (
	"context"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

const (
	// touchBatch is the number of pending touches that triggers a write
	// before the next tick.
	touchBatch = 512
	// maxPendingTouches bounds the touches kept while Redis is away; more
	// are dropped (a lost touch costs at most an idle refresh).
	maxPendingTouches = 1 << 16
)

// Touch implements state.Store. It updates the near-cache at once and queues
// the write, which a background goroutine sends in batches; it never waits on
// the network. Touches are not announced to other instances: an instance whose
// copy looks idle re-reads Redis before refusing the session.
func (r *Store) Touch(_ context.Context, key state.Key, at time.Time) error {
	r.near.touch(key, at)
	r.touchMu.Lock()
	cur, ok := r.touches[key]
	switch {
	case ok && at.After(cur):
		r.touches[key] = at
	case !ok && len(r.touches) < maxPendingTouches:
		r.touches[key] = at
	}
	n := len(r.touches)
	r.touchMu.Unlock()
	if n >= touchBatch {
		select {
		case r.touchKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// touchLoop writes queued touches every TouchInterval, or sooner when a
// batch is full.
func (r *Store) touchLoop(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.TouchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.touchKick:
		}
		fctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
		r.flushTouches(fctx)
		cancel()
	}
}

// flushTouches sends the queued touches in one pipeline. If it fails they
// are queued again, unless newer ones arrived meanwhile.
func (r *Store) flushTouches(ctx context.Context) {
	r.touchMu.Lock()
	batch := r.touches
	if len(batch) == 0 {
		r.touchMu.Unlock()
		return
	}
	r.touches = make(map[state.Key]time.Time, len(batch))
	r.touchMu.Unlock()

	now := r.now().UnixMilli()
	pipe := r.client.Pipeline()
	for k, at := range batch {
		pipe.Eval(ctx, touchLua, []string{r.sessionKey(k)}, stamp(at), now)
	}
	if _, err := pipe.Exec(ctx); err == nil {
		return
	}
	r.touchMu.Lock()
	for k, at := range batch {
		cur, ok := r.touches[k]
		switch {
		case ok && at.After(cur):
			r.touches[k] = at
		case !ok && len(r.touches) < maxPendingTouches:
			r.touches[k] = at
		}
	}
	r.touchMu.Unlock()
}
