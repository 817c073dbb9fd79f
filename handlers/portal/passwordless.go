package portal

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// Passwordless sign-in (webauthn { passwordless on }): a discoverable
// passkey is the whole sign-in.
//
//	POST /login/passkey/options  (JSON) starts a discoverable assertion: a
//	                             new session without a user holds the
//	                             ceremony; its id is the ceremony id
//	                             handed to the page's script (the
//	                             browser's cookie is left alone, so the
//	                             password form stays valid)
//	POST /login/passkey          finishes it: the user handle names the
//	                             user; that session is rotated and
//	                             authenticated with ChallengeFIDO2

// ceremonyAttr is the session attribute that keeps a discoverable
// ceremony until it is used (single use, CeremonyTTL).
const ceremonyAttr = "authsession.webauthn_ceremony"

// Limits of the passwordless starts (see Portal.PasswordlessLimiter): a
// page view of the sign-in page starts one when the browser offers
// passkeys in its autofill, so a client address, which may be a whole
// office behind NAT, gets some room.
const (
	DefaultPasswordlessPerIP = 30    // starts a minute per client address
	DefaultPasswordlessAll   = 10000 // starts per ceremony lifetime, all clients together
)

// NewPasswordlessLimits returns the two counters of the passwordless
// starts (Portal.PasswordlessLimiter and PasswordlessBudget) for store, at
// the default limits: in memory, and with the Redis store also in Redis,
// shared by every instance, so that N instances behind a load balancer do
// not allow N times the starts (see NewFailureCounter).
func NewPasswordlessLimits(store state.Store, log *zap.Logger) (perAddress, all FailureCounter) {
	return NewFailureCounter(store, DefaultPasswordlessPerIP, time.Minute, log),
		NewFailureCounter(store, DefaultPasswordlessAll, state.CeremonyTTL, log)
}

// passwordlessAllKey is the one key of Portal.PasswordlessBudget.
const passwordlessAllKey = "passwordless:all"

// reserveStart counts a passwordless start of the client at ip against its
// address's limit and the budget of all clients, in that order, before
// anything is stored. On refusal it answers 429 with Retry-After in the
// endpoint's JSON shape and counts nothing; otherwise it returns release,
// which gives both counts back (for a start that stored nothing).
func (p *Portal) reserveStart(w http.ResponseWriter, r *http.Request, now time.Time, ip string) (release func(), ok bool) {
	ctx := r.Context()
	mine, until, blocked := p.PasswordlessLimiter.Reserve(ctx, now, "passwordless-ip:"+handlers.AddressKey(ip))
	if !blocked {
		var all Reservation
		if all, until, blocked = p.PasswordlessBudget.Reserve(ctx, now, passwordlessAllKey); !blocked {
			return func() {
				p.PasswordlessBudget.Release(ctx, all)
				p.PasswordlessLimiter.Release(ctx, mine)
			}, true
		}
		p.PasswordlessLimiter.Release(ctx, mine)
		p.Env.Logger.Warn("portal passkey sign-in refused: too many started by all clients")
	} else {
		p.Env.Logger.Info("portal passkey sign-in refused: too many started", zap.String("client_ip", ip))
	}
	w.Header().Set("Retry-After", handlers.RetryAfter(until, now))
	writeJSON(w, http.StatusTooManyRequests, ceremonyAnswer{Error: "too many passkey sign-ins started; please wait a minute and try again"})
	return nil, false
}

// passwordless reports whether a passkey alone may sign in.
func (p *Portal) passwordless() bool {
	return p.Passkeys != nil && p.Passkeys.Config.Passwordless
}

func (p *Portal) passwordlessOptions(w http.ResponseWriter, r *http.Request) {
	if !p.passwordless() {
		writeJSON(w, http.StatusNotFound, ceremonyAnswer{Error: "passkey sign-in is not enabled"})
		return
	}
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	now := p.Env.Time()
	ip := p.clientIP(r)
	release, ok := p.reserveStart(w, r, now, ip)
	if !ok {
		return
	}
	stored := false
	defer func() {
		if !stored {
			release()
		}
	}()
	id := state.NewID()
	s := p.Env.NewSession(id, now)
	s.ClientIP = ip
	// The session only holds the ceremony: it ends with it (the sign-in
	// gives the rotated session its full lifetime), so the budget of
	// starts per ceremony lifetime bounds the ceremonies stored.
	if end := now.Add(state.CeremonyTTL); end.Before(s.ExpiryTime) {
		s.ExpiryTime = end
	}
	if err := s.SetStatus(state.StatusPendingVerification, now, "", 0); err != nil {
		writeJSON(w, http.StatusInternalServerError, ceremonyAnswer{Error: "internal error"})
		return
	}
	opts, c, err := p.Passkeys.BeginDiscoverableLogin(sessionBinding(s))
	if err != nil {
		p.Env.Logger.Error("portal passkey sign-in could not start", zap.Error(err))
		writeJSON(w, http.StatusInternalServerError, ceremonyAnswer{Error: "internal error"})
		return
	}
	c.Started, c.Expires = now, now.Add(state.CeremonyTTL)
	kept, _ := json.Marshal(c)
	s.UserAttributes = map[string]string{ceremonyAttr: base64.RawURLEncoding.EncodeToString(kept)}
	if err := p.Env.CreateSessionIn(ctx, "portal", s); err != nil {
		p.Env.Logger.Error("portal passkey sign-in could not start", zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, ceremonyAnswer{Error: "unavailable"})
		return
	}
	stored = true
	writeJSON(w, http.StatusOK, ceremonyAnswer{Ceremony: id, Options: opts})
}

