package portal

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// verify checks the second factor's code. On success the pre-auth session
// is replaced by a new one under a fresh id (the old id stops working),
// authenticated with the factor recorded, and the browser goes on to the
// redirect target.
func (p *Portal) verify(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	s, u, ok := p.preAuth(w, r, ctx)
	if !ok {
		return
	}
	now := p.Env.Time()
	ip := p.clientIP(r)
	factor := r.PostFormValue("factor")
	if !hasFactor(p.registeredFactors(ctx, u), factor) {
		p.renderFactor(w, r, http.StatusBadRequest, s, u, "", "Choose how to confirm your sign-in.")
		return
	}
	if factor == factorKeyPasskey || factor == factorKeyRecovery {
		p.verifyRegistered(w, r, ctx, s, u, factor)
		return
	}
	code := strings.Join(strings.Fields(r.PostFormValue("code")), "")
	if code == "" || len(code) > 16 {
		p.renderFactor(w, r, http.StatusBadRequest, s, u, factor, "Enter the code.")
		return
	}
	// Count the attempt before checking it, so parallel wrong codes check
	// at most the limit; it is given back only if the code is right or the
	// check could not run.
	lim, ok := p.reserve(w, r, now, ipKey(ip), userKey(r.Context(), p.Users, u.Login))
	if !ok {
		return
	}
	checked := false
	defer func() {
		if !checked {
			p.Limiter.Release(r.Context(), lim)
		}
	}()

	// The code is also counted against the user's factor, across sessions
	// and instances, before it is checked (see handlers.ReserveAttempt); a
	// TOTP code is counted and checked in one step.
	ukey, counted := handlers.UserKey(r.Context(), p.Users, u.ID), factorState(factor)
	totpOK, last := false, false
	var userBlock time.Time
	var err error
	if factor == factorKeyTOTP {
		var res state.TOTPResult
		_, err = p.Env.Store.UpdateUser(ctx, ukey, func(us *state.UserState) error {
			totpOK = false
			var err error
			if last, err = p.OTP.ReserveAttempt(us, counted, now); err != nil {
				return err
			}
			res, err = p.TOTP.Check(us, u.TOTPSecret, code, now)
			if totpOK = err == nil && res == state.TOTPOK; totpOK {
				us.ClearAttempts(counted)
			}
			return err
		})
	} else {
		last, err = handlers.ReserveAttempt(ctx, p.Env.Store, p.OTP, ukey, now, counted)
	}
	if be, ok := errors.AsType[*state.BlockedError](err); ok {
		userBlock = be.Until
	} else if err != nil {
		p.storeFailed(w, r, "totp", err)
		return
	}
	var res state.OTPResult
	var authed *state.Session
	_, err = p.Env.UpdateSession(ctx, "portal", p.clientIP(r), s.Key, func(cur *state.Session) error {
		authed = nil
		c := cur.Clone()
		switch {
		case !userBlock.IsZero():
			handlers.BlockSession(c, now, userBlock)
			res = state.OTPBlocked
		case factor == factorKeyTOTP && totpOK:
			res = state.OTPOK
			if err := p.OTP.Pass(c, state.FactorTOTP, now); err != nil {
				res = state.OTPBlocked
			}
		case sent(factor):
			res = p.OTP.Verify(c, p.Key, code, now)
		default:
			res = p.OTP.Fail(c, now)
		}
		var passed bool
		if res, passed = p.settleAnswer(cur, c, res, last, now); passed {
			// The old record keeps its spent code but never becomes
			// authenticated: the new one, under a new id, does.
			authed = c
			cur.Challenge = c.Challenge
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, state.ErrNotFound) {
			http.Redirect(w, r, withTarget(p.Prefix+"/login", target(r)), http.StatusSeeOther)
			return
		}
		p.storeFailed(w, r, "verify", err)
		return
	}
	p.Env.Logger.Info("portal second factor checked", zap.String("session", s.Key.Short()),
		zap.String("factor", factor), zap.String("result", res.String()))
	switch res {
	case state.OTPOK:
	case state.OTPBlocked:
		checked = true // the reservation is the failure
		if !userBlock.IsZero() {
			// The factor was blocked already: this code was refused unchecked.
			p.Env.EmitLoginFailed(ctx, "portal", challengeFactor(factor), "blocked", ukey, u.Login, ip)
		}
		until := now.Add(p.OTP.BlockFor)
		if !userBlock.IsZero() {
			until = userBlock
		}
		w.Header().Set("Retry-After", handlers.RetryAfter(until, now))
		p.fail(w, r, http.StatusTooManyRequests, "Too many wrong codes. Please wait a few minutes and sign in again.")
		return
	default:
		checked = true // the reservation is the failure
		msg := "That code is not right. Please try again."
		switch res {
		case state.OTPExpired, state.OTPUsed, state.OTPNone:
			msg = "That code has expired or was already used. Send a new one."
		default: // wrong
		}
		p.Env.EmitLoginFailed(ctx, "portal", challengeFactor(factor), "wrong_code", ukey, u.Login, ip)
		p.renderFactor(w, r, http.StatusUnauthorized, s, u, factor, msg)
		return
	}
	if factor != factorKeyTOTP {
		if err := handlers.ClearAttempts(ctx, p.Env.Store, ukey, counted); err != nil {
			p.Env.Logger.Warn("portal could not clear the attempt count", zap.Error(err))
		}
	}
	id, err := p.rotate(ctx, s.Key, authed, now)
	if err != nil {
		p.storeFailed(w, r, "rotate", err)
		return
	}
	p.Limiter.Reset(r.Context(), userKey(r.Context(), p.Users, u.Login))
	p.setSession(w, r, id)
	if p.TrustFor > 0 && r.PostFormValue("trust") != "" {
		p.trustDevice(ctx, w, u, ip, now)
	}
	p.Env.Logger.Info("portal sign-in complete", zap.String("session", state.KeyOf(id).Short()), zap.String("user", u.ID))
	finish(w, r, target(r))
}

// rotate stores authed under a fresh id and deletes the record under old.
// It returns the new id.
func (p *Portal) rotate(ctx context.Context, old state.Key, authed *state.Session, now time.Time) (string, error) {
	id := state.NewID()
	ns := authed.Clone()
	ns.Key = state.KeyOf(id)
	ns.SealedID = nil
	if p.Env.Sealer != nil {
		ns.SealedID = p.Env.Sealer.Seal(id)
	}
	ns.Index = state.NewIndex()
	ns.Challenge = nil
	ns.Version = 0
	ns.LastAccessTime, ns.UpdateTime = now, now
	if err := p.Env.CreateSessionIn(handlers.WithRotation(ctx), "portal", ns); err != nil {
		return "", err
	}
	if _, err := p.Env.Store.Delete(ctx, old); err != nil && !errors.Is(err, state.ErrNotFound) {
		// The old record is not authenticated; it expires on its own.
		p.Env.Logger.Warn("portal could not delete the pre-auth session", zap.String("session", old.Short()), zap.Error(err))
	}
	return id, nil
}

// factorState returns the factor a portal factor key is counted as.
func factorState(k string) string {
	switch k {
	case factorKeyEmail:
		return state.FactorEmail
	case factorKeySMS:
		return state.FactorSMS
	default:
		return state.FactorTOTP
	}
}

// settleAnswer ends the check of a second-factor answer inside a session
// update: c is the copy of the stored record cur that the check changed,
// res its outcome, last whether a wrong answer was the user's last for the
// factor (it then blocks the session). A refused answer writes c over cur
// (attempts counted, maybe blocked); a passed one leaves cur as it was but
// for its update time, the authenticated record being c under a new id. It
// returns the final outcome and whether the answer passed.
func (p *Portal) settleAnswer(cur, c *state.Session, res state.OTPResult, last bool, now time.Time) (state.OTPResult, bool) {
	if last && res != state.OTPOK && res != state.OTPBlocked {
		handlers.BlockSession(c, now, now.Add(p.OTP.BlockFor))
		res = state.OTPBlocked
	}
	if res != state.OTPOK {
		*cur = *c
		return res, false
	}
	cur.UpdateTime = now
	return res, true
}
