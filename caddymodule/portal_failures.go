package caddymodule

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/handlers/portal"
	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

// sharedFailures counts the portal's sign-in failures in the Redis store,
// so that instances behind one load balancer share the limits (an attacker
// gets max_failures in all, not per instance) and a restart forgets none.
// It counts in memory too: when Redis cannot answer, the local count still
// applies.
type sharedFailures struct {
	local  *portal.FailureLimiter
	shared *redisstore.FailureWindow
	log    *zap.Logger
}

// failureCounter returns the portal's failure counter for the app's store.
func failureCounter(store state.Store, max int, window time.Duration, log *zap.Logger) portal.FailureCounter {
	local := &portal.FailureLimiter{Max: max, Window: window}
	rs, ok := store.(*redisstore.Store)
	if !ok {
		return local
	}
	if max <= 0 {
		max = portal.DefaultFailureMax
	}
	if window <= 0 {
		window = portal.DefaultFailureWindow
	}
	return &sharedFailures{local: local, shared: rs.FailureWindow(max, window), log: log}
}

func (s *sharedFailures) Blocked(ctx context.Context, now time.Time, keys ...string) (time.Time, bool) {
	until, blocked := s.local.Blocked(ctx, now, keys...)
	su, sb, err := s.shared.Blocked(ctx, now, keys...)
	if err != nil {
		s.log.Warn("portal failure limits: shared counts unavailable, using this instance's", zap.Error(err))
		return until, blocked
	}
	if sb && su.After(until) {
		until = su
	}
	return until, blocked || sb
}

func (s *sharedFailures) Fail(ctx context.Context, now time.Time, keys ...string) {
	s.local.Fail(ctx, now, keys...)
	if err := s.shared.Fail(ctx, now, keys...); err != nil {
		s.log.Warn("portal failure limits: could not record a failure in the store", zap.Error(err))
	}
}

func (s *sharedFailures) Reset(ctx context.Context, key string) {
	s.local.Reset(ctx, key)
	if err := s.shared.Reset(ctx, key); err != nil {
		s.log.Warn("portal failure limits: could not reset a count in the store", zap.Error(err))
	}
}

// Reserve counts the attempt in this instance's count and in the store's,
// each an atomic check-and-count. When the store cannot answer, the local
// reservation still applies.
func (s *sharedFailures) Reserve(ctx context.Context, now time.Time, keys ...string) (portal.Reservation, time.Time, bool) {
	res, until, blocked := s.local.Reserve(ctx, now, keys...)
	if blocked {
		return res, until, true
	}
	res.Member = redisstore.NewMember(now)
	su, sb, err := s.shared.Reserve(ctx, now, res.Member, keys...)
	if err != nil {
		s.log.Warn("portal failure limits: shared counts unavailable, using this instance's", zap.Error(err))
		res.Member = ""
		return res, time.Time{}, false
	}
	if sb {
		s.local.Release(ctx, res)
		return portal.Reservation{}, su, true
	}
	return res, time.Time{}, false
}

func (s *sharedFailures) Release(ctx context.Context, res portal.Reservation) {
	s.local.Release(ctx, res)
	if res.Member == "" {
		return
	}
	if err := s.shared.Release(ctx, res.Member, res.Keys...); err != nil {
		s.log.Warn("portal failure limits: could not release an attempt in the store", zap.Error(err))
	}
}

// credentialLimiter returns the limiter of wrong API credentials for the
// app's store: in memory, and with Redis also in the store, so that every
// instance shares the counts (each check-and-count one script).
func credentialLimiter(store state.Store, log *zap.Logger) handlers.AttemptLimiter {
	local := &handlers.MemoryLimiter{Max: handlers.BasicMaxFailures, Window: handlers.BasicFailureWindow}
	rs, ok := store.(*redisstore.Store)
	if !ok {
		return local
	}
	return &sharedAttempts{local: local, shared: rs.FailureWindow(handlers.BasicMaxFailures, handlers.BasicFailureWindow), log: log}
}

// sharedAttempts is an AttemptLimiter over this instance's memory and the
// Redis store; with Redis unavailable the local count still applies.
type sharedAttempts struct {
	local  *handlers.MemoryLimiter
	shared *redisstore.FailureWindow
	log    *zap.Logger
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
		return func() {}, su, true
	}
	return func() {
		release()
		if err := s.shared.Release(context.WithoutCancel(ctx), member, keys...); err != nil {
			s.log.Warn("credential limits: could not release an attempt in the store", zap.Error(err))
		}
	}, time.Time{}, false
}
