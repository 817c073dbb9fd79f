package portal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0): the
// provider POSTs a logout token (a JWT signed with its keys) naming a user
// (sub), a provider session (sid) or both; every session of ours it names
// is deleted, in the shared store (so on every instance).

const (
	// logoutTokenMaxAge is how old a logout token's iat may be; its jti is
	// remembered a little longer, so a replay is refused within the whole
	// window in which the token would otherwise be accepted.
	logoutTokenMaxAge = 10 * time.Minute
	// logoutTokenSkew is how far in the future an iat may be.
	logoutTokenSkew = 2 * time.Minute
)

// logoutError answers a refused logout token: 400 with the spec's error
// shape.
func logoutError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// oidcBackchannel verifies the logout token (signature, issuer, audience,
// exp, iat, the back-channel event, no nonce, a jti not seen before) and
// deletes the sessions it names. 200 on success (also when no session
// was left), 400 with {"error": "invalid_request"} otherwise, 503 when the
// store cannot answer.
func (p *Portal) oidcBackchannel(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	o := p.provider(r.PathValue("name"))
	if o == nil || !o.Backchannel {
		logoutError(w, http.StatusNotFound, "invalid_request", "no back-channel logout for this provider")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, handlers.MaxBody)
	if err := r.ParseForm(); err != nil {
		logoutError(w, http.StatusBadRequest, "invalid_request", "the form could not be read")
		return
	}
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		logoutError(w, http.StatusBadRequest, "invalid_request", "logout_token is missing")
		return
	}
	now := p.Env.Now()
	d, err := o.discover(r.Context(), now)
	if err != nil {
		p.Env.Logger.Error("oidc back-channel logout: provider unavailable", zap.String("provider", o.Name), zap.Error(err))
		logoutError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the provider's keys cannot be read")
		return
	}
	vctx, cancel := context.WithTimeout(o.ctx(r.Context()), o.timeout())
	defer cancel()
	lt, err := d.verifier(o, p.Env.Now).VerifyLogout(vctx, raw)
	if err == nil {
		switch {
		case lt.IssuedAt.IsZero():
			err = errors.New("the logout token has no iat")
		case lt.IssuedAt.After(now.Add(logoutTokenSkew)):
			err = errors.New("the logout token's iat is in the future")
		case lt.IssuedAt.Before(now.Add(-logoutTokenMaxAge)):
			err = errors.New("the logout token is too old")
		}
	}
	if err != nil {
		p.Env.Logger.Info("oidc back-channel logout refused", zap.String("provider", o.Name), zap.Error(err))
		logoutError(w, http.StatusBadRequest, "invalid_request", "the logout token is not valid")
		return
	}
	ctx, cancelStore := p.Env.StoreContext(r)
	defer cancelStore()
	// The jti is spent first, cluster-wide: a record that exists already
	// is a replay.
	seen := state.NewSession("oidc-jti\x00"+o.Name+"\x00"+lt.Issuer+"\x00"+lt.TokenID, nil, p.Env.Time(), logoutTokenMaxAge+logoutTokenSkew+time.Minute, 0)
	seen.IDStoreName = "oidc:" + o.Name
	switch err := p.Env.Store.Create(ctx, seen); {
	case errors.Is(err, state.ErrExists):
		p.Env.Logger.Info("oidc back-channel logout refused: token replayed", zap.String("provider", o.Name))
		logoutError(w, http.StatusBadRequest, "invalid_request", "the logout token was already used")
		return
	case err != nil:
		p.Env.Logger.Error("oidc back-channel logout: store unavailable", zap.String("provider", o.Name), zap.Error(err))
		logoutError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable")
		return
	}
	n, err := p.backchannelDelete(ctx, o, lt.Subject, lt.SessionID)
	if err != nil {
		// The provider may try again: the jti is given back.
		_, _ = p.Env.Store.Delete(context.WithoutCancel(ctx), seen.Key)
		p.Env.Logger.Error("oidc back-channel logout: store unavailable", zap.String("provider", o.Name), zap.Error(err))
		logoutError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable")
		return
	}
	p.Env.Logger.Info("oidc back-channel logout", zap.String("provider", o.Name), zap.Int("sessions", n))
	w.WriteHeader(http.StatusOK)
}

// backchannelDelete deletes the sessions of provider o with the sub and
// sid given (either may be empty, not both) and returns how many went.
// With a sub (and no linking by email), the user's sessions are listed
// through the store's user index; otherwise every session is scanned.
func (p *Portal) backchannelDelete(ctx context.Context, o *OIDCProvider, sub, sid string) (int, error) {
	match := func(s *state.Session) bool {
		a := s.UserAttributes
		return a[attrOIDCProvider] == o.Name && (sub == "" || a[attrOIDCSub] == sub) && (sid == "" || a[attrOIDCSid] == sid)
	}
	var found []*state.Session
	if sub != "" && !o.LinkByEmail && (o.Claims.ID == "" || o.Claims.ID == "sub") {
		key, err := state.UserKey(nil, o.Name+":"+sub)
		if err != nil {
			return 0, nil
		}
		all, err := p.Env.Store.ByUser(ctx, key)
		if err != nil {
			return 0, err
		}
		for _, s := range all {
			if match(s) {
				found = append(found, s)
			}
		}
	} else if err := p.Env.Store.Scan(ctx, func(s *state.Session) bool {
		if match(s) {
			found = append(found, s)
		}
		return true
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range found {
		_, err := p.Env.Store.Delete(ctx, s.Key)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
		p.Env.Emit(ctx, handlers.Event{
			Name: handlers.EventSessionRevoked, UserKey: s.UserID, Login: s.LoginName, Session: s.Key,
			Family: "oidc", Factor: FactorOIDCPrefix + o.Name, Reason: handlers.RevokedBackchannel,
		})
	}
	return n, nil
}
