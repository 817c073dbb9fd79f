package portal

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/authsession/caddy-authsession/state"
)

// OpenID Connect sign-in: the portal is a relying party of each configured
// provider (authorization code flow with PKCE, state and nonce bound to
// the browser). Its routes, under the prefix:
//
//	GET  /oidc/<name>/login        sends the browser to the provider
//	GET  /oidc/<name>/callback     the provider's answer: checks it and
//	                               opens the session (then the second
//	                               factor, per SecondFactor)
//	POST /oidc/<name>/backchannel  OpenID Connect Back-Channel Logout 1.0:
//	                               deletes the sessions a logout token names
//
// A session made this way is an ordinary session: its user key is
// "<name>:<sub>" (folded like every user key), or the users-file user it
// is linked to by verified email; its factors start with "OIDC:<name>";
// its attributes keep the provider's name, sub and sid (oidc_provider,
// oidc_sub, oidc_sid) and the user's groups.

// Second-factor policies of a provider (OIDCProvider.SecondFactor).
const (
	// SecondFactorIfRegistered asks for one of our second factors after
	// the provider when the user has one (the default).
	SecondFactorIfRegistered = "if_registered"
	// SecondFactorRequired refuses users without one of our factors.
	SecondFactorRequired = "required"
	// SecondFactorOff never asks for one: the provider's sign-in is
	// enough.
	SecondFactorOff = "off"
)

// Session attributes of a provider's sessions.
const (
	attrOIDCProvider = "oidc_provider"
	attrOIDCSub      = "oidc_sub"
	attrOIDCSid      = "oidc_sid"
	// attrOIDCLinked is set when the session's user is the users-file
	// user the provider's account was linked to by verified email.
	attrOIDCLinked = "oidc_linked"
	attrMail       = "mail"
	// AttrGroups holds the user's groups, comma-separated (see
	// handlers.InGroups).
	attrGroups = "groups"
)

// FactorOIDCPrefix starts the factor recorded for a provider's sign-in:
// "OIDC:<name>".
const FactorOIDCPrefix = "OIDC:"

// OIDCClaims names the ID token claims the session's user fields come
// from.
type OIDCClaims struct {
	// ID is the claim of the user's stable id. Default: sub.
	ID string
	// Login is the claim of the login shown and sent upstream. Default:
	// preferred_username (then email, then the id).
	Login string
	// Mail is the claim of the mail address. Default: email.
	Mail string
	// Group is the claim of the groups (a string or a list). Default:
	// groups.
	Group string
}

// OIDCProvider is one OpenID Provider the portal signs users in through.
type OIDCProvider struct {
	// Name is the provider's name in URLs, user keys and factors
	// ([a-z0-9_-]).
	Name string
	// Title is shown on the button ("Sign in with <Title>"). Default:
	// Name.
	Title string
	// Issuer is the provider's issuer URL (discovery at
	// <issuer>/.well-known/openid-configuration).
	Issuer       string
	ClientID     string
	ClientSecret string
	// Scopes requested. Default: openid email profile.
	Scopes []string
	Claims OIDCClaims
	// AllowedGroups, when not empty, admits only users in one of them.
	AllowedGroups []string
	// SecondFactor is one of the SecondFactor* policies. Default:
	// if_registered.
	SecondFactor string
	// Backchannel serves the back-channel logout endpoint.
	Backchannel bool
	// LinkByEmail signs a user whose verified email is the mail of
	// exactly one users-file user in as that user.
	LinkByEmail bool
	// EndSession sends the browser to the provider's end_session_endpoint
	// (RP-initiated logout) when a session of the provider signs out.
	EndSession bool
	// HTTPClient talks to the provider. Default: one with a 10 s timeout.
	HTTPClient *http.Client
	// Timeout bounds discovery and the code exchange. Default: 10 s.
	Timeout time.Duration
	// Logger logs discovery (set by the portal when nil).
	Logger *zap.Logger

	mu       sync.Mutex
	disc     *discovered
	failedAt time.Time
	lastErr  error
}

// discovered is what the provider's discovery document gave.
type discovered struct {
	provider   *oidc.Provider
	issuer     string
	keys       *oidc.RemoteKeySet
	endSession string
}

