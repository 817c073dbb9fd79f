package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/state"
)

// Outcome is the gate's decision for one request.
type Outcome int

// The gate's outcomes.
const (
	Pass Outcome = iota
	Redirected
	Unauthorized
	Forbidden
	Unavailable
	// StepUp is a redirect to the login page asking for a fresh sign-in
	// (reauth=1): the browser's session is authenticated but too old for
	// MaxAuthAge, or lacks RequireFactor. API clients get Unauthorized.
	StepUp
)

// Outcomes is the number of outcomes, for arrays indexed by Outcome.
const Outcomes = int(StepUp) + 1

// String names the outcome (used as a metrics label).
func (o Outcome) String() string {
	return [...]string{"pass", "redirect", "unauthorized", "forbidden", "unavailable", "step_up"}[o]
}

// HeaderField maps an upstream request header to a session field.
type HeaderField struct {
	Name  string
	Field string
}

// Gate lets a request through only with a live, authenticated session.
// Check writes the refusal itself; on Pass the caller serves the request.
type Gate struct {
	Store  state.Store
	Now    state.Clock
	Logger *zap.Logger

	// CookieName is the session cookie's name.
	CookieName string
	// Header, if set, is a request header that may carry the session id,
	// after the optional Scheme (e.g. Authorization: Bearer <id>).
	Header string
	Scheme string
	// LoginURL is where browsers are sent; the original URI follows in
	// the redirect query parameter.
	LoginURL string
	// SetHeaders are set on the upstream request from the session, after
	// any client-sent header of the same name is removed.
	SetHeaders []HeaderField
	// RequireGroups, if any, must contain one of the session's groups (403;
	// see InGroups).
	RequireGroups []string
	// MaxAuthAge, if set, refuses sessions authenticated longer ago.
	MaxAuthAge time.Duration
	// RequireFactor, if set, must be among the factors passed.
	RequireFactor string
	// TouchInterval is the least time between two LastAccessTime
	// refreshes of a session.
	TouchInterval time.Duration
	// PassCredentials keeps the session cookie and the session header on
	// the upstream request. By default both are removed: the upstream
	// learns who the user is from SetHeaders, never the live session id.
	PassCredentials bool

	// plan is what Decide does with SetHeaders, made on first use;
	// SetHeaders must not change after that.
	plan atomic.Pointer[headerPlan]
}

// headerPlan is SetHeaders made ready for every request: the names in
// their canonical form, so that setting one is a plain map assignment
// (http.Header.Set canonicalises the name again on every call).
type headerPlan struct {
	set []HeaderField
}

// headers returns the gate's headerPlan, made from SetHeaders on first
// use (two requests racing to make it make the same plan).
func (g *Gate) headers() *headerPlan {
	if p := g.plan.Load(); p != nil {
		return p
	}
	p := &headerPlan{}
	for _, f := range g.SetHeaders {
		p.set = append(p.set, HeaderField{Name: http.CanonicalHeaderKey(f.Name), Field: f.Field})
	}
	g.plan.Store(p)
	return p
}

// Check decides r and, unless it passes, writes the standard refusal
// (Refuse). On Pass it returns the session (a shared read-only snapshot)
// and has set the configured upstream headers.
func (g *Gate) Check(w http.ResponseWriter, r *http.Request) (*state.Session, Outcome) {
	s, o := g.Decide(r)
	if o != Pass {
		g.Refuse(w, r, o)
	}
	return s, o
}

