package portal

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/handlers/delivery"
	"github.com/authsession/caddy-authsession/state"
)

// Portal serves the browser sign-in pages under Prefix (default /auth):
//
//	GET  /login          the sign-in form (login and password)
//	POST /login          checks the password; opens a pre-auth session in
//	                     "pending verification" and sends to the factor page
//	GET  /otp            the second-factor page (choice, a code by mail or
//	                     SMS, TOTP)
//	POST /otp/send       sends a new code to the user (by mail, or by SMS
//	                     with factor=sms)
//	POST /otp            checks the code; the session id is rotated and the
//	                     new session is "authenticated"
//	GET  /logout         a sign-out button; POST /logout signs out
//	GET  /sessions       the user's sessions; POST /sessions/revoke signs
//	                     out one (by its index) or all
//	GET  /account        the account security page: passkeys, recovery
//	                     codes, trusted browsers (see account.go and
//	                     passwordless.go)
//
// Every form carries a CSRF token (see csrf.go); failures count per client
// IP and per login (Limiter) and answer 429 with Retry-After once the limit
// is reached.
type Portal struct {
	Env *handlers.Env
	// Users is the users file; nil means nobody can sign in.
	Users state.Directory
	OTP   state.OTPPolicy
	TOTP  state.TOTPPolicy
	// Key is the server's key for the codes' keyed hashes.
	Key []byte
	// CSRFKey signs the CSRF tokens.
	CSRFKey []byte
	// Delivery sends codes; nil disables the email and SMS factors.
	// Channels tells which channels it serves (nil: every channel).
	Delivery delivery.Deliverer
	Channels func(channel string) bool
	// TrustFor is how long a device the user chose to trust skips the
	// second factor; 0 hides the option.
	TrustFor time.Duration
	// Cookie is the session cookie's configuration.
	Cookie CookieSpec
	// Prefix is the path under which the pages are served. Default: /auth.
	Prefix string
	// Pages renders the pages (see LoadPages).
	Pages *Pages
	// Title and Logo (an image URL) appear on every page.
	Title string
	Logo  string
	// Passkeys, when set, lets users register passkeys on the account
	// page and use them as their second factor.
	Passkeys *handlers.Passkeys
	// Limiter counts failures per IP and per login. Default: a
	// FailureLimiter in memory with its defaults.
	Limiter FailureCounter
	// PasswordlessLimiter counts the passwordless sign-ins started per
	// client address (each start stores a ceremony for a client nobody
	// knows yet); PasswordlessBudget counts those of every client together
	// under one key, within a ceremony's lifetime, which bounds the
	// ceremonies held at once. Both count before anything is stored, so
	// parallel starts cannot pass the limits. Defaults: FailureLimiters in
	// memory of DefaultPasswordlessPerIP a minute and DefaultPasswordlessAll
	// per state.CeremonyTTL.
	PasswordlessLimiter FailureCounter
	PasswordlessBudget  FailureCounter
	// ClientIP returns the client's address; default: the host of
	// RemoteAddr.
	ClientIP func(*http.Request) string
	// OIDC are the OpenID Providers users can sign in through (see
	// oidc.go); NoPasswords hides the password form when there are some.
	OIDC        []*OIDCProvider
	NoPasswords bool

	mux *http.ServeMux
}

// CookieSpec is the session cookie's name, scope and Secure flag.
type CookieSpec struct {
	Name   string
	Domain string
	Path   string
	// Insecure drops the Secure attribute (plain-http localhost only).
	Insecure bool
}

// HostOnly reports whether the cookie name has the __Host- prefix: the
// browser then only keeps the cookies Secure, host-only and on Path=/, so
// no sibling subdomain can set or shadow them.
func (c CookieSpec) HostOnly() bool { return strings.HasPrefix(c.Name, "__Host-") }

// Check reports a spec a browser would refuse: a __Host- name with a
// Domain, a Path other than /, or insecure; a __Secure- name with
// insecure.
func (c CookieSpec) Check() error {
	switch {
	case c.HostOnly() && c.Insecure:
		return errors.New("a __Host- cookie name needs Secure cookies: drop insecure")
	case c.HostOnly() && c.Domain != "":
		return errors.New("a __Host- cookie name cannot have a domain")
	case c.HostOnly() && c.Path != "" && c.Path != "/":
		return errors.New("a __Host- cookie name needs path /")
	case strings.HasPrefix(c.Name, "__Secure-") && c.Insecure:
		return errors.New("a __Secure- cookie name needs Secure cookies: drop insecure")
	}
	return nil
}