// verifier returns a verifier of the provider's tokens for our client,
// reading the time from now. The key set is shared: a token signed with a
// key not seen yet makes it fetch the provider's keys again (rotation).
func (d *discovered) verifier(o *OIDCProvider, now func() time.Time) *oidc.IDTokenVerifier {
	return oidc.NewVerifier(d.issuer, d.keys, &oidc.Config{ClientID: o.ClientID, Now: now})
}

// retryDiscoveryAfter is how long a failed discovery is answered from
// memory before it is tried again.
const retryDiscoveryAfter = 5 * time.Second

// pendingLifetime bounds a sign-in at the provider: its state, nonce and
// PKCE verifier are good for this long, once.
const pendingLifetime = 10 * time.Minute

// Check reports a provider configuration that cannot work.
func (o *OIDCProvider) Check() error {
	if o.Name == "" || strings.Trim(o.Name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		return fmt.Errorf("oidc provider name %q: use lower-case letters, digits, - and _", o.Name)
	}
	if o.Issuer == "" || o.ClientID == "" {
		return fmt.Errorf("oidc provider %s needs an issuer and a client_id", o.Name)
	}
	if !strings.HasPrefix(o.Issuer, "https://") && !strings.HasPrefix(o.Issuer, "http://") {
		return fmt.Errorf("oidc provider %s: the issuer must be an http(s) URL", o.Name)
	}
	switch o.SecondFactor {
	case "", SecondFactorIfRegistered, SecondFactorRequired, SecondFactorOff:
	default:
		return fmt.Errorf("oidc provider %s: second_factor must be required, if_registered or off", o.Name)
	}
	return nil
}

func (o *OIDCProvider) title() string {
	if o.Title != "" {
		return o.Title
	}
	return o.Name
}

func (o *OIDCProvider) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 10 * time.Second
}

func (o *OIDCProvider) client() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return &http.Client{Timeout: o.timeout()}
}

func (o *OIDCProvider) claim(c, def string) string {
	if c != "" {
		return c
	}
	return def
}

// ctx returns ctx carrying the provider's HTTP client for go-oidc and
// x/oauth2.
func (o *OIDCProvider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, o.client())
}

