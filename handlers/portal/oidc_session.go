package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// openOIDCSession opens the session of a user the provider o vouched for:
// the browser's former session is dropped, a new one made under a new id,
// authenticated with the factor OIDC:<name> or, when the user has one of
// our second factors and the provider's policy asks for it, waiting for
// it on the factor page. A fresh sign-in asked for by a gate (reauth)
// does not let a trusted browser skip that factor.
func (p *Portal) openOIDCSession(ctx context.Context, w http.ResponseWriter, r *http.Request, o *OIDCProvider, ou oidcUser, t string, reauth bool) {
	if !handlers.SafeRedirect(t) {
		t = ""
	}
	now := p.Env.Time()
	ip := p.clientIP(r)
	u, linked, err := p.oidcAccount(ctx, o, ou)
	if errors.Is(err, errSubjectConflict) {
		p.Env.Logger.Warn("oidc sign-in refused: another account of the provider signs in under this user key (subjects differing only in letter case)",
			zap.String("provider", o.Name), zap.String("user", u.ID))
		p.Env.Emit(ctx, handlers.Event{Name: handlers.EventLoginFailed, UserKey: u.ID, Family: "oidc", Factor: FactorOIDCPrefix + o.Name, Reason: "subject_conflict", ClientIP: ip})
		p.fail(w, r, http.StatusForbidden, "This account cannot sign in here: its name at "+o.title()+" collides with another account's. Please contact your administrator.")
		return
	}
	if err != nil {
		p.storeFailed(w, r, "oidc user", err)
		return
	}
	factor := FactorOIDCPrefix + o.Name
	var fs []factorChoice
	if o.SecondFactor != SecondFactorOff {
		fs = p.factors(u)
	}
	if len(fs) == 0 && o.SecondFactor == SecondFactorRequired {
		p.Env.Logger.Warn("oidc sign-in refused: user has no usable second factor", zap.String("provider", o.Name), zap.String("user", u.ID))
		p.Env.Emit(ctx, handlers.Event{Name: handlers.EventLoginFailed, UserKey: u.ID, Login: u.Login, Family: "oidc", Factor: factor, Reason: "no_second_factor", ClientIP: ip})
		p.fail(w, r, http.StatusForbidden, "Your account has no second factor set up. Please contact your administrator.")
		return
	}
	p.dropCurrent(ctx, r)
	id := state.NewID()
	s := p.Env.NewSession(id, now)
	s.UserID, s.LoginName, s.ClientIP = u.ID, u.Login, ip
	s.GroupName = u.Group
	if !linked || s.GroupName == "" {
		s.GroupName = firstGroup(ou.groups, o.AllowedGroups)
	}
	s.UserAttributes = map[string]string{attrOIDCProvider: o.Name, attrOIDCSub: ou.sub}
	if ou.sid != "" {
		s.UserAttributes[attrOIDCSid] = ou.sid
	}
	if linked {
		s.UserAttributes[attrOIDCLinked] = "1"
		if u.Store != "" {
			s.IDStoreName = u.Store
		}
	}
	s.SetDisplayName(u.Name)
	if ou.mail != "" && state.ValidateUserName(ou.mail) == nil {
		s.UserAttributes[attrMail] = ou.mail
	}
	if len(ou.groups) > 0 {
		s.UserAttributes[attrGroups] = strings.Join(ou.groups, ",")
	}
	done := len(fs) == 0 || (!reauth && p.trusted(ctx, r, u, now))
	if done {
		err = p.OTP.Pass(s, factor, now)
		if err == nil && len(fs) > 0 {
			err = p.OTP.Pass(s, FactorTrustedDevice, now)
		}
	} else if err = s.SetStatus(state.StatusPendingVerification, now, "", 0); err == nil {
		s.Factors = []string{factor}
	}
	if err != nil {
		p.storeFailed(w, r, "oidc session", err)
		return
	}
	if err := p.Env.CreateSessionIn(ctx, "oidc", s); err != nil {
		p.storeFailed(w, r, "create", err)
		return
	}
	p.setSession(w, r, id)
	if done {
		p.Env.Logger.Info("oidc sign-in complete", zap.String("provider", o.Name), zap.String("session", s.Key.Short()), zap.String("user", u.ID))
		// CreateSessionIn emitted session_created and session_authenticated.
		finish(w, r, t)
		return
	}
	p.Env.Logger.Info("oidc sign-in accepted; second factor next", zap.String("provider", o.Name), zap.String("session", s.Key.Short()), zap.String("user", u.ID))
	if len(fs) == 1 && sent(fs[0].Key) {
		if !p.sendCode(w, r, s.Key, u, fs[0].Key, now) {
			return
		}
		http.Redirect(w, r, withTarget(p.Prefix+"/otp?factor="+fs[0].Key, t), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, withTarget(p.Prefix+"/otp", t), http.StatusSeeOther)
}

// firstGroup returns the first of groups that is allowed (any, when
// allowed is empty), or "".
func firstGroup(groups, allowed []string) string {
	for _, g := range groups {
		if len(allowed) == 0 || slices.Contains(allowed, g) {
			return g
		}
	}
	return ""
}

// oidcAccount returns the user a provider's account signs in as: with
// LinkByEmail and a verified email, the identity stores' user whose mail
// it is (linked, see linkedAccount); otherwise the provider's user
// "<name>:<id>", whose second factor, if any, is the TOTP secret kept in
// its per-user state. A store that cannot answer is an error.
func (p *Portal) oidcAccount(ctx context.Context, o *OIDCProvider, ou oidcUser) (state.User, bool, error) {
	if o.LinkByEmail && ou.mailVerified && ou.mail != "" {
		u, ok, err := p.linkedAccount(ctx, ou.mail)
		if err != nil || ok {
			return u, ok, err
		}
	}
	account := o.Name + ":" + ou.id
	key, err := state.UserKey(nil, account)
	if err != nil {
		return state.User{}, false, err
	}
	us, err := p.claimSubject(ctx, key, account)
	if err != nil {
		return state.User{ID: key}, false, err
	}
	return providerUserOf(key, ou.login, ou.mail, us), false, nil
}

// errSubjectConflict is a provider account refused because another one,
// whose subject differs only in letter case, signs in under the same key.
var errSubjectConflict = errors.New("the user key belongs to another account of the provider")

// claimSubject binds the user key to the provider account named (in its
// exact letter case) on the key's first sign-in, and refuses any other
// account after: keys fold case (state.UserKey), so two accounts whose subjects
// differ only in case would otherwise be one user here, sharing sessions,
// factors and the upstream identity. A key signed in before this binding
// existed is bound by its next sign-in. It returns the key's per-user
// state, as read or as bound, for the sign-in to read its factor from.
func (p *Portal) claimSubject(ctx context.Context, key, account string) (*state.UserState, error) {
	us, err := p.Env.Store.GetUser(ctx, key)
	switch {
	case err == nil && us.Subject == account:
		return us, nil
	case errors.Is(err, state.ErrNotFound):
		us = nil
	case err != nil:
		return nil, err
	}
	if us != nil && us.Subject != "" {
		return nil, errSubjectConflict
	}
	// Unbound (or new): bind it, unless another sign-in bound it meanwhile.
	return p.Env.Store.UpdateUser(ctx, key, func(us *state.UserState) error {
		switch us.Subject {
		case "", account:
			us.Subject = account
			return nil
		default:
			return errSubjectConflict
		}
	})
}

// providerUser returns the provider's user under key with the second
// factor kept in its per-user state.
func (p *Portal) providerUser(ctx context.Context, key, login, mail string) (state.User, bool, error) {
	us, err := p.Env.Store.GetUser(ctx, key)
	switch {
	case errors.Is(err, state.ErrNotFound):
		us = nil
	case err != nil:
		return state.User{}, false, err
	}
	return providerUserOf(key, login, mail, us), false, nil
}

// providerUserOf is the provider's user under key given its per-user
// state us (nil: none yet).
func providerUserOf(key, login, mail string, us *state.UserState) state.User {
	u := state.User{ID: key, Login: login, Mail: mail}
	if us != nil && us.TOTPSecret != "" {
		u.TOTPSecret = us.TOTPSecret
		u.Factors = []string{state.FactorTOTP}
	}
	return u
}

// sessionUser returns the user of a session waiting for its second
// factor: the users-file user for a password or linked sign-in, the
// provider's user (with the factor in its per-user state) for a
// provider's.
func (p *Portal) sessionUser(ctx context.Context, s *state.Session) (state.User, bool, error) {
	if s.UserAttributes[attrOIDCProvider] != "" && s.UserAttributes[attrOIDCLinked] == "" {
		if p.provider(s.UserAttributes[attrOIDCProvider]) == nil {
			return state.User{}, false, nil
		}
		u, _, err := p.providerUser(ctx, s.UserID, s.LoginName, s.UserAttributes[attrMail])
		return u, err == nil, err
	}
	return p.Users.Lookup(ctx, s.UserID)
}

// endSessionURL returns where a browser signing out of the session s goes
// to end its session at the provider too (RP-initiated logout), or "":
// the provider's end_session_endpoint with our client_id and the sign-in
// page as post_logout_redirect_uri (to register at the provider).
func (p *Portal) endSessionURL(r *http.Request, s *state.Session) string {
	o := p.provider(s.UserAttributes[attrOIDCProvider])
	if o == nil || !o.EndSession {
		return ""
	}
	d, err := o.discover(r.Context(), p.Env.Time())
	if err != nil || d.endSession == "" {
		return ""
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", o.ClientID)
	q.Set("post_logout_redirect_uri", p.postLogoutURL(r))
	u.RawQuery = q.Encode()
	return u.String()
}

// postLogoutURL is the absolute URL of the sign-in page's signed-out
// notice, where the provider sends the browser back after its sign-out.
func (p *Portal) postLogoutURL(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil && p.Cookie.Insecure {
		scheme = "http"
	}
	return scheme + "://" + r.Host + p.Prefix + "/login?signed_out=1"
}

// allowEndSession lets the sign-out form of a provider's session go on
// to the provider's end_session_endpoint: browsers apply form-action to
// the redirects that follow a form, so its origin joins 'self'.
func (p *Portal) allowEndSession(w http.ResponseWriter, r *http.Request, s *state.Session) {
	u, err := url.Parse(p.endSessionURL(r, s))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"),
		"form-action 'self'", "form-action 'self' "+u.Scheme+"://"+u.Host, 1))
}
