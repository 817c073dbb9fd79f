package portal

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// maxLoginLen bounds the login and password read from the form (bcrypt
// reads 72 bytes at most anyway).
const maxLoginLen = 256

// loginPage shows the sign-in form. A browser that is already signed in
// goes straight on to the redirect target, unless a gate asked for a fresh
// sign-in (reauth=1: the session is too old for its max_auth_age, or lacks
// its require_factor); then the form is shown again, and the sign-in it
// starts replaces the session.
func (p *Portal) loginPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	q := r.URL.Query()
	reauth := q.Get("reauth") == "1"
	if !reauth {
		if s, err := p.current(ctx, r); err == nil && s != nil && s.Authenticated(p.Env.Now()) {
			finish(w, r, target(r))
			return
		}
	}
	d := pageData{Redirect: target(r), Passwordless: p.passwordless()}
	if q.Get("signed_out") == "1" {
		d.Notice = "You are signed out."
	}
	if reauth {
		d.Reauth = true
		d.Notice = "Please sign in again to continue."
		if k := neededFactor(q.Get("need")); k != "" {
			d.Need = q.Get("need")
			d.Notice = "This page needs a sign-in with " + factorLabel(k) + ": please sign in again."
		}
	}
	p.render(w, r, http.StatusOK, "login", d)
}

// neededFactor is the portal factor key that gives a session the factor
// named by a gate's require_factor (the login page's need parameter), or
// "" if the portal cannot ask for that factor by itself.
func neededFactor(f string) string {
	if f == state.FactorFIDO2 {
		return factorKeyPasskey
	}
	for _, k := range []string{factorKeyEmail, factorKeySMS, factorKeyTOTP} {
		if challengeFactor(k) == f {
			return k
		}
	}
	return ""
}

// factorLabel names a portal factor key for the sign-in page's notice.
func factorLabel(k string) string {
	switch k {
	case factorKeyEmail:
		return "a code sent by email"
	case factorKeySMS:
		return "a code sent by SMS"
	case factorKeyTOTP:
		return "your authenticator app"
	case factorKeyPasskey:
		return "a passkey"
	}
	return k
}

// login checks the login and password. On success it replaces any session
// of the browser by a new one in "pending verification" and sends the
// browser to the second-factor page (mailing a code right away when email
// is the user's only factor). A fresh sign-in asked for by a gate
// (reauth=1) never takes the trusted-browser shortcut, and with a needed
// factor (need) goes straight to that factor's form.
func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	now := p.Env.Time()
	login := strings.TrimSpace(r.PostFormValue("login"))
	password := r.PostFormValue("password")
	t := target(r)
	ip := p.clientIP(r)
	reauth := r.PostFormValue("reauth") == "1"
	need, needName := "", ""
	if reauth {
		if need = neededFactor(r.PostFormValue("need")); need != "" {
			needName = r.PostFormValue("need")
		}
	}
	if login == "" || password == "" || len(login) > maxLoginLen || len(password) > maxLoginLen ||
		state.ValidateUserName(login) != nil {
		p.render(w, r, http.StatusBadRequest, "login", pageData{
			Redirect: t, Login: login, Reauth: reauth, Need: needName,
			Error: "Enter your login and password.",
		})
		return
	}
	res, ok := p.reserve(w, r, now, ipKey(ip), userKey(r.Context(), p.Users, login))
	if !ok {
		return
	}
	u, ok, err := p.Users.CheckPassword(r.Context(), login, password)
	if err != nil {
		// The identity store could not answer: no failure is counted,
		// and the user is told to try again, not that the password is
		// wrong.
		p.Limiter.Release(r.Context(), res)
		p.Env.Logger.Error("portal sign-in: identity store unavailable", zap.String("client_ip", ip), zap.Error(err))
		p.render(w, r, http.StatusServiceUnavailable, "login", pageData{
			Redirect: t, Login: login, Reauth: reauth, Need: needName,
			Error: "Sign-in is unavailable right now. Please try again in a moment.",
		})
		return
	}
	if !ok {
		// The reservation stays: it is the failure.
		p.Env.Logger.Info("portal sign-in failed", zap.String("client_ip", ip))
		p.loginFailed(r, login, ip)
		p.render(w, r, http.StatusUnauthorized, "login", pageData{
			Redirect: t, Login: login, Reauth: reauth, Need: needName,
			Error: "Wrong login or password.",
		})
		return
	}
	p.Limiter.Release(r.Context(), res)
	factors := p.registeredFactors(r.Context(), u)
	if len(factors) == 0 {
		p.Env.Logger.Warn("portal sign-in refused: user has no usable second factor", zap.String("user", u.ID))
		p.fail(w, r, http.StatusForbidden, "Your account has no second factor set up. Please contact your administrator.")
		return
	}
	if need != "" && !hasFactor(factors, need) {
		p.Env.Logger.Info("portal fresh sign-in refused: user lacks the factor the page needs",
			zap.String("user", u.ID), zap.String("factor", need))
		p.fail(w, r, http.StatusForbidden, "This page needs a sign-in with "+factorLabel(need)+
			", which your account does not have. Set it up on your account page, or contact your administrator.")
		return
	}
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	p.dropCurrent(ctx, r)

	id := state.NewID()
	s := p.Env.NewSession(id, now)
	s.UserID, s.LoginName, s.GroupName, s.ClientIP = u.ID, u.Login, u.Group, ip
	s.SetDisplayName(u.Name)
	if u.Store != "" {
		s.IDStoreName = u.Store
	}
	trusted := !reauth && p.trusted(ctx, r, u, now)
	if trusted {
		err := p.OTP.Pass(s, FactorTrustedDevice, now)
		if err != nil {
			p.storeFailed(w, r, "login", err)
			return
		}
	} else if err := s.SetStatus(state.StatusPendingVerification, now, "", 0); err != nil {
		p.storeFailed(w, r, "login", err)
		return
	}
	if err := p.Env.CreateSessionIn(ctx, "portal", s); err != nil {
		p.storeFailed(w, r, "create", err)
		return
	}
	p.setSession(w, r, id)
	if trusted {
		p.Limiter.Reset(r.Context(), userKey(r.Context(), p.Users, u.Login))
		p.Env.Logger.Info("portal sign-in complete on a trusted device", zap.String("session", s.Key.Short()), zap.String("user", u.ID))
		finish(w, r, t)
		return
	}
	p.Env.Logger.Info("portal password accepted", zap.String("session", s.Key.Short()), zap.String("user", u.ID))
	only := need
	if only == "" && len(factors) == 1 {
		only = factors[0].Key
	}
	if sent(only) {
		if !p.sendCode(w, r, s.Key, u, only, now) {
			return
		}
	}
	if sent(only) || need != "" {
		http.Redirect(w, r, withTarget(p.Prefix+"/otp?factor="+only, t), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, withTarget(p.Prefix+"/otp", t), http.StatusSeeOther)
}

