package caddymodule

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authsession/caddy-authsession/handlers/portal"
	"github.com/authsession/caddy-authsession/state"
)

func init() {
	caddy.RegisterModule(Portal{})
}

// Portal serves the browser sign-in pages under Prefix: sign-in with the
// users file's passwords, a second factor (a code by mail or through the
// SMS webhook of the app's OTP delivery, or TOTP) with "trust this
// device", sign-out and the user's sessions. Requests
// outside the prefix go to the next handler, so it is placed before the
// gate. The session cookie is the app's (cookie { ... }).
type Portal struct {
	// Prefix is the path the pages are served under. Default: /auth.
	Prefix string `json:"prefix,omitempty"`
	// Templates is a directory whose files (layout.html, login.html,
	// otp.html, logout.html, sessions.html, error.html) replace the
	// embedded pages of the same name. Default: none.
	Templates string `json:"templates,omitempty"`
	// Title is shown on every page. Default: "Sign in".
	Title string `json:"title,omitempty"`
	// Logo is the URL of an image shown on every page. Default: none.
	Logo string `json:"logo,omitempty"`
	// MaxFailures is the number of failed passwords or codes allowed per
	// client IP and per login in FailureWindow; more answer 429.
	// Default: 10.
	MaxFailures int `json:"max_failures,omitempty"`
	// FailureWindow is the window of MaxFailures. Default: 5m.
	FailureWindow caddy.Duration `json:"failure_window,omitempty"`
	// TrustDevice is how long a browser the user chose to trust after a
	// second factor signs in with the password alone. Default: 30 days;
	// a negative value ("trust_device off") removes the option.
	TrustDevice caddy.Duration `json:"trust_device,omitempty"`

	portal *portal.Portal
}

// CaddyModule returns the Caddy module information.
func (Portal) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.authsession_portal",
		New: func() caddy.Module { return new(Portal) },
	}
}

// Provision builds the pages and binds the portal to the app.
func (p *Portal) Provision(ctx caddy.Context) error {
	app, err := appFrom(ctx)
	if err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	pages, err := portal.LoadPages(repl.ReplaceAll(p.Templates, ""))
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, app.otp.key)
	m.Write([]byte("authsession portal csrf key"))
	hp := &portal.Portal{
		Env: app.env, Users: app.otp.dirs, OTP: app.otp.policy, TOTP: app.otp.totp, Key: app.otp.key,
		CSRFKey: m.Sum(nil), Prefix: p.Prefix, Pages: pages, Title: p.Title, Logo: p.Logo,
		Cookie: portal.CookieSpec{
			Name: app.Cookie.Name, Domain: app.Cookie.Domain, Path: app.Cookie.Path,
			Insecure: app.Cookie.Insecure,
		},
		Limiter:  portal.NewFailureCounter(app.store, p.MaxFailures, time.Duration(p.FailureWindow), ctx.Logger()),
		ClientIP: clientIP,
		Passkeys: app.passkeys,
	}
	hp.PasswordlessLimiter, hp.PasswordlessBudget = portal.NewPasswordlessLimits(app.store, ctx.Logger())
	if app.otp.async != nil {
		hp.Delivery = app.otp.async
		hp.Channels = app.otpChannels
	}
	switch {
	case p.TrustDevice == 0:
		hp.TrustFor = 30 * 24 * time.Hour
	case p.TrustDevice > 0:
		hp.TrustFor = time.Duration(p.TrustDevice)
	}
	if hp.OIDC, err = app.oidcProviders(ctx.Logger()); err != nil {
		return err
	}
	switch {
	case len(hp.OIDC) > 0:
		// The password form is shown only when a user has a password.
		hp.NoPasswords = app.otp.users == nil || !slices.ContainsFunc(app.otp.users.All(), func(u state.User) bool { return u.PasswordHash != "" })
	case app.otp.users == nil:
		ctx.Logger().Warn("authsession portal: no users_file configured, nobody can sign in")
	}
	if err := hp.Init(); err != nil {
		return err
	}
	p.portal = hp
	return nil
}

// clientIP is Caddy's view of the client address (trusted_proxies aware).
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// Validate checks the configuration.
func (p *Portal) Validate() error {
	if p.Prefix != "" && (!strings.HasPrefix(p.Prefix, "/") || strings.ContainsAny(p.Prefix, "?#{}* ")) {
		return errors.New("prefix must be a plain path starting with /")
	}
	if p.MaxFailures < 0 || p.FailureWindow < 0 {
		return errors.New("max_failures and failure_window must not be negative")
	}
	return nil
}

// ServeHTTP serves the pages under the prefix and passes the rest on.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !p.portal.Owns(r.URL.Path) {
		return next.ServeHTTP(w, r)
	}
	p.portal.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Portal)(nil)
	_ caddy.Validator             = (*Portal)(nil)
	_ caddyhttp.MiddlewareHandler = (*Portal)(nil)
	_ caddyfile.Unmarshaler       = (*Portal)(nil)
)
