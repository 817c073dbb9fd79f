package portal

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
	"github.com/authsession/caddy-authsession/state/redisstore"
)

// sharedFailures counts the portal's sign-in failures in the Redis store,
// so that instances behind one load balancer share the limits (an attacker
// gets max_failures in all, not per instance) and a restart forgets none.
// It counts in memory too: when Redis cannot answer, the local count still
// applies.
type sharedFailures struct {
	local  *FailureLimiter
	shared *redisstore.FailureWindow
	log    *zap.Logger
}

// NewFailureCounter returns the portal's failure counter for store: in
// memory, and with the Redis store also in Redis, shared by every
// instance.
func NewFailureCounter(store state.Store, max int, window time.Duration, log *zap.Logger) FailureCounter {
	local := &FailureLimiter{Max: max, Window: window}
	rs, ok := store.(*redisstore.Store)
	if !ok {
		return local
	}
	if max <= 0 {
		max = DefaultFailureMax
	}
	if window <= 0 {
		window = DefaultFailureWindow
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
func (s *sharedFailures) Reserve(ctx context.Context, now time.Time, keys ...string) (Reservation, time.Time, bool) {
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
		return Reservation{}, su, true
	}
	return res, time.Time{}, false
}

func (s *sharedFailures) Release(ctx context.Context, res Reservation) {
	s.local.Release(ctx, res)
	if res.Member == "" {
		return
	}
	if err := s.shared.Release(ctx, res.Member, res.Keys...); err != nil {
		s.log.Warn("portal failure limits: could not release an attempt in the store", zap.Error(err))
	}
}