// Decide decides r and writes nothing. On Pass it returns the session (a
// shared read-only snapshot) and has set the configured upstream headers
// on r; otherwise the caller answers with Refuse, or with PrepareRefusal
// and an error path of its own.
func (g *Gate) Decide(r *http.Request) (*state.Session, Outcome) {
	hp := g.headers()
	hp.dropClientHeaders(r.Header)
	var scan cookieLine
	id, sc := g.sessionID(r, &scan)
	if id == "" || len(id) > state.MaxIDLength {
		return nil, g.refusal(r)
	}
	s, o := g.lookup(r, state.KeyOf(id))
	if s == nil {
		return nil, o
	}
	now := g.Now()
	if !s.Authenticated(now) {
		return nil, g.refusal(r)
	}
	// Add and After, not Sub: Sub checks its result for overflow by
	// adding it back, which costs as much as the rest of these tests.
	if g.MaxAuthAge > 0 && now.After(s.AuthTime.Add(g.MaxAuthAge)) {
		return nil, g.stepUp(r)
	}
	if g.RequireFactor != "" && !slices.Contains(s.Factors, g.RequireFactor) {
		return nil, g.stepUp(r)
	}
	if len(g.RequireGroups) > 0 && !InGroups(g.RequireGroups, s) {
		return nil, Forbidden
	}
	if g.TouchInterval > 0 && state.Elapsed(now, s.LastAccessTime, g.TouchInterval) {
		// Stores make Touch cheap (memory, or queued for later writing).
		_ = g.Store.Touch(context.WithoutCancel(r.Context()), s.Key, now.UTC().Truncate(time.Second))
	}
	if !g.PassCredentials {
		g.dropCredentials(r, sc)
	}
	for _, h := range hp.set {
		if v := FieldValue(s, h.Field); v != "" {
			r.Header[h.Name] = []string{v}
		}
	}
	return s, Pass
}

// lookup returns the session under key, or nil and the outcome. A store
// in this process (state.Peeker) hands over the session without reading
// its own clock, live or not: Decide checks liveness with the gate's.
func (g *Gate) lookup(r *http.Request, key state.Key) (*state.Session, Outcome) {
	if p, ok := g.Store.(state.Peeker); ok {
		if s, ok := p.Peek(key); ok {
			return s, Pass
		}
		return nil, g.refusal(r)
	}
	s, err := g.Store.Get(r.Context(), key)
	if err != nil {
		if !errors.Is(err, state.ErrNotFound) {
			if ce := g.Logger.Check(zap.WarnLevel, "gate cannot read session store"); ce != nil {
				ce.Write(zap.Error(err))
			}
			return nil, Unavailable
		}
		return nil, g.refusal(r)
	}
	return s, Pass
}

// dropClientHeaders removes every client-sent header that an upstream
// could take for one of SetHeaders: the same name in any letter case, and
// with '_' for '-' (CGI-style upstreams read X-Auth_User as X-Auth-User).
func (p *headerPlan) dropClientHeaders(h http.Header) {
	if len(p.set) == 0 {
		return
	}
	for name := range h {
		for _, f := range p.set {
			if sameHeaderName(name, f.Name) {
				delete(h, name)
				break
			}
		}
	}
}

// sameHeaderName compares header names without regard to case, '_'
// counting as '-'.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x != y && lowerASCII(x) != lowerASCII(y) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// dropCredentials removes the session id from r before it goes upstream:
// the session cookie from every Cookie line (other cookies stay) and the
// session header (with a Scheme, only values that carry it). sc is the
// scan sessionID made of a single Cookie line, if it made one.
func (g *Gate) dropCredentials(r *http.Request, sc *cookieLine) {
	if g.Header != "" {
		if g.Scheme == "" {
			r.Header.Del(g.Header)
		} else if vs := r.Header.Values(g.Header); len(vs) > 0 {
			kept := make([]string, 0, len(vs))
			for _, v := range vs {
				if len(v) > len(g.Scheme) && strings.EqualFold(v[:len(g.Scheme)], g.Scheme) && v[len(g.Scheme)] == ' ' {
					continue
				}
				kept = append(kept, v)
			}
			r.Header.Del(g.Header)
			for _, v := range kept {
				r.Header.Add(g.Header, v)
			}
		}
	}
	if g.CookieName == "" {
		return
	}
	if sc != nil { // nothing changed the Cookie line since sessionID read it
		switch kept, changed := sc.without(g.CookieName); {
		case !changed:
		case kept == "":
			delete(r.Header, "Cookie")
		default:
			sc.lines[0] = kept
		}
		return
	}
	lines := r.Header["Cookie"]
	n := 0
	for _, line := range lines {
		if kept, changed := withoutCookie(line, g.CookieName); changed {
			if kept == "" {
				continue
			}
			line = kept
		}
		lines[n] = line
		n++
	}
	switch {
	case n == len(lines):
	case n == 0:
		delete(r.Header, "Cookie")
	default:
		r.Header["Cookie"] = lines[:n]
	}
}

// Status is the HTTP status of a refusal with outcome o (0 for Pass).
func (o Outcome) Status() int {
	switch o {
	case Redirected, StepUp:
		return http.StatusFound
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case Unavailable:
		return http.StatusServiceUnavailable
	default:
		return 0
	}
}