// loginFailed emits login_failed for a wrong password. A login that names
// no user is left out of the event (it may be a password typed in the wrong
// field): the reason says unknown_user.
func (p *Portal) loginFailed(r *http.Request, login, ip string) {
	if u, known, err := p.Users.Lookup(r.Context(), login); err == nil && known {
		p.Env.EmitLoginFailed(r.Context(), "portal", "password", "wrong_password", u.ID, u.Login, ip)
		return
	}
	p.Env.EmitLoginFailed(r.Context(), "portal", "password", "unknown_user", "", "", ip)
}

// dropCurrent deletes the browser's current session, if any: a new sign-in
// never reuses an id the browser had before.
func (p *Portal) dropCurrent(ctx context.Context, r *http.Request) {
	c, err := r.Cookie(p.Cookie.Name)
	if err != nil || state.ValidateID(c.Value) != nil {
		return
	}
	_, _ = p.Env.DeleteSession(ctx, "portal", handlers.RevokedLogout, p.clientIP(r), state.KeyOf(c.Value))
}

const (
	factorKeyEmail = "email"
	factorKeySMS   = "sms"
	factorKeyTOTP  = "totp"
)

// factors lists the second factors u can use here: a code by mail or by
// the SMS webhook when the user has the factor, a destination and a
// delivery for its channel; TOTP when the user has a secret.
func (p *Portal) factors(u state.User) []factorChoice {
	var fs []factorChoice
	if u.HasFactor(state.FactorEmail) && u.Mail != "" && p.canDeliver(delivery.ChannelEmail) {
		fs = append(fs, factorChoice{Key: factorKeyEmail, Label: "Email me a code"})
	}
	if u.HasFactor(state.FactorSMS) && u.Phone != "" && p.canDeliver(delivery.ChannelSMS) {
		fs = append(fs, factorChoice{Key: factorKeySMS, Label: "Text me a code"})
	}
	if u.HasFactor(state.FactorTOTP) && u.TOTPSecret != "" {
		fs = append(fs, factorChoice{Key: factorKeyTOTP, Label: "Use my authenticator app"})
	}
	return fs
}

// canDeliver reports whether codes can be sent on channel.
func (p *Portal) canDeliver(channel string) bool {
	if p.Delivery == nil {
		return false
	}
	return p.Channels == nil || p.Channels(channel)
}

// sent reports whether factor k is a code the portal sends.
func sent(k string) bool { return k == factorKeyEmail || k == factorKeySMS }

// hasFactor reports whether fs has the factor k.
func hasFactor(fs []factorChoice, k string) bool {
	return slices.ContainsFunc(fs, func(f factorChoice) bool { return f.Key == k })
}
