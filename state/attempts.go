package state

import (
	"slices"
	"time"
)

// FactorAttempts counts the wrong answers given for one factor of one user,
// across sessions, correlationIds and re-issued codes (see
// OTPPolicy.ReserveAttempt).
type FactorAttempts struct {
	// Times are the attempts counted within the block window, oldest
	// first; a right answer clears them.
	Times []time.Time `json:"t,omitempty"`
	// BlockedUntil is the end of the factor's block, if any.
	BlockedUntil time.Time `json:"bu,omitzero"`
}

// ReserveAttempt counts an answer for factor of u at now before it is
// checked. It refuses with a *BlockedError while the factor is blocked. The
// attempt that brings the count to MaxAttempts within BlockFor blocks the
// factor for BlockFor at once and reports last: if that answer proves
// right, ClearAttempts lifts the block; if wrong, the block stands. Because
// the count comes before the check, parallel answers (on any session or
// instance, the store's per-user update being atomic) can never check more
// than MaxAttempts answers per window. Call it inside Store.UpdateUser.
func (p OTPPolicy) ReserveAttempt(u *UserState, factor string, now time.Time) (last bool, err error) {
	p = p.Defaults()
	a := u.Attempts[factor]
	if now.Before(a.BlockedUntil) {
		return false, &BlockedError{Until: a.BlockedUntil}
	}
	cut := now.Add(-p.BlockFor)
	kept := a.Times[:0:0]
	if a.BlockedUntil.IsZero() { // an ended block starts a new count
		for _, t := range a.Times {
			if t.After(cut) {
				kept = append(kept, t)
			}
		}
	}
	kept = append(kept, now)
	a = FactorAttempts{Times: kept}
	if len(kept) >= p.MaxAttempts {
		a.BlockedUntil = now.Add(p.BlockFor)
		last = true
	}
	if u.Attempts == nil {
		u.Attempts = map[string]FactorAttempts{}
	}
	u.Attempts[factor] = a
	return last, nil
}

// FactorBlocked reports whether factor of u is blocked at now and, if so,
// until when. It changes nothing.
func (u *UserState) FactorBlocked(factor string, now time.Time) (until time.Time, blocked bool) {
	if u == nil {
		return time.Time{}, false
	}
	a := u.Attempts[factor]
	return a.BlockedUntil, now.Before(a.BlockedUntil)
}

// ClearAttempts forgets the count and any block of each of factors of u (a
// right answer, or an administrator's reset); with no factors, of every
// factor. It reports whether anything was forgotten.
func (u *UserState) ClearAttempts(factors ...string) bool {
	if len(u.Attempts) == 0 {
		return false
	}
	if len(factors) == 0 {
		u.Attempts = nil
		return true
	}
	changed := false
	for _, f := range factors {
		if _, ok := u.Attempts[f]; ok {
			delete(u.Attempts, f)
			changed = true
		}
	}
	if len(u.Attempts) == 0 {
		u.Attempts = nil
	}
	return changed
}

// ReleaseAttempt takes back an attempt counted for factor of u at the time at (an
// answer that turned out not to count, such as one for an expired code),
// lifting the block it set.
func (p OTPPolicy) ReleaseAttempt(u *UserState, factor string, at time.Time) bool {
	p = p.Defaults()
	a, ok := u.Attempts[factor]
	if !ok {
		return false
	}
	for i, t := range slices.Backward(a.Times) {
		if t.Equal(at) {
			a.Times = append(a.Times[:i:i], a.Times[i+1:]...)
			if len(a.Times) < p.MaxAttempts {
				a.BlockedUntil = time.Time{}
			}
			u.Attempts[factor] = a
			return true
		}
	}
	return false
}