// Refuse writes the standard answer for a refusal with outcome o: a
// redirect to the login page, or 401 (with WWW-Authenticate), 403 or 503
// with a small JSON body.
func (g *Gate) Refuse(w http.ResponseWriter, r *http.Request, o Outcome) {
	switch o {
	case Redirected, StepUp:
		http.Redirect(w, r, g.loginRedirect(r, o), http.StatusFound)
	case Unauthorized:
		w.Header().Set("WWW-Authenticate", wwwAuthenticate)
		WriteJSON(w, http.StatusUnauthorized, "", gateBody{Error: "unauthorized", Message: "a valid authenticated session is required"})
	case Forbidden:
		WriteJSON(w, http.StatusForbidden, "", gateBody{Error: "forbidden", Message: "your group may not use this resource"})
	case Unavailable:
		WriteJSON(w, http.StatusServiceUnavailable, "", gateBody{Error: "unavailable", Message: "session store unavailable"})
	default: // Pass: nothing to refuse
	}
}

// PrepareRefusal sets the headers of the refusal with outcome o on w
// (Location for a redirect, WWW-Authenticate for 401), writes nothing,
// and returns its status, for a caller whose own error path renders the
// body.
func (g *Gate) PrepareRefusal(w http.ResponseWriter, r *http.Request, o Outcome) int {
	switch o {
	case Redirected, StepUp:
		w.Header().Set("Location", g.loginRedirect(r, o))
	case Unauthorized:
		w.Header().Set("WWW-Authenticate", wwwAuthenticate)
	default: // no header of its own
	}
	return o.Status()
}

const wwwAuthenticate = `Bearer realm="authsession"`

// sessionID finds the session id in the configured header or the cookie.
// When it read a single Cookie line it fills sc with what it found there,
// for dropCredentials.
func (g *Gate) sessionID(r *http.Request, sc *cookieLine) (string, *cookieLine) {
	if g.Header != "" {
		if v := r.Header.Get(g.Header); v != "" {
			if g.Scheme == "" {
				return strings.TrimSpace(v), nil
			}
			if len(v) > len(g.Scheme) && strings.EqualFold(v[:len(g.Scheme)], g.Scheme) && v[len(g.Scheme)] == ' ' {
				return strings.TrimSpace(v[len(g.Scheme)+1:]), nil
			}
		}
	}
	if lines := r.Header["Cookie"]; len(lines) == 1 && g.CookieName != "" {
		sc.scan(lines[0], g.CookieName)
		sc.lines = lines
		return sc.value, sc
	}
	v, _ := cookieValue(r.Header, g.CookieName)
	return v, nil
}

type gateBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// refusal decides how to refuse a request without a usable session:
// browsers are sent to the login page, everyone else gets 401.
func (g *Gate) refusal(r *http.Request) Outcome {
	// A gated login page must not send browsers to itself in a loop.
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(r.Header.Get("Accept"), "text/html") && g.LoginURL != "" && !g.isLoginPage(r) {
		return Redirected
	}
	return Unauthorized
}

// stepUp refuses an authenticated session that does not meet the gate's
// MaxAuthAge or RequireFactor: browsers are sent to sign in again
// (StepUp), everyone else gets 401.
func (g *Gate) stepUp(r *http.Request) Outcome {
	if o := g.refusal(r); o != Redirected {
		return o
	}
	return StepUp
}

// loginRedirect is the Location of a redirect to the login page: the
// original URI in "redirect" and, for StepUp, reauth=1 (and the required
// factor in "need"), which tell the portal to ask for a fresh sign-in
// instead of sending a signed-in browser straight back.
func (g *Gate) loginRedirect(r *http.Request, o Outcome) string {
	loc := LoginRedirect(g.LoginURL, r.URL.RequestURI())
	if o != StepUp {
		return loc
	}
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	q := u.Query()
	q.Set("reauth", "1")
	if g.RequireFactor != "" {
		q.Set("need", g.RequireFactor)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// isLoginPage reports whether r asks for the login URL's own path (on this
// host, when the login URL names one).
func (g *Gate) isLoginPage(r *http.Request) bool {
	u, err := url.Parse(g.LoginURL)
	if err != nil {
		return false
	}
	if u.Host != "" && !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	return u.Path == r.URL.Path
}
