package portal

import (
	"context"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// logoutPage shows a sign-out button (signing out is a POST, so a link on
// another site cannot do it).
func (p *Portal) logoutPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	d := pageData{}
	if s, err := p.current(ctx, r); err == nil && s != nil {
		d.Login = handlers.FieldValue(s, "login")
		d.Name = s.UserAttributes[state.NameAttribute]
		p.allowEndSession(w, r, s)
	}
	p.render(w, r, http.StatusOK, "logout", d)
}

// logout deletes the browser's session and clears its cookie.
func (p *Portal) logout(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	next := p.Prefix + "/login?signed_out=1"
	if c, err := r.Cookie(p.Cookie.Name); err == nil && state.ValidateID(c.Value) == nil {
		if s, err := p.Env.DeleteSession(ctx, "portal", handlers.RevokedLogout, p.clientIP(r), state.KeyOf(c.Value)); err == nil {
			p.Env.Logger.Info("portal sign-out", zap.String("session", s.Key.Short()))
			if u := p.endSessionURL(r, s); u != "" {
				next = u
			}
		}
	}
	p.clearSession(w, r)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signedIn returns the browser's authenticated session, or sends the
// browser to sign in (coming back to this page).
func (p *Portal) signedIn(w http.ResponseWriter, r *http.Request) (*state.Session, bool) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	s, err := p.current(ctx, r)
	if err != nil {
		p.storeFailed(w, r, "get", err)
		return nil, false
	}
	if s == nil || !s.Authenticated(p.Env.Now()) {
		http.Redirect(w, r, handlers.LoginRedirect(p.Prefix+"/login", p.Prefix+"/sessions"), http.StatusSeeOther)
		return nil, false
	}
	return s, true
}

// userSessions returns the browser's authenticated session and all the
// sessions of its user. Otherwise it has answered (sign-in or 503).
func (p *Portal) userSessions(ctx context.Context, w http.ResponseWriter, r *http.Request) (*state.Session, []*state.Session, bool) {
	s, ok := p.signedIn(w, r)
	if !ok {
		return nil, nil, false
	}
	all, err := p.Env.Store.ByUser(ctx, s.UserID)
	if err != nil {
		p.storeFailed(w, r, "by user", err)
		return nil, nil, false
	}
	return s, all, true
}

// sessionsPage lists the user's live sessions.
func (p *Portal) sessionsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	s, all, ok := p.userSessions(ctx, w, r)
	if !ok {
		return
	}
	d := pageData{Login: handlers.FieldValue(s, "login"), Name: s.UserAttributes[state.NameAttribute]}
	for _, o := range all {
		d.Sessions = append(d.Sessions, sessionRow{
			Index: o.Index, Current: o.Key == s.Key, Created: o.CreateTime, LastAccess: o.LastAccessTime,
			IP: o.ClientIP, Status: string(o.EffectiveStatus(p.Env.Now())), Factors: strings.Join(o.Factors, ", "),
		})
	}
	if us, err := p.Env.Store.GetUser(ctx, s.UserID); err == nil && us != nil {
		for _, dv := range us.Devices {
			if strings.HasPrefix(dv.ID, devicePrefix) && p.Env.Now().Before(dv.Until) {
				d.TrustedDevices++
			}
		}
	}
	if r.URL.Query().Get("revoked") == "1" {
		d.Notice = "The session was signed out."
	}
	p.render(w, r, http.StatusOK, "sessions", d)
}

// revoke signs out one of the user's sessions (form field index, the
// session index shown on the page, never an id) or, with all set, every
// one of them including this browser's, and forgets the user's trusted
// browsers.
func (p *Portal) revoke(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := p.Env.StoreContext(r)
	defer cancel()
	s, all, ok := p.userSessions(ctx, w, r)
	if !ok {
		return
	}
	everyone := r.PostFormValue("all") == "1"
	index := r.PostFormValue("index")
	self, n := false, 0
	for _, o := range all {
		if !everyone && (index == "" || o.Index != index) {
			continue
		}
		if _, err := p.Env.DeleteSession(ctx, "portal", handlers.RevokedLogout, p.clientIP(r), o.Key); err == nil {
			n++
			self = self || o.Key == s.Key
		}
	}
	if everyone {
		if err := p.forgetDevices(ctx, s.UserID); err != nil {
			p.Env.Logger.Warn("portal could not forget the trusted devices", zap.String("user", s.UserID), zap.Error(err))
		}
	}
	p.Env.Logger.Info("portal sessions signed out", zap.String("session", s.Key.Short()), zap.Int("count", n))
	if self {
		p.clearSession(w, r)
		http.Redirect(w, r, p.Prefix+"/login?signed_out=1", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, p.Prefix+"/sessions?revoked=1", http.StatusSeeOther)
}
