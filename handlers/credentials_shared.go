package handlers

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

// NewCredentialLimiter returns the limiter of wrong API credentials for
// store: in memory, and with Redis also in the store, so that every
// instance shares the counts (each check-and-count one script).
func NewCredentialLimiter(store state.Store, log *zap.Logger) AttemptLimiter {
	local := &MemoryLimiter{Max: BasicMaxFailures, Window: BasicFailureWindow}
	rs, ok := store.(*redisstore.Store)
	if !ok {
		return local
	}
	return &sharedAttempts{local: local, shared: rs.FailureWindow(BasicMaxFailures, BasicFailureWindow), log: log}
}

// sharedAttempts is an AttemptLimiter over this instance's memory and the
// Redis store; with Redis unavailable the local count still applies.
type sharedAttempts struct {
	local  *MemoryLimiter
	shared *redisstore.FailureWindow
	log    *zap.Logger

	// held are the refusals the shared count gave, by key, until when:
	// what Blocked knows of the other instances' counts.
	mu   sync.Mutex
	held map[string]time.Time
}

// Blocked implements AttemptLimiter: this instance's count, and the
// refusals the shared count gave it.
func (s *sharedAttempts) Blocked(now time.Time, keys ...string) (time.Time, bool) {
	until, blocked := s.local.Blocked(now, keys...)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if u, ok := s.held[k]; ok {
			if !now.Before(u) {
				delete(s.held, k)
				continue
			}
			if u.After(until) {
				until = u
			}
			blocked = true
		}
	}
	return until, blocked
}

// hold remembers that the shared count refused keys until until.
func (s *sharedAttempts) hold(until time.Time, keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil || len(s.held) >= maxLimiterKeys {
		s.held = map[string]time.Time{}
	}
	for _, k := range keys {
		s.held[k] = until
	}
}

func (s *sharedAttempts) Reserve(ctx context.Context, now time.Time, keys ...string) (func(), time.Time, bool) {
	release, until, blocked := s.local.Reserve(ctx, now, keys...)
	if blocked {
		return release, until, true
	}
	member := redisstore.NewMember(now)
	su, sb, err := s.shared.Reserve(ctx, now, member, keys...)
	if err != nil {
		s.log.Warn("credential limits: shared counts unavailable, using this instance's", zap.Error(err))
		return release, time.Time{}, false
	}
	if sb {
		release()
		s.hold(su, keys...)
		return func() {}, su, true
	}
	return func() {
		release()
		if err := s.shared.Release(context.WithoutCancel(ctx), member, keys...); err != nil {
			s.log.Warn("credential limits: could not release an attempt in the store", zap.Error(err))
		}
	}, time.Time{}, false
}