// takeSessionCeremony removes the discoverable ceremony from the browser's
// session and returns it (once).
func (p *Portal) takeSessionCeremony(r *http.Request, s *state.Session) (state.Ceremony, error) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	var kept string
	_, err := p.Env.Store.Update(ctx, s.Key, func(cur *state.Session) error {
		kept = cur.UserAttributes[ceremonyAttr]
		if kept == "" {
			return state.ErrNoCeremony
		}
		delete(cur.UserAttributes, ceremonyAttr)
		return nil
	})
	if err != nil {
		return state.Ceremony{}, err
	}
	var c state.Ceremony
	raw, err := base64.RawURLEncoding.DecodeString(kept)
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	if err != nil || c.Binding != sessionBinding(s) {
		return state.Ceremony{}, state.ErrNoCeremony
	}
	return c, nil
}

func (p *Portal) passwordlessSignIn(w http.ResponseWriter, r *http.Request) {
	if !p.passwordless() {
		p.fail(w, r, http.StatusNotFound, "Passkey sign-in is not enabled here.")
		return
	}
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	now := p.Env.Time()
	ip := p.clientIP(r)
	refuse := func(status int, msg string) {
		p.render(w, r, status, "login", pageData{Redirect: target(r), Error: msg, Passwordless: true})
	}
	var s *state.Session
	if id := r.PostFormValue("ceremony"); state.ValidateID(id) == nil {
		var err error
		s, err = p.Env.Store.Get(ctx, state.KeyOf(id))
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			p.storeFailed(w, r, "get", err)
			return
		}
	}
	if s == nil || s.UserID != "" {
		refuse(http.StatusBadRequest, "The passkey sign-in expired. Please try again.")
		return
	}
	c, err := p.takeSessionCeremony(r, s)
	if err != nil {
		if !errors.Is(err, state.ErrNoCeremony) && !errors.Is(err, state.ErrNotFound) {
			p.storeFailed(w, r, "take ceremony", err)
			return
		}
		refuse(http.StatusBadRequest, "The passkey sign-in expired. Please try again.")
		return
	}
	pa, err := handlers.ParseAssertion([]byte(r.PostFormValue("credential")))
	if err != nil || len(pa.Response.UserHandle) == 0 {
		refuse(http.StatusUnauthorized, "That passkey could not sign you in.")
		return
	}
	u, known, err := p.Users.Lookup(ctx, string(pa.Response.UserHandle))
	if err != nil {
		p.storeFailed(w, r, "lookup", err)
		return
	}
	if !known || u.ID != string(pa.Response.UserHandle) {
		p.Env.Logger.Info("portal passkey sign-in: unknown user handle", zap.String("client_ip", ip))
		refuse(http.StatusUnauthorized, "That passkey could not sign you in.")
		return
	}
	lim, ok := p.reserve(w, r, now, ipKey(ip), userKey(ctx, p.Users, u.Login))
	if !ok {
		return
	}
	ukey := handlers.UserKey(ctx, p.Users, u.ID)
	var why error
	_, err = p.Env.Store.UpdateUser(ctx, ukey, func(us *state.UserState) error {
		why = nil
		if _, err := p.OTP.ReserveAttempt(us, state.FactorFIDO2, now); err != nil {
			return err
		}
		if !pa.Response.AuthenticatorData.Flags.HasUserVerified() {
			why = errors.New("a passkey signs in alone only with user verification")
			return nil
		}
		if _, why = p.Passkeys.VerifyLogin(ukey, us, c, pa, now); why == nil {
			us.ClearAttempts(state.FactorFIDO2)
		}
		return nil
	})
	if be, ok := errors.AsType[*state.BlockedError](err); ok {
		w.Header().Set("Retry-After", handlers.RetryAfter(be.Until, now))
		p.fail(w, r, http.StatusTooManyRequests, "Too many wrong answers. Please wait a few minutes and sign in again.")
		return
	} else if err != nil {
		p.Limiter.Release(ctx, lim)
		p.storeFailed(w, r, "passkey sign-in", err)
		return
	}
	if why != nil {
		reason := "wrong_answer"
		if errors.Is(why, state.ErrSignCount) {
			reason = "cloned_authenticator"
			p.Env.Logger.Warn("portal passkey refused: its signature counter went back (cloned authenticator?)", zap.String("session", s.Key.Short()))
		} else {
			p.Env.Logger.Info("portal passkey sign-in refused", zap.String("session", s.Key.Short()), zap.String("why", why.Error()))
		}
		p.Env.Emit(ctx, handlers.Event{
			Name: handlers.EventLoginFailed, UserKey: ukey, Login: u.Login, Session: s.Key,
			Family: "portal", Factor: state.FactorFIDO2, Reason: reason, ClientIP: ip,
		})
		refuse(http.StatusUnauthorized, "That passkey could not sign you in.")
		return
	}
	authed := s.Clone()
	authed.ExpiryTime = now.Add(p.Env.Policy.Lifetime) // the start's session ended with its ceremony
	authed.UserID, authed.LoginName, authed.GroupName = u.ID, u.Login, u.Group
	authed.UserAttributes = nil
	authed.SetDisplayName(u.Name)
	if err := p.OTP.Pass(authed, state.FactorFIDO2, now); err != nil {
		p.storeFailed(w, r, "pass", err)
		return
	}
	id, err := p.rotate(ctx, s.Key, authed, now)
	if err != nil {
		p.storeFailed(w, r, "rotate", err)
		return
	}
	p.Limiter.Reset(ctx, userKey(ctx, p.Users, u.Login))
	p.dropCurrent(ctx, r)
	p.setSession(w, r, id)
	p.Env.Logger.Info("portal sign-in complete with a passkey alone", zap.String("session", state.KeyOf(id).Short()), zap.String("user", u.ID))
	finish(w, r, target(r))
}
