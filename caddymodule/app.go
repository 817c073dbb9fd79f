package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/authsession/caddy-authsession/handlers"
	"github.com/authsession/caddy-authsession/handlers/portal"
	"github.com/authsession/caddy-authsession/state"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the "authsession" app: it owns the session store and the
// configuration shared by the authsession handlers (lifetimes, cookie, API
// credentials). The store lives in a usage pool, so `caddy reload` keeps
// every session as long as the store configuration is unchanged.
type App struct {
	// Store is the session store module (authsession.stores.*).
	// Default: memory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=authsession.stores inline_key=module"`

	// SessionLifetime is a session's absolute lifetime. Default: 8h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// IdleTimeout ends a session that has not been used for that long; a
	// negative value disables it. Default: 30m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// TouchInterval is the least time between two refreshes of a
	// session's lastAccessTime by the gate. Default: 1m.
	TouchInterval caddy.Duration `json:"touch_interval,omitempty"`

	// BlockDuration is how long a "challenge blocked" status lasts.
	// Default: 15m.
	BlockDuration caddy.Duration `json:"block_duration,omitempty"`

	// StoreTimeout bounds one store operation of an API call; an OAM
	// lookup that runs out of it answers 408. Default: 5s.
	StoreTimeout caddy.Duration `json:"store_timeout,omitempty"`

	// MaxSessionsPerUser bounds the live sessions of one user, in every
	// family that creates sessions and across instances sharing a store:
	// a creation beyond it deletes the user's oldest sessions. Default: 0,
	// unlimited.
	MaxSessionsPerUser int `json:"max_sessions_per_user,omitempty"`

	// MaxSearchResults caps the sessions in one OAM search or
	// delete-by-user answer. Default: 28.
	MaxSearchResults int `json:"max_search_results,omitempty"`

	// IDStoreName is the idStoreName of sessions created without one.
	// Default: UserIdentityStore1.
	IDStoreName string `json:"id_store_name,omitempty"`

	// RequireSecondFactor makes sessions created through the OAM API start
	// in "pending verification" rather than "authenticated". Default: false.
	RequireSecondFactor bool `json:"require_second_factor,omitempty"`

	// Cookie configures the session cookie read by the gate and set by the
	// portal. Default: name "authsession", path "/", Secure.
	Cookie *CookieConfig `json:"cookie,omitempty"`

	// APIUsers are the HTTP Basic credentials of the API families that use
	// Basic auth (OAM, risk analyzer, challenge flow). With none, those
	// families refuse every call with 401. Default: none.
	APIUsers []APIUser `json:"api_users,omitempty"`

	// APITokens are the bearer tokens of the OTP session family. With
	// none, it refuses every call with 401. Default: none.
	APITokens []APIToken `json:"api_tokens,omitempty"`

	// SealKey is a base64 AES-256 key (32 bytes) that seals session ids
	// inside stored records ({env.*} accepted). Instances sharing a store
	// must share it. Default: a key generated once and kept in Caddy's
	// data directory (authsession/seal.key).
	SealKey string `json:"seal_key,omitempty"`

	// UsersFile is the JSON users file (users, mail addresses, password
	// hashes, TOTP secrets, factors), maintained with `caddy authsession
	// user`; it is read at every provision (start and `caddy reload`).
	// Default: none.
	UsersFile string `json:"users_file,omitempty"`

	// Directories are identity stores besides the users file (LDAP),
	// looked up after it in this order. Default: none.
	Directories []DirectoryConfig `json:"directories,omitempty"`

	// OTP configures one-time codes, TOTP and their delivery. Default:
	// 6-digit codes, 5m, 5 attempts, 30s cool-down, 10 sends per hour,
	// no delivery.
	OTP *OTPConfig `json:"otp,omitempty"`

	// RiskAnalyzer configures the risk-analyzer family (status sets,
	// trusted devices, login history). Default: see RiskAnalyzerConfig.
	RiskAnalyzer *RiskAnalyzerConfig `json:"risk_analyzer,omitempty"`

	// Authn configures the challenge flow API (integration clients,
	// unknown users). Default: no clients (every POST refused).
	Authn *AuthnConfig `json:"authn,omitempty"`

	// OIDCProviders are the OpenID Providers the portal signs users in
	// through (see OIDCProvider and docs/oidc.md). Default: none.
	OIDCProviders []OIDCProvider `json:"oidc_providers,omitempty"`
	// WebAuthn turns passkeys on (see WebAuthnConfig). Default: off.
	WebAuthn *WebAuthnConfig `json:"webauthn,omitempty"`
	// StatsInterval is how often the store is sampled for the metrics
	// (store_up, live sessions by status) and for expired sessions (the
	// session_expired event). Default: 30s.
	StatsInterval caddy.Duration `json:"stats_interval,omitempty"`

	otp      *otpRuntime
	authn    *authnRuntime
	store    state.Store
	storeKey string
	env      *handlers.Env
	basic    *handlers.BasicAuth
	bearer   *handlers.BearerAuth
	logger   *zap.Logger
	metrics  *metrics
	passkeys *handlers.Passkeys
	ops      *opsRuntime
	// storeName is the store module's name (memory, file, redis).
	storeName string
	// offline is set by CLI commands that provision the app outside a
	// running Caddy (no configuration in the context, no events app).
	offline bool
}