// discover returns the provider's discovery, fetching it on first use
// (bounded by Timeout). A failure is remembered for a few seconds, so that
// a provider that is down does not hold every sign-in for the full
// timeout; it is tried again after.
func (o *OIDCProvider) discover(ctx context.Context, now time.Time) (*discovered, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.disc != nil {
		return o.disc, nil
	}
	if o.lastErr != nil && now.Sub(o.failedAt) < retryDiscoveryAfter {
		return nil, o.lastErr
	}
	// The key set go-oidc builds keeps the context for its own fetches
	// (without its deadline): key rotations are fetched when a token
	// names a key not seen yet.
	dctx, cancel := context.WithTimeout(o.ctx(context.WithoutCancel(ctx)), o.timeout())
	defer cancel()
	p, err := oidc.NewProvider(dctx, o.Issuer)
	if err != nil {
		o.failedAt, o.lastErr = now, fmt.Errorf("oidc provider %s: discovery at %s failed: %w", o.Name, o.Issuer, err)
		if o.Logger != nil {
			o.Logger.Warn("oidc discovery failed; retried on the next sign-in", zap.String("provider", o.Name), zap.Error(err))
		}
		return nil, o.lastErr
	}
	var meta struct {
		Issuer     string `json:"issuer"`
		JWKS       string `json:"jwks_uri"`
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKS == "" {
		o.failedAt, o.lastErr = now, fmt.Errorf("oidc provider %s: the discovery document has no jwks_uri", o.Name)
		return nil, o.lastErr
	}
	d := &discovered{
		provider: p, issuer: meta.Issuer, endSession: meta.EndSession,
		keys: oidc.NewRemoteKeySet(o.ctx(context.WithoutCancel(ctx)), meta.JWKS),
	}
	o.disc, o.lastErr = d, nil
	if o.Logger != nil {
		o.Logger.Info("oidc provider discovered", zap.String("provider", o.Name), zap.String("issuer", o.Issuer))
	}
	return d, nil
}

// Warm runs discovery in the background, so that the first sign-in does
// not wait for it; a failure is logged and retried on first use.
func (o *OIDCProvider) Warm(now func() time.Time) {
	go func() { _, _ = o.discover(context.Background(), now()) }()
}

// oauth returns the x/oauth2 configuration for redirectURI.
func (o *OIDCProvider) oauth(d *discovered, redirectURI string) *oauth2.Config {
	scopes := o.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	return &oauth2.Config{
		ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Endpoint: d.provider.Endpoint(), RedirectURL: redirectURI, Scopes: scopes,
	}
}

// provider returns the configured provider named name, or nil.
func (p *Portal) provider(name string) *OIDCProvider {
	for _, o := range p.OIDC {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// initOIDC checks the providers and adds their routes to m.
func (p *Portal) initOIDC(m *http.ServeMux) error {
	seen := map[string]bool{}
	for _, o := range p.OIDC {
		if err := o.Check(); err != nil {
			return err
		}
		if seen[o.Name] {
			return fmt.Errorf("oidc provider %s configured twice", o.Name)
		}
		seen[o.Name] = true
		if o.Logger == nil {
			o.Logger = p.Env.Logger
		}
	}
	if len(p.OIDC) == 0 {
		return nil
	}
	m.HandleFunc("GET "+p.Prefix+"/oidc/{name}/login", p.oidcLogin)
	m.HandleFunc("GET "+p.Prefix+"/oidc/{name}/callback", p.oidcCallback)
	m.HandleFunc("POST "+p.Prefix+"/oidc/{name}/backchannel", p.oidcBackchannel)
	return nil
}

// providerButton is a "Sign in with" button of the sign-in page.
type providerButton struct {
	Title string
	URL   string
}

// oidcButtons returns the sign-in page's provider buttons, carrying the
// redirect target t and, for a fresh sign-in asked for by a gate, reauth=1.
func (p *Portal) oidcButtons(t string, reauth bool) []providerButton {
	bs := make([]providerButton, 0, len(p.OIDC))
	for _, o := range p.OIDC {
		start := p.Prefix + "/oidc/" + o.Name + "/login"
		if reauth {
			start += "?reauth=1"
		}
		bs = append(bs, providerButton{Title: o.title(), URL: withTarget(start, t)})
	}
	return bs
}

// callbackURL is the absolute redirect URI of provider o for r: the
// origin r came to (https unless the cookie block is insecure and r came
// over plain http) and the portal's path.
func (p *Portal) callbackURL(r *http.Request, o *OIDCProvider) string {
	scheme := "https"
	if r.TLS == nil && p.Cookie.Insecure {
		scheme = "http"
	}
	return scheme + "://" + r.Host + p.Prefix + "/oidc/" + o.Name + "/callback"
}

// pendingCookie is the cookie binding a sign-in at a provider to the
// browser: a random value whose SHA-256 keys the pending record. It is
// __Host- prefixed (host-only, Secure, Path=/) unless the cookie block is
// insecure (plain-http development), SameSite=Lax so that the provider's
// redirect back brings it.
func (p *Portal) pendingCookie(value string, maxAge int) *http.Cookie {
	base := strings.TrimPrefix(strings.TrimPrefix(p.Cookie.Name, "__Host-"), "__Secure-")
	c := &http.Cookie{ //nolint:gosec // G124: Secure unless the cookie block says insecure (plain-HTTP development)
		Name: "__Host-" + base + "_oidc", Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	}
	if p.Cookie.Insecure {
		c.Name, c.Path, c.Secure = base+"_oidc", p.Prefix+"/oidc/", false
	}
	return c
}

// newPending returns the pending record of a sign-in at provider o:
// a short-lived session record in "pending identification" keyed by the
// SHA-256 of the browser's cookie value, holding the hash of the state,
// the nonce, the PKCE verifier, the redirect URI and target.
func (p *Portal) newPending(cookie string, o *OIDCProvider, stateHash, nonce, verifier, redirectURI, target string, now time.Time) *state.Session {
	s := state.NewSession(cookie, nil, now, pendingLifetime, 0)
	s.IDStoreName = "oidc:" + o.Name
	s.UserAttributes = map[string]string{
		"oidc_pending": o.Name, "oidc_state": stateHash, "oidc_nonce": nonce,
		"oidc_pkce": verifier, "oidc_redirect_uri": redirectURI, "oidc_target": target,
	}
	return s
}