// Init checks the portal and builds its routes; call it once before use.
func (p *Portal) Init() error {
	if p.Env == nil || p.Pages == nil {
		return errors.New("portal needs an env and pages")
	}
	if len(p.CSRFKey) == 0 {
		return errors.New("portal needs a csrf key")
	}
	if p.Prefix == "" {
		p.Prefix = "/auth"
	}
	p.Prefix = "/" + strings.Trim(p.Prefix, "/")
	if p.Cookie.Name == "" {
		p.Cookie.Name = "authsession"
	}
	if p.Cookie.Path == "" {
		p.Cookie.Path = "/"
	}
	if err := p.Cookie.Check(); err != nil {
		return err
	}
	if p.Users == nil {
		// Nobody can sign in; checks still cost a bcrypt comparison.
		p.Users = new(state.Users).Directory("")
	}
	if p.Limiter == nil {
		p.Limiter = &FailureLimiter{}
	}
	if p.PasswordlessLimiter == nil {
		p.PasswordlessLimiter = &FailureLimiter{Max: DefaultPasswordlessPerIP, Window: time.Minute}
	}
	if p.PasswordlessBudget == nil {
		p.PasswordlessBudget = &FailureLimiter{Max: DefaultPasswordlessAll, Window: state.CeremonyTTL}
	}
	if p.Title == "" {
		p.Title = "Sign in"
	}
	m := http.NewServeMux()
	m.HandleFunc("GET "+p.Prefix+"/login", p.loginPage)
	m.HandleFunc("POST "+p.Prefix+"/login", p.form(p.login))
	m.HandleFunc("GET "+p.Prefix+"/otp", p.factorPage)
	m.HandleFunc("POST "+p.Prefix+"/otp", p.form(p.verify))
	m.HandleFunc("POST "+p.Prefix+"/otp/send", p.form(p.send))
	m.HandleFunc("GET "+p.Prefix+"/logout", p.logoutPage)
	m.HandleFunc("POST "+p.Prefix+"/logout", p.form(p.logout))
	m.HandleFunc("GET "+p.Prefix+"/sessions", p.sessionsPage)
	m.HandleFunc("POST "+p.Prefix+"/sessions/revoke", p.form(p.revoke))
	if err := p.initOIDC(m); err != nil {
		return err
	}
	p.registerAccount(m)
	m.HandleFunc("GET "+p.Prefix+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p.Prefix+"/login", http.StatusFound)
	})
	m.HandleFunc(p.Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		p.fail(w, r, http.StatusNotFound, "This page does not exist.")
	})
	p.mux = m
	return nil
}

// Owns reports whether path is under the portal's prefix.
func (p *Portal) Owns(path string) bool {
	return path == p.Prefix || strings.HasPrefix(path, p.Prefix+"/")
}

// ServeHTTP serves the portal's pages.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy",
		"default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data: https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	if r.URL.Path == p.Prefix {
		http.Redirect(w, r, p.Prefix+"/login", http.StatusFound)
		return
	}
	p.mux.ServeHTTP(w, r)
}

// form wraps a POST handler: it bounds and parses the form and checks the
// CSRF token (403 on failure) before calling h.
func (p *Portal) form(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, handlers.MaxBody)
		if err := r.ParseForm(); err != nil {
			p.fail(w, r, http.StatusBadRequest, "The form could not be read.")
			return
		}
		if !p.checkCSRF(r) {
			p.Env.Logger.Info("portal form refused: bad csrf token", zap.String("path", r.URL.Path))
			p.fail(w, r, http.StatusForbidden, "This form has expired or did not come from this site. Please go back, reload the page and try again.")
			return
		}
		h(w, r)
	}
}

