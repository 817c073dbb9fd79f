package redisstore

import (
	"context"

	"github.com/authsession/caddy-authsession/state"
)

// Ping implements state.Pinger: one PING to Redis, bounded by the store's
// timeout (and ctx).
func (r *Store) Ping(ctx context.Context) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

var _ state.Pinger = (*Store)(nil)
