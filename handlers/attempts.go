package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/authsession/caddy-authsession/state"
)

// UserKey returns the key under which the store keeps the state of user id
// (send counts, attempt counts, TOTP replay guard, trusted devices):
// state.UserKey, the users file's id when the user is known there, else a
// normalised form; id as given only when it is no valid user name (the
// callers refuse those first). Every per-user count goes through it, so
// one user cannot get two counts by being named two ways.
func UserKey(ctx context.Context, users state.Directory, id string) string {
	if k, err := state.DirectoryKey(ctx, users, id); err == nil {
		return k
	}
	return id
}

// ReserveAttempt counts an answer for each of factors of the user under
// key before it is checked (see state.OTPPolicy.ReserveAttempt). It returns
// a *state.BlockedError when one of the factors is blocked, and last when
// this answer, if wrong, blocks a factor.
func ReserveAttempt(ctx context.Context, st state.Store, p state.OTPPolicy, key string, now time.Time, factors ...string) (last bool, err error) {
	_, err = st.UpdateUser(ctx, key, func(u *state.UserState) error {
		last = false
		for _, f := range factors {
			l, err := p.ReserveAttempt(u, f, now)
			if err != nil {
				return err
			}
			last = last || l
		}
		return nil
	})
	return last, err
}

// FactorBlock returns the end of the block of factor of the user under key,
// or the zero time when the factor is not blocked at now. It changes
// nothing.
func FactorBlock(ctx context.Context, st state.Store, key, factor string, now time.Time) (time.Time, error) {
	u, err := st.GetUser(ctx, key)
	if errors.Is(err, state.ErrNotFound) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, err
	}
	if until, blocked := u.FactorBlocked(factor, now); blocked {
		return until, nil
	}
	return time.Time{}, nil
}

// ClearAttempts forgets the counts of factors of the user under key (a
// right answer).
func ClearAttempts(ctx context.Context, st state.Store, key string, factors ...string) error {
	_, err := st.UpdateUser(ctx, key, func(u *state.UserState) error {
		if !u.ClearAttempts(factors...) {
			return ErrNoChange
		}
		return nil
	})
	if errors.Is(err, ErrNoChange) {
		return nil
	}
	return err
}

// BlockSession marks s "challenge blocked" with reason too_many_attempts
// until until, the block of its user's factor. Call it inside Store.Update.
func BlockSession(s *state.Session, now, until time.Time) {
	if s.EffectiveStatus(now) == state.StatusChallengeBlocked {
		return
	}
	if s.Challenge != nil {
		s.Challenge.AnswerHash, s.Challenge.OTPUsed, s.Challenge.Attempts = nil, false, 0
	}
	_ = s.SetStatus(state.StatusChallengeBlocked, now, state.ReasonTooManyAttempts, until.Sub(now))
	s.UpdateTime = now
}