// clientIP returns the client's address.
func (p *Portal) clientIP(r *http.Request) string {
	if p.ClientIP != nil {
		if ip := p.ClientIP(r); ip != "" {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// setSession sets the session cookie to id; the forms rendered later in
// this response are signed for it.
func (p *Portal) setSession(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, p.cookie(p.Cookie.Name, id, p.Cookie.Path, 0))
	setRequestCookie(r, p.Cookie.Name, id)
}

// clearSession expires the session cookie.
func (p *Portal) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, p.cookie(p.Cookie.Name, "", p.Cookie.Path, -1))
	setRequestCookie(r, p.Cookie.Name, "")
}

// cookie returns one of the portal's cookies (session, CSRF, trusted
// device): HttpOnly, SameSite=Lax, Secure unless the cookie block says
// insecure, with the configured Domain. Under a __Host- session cookie
// name every one of them is host-only, Secure and on Path=/ (browsers
// refuse a __Host- cookie otherwise; Init refuses a contradicting spec).
func (p *Portal) cookie(name, value, path string, maxAge int) *http.Cookie {
	c := &http.Cookie{ //nolint:gosec // G124: Secure unless the cookie block says insecure (plain-HTTP development)
		Name: name, Value: value, Path: path, Domain: p.Cookie.Domain, MaxAge: maxAge,
		HttpOnly: true, Secure: !p.Cookie.Insecure, SameSite: http.SameSiteLaxMode,
	}
	if p.Cookie.HostOnly() {
		c.Path, c.Domain, c.Secure = "/", "", true
	}
	return c
}

// current returns the session named by the cookie, or nil when there is
// none (absent, malformed, unknown or expired). A store failure is
// returned as an error.
func (p *Portal) current(ctx context.Context, r *http.Request) (*state.Session, error) {
	c, err := r.Cookie(p.Cookie.Name)
	if err != nil || state.ValidateID(c.Value) != nil {
		return nil, nil
	}
	s, err := p.Env.Store.Get(ctx, state.KeyOf(c.Value))
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil
	}
	return s, err
}

// target returns the redirect target of r (form or query) if it is a
// same-origin path, else "".
func target(r *http.Request) string {
	t := r.FormValue("redirect")
	if handlers.SafeRedirect(t) {
		return t
	}
	return ""
}

// withTarget appends the redirect target to a portal URL.
func withTarget(u, t string) string {
	if t == "" {
		return u
	}
	return handlers.LoginRedirect(u, t)
}

// finish sends the browser to the redirect target or /.
func finish(w http.ResponseWriter, r *http.Request, t string) {
	if t == "" {
		t = "/"
	}
	http.Redirect(w, r, t, http.StatusSeeOther)
}

// storeFailed answers a store error with a 503 page.
func (p *Portal) storeFailed(w http.ResponseWriter, r *http.Request, op string, err error) {
	p.Env.Logger.Error("portal store call failed", zap.String("op", op), zap.Error(err))
	p.fail(w, r, http.StatusServiceUnavailable, "The sign-in service is unavailable right now. Please try again in a moment.")
}

// reserve counts an attempt for the client IP and the login before it is
// checked (see FailureCounter.Reserve), or answers 429 with Retry-After if
// one of them has reached the failure limit. A failed attempt keeps the
// reservation; a successful one releases it.
func (p *Portal) reserve(w http.ResponseWriter, r *http.Request, now time.Time, keys ...string) (Reservation, bool) {
	res, until, blocked := p.Limiter.Reserve(r.Context(), now, keys...)
	if !blocked {
		return res, true
	}
	w.Header().Set("Retry-After", handlers.RetryAfter(until, now))
	p.fail(w, r, http.StatusTooManyRequests, "Too many failed attempts. Please wait a few minutes and try again.")
	return Reservation{}, false
}

// ipKey is the limiter key of a client address: an IPv6 address counts
// as its /64 (handlers.AddressKey).
func ipKey(ip string) string { return "ip:" + handlers.AddressKey(ip) }

// userKey is the limiter key of a login: the user's canonical key (see
// state.UserKey), so that every spelling of a login counts as one.
func userKey(ctx context.Context, users state.Directory, login string) string {
	k, err := state.DirectoryKey(ctx, users, login)
	if err != nil {
		k = login
	}
	return "user:" + k
}
