package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/state"
)

func init() {
	caddy.RegisterModule(Gate{})
}

// Gate passes a request to the next handler only if it carries a live
// session (cookie, or the configured header) whose status is
// "authenticated" and that meets the gate's rules. Browsers (GET or HEAD
// accepting text/html) without one are redirected to the login URL with
// the original URI in a "redirect" query parameter; other clients get 401
// with a WWW-Authenticate header and a small JSON body. A session that
// fails require_group gets 403, and 503 answers when the store cannot be
// read. When the server has error routes (handle_errors), these refusals
// (302, 401, 403, 503) go through Caddy's error path instead, with their
// Location or WWW-Authenticate header already set, so the routes can
// restyle them; {err.message} then says why.
//
// Client-sent headers named in upstream_headers are always removed before
// the trusted values are set. On pass it sets these placeholders:
//
//	{http.auth.user.id}          the session's userId
//	{http.auth.user.login}       its login name
//	{http.auth.user.group}       its group
//	{http.auth.user.name}        its display name (else its login name)
//	{http.auth.user.<attr>}      each user attribute of the session
//	{http.authsession.status}    its status ("authenticated")
//	{http.authsession.session}   an 8-character hash prefix of the session key (never the id)
//	{http.authsession.auth_time} when it was authenticated (RFC 3339)
type Gate struct {
	// LoginURL is where browsers without a session are redirected.
	// Default: /auth/login.
	LoginURL string `json:"login_url,omitempty"`

	// SessionHeader is a request header that may carry the session id,
	// for API clients of the protected app, e.g. "Authorization". The
	// cookie is used when the header is absent. Default: none.
	SessionHeader string `json:"session_header,omitempty"`

	// SessionScheme is the scheme before the id in SessionHeader, e.g.
	// "Bearer". Default: none (the whole header value is the id).
	SessionScheme string `json:"session_scheme,omitempty"`

	// UpstreamHeaders maps request header names to session fields
	// (user_id, login, name, group, status, id_store, auth_time, factors,
	// session_index, attr.<name>) set for the next handler. Default: none.
	UpstreamHeaders map[string]string `json:"upstream_headers,omitempty"`

	// RequireGroups, if not empty, lists the groups allowed through;
	// others get 403. Default: any group.
	RequireGroups []string `json:"require_groups,omitempty"`

	// MaxAuthAge refuses sessions authenticated longer ago than this
	// (step-up). Default: 0 (no limit).
	MaxAuthAge caddy.Duration `json:"max_auth_age,omitempty"`

	// RequireFactor refuses sessions that did not pass this factor
	// (e.g. ChallengeOMATOTP). Default: none.
	RequireFactor string `json:"require_factor,omitempty"`

	// PassSessionCredentials keeps the session cookie and the session
	// header on the request to the upstream, for apps that need the id.
	// Default: false (both are removed; the upstream never sees the id).
	PassSessionCredentials bool `json:"pass_session_credentials,omitempty"`

	app       *App
	gate      *handlers.Gate
	decisions [handlers.Outcomes]prometheus.Counter
	providers *providerCache
}

// CaddyModule returns the Caddy module information.
func (Gate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.authsession_gate",
		New: func() caddy.Module { return new(Gate) },
	}
}

// Provision sets defaults and binds the gate to the app's store.
func (g *Gate) Provision(ctx caddy.Context) error {
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	g.app = app
	if g.LoginURL == "" {
		g.LoginURL = "/auth/login"
	}
	g.gate = &handlers.Gate{
		Store:         app.store,
		Now:           state.Now,
		Logger:        ctx.Logger(),
		CookieName:    app.Cookie.Name,
		Header:        g.SessionHeader,
		Scheme:        g.SessionScheme,
		LoginURL:      g.LoginURL,
		RequireGroups: g.RequireGroups,
		MaxAuthAge:    time.Duration(g.MaxAuthAge),
		RequireFactor: g.RequireFactor,
		TouchInterval: time.Duration(app.TouchInterval),

		PassCredentials: g.PassSessionCredentials,
	}
	g.providers = new(providerCache)
	for o := range g.decisions {
		g.decisions[o] = app.metrics.gate.WithLabelValues(handlers.Outcome(o).String())
	}
	for name, field := range g.UpstreamHeaders {
		g.gate.SetHeaders = append(g.gate.SetHeaders, handlers.HeaderField{Name: http.CanonicalHeaderKey(name), Field: field})
	}
	return nil
}

// Validate checks the gate's configuration.
func (g *Gate) Validate() error {
	if _, err := url.Parse(g.LoginURL); err != nil {
		return fmt.Errorf("login_url: %v", err)
	}
	for name, field := range g.UpstreamHeaders {
		if name == "" {
			return errors.New("upstream_headers: empty header name")
		}
		if !handlers.ValidField(field) {
			return fmt.Errorf("upstream_headers: %s: unknown session field %q", name, field)
		}
	}
	if g.SessionScheme != "" && g.SessionHeader == "" {
		return errors.New("session_scheme needs session_header")
	}
	return nil
}

// ServeHTTP lets authenticated requests through and answers the others.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	s, outcome := g.gate.Decide(r)
	g.decisions[outcome].Inc()
	if outcome != handlers.Pass {
		return g.refuse(w, r, outcome)
	}
	// One provider resolves every placeholder on demand, instead of
	// setting each one on every request; providers are made once per
	// session snapshot (see providerCache), so a hit allocates nothing.
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Map(g.providers.get(s))
	return next.ServeHTTP(w, r)
}

// refuse answers a refused request. When the server has error routes
// (handle_errors), the refusal goes through Caddy's error path with its
// headers (Location, WWW-Authenticate) already set, so those routes can
// restyle it; otherwise the gate writes its standard answer, as a server
// without error routes would only write the bare status.
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, o handlers.Outcome) error {
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok &&
		srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		status := g.gate.PrepareRefusal(w, r, o)
		return caddyhttp.Error(status, refusalErrors[o])
	}
	g.gate.Refuse(w, r, o)
	return nil
}

// refusalErrors are the errors handed to handle_errors ({err.message}),
// one per outcome, made once.
var refusalErrors = [handlers.Outcomes]error{
	handlers.Redirected:   errors.New("authsession: no authenticated session, redirected to the login page"),
	handlers.Unauthorized: errors.New("authsession: a valid authenticated session is required"),
	handlers.Forbidden:    errors.New("authsession: the session's group may not use this resource"),
	handlers.Unavailable:  errors.New("authsession: session store unavailable"),
	handlers.StepUp:       errors.New("authsession: a fresh sign-in is required, redirected to the login page"),
}

// placeholder resolves the gate's placeholders for the session s.
func placeholder(s *state.Session, key string) (any, bool) {
	if name, ok := strings.CutPrefix(key, "http.auth.user."); ok {
		switch name {
		case "id":
			return s.UserID, true
		case "login":
			return handlers.FieldValue(s, "login"), true
		case "group":
			return s.GroupName, true
		case "name":
			return handlers.FieldValue(s, "name"), true
		}
		v, ok := s.UserAttributes[name]
		return v, ok
	}
	switch key {
	case "http.authsession.status":
		return string(s.Status), true
	case "http.authsession.session":
		return s.Key.Short(), true
	case "http.authsession.auth_time":
		return handlers.Timestamp(s.AuthTime), true
	}
	return nil, false
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Gate)(nil)
	_ caddy.Validator             = (*Gate)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gate)(nil)
)
