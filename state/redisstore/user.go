package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/authsession/caddy-authsession/state"
)

// GetUser implements state.Store. Per-user state is not near-cached: it is read
// from Redis each time.
func (r *Store) GetUser(ctx context.Context, userID string) (*state.UserState, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	u, err := r.loadUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, state.ErrNotFound
	}
	return u, nil
}

func (r *Store) loadUser(ctx context.Context, userID string) (*state.UserState, error) {
	vals, err := r.client.HMGet(ctx, r.userKey(userID), "d", "v").Result()
	if err != nil {
		return nil, unavailable("reading user state", err)
	}
	d, ok := vals[0].(string)
	if !ok {
		return nil, nil
	}
	u := new(state.UserState)
	if err := json.Unmarshal([]byte(d), u); err != nil {
		return nil, fmt.Errorf("redis store: decoding user state: %w", err)
	}
	if vs, ok := vals[1].(string); ok {
		if n, err := strconv.ParseUint(vs, 10, 64); err == nil {
			u.Version = n
		}
	}
	u.UserID = userID
	return u, nil
}

// UpdateUser implements state.Store with a compare-and-set on the version, like
// Update. User state has no TTL: it lives until removed.
func (r *Store) UpdateUser(ctx context.Context, userID string, fn func(*state.UserState) error) (*state.UserState, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	for range maxConflicts {
		old, err := r.loadUser(ctx, userID)
		if err != nil {
			return nil, err
		}
		expected := ""
		var c *state.UserState
		if old != nil {
			expected = strconv.FormatUint(old.Version, 10)
			c = old.Clone()
		} else {
			c = &state.UserState{UserID: userID}
		}
		if err := fn(c); err != nil {
			return nil, err
		}
		c.UserID = userID
		c.Version++
		if old != nil {
			c.Version = old.Version + 1
		}
		d, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("redis store: encoding user state: %w", err)
		}
		res, err := userScript.Run(ctx, r.client, []string{r.userKey(userID)},
			expected, d, randomToken()).Int()
		if err != nil {
			return nil, unavailable("updating user state", err)
		}
		if res == 1 {
			return c, nil
		}
	}
	return nil, fmt.Errorf("redis store: updating user state: too many conflicting writes")
}
