package portal

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// preAuth returns the browser's session if it is waiting for its second
// factor, with its user. Otherwise it has answered: a signed-in browser
// goes on to the target, one without a usable session back to sign-in.
func (p *Portal) preAuth(w http.ResponseWriter, r *http.Request, ctx context.Context) (*state.Session, state.User, bool) {
	t := target(r)
	s, err := p.current(ctx, r)
	if err != nil {
		p.storeFailed(w, r, "get", err)
		return nil, state.User{}, false
	}
	now := p.Env.Time()
	if s != nil && s.Authenticated(now) {
		finish(w, r, t)
		return nil, state.User{}, false
	}
	if s == nil || s.UserID == "" {
		http.Redirect(w, r, withTarget(p.Prefix+"/login", t), http.StatusSeeOther)
		return nil, state.User{}, false
	}
	u, ok, err := p.sessionUser(r.Context(), s)
	if err != nil {
		// The identity store cannot answer: a 503 page, the session
		// kept for when it is back.
		p.storeFailed(w, r, "user", err)
		return nil, state.User{}, false
	}
	ok = ok && u.ID == s.UserID
	st := s.EffectiveStatus(now)
	if !ok || (st != state.StatusPendingVerification && st != state.StatusChallengeBlocked) {
		http.Redirect(w, r, withTarget(p.Prefix+"/login", t), http.StatusSeeOther)
		return nil, state.User{}, false
	}
	if st == state.StatusChallengeBlocked {
		w.Header().Set("Retry-After", handlers.RetryAfter(s.BlockedUntil, now))
		p.fail(w, r, http.StatusTooManyRequests, "Too many wrong codes. Please wait a few minutes and sign in again.")
		return nil, state.User{}, false
	}
	return s, u, true
}

// factorPage shows the choice of second factors, or the form of one.
func (p *Portal) factorPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	s, u, ok := p.preAuth(w, r, ctx)
	if !ok {
		return
	}
	p.renderFactor(w, r, http.StatusOK, s, u, r.URL.Query().Get("factor"), "")
}

// renderFactor renders the second-factor page for factor (if the user has
// it; else the choice, or the only factor).
func (p *Portal) renderFactor(w http.ResponseWriter, r *http.Request, status int, s *state.Session, u state.User, factor, msg string) {
	fs := p.registeredFactors(r.Context(), u)
	if !hasFactor(fs, factor) {
		factor = ""
		if len(fs) == 1 && fs[0].Key == factorKeyTOTP {
			factor = factorKeyTOTP
		}
	}
	d := pageData{
		Redirect: target(r), Factors: fs, Factor: factor, Error: msg, Login: u.Login,
		TrustDays: int(p.TrustFor / (24 * time.Hour)),
	}
	if p.TrustFor > 0 && d.TrustDays == 0 {
		d.TrustDays = 1
	}
	if sent(factor) {
		if s.HasLiveOTP(p.Env.Time()) && s.Challenge.Factor == challengeFactor(factor) {
			d.SentTo = handlers.MaskMail(u.Mail)
			if factor == factorKeySMS {
				d.SentTo = handlers.MaskPhone(u.Phone)
			}
		} else if msg == "" {
			d.Notice = "No code is waiting for you: send a new one."
		}
	}
	p.render(w, r, status, "otp", d)
}

// challengeFactor is the factor key of the challenge engine for a portal
// factor.
func challengeFactor(k string) string {
	switch k {
	case factorKeyEmail:
		return state.FactorEmail
	case factorKeySMS:
		return state.FactorSMS
	case factorKeyTOTP:
		return state.FactorTOTP
	}
	return ""
}

// send sends a new code (by mail, or by SMS with factor=sms) to the user
// of the pre-auth session.
func (p *Portal) send(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	s, u, ok := p.preAuth(w, r, ctx)
	if !ok {
		return
	}
	factor := r.PostFormValue("factor")
	if factor == "" {
		factor = factorKeyEmail
	}
	if !sent(factor) || !hasFactor(p.factors(u), factor) {
		p.renderFactor(w, r, http.StatusBadRequest, s, u, "", "Codes of this kind are not available for your account.")
		return
	}
	if !p.sendCode(w, r, s.Key, u, factor, p.Env.Time()) {
		return
	}
	http.Redirect(w, r, withTarget(p.Prefix+"/otp?factor="+factor, target(r)), http.StatusSeeOther)
}

// sendCode issues a code on the session under key and sends it to u by
// mail or SMS (factor). It answers failures itself (429 with Retry-After
// for the cool-down, the hourly limit and a factor blocked for the user by
// wrong codes on any session, 502 for a failed delivery). The block is read
// in the same update of the user's state that counts the send, so no code
// leaves for a blocked factor however the requests interleave.
func (p *Portal) sendCode(w http.ResponseWriter, r *http.Request, key state.Key, u state.User, factor string, now time.Time) bool {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	var re *state.RetryError
	var be *state.BlockedError
	_, err := p.Env.Store.UpdateUser(ctx, handlers.UserKey(r.Context(), p.Users, u.ID), func(us *state.UserState) error {
		if until, blocked := us.FactorBlocked(factorState(factor), now); blocked {
			return &state.BlockedError{Until: until}
		}
		return p.OTP.AllowSend(us, now)
	})
	var code string
	var exp time.Time
	if err == nil {
		_, err = p.Env.UpdateSession(ctx, "portal", p.clientIP(r), key, func(s *state.Session) error {
			var err error
			code, exp, err = p.OTP.Issue(s, p.Key, now)
			if err == nil {
				s.Challenge.Factor = challengeFactor(factor)
			}
			return err
		})
	}
	switch {
	case err == nil:
	case errors.As(err, &re):
		w.Header().Set("Retry-After", handlers.RetryAfter(re.After, now))
		msg := "A code was sent a moment ago. Please wait a little before asking for another."
		if errors.Is(err, state.ErrOTPSendLimit) {
			msg = "Too many codes were sent to you in the last hour. Please try again later."
		}
		p.fail(w, r, http.StatusTooManyRequests, msg)
		return false
	case errors.As(err, &be):
		w.Header().Set("Retry-After", handlers.RetryAfter(be.Until, now))
		p.fail(w, r, http.StatusTooManyRequests, "Too many wrong codes. Please wait a few minutes and sign in again.")
		return false
	case errors.Is(err, state.ErrNotFound):
		http.Redirect(w, r, withTarget(p.Prefix+"/login", target(r)), http.StatusSeeOther)
		return false
	default:
		p.storeFailed(w, r, "issue", err)
		return false
	}
	m := delivery.Message{Channel: delivery.ChannelEmail, To: u.Mail, Login: u.Login, Code: code, ExpiresAt: exp}
	if factor == factorKeySMS {
		m.Channel, m.To = delivery.ChannelSMS, u.Phone
	}
	err = p.Delivery.Deliver(r.Context(), m)
	if err != nil {
		p.Env.Logger.Warn("portal otp delivery failed", zap.String("session", key.Short()), zap.Error(err))
		p.fail(w, r, http.StatusBadGateway, "The code could not be sent. Please try again later.")
		return false
	}
	return true
}