// spec is the cookie configuration as the portal takes it.
func (c *CookieConfig) spec() portal.CookieSpec {
	return portal.CookieSpec{Name: c.Name, Domain: c.Domain, Path: c.Path, Insecure: c.Insecure}
}

// CookieConfig configures the session cookie. A name with the __Host-
// prefix (e.g. __Host-authsession) makes the portal's session, CSRF and
// trusted-device cookies host-only, Secure and on Path=/: it cannot be
// combined with domain, insecure or a path other than /.
type CookieConfig struct {
	// Name of the cookie. Default: authsession.
	Name string `json:"name,omitempty"`
	// Domain of the cookie. Default: none (host-only).
	Domain string `json:"domain,omitempty"`
	// Path of the cookie. Default: /.
	Path string `json:"path,omitempty"`
	// Insecure drops the Secure attribute, for plain-http localhost
	// development only. Default: false (Secure).
	Insecure bool `json:"insecure,omitempty"`
}

// APIUser is one HTTP Basic credential.
type APIUser struct {
	// Username of the API client.
	Username string `json:"username"`
	// PasswordHash is the bcrypt hash of its password ({env.*} accepted),
	// as made by `caddy hash-password`.
	PasswordHash string `json:"password_hash"`
}

// APIToken is one bearer token, given either as its SHA-256 hash (hex) or,
// typically through {env.*}, in the clear (hashed at provision).
type APIToken struct {
	// SHA256 is the hex SHA-256 of the token.
	SHA256 string `json:"sha256,omitempty"`
	// Token is the token itself; prefer {env.NAME} over a literal.
	Token string `json:"token,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "authsession",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets defaults, opens (or shares) the store and resolves
// credentials.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.setDefaults()
	a.metrics = registerMetrics(ctx.GetMetricsRegistry())

	repl := caddy.NewReplacer()
	basic, err := a.basicUsers(repl)
	if err != nil {
		return err
	}
	a.basic = handlers.NewBasicAuth(basic)
	tokens, err := a.tokenHashes(repl)
	if err != nil {
		return err
	}
	a.bearer = handlers.NewBearerAuth(tokens)
	if a.basic.Empty() {
		a.logger.Warn("no api_users configured: the Basic-auth API families refuse every call")
	}
	sealer, err := a.sealer(repl)
	if err != nil {
		return err
	}
	if err := a.provisionOTP(repl); err != nil {
		return err
	}
	if err := a.provisionAuthn(repl); err != nil {
		return err
	}
	if err := a.provisionWebAuthn(); err != nil {
		return err
	}

	if a.StoreRaw == nil {
		a.StoreRaw = json.RawMessage(`{"module":"memory"}`)
	}
	mod, err := ctx.LoadModule(a, "StoreRaw")
	if err != nil {
		return fmt.Errorf("loading store module: %w", err)
	}
	provider, ok := mod.(StoreProvider)
	if !ok {
		return fmt.Errorf("store module %T is not a StoreProvider", mod)
	}
	a.storeName = mod.(caddy.Module).CaddyModule().ID.Name()
	a.storeKey = provider.StoreKey()
	val, _, err := stores.LoadOrNew(a.storeKey, func() (caddy.Destructor, error) {
		st, err := provider.OpenStore(time.Now)
		if err != nil {
			return nil, err
		}
		return pooledStore{st}, nil
	})
	if err != nil {
		a.storeKey = ""
		return fmt.Errorf("opening session store: %w", err)
	}
	a.store = val.(pooledStore).Store
	a.basic.Limiter = handlers.NewCredentialLimiter(a.store, a.logger)
	a.bearer.Limiter = handlers.NewCredentialLimiter(a.store, a.logger)
	a.otp.withStoredTOTP(a.store, a.IDStoreName)

	a.env = &handlers.Env{
		Store:  a.store,
		Now:    time.Now,
		Sealer: sealer,
		Logger: a.logger,
		Users:  a.otp.dirs,
		Policy: handlers.Policy{
			Lifetime:            time.Duration(a.SessionLifetime),
			IdleTimeout:         max(time.Duration(a.IdleTimeout), 0),
			IDStoreName:         a.IDStoreName,
			RequireSecondFactor: a.RequireSecondFactor,
			BlockFor:            time.Duration(a.BlockDuration),
			StoreTimeout:        time.Duration(a.StoreTimeout),
			MaxSessionsPerUser:  a.MaxSessionsPerUser,
			MaxSearchResults:    a.MaxSearchResults,
		},
	}
	a.provisionOps(ctx)
	return nil
}

func (a *App) setDefaults() {
	if a.SessionLifetime == 0 {
		a.SessionLifetime = caddy.Duration(8 * time.Hour)
	}
	if a.IdleTimeout == 0 {
		a.IdleTimeout = caddy.Duration(30 * time.Minute)
	}
	if a.TouchInterval == 0 {
		a.TouchInterval = caddy.Duration(time.Minute)
	}
	if a.BlockDuration == 0 {
		a.BlockDuration = caddy.Duration(15 * time.Minute)
	}
	if a.StoreTimeout == 0 {
		a.StoreTimeout = caddy.Duration(5 * time.Second)
	}
	if a.IDStoreName == "" {
		a.IDStoreName = "UserIdentityStore1"
	}
	if a.MaxSearchResults == 0 {
		a.MaxSearchResults = handlers.DefaultMaxSearchResults
	}
	if a.Cookie == nil {
		a.Cookie = new(CookieConfig)
	}
	if a.Cookie.Name == "" {
		a.Cookie.Name = "authsession"
	}
	if a.Cookie.Path == "" {
		a.Cookie.Path = "/"
	}
}

// Validate checks the configuration.
func (a *App) Validate() error {
	if err := a.validateOIDC(); err != nil {
		return err
	}
	if a.SessionLifetime < 0 {
		return errors.New("session_lifetime must be positive")
	}
	if a.TouchInterval < 0 || a.BlockDuration < 0 || a.StoreTimeout < 0 || a.StatsInterval < 0 {
		return errors.New("touch_interval, block_duration, store_timeout and stats_interval must not be negative")
	}
	if a.MaxSessionsPerUser < 0 || a.MaxSearchResults < 0 {
		return errors.New("max_sessions_per_user and max_search_results must not be negative")
	}
	if strings.ContainsAny(a.Cookie.Name, " ;=,\t\r\n") {
		return fmt.Errorf("cookie name %q has characters not allowed in a cookie name", a.Cookie.Name)
	}
	if err := a.Cookie.spec().Check(); err != nil {
		return fmt.Errorf("cookie %q: %w", a.Cookie.Name, err)
	}
	return nil
}

// Start implements caddy.App. The store was opened in Provision; Start
// makes the app the one the admin API serves and starts the store sampler.
func (a *App) Start() error { a.ops.start(); return nil }

// Stop implements caddy.App.
func (a *App) Stop() error { a.ops.stop(); return nil }

// Cleanup releases this config's use of the pooled store; the store closes
// when no config uses it any more.
func (a *App) Cleanup() error {
	a.cleanupOTP()
	if a.storeKey == "" {
		return nil
	}
	_, err := stores.Delete(a.storeKey)
	a.storeKey = ""
	return err
}

func (a *App) basicUsers(repl *caddy.Replacer) (map[string][]byte, error) {
	users := make(map[string][]byte, len(a.APIUsers))
	for i, u := range a.APIUsers {
		name := repl.ReplaceAll(u.Username, "")
		hash := repl.ReplaceAll(u.PasswordHash, "")
		if name == "" {
			return nil, fmt.Errorf("api_users[%d]: username is empty", i)
		}
		if !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("api_users[%d] (%s): password_hash is not a bcrypt hash", i, name)
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("api_users: user %q configured twice", name)
		}
		users[name] = []byte(hash)
	}
	return users, nil
}

func (a *App) tokenHashes(repl *caddy.Replacer) ([][32]byte, error) {
	var out [][32]byte
	for i, t := range a.APITokens {
		switch {
		case t.SHA256 != "" && t.Token != "":
			return nil, fmt.Errorf("api_tokens[%d]: give sha256 or token, not both", i)
		case t.SHA256 != "":
			b, err := hex.DecodeString(repl.ReplaceAll(t.SHA256, ""))
			if err != nil || len(b) != 32 {
				return nil, fmt.Errorf("api_tokens[%d]: sha256 must be 64 hex digits", i)
			}
			out = append(out, [32]byte(b))
		case t.Token != "":
			tok := repl.ReplaceAll(t.Token, "")
			if tok == "" {
				return nil, fmt.Errorf("api_tokens[%d]: token is empty (unset environment variable?)", i)
			}
			out = append(out, sha256.Sum256([]byte(tok)))
		default:
			return nil, fmt.Errorf("api_tokens[%d]: sha256 or token is required", i)
		}
	}
	return out, nil
}

// sealer returns the sealer for sealed values (seal_key, or the key file
// seal.key in Caddy's data directory, made on first use).
func (a *App) sealer(repl *caddy.Replacer) (*state.Sealer, error) {
	key, err := a.loadOrCreateKey(repl, a.SealKey, "seal_key", "seal.key")
	if err != nil {
		return nil, err
	}
	return state.NewSealer(key)
}

// appFrom returns the authsession app of ctx, loading it with defaults if
// the config has none.
func appFrom(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("authsession")
	if err != nil {
		return nil, fmt.Errorf("getting authsession app: %w", err)
	}
	return v.(*App), nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
