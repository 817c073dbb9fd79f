package handlers

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// Env is what every handler shares: the store, the clock, the id sealer,
// the session policy and a logger.
type Env struct {
	Store  state.Store
	Now    state.Clock
	Sealer *state.Sealer
	Logger *zap.Logger
	Policy Policy
	// Users are the identity stores, the users file among them (may be
	// nil). The families that do not use them otherwise need them for
	// UserKey: a user is one key on every API.
	Users state.Directory
	// Events receives the security events of every family (nil: none).
	Events Emitter
}

// UserKey returns the canonical key of the user a caller names (see
// state.DirectoryKey), against the env's identity stores.
func (e *Env) UserKey(ctx context.Context, raw string) (string, error) {
	return state.DirectoryKey(ctx, e.Users, raw)
}

// Policy holds the session rules of the app configuration.
type Policy struct {
	// Lifetime is a session's absolute lifetime.
	Lifetime time.Duration
	// IdleTimeout ends a session not used for that long (0: never).
	IdleTimeout time.Duration
	// IDStoreName is the default idStoreName of new sessions.
	IDStoreName string
	// RequireSecondFactor makes OAM-created sessions start in "pending
	// verification" instead of "authenticated".
	RequireSecondFactor bool
	// BlockFor is how long a "challenge blocked" status lasts.
	BlockFor time.Duration
	// StoreTimeout bounds one store operation of an API call.
	StoreTimeout time.Duration
	// MaxSessionsPerUser bounds the live sessions of one user (0:
	// unlimited). A creation beyond it deletes the user's oldest
	// sessions, as the vendor's access manager does.
	MaxSessionsPerUser int
	// MaxSearchResults caps the sessions in one OAM search or
	// delete-by-user answer (0: the default, 28).
	MaxSearchResults int
}

// DefaultMaxSearchResults is MaxSearchResults when the policy sets none.
const DefaultMaxSearchResults = 28

// SearchResults returns the policy's MaxSearchResults or its default.
func (p Policy) SearchResults() int {
	if p.MaxSearchResults > 0 {
		return p.MaxSearchResults
	}
	return DefaultMaxSearchResults
}

// CreateSession stores the new session s, then applies the per-user
// maximum: the user's oldest other sessions beyond MaxSessionsPerUser - 1
// are deleted. s itself is never deleted here. Every creator trims after
// its own write, so with parallel creations the last one to list sees every
// session and leaves at most the maximum live, on any store (with Redis,
// across the cluster). A failure to trim is logged; the creation stands.
func (e *Env) CreateSession(ctx context.Context, s *state.Session) error {
	if err := e.Store.Create(ctx, s); err != nil {
		return err
	}
	e.emitCreated(ctx, s)
	limit := e.Policy.MaxSessionsPerUser
	if limit <= 0 || s.UserID == "" {
		return nil
	}
	sessions, err := e.Store.ByUser(ctx, s.UserID)
	if err != nil {
		e.Logger.Warn("cannot apply max_sessions_per_user", zap.String("session", s.Key.Short()), zap.Error(err))
		return nil
	}
	others := make([]*state.Session, 0, len(sessions))
	for _, o := range sessions {
		if o.Key != s.Key {
			others = append(others, o)
		}
	}
	// Oldest first; the store's order breaks ties.
	slices.SortStableFunc(others, func(a, b *state.Session) int { return a.CreateTime.Compare(b.CreateTime) })
	for _, o := range others[:max(len(others)-(limit-1), 0)] {
		_, err := e.Store.Delete(ctx, o.Key)
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			e.Logger.Warn("cannot apply max_sessions_per_user", zap.String("session", o.Key.Short()), zap.Error(err))
			continue
		}
		e.Logger.Info("oldest session of the user deleted (max_sessions_per_user)",
			zap.String("session", o.Key.Short()), zap.Int("max", limit))
		if err == nil { // not already gone (another creator's trim)
			e.emitTrimmed(ctx, o)
		}
	}
	return nil
}

// Time returns the env's clock reading, in UTC and truncated to the second
// (the wire's RFC 3339 precision), so what is stored is what is shown.
func (e *Env) Time() time.Time {
	return e.Now().UTC().Truncate(time.Second)
}

// StoreContext returns r's context bounded by the policy's StoreTimeout
// (default 5s), for the store calls of one request.
func (e *Env) StoreContext(r *http.Request) (context.Context, context.CancelFunc) {
	d := e.Policy.StoreTimeout
	if d <= 0 {
		d = 5 * time.Second
	}
	return context.WithTimeout(r.Context(), d)
}

// NewSession returns a new session for id under the env's policy.
func (e *Env) NewSession(id string, now time.Time) *state.Session {
	s := state.NewSession(id, e.Sealer, now, e.Policy.Lifetime, e.Policy.IdleTimeout)
	s.IDStoreName = e.Policy.IDStoreName
	return s
}

// SessionID returns the clear id of s, opened from its sealed copy, or ""
// when it cannot be opened (e.g. sealed under a former key).
func (e *Env) SessionID(s *state.Session) string {
	if e.Sealer == nil || len(s.SealedID) == 0 {
		return ""
	}
	id, err := e.Sealer.Open(s.Key, s.SealedID)
	if err != nil {
		e.Logger.Warn("cannot open sealed session id", zap.String("session", s.Key.Short()))
		return ""
	}
	return id
}

// isTimeout reports whether err is a store call that ran out of time.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded)
}

// ErrNoChange is returned by the function given to a store's Update or
// UpdateUser to leave the record as it is: nothing is written, and the
// caller, which sees ErrNoChange come back, goes on as after a success.
var ErrNoChange = errors.New("no change")
